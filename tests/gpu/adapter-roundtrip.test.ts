// Adapters at the level of logits on the GPU engine: export → import gives identical logits, merged equals
// unmerged (nn.Linear and GPT-2 Conv1D), and a combination equals running its parts.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { adapterFiles, importAdapter } from '../../src/lora/adapter-io';
import { combineAdapters } from '../../src/lora/combine';
import { loraConfig } from '../../src/lora/config';
import type { Adapter } from '../../src/lora/config';
import { writeFolder } from '../../src/lora/fs-node';
import { disposeLoraParams, uploadAdapter } from '../../src/lora/gpu';
import { mergeModelFromSource } from '../../src/lora/merge-model';
import { Decoder } from '../../src/model/decoder';
import { loadModel } from '../../src/model/load';
import { FolderSource } from '../../src/model/sources/folder';
import type { Batch } from '../../src/model/trainable';
import { testGpu } from '../helpers/gpu';
import { uniform } from '../helpers/random';
import { tinyModel, writeTinyModel } from '../helpers/tiny-models';
import type { TinyModel } from '../helpers/tiny-models';
import { compare } from '../helpers/tolerance';

const BATCH: Batch = {
  B: 2,
  T: 5,
  inputIds: Int32Array.from([3, 7, 1, 9, 4, 5, 2, 8, 8, 3]),
  labels: Int32Array.from([3, 7, 1, 9, 4, 5, 2, 8, 8, 3]),
};
const ALL_ROWS = Array.from({ length: 10 }, (_, i) => i);

function randomAdapter(m: TinyModel, kinds: string[], r: number, seed: number): Adapter {
  const config = loraConfig({ targetModules: kinds, r, loraAlpha: 2 * r });
  const tensors = new Map<string, { A: Float32Array; B: Float32Array; r: number; in: number; out: number }>();
  let k = seed;
  for (const [name, t] of m.tensors) {
    const mod = name.replace(/\.weight$/, '');
    if (!name.endsWith('.weight') || !kinds.includes(mod.split('.').pop()!) || t.shape.length !== 2) continue;
    const [inF, outF] = m.spec.arch === 'gpt2' ? t.shape : [t.shape[1], t.shape[0]];
    tensors.set(mod, {
      A: uniform(r * inF, k++, 0.3),
      B: uniform(outF * r, k++, 0.3),
      r,
      in: inF,
      out: outF,
    });
  }
  return { config, tensors };
}

async function logits(ctx: GpuContext, dir: string, adapter: Adapter | null): Promise<Float32Array> {
  const model = await loadModel(ctx, new FolderSource(dir));
  const lora = adapter ? uploadAdapter(ctx, adapter) : [];
  const out = await new Decoder(ctx, model, lora).logits(BATCH, ALL_ROWS);
  disposeLoraParams(lora);
  model.dispose();
  return out;
}

// NOTE: merged weights round W + s·B·A to f32 once; the unmerged path rounds x·Wᵀ and s·(x·Aᵀ)·Bᵀ separately.
const MERGE_TOL = { rel: 1e-4, abs: 1e-5 };

describe('adapters on the GPU engine', () => {
  for (const [kind, kinds] of [
    ['llama', ['q_proj', 'v_proj', 'down_proj']],
    ['gpt2', ['c_attn', 'c_fc']],
  ] as const) {
    it(`${kind}: export → import → identical logits; merged model equals base + adapter`, async () => {
      const ctx = await testGpu();
      const m = tinyModel(kind, 21);
      const dir = writeTinyModel(m);
      const adapter = randomAdapter(m, [...kinds], 4, 300);
      const files = adapterFiles(adapter);
      const back = await importAdapter({
        config: new TextDecoder().decode(files.find((f) => f.name === 'adapter_config.json')!.data),
        weights: files.find((f) => f.name === 'adapter_model.safetensors')!.data,
      });
      const withAdapter = await logits(ctx, dir, adapter);
      expect(Array.from(await logits(ctx, dir, back))).toEqual(Array.from(withAdapter));
      const base = await logits(ctx, dir, null);
      expect(compare(base, withAdapter, { rel: 1e-3, abs: 1e-3 })).not.toBeNull(); // the adapter matters

      const mergedDir = mkdtempSync(join(tmpdir(), 'merged-'));
      await writeFolder(mergedDir, await mergeModelFromSource(new FolderSource(dir), adapter));
      expect(compare(await logits(ctx, mergedDir, null), withAdapter, MERGE_TOL)).toBeNull();
    });
  }

  it('a cat combination with weights 1 and 1 equals both adapters applied together', async () => {
    const ctx = await testGpu();
    const m = tinyModel('qwen2', 22);
    const dir = writeTinyModel(m);
    const a = randomAdapter(m, ['q_proj', 'v_proj'], 2, 400);
    const b = randomAdapter(m, ['v_proj', 'up_proj'], 3, 500);
    const both = combineAdapters([a, b], [1, 1]);
    // Applying a then b: merge a into the base, then run b on top of the merged model.
    const mergedA = mkdtempSync(join(tmpdir(), 'merged-a-'));
    await writeFolder(mergedA, await mergeModelFromSource(new FolderSource(dir), a));
    expect(compare(await logits(ctx, dir, both), await logits(ctx, mergedA, b), MERGE_TOL)).toBeNull();
  });
});
