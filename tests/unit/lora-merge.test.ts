// Merge: W + s·B·A against a float64 reference, merged logits = base + adapter (CPU reference model), the HF folder.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FolderSource } from '../../src/model/sources/folder';
import { openCheckpoint } from '../../src/model/load';
import type { Adapter } from '../../src/lora/config';
import { loraConfig, scalingFor } from '../../src/lora/config';
import { initAdapter } from '../../src/lora/init';
import type { CheckpointTensor } from '../../src/lora/merge';
import { checkpointFiles, mergeWeight, withDtype } from '../../src/lora/merge';
import { mergeModelFromSource } from '../../src/lora/merge-model';
import { merge } from '../../src/cli/commands/merge';
import { adapterFiles } from '../../src/lora/adapter-io';
import { writeFolder } from '../../src/lora/fs-node';
import type { RefLora } from '../reference/model';
import { refForwardBackward } from '../reference/model';
import { fixture, hasFixtures, NO_FIXTURES } from '../helpers/fixtures';
import { uniform } from '../helpers/random';
import { readF32Safetensors, tinyModel, weights64, writeTinyModel } from '../helpers/tiny-models';
import { compare, F32 } from '../helpers/tolerance';

function randomize(a: Adapter, seed = 5): Adapter {
  let s = seed;
  for (const t of a.tensors.values()) {
    t.A.set(uniform(t.A.length, s++, 0.3));
    t.B.set(uniform(t.B.length, s++, 0.3));
  }
  return a;
}

/** float64 W + s·B·A, or W + s·(B·A)ᵀ in the [in, out] layout. */
function refMerge(
  W: Float32Array,
  A: Float32Array,
  B: Float32Array,
  r: number,
  I: number,
  O: number,
  s: number,
  conv: boolean,
) {
  const out = Float64Array.from(W);
  for (let o = 0; o < O; o++)
    for (let i = 0; i < I; i++) {
      let d = 0;
      for (let k = 0; k < r; k++) d += B[o * r + k] * A[k * I + i];
      out[conv ? i * O + o : o * I + i] += s * d;
    }
  return out;
}

describe('mergeWeight', () => {
  it.each([false, true])('equals the float64 reference (fanInFanOut %s), odd sizes', (conv) => {
    const [I, O, r] = [7, 5, 3];
    const W = uniform(I * O, 1);
    const A = uniform(r * I, 2);
    const B = uniform(O * r, 3);
    const got = mergeWeight(
      W,
      { inFeatures: I, outFeatures: O, fanInFanOut: conv },
      { A, B, r, in: I, out: O },
      0.75,
    );
    expect(compare(got, refMerge(W, A, B, r, I, O, 0.75, conv), F32)).toBeNull();
    // The two layouts really differ: a transposition bug cannot pass both.
    const other = mergeWeight(
      W,
      { inFeatures: I, outFeatures: O, fanInFanOut: !conv },
      { A, B, r, in: I, out: O },
      0.75,
    );
    expect(compare(other, refMerge(W, A, B, r, I, O, 0.75, conv), F32)).not.toBeNull();
  });
});

describe('merged model', () => {
  it.each(['llama', 'qwen2', 'gpt2'] as const)(
    '%s: logits of the merged weights equal base + adapter to 1e-4',
    async (kind) => {
      const m = tinyModel(kind);
      const dir = writeTinyModel(m);
      const cp = await openCheckpoint(new FolderSource(dir));
      const a = randomize(
        initAdapter(
          loraConfig({ r: 3, loraAlpha: 5, targetModules: 'all-linear', useRslora: true }),
          cp.layout.modules,
          1,
        ),
      );
      const files = await mergeModelFromSource(new FolderSource(dir), a);
      expect(files.map((f) => f.name)).toEqual(['config.json', 'model.safetensors']);
      const merged = readF32Safetensors(files[1].data);
      const lora = new Map<string, RefLora>();
      for (const [name, t] of a.tensors)
        lora.set(name, {
          A: Float64Array.from(t.A),
          B: Float64Array.from(t.B),
          r: t.r,
          scaling: scalingFor(a.config, name),
        });
      const T = 6;
      const batch = {
        B: 1,
        T,
        inputIds: Array.from({ length: T }, (_, i) => (i * 7 + 3) % m.spec.vocabSize),
        labels: new Array(T).fill(1),
      };
      const want = refForwardBackward(m.spec, weights64(m), lora, batch, { wantGrads: false }).logits;
      const got = refForwardBackward(m.spec, merged, new Map(), batch, { wantGrads: false }).logits;
      const base = refForwardBackward(m.spec, weights64(m), new Map(), batch, { wantGrads: false }).logits;
      expect(compare(got, want, { rel: 0, abs: 1e-4 })).toBeNull();
      // The adapter matters: the test could not pass with the base weights.
      expect(compare(base, want, { rel: 0, abs: 1e-4 })).not.toBeNull();
      // Untargeted tensors are copied bit for bit.
      for (const [name, t] of m.tensors)
        if (!cp.layout.modules.some((x) => x.weightName === name))
          expect(Float32Array.from(merged.get(name)!)).toEqual(t.data);
    },
  );

  it.skipIf(!hasFixtures)(
    `GPT-2 fixture: Conv1D weights [in, out] get (B·A)ᵀ; tokenizer files copied ${hasFixtures ? '' : NO_FIXTURES}`,
    async () => {
      const src = new FolderSource(fixture('models/gpt2-tiny-random'));
      const cp = await openCheckpoint(src);
      const a = randomize(
        initAdapter(loraConfig({ r: 2, targetModules: ['c_attn', 'c_proj'] }), cp.layout.modules, 1),
      );
      const files = await mergeModelFromSource(src, a);
      expect(files.map((f) => f.name).sort()).toEqual(
        [
          'config.json',
          'generation_config.json',
          'model.safetensors',
          'special_tokens_map.json',
          'tokenizer.json',
          'tokenizer_config.json',
        ].sort(),
      );
      for (const f of ['config.json', 'tokenizer.json', 'generation_config.json'])
        expect(
          Buffer.from(files.find((x) => x.name === f)!.data).equals(
            readFileSync(fixture(`models/gpt2-tiny-random/${f}`)),
          ),
        ).toBe(true);
      const merged = readF32Safetensors(files.find((f) => f.name === 'model.safetensors')!.data);
      const t = a.tensors.get('transformer.h.0.attn.c_attn')!;
      const W = await cp.tensors
        .get('transformer.h.0.attn.c_attn.weight')!
        .file.f32('transformer.h.0.attn.c_attn.weight');
      const want = refMerge(W, t.A, t.B, 2, 2, 6, scalingFor(a.config, 'transformer.h.0.attn.c_attn'), true);
      expect(compare(merged.get('transformer.h.0.attn.c_attn.weight')!, want, F32)).toBeNull();
    },
  );

  it('shards above the limit, with an index as Transformers writes it', () => {
    const t = (name: string, n: number): CheckpointTensor => ({
      name,
      dtype: 'F32',
      shape: [n],
      data: new Uint8Array(new Float32Array(n).fill(1).buffer),
    });
    const files = checkpointFiles([t('b', 10), t('a', 10), t('c', 30), t('d', 1)], 100);
    expect(files.map((f) => f.name)).toEqual([
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
      'model.safetensors.index.json',
    ]);
    expect(new TextDecoder().decode(files[3].data)).toBe(
      '{\n  "metadata": {\n    "total_size": 204\n  },\n  "weight_map": {\n    "a": "model-00001-of-00003.safetensors",\n    "b": "model-00001-of-00003.safetensors",\n    "c": "model-00002-of-00003.safetensors",\n    "d": "model-00003-of-00003.safetensors"\n  }\n}\n',
    );
    expect(checkpointFiles([t('a', 10)], 100).map((f) => f.name)).toEqual(['model.safetensors']);
  });

  it('sets the dtype in config.json and nowhere else', () => {
    expect(withDtype('{\n  "a": 1.0,\n  "torch_dtype": "float32"\n}\n', 'bf16')).toBe(
      '{\n  "a": 1.0,\n  "torch_dtype": "bfloat16"\n}\n',
    );
    expect(withDtype('{"a": 1}', 'f16')).toBe('{\n  "torch_dtype": "float16","a": 1}');
  });

  it('CLI: lora-studio merge --dtype bf16 writes a loadable folder', async () => {
    const m = tinyModel('llama');
    const dir = writeTinyModel(m);
    const cp = await openCheckpoint(new FolderSource(dir));
    const a = randomize(
      initAdapter(loraConfig({ r: 2, targetModules: ['q_proj', 'down_proj'] }), cp.layout.modules, 1),
    );
    const adapterDir = mkdtempSync(join(tmpdir(), 'lora-adapter-'));
    await writeFolder(adapterDir, adapterFiles(a));
    const out = join(mkdtempSync(join(tmpdir(), 'lora-merged-')), 'merged');
    expect(await merge.run({ model: dir, adapter: adapterDir, out, dtype: 'bf16' }, [])).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['config.json', 'model.safetensors']);
    const back = await openCheckpoint(new FolderSource(out));
    expect(back.dtypes).toEqual(['BF16']);
    expect(back.spec.dtype).toBe('bf16');
    await expect(merge.run({ model: dir, adapter: adapterDir, out, dtype: 'f64' }, [])).rejects.toThrow(
      /--dtype/,
    );
  });
});
