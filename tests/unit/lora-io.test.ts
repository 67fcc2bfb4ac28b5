// PEFT adapter files: the exact byte layout we write, round trips, adapters as PEFT writes them, and every refusal.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { modelLayout } from '../../src/model/architectures/index';
import { parseConfigText } from '../../src/model/config';
import { writeSafetensors } from '../../src/model/safetensors';
import type { LinearModule } from '../../src/model/spec';
import {
  adapterFiles,
  adapterSafetensors,
  checkAdapter,
  importAdapter,
  peftKey,
} from '../../src/lora/adapter-io';
import type { Adapter } from '../../src/lora/config';
import { loraConfig } from '../../src/lora/config';
import { initAdapter } from '../../src/lora/init';
import { modelCard } from '../../src/lora/model-card';
import { unzipFolder, zipFolder } from '../../src/lora/zip';
import { fixture, hasFixtures, NO_FIXTURES } from '../helpers/fixtures';
import { uniform } from '../helpers/random';
import { safetensorsBytes } from '../helpers/tiny-models';

function modules(dir: string): LinearModule[] {
  return modelLayout(parseConfigText(readFileSync(fixture(`models/${dir}/config.json`), 'utf8'))).modules;
}

/** An adapter with random A and B (B is zero after init, which would hide transposition bugs). */
function trained(a: Adapter, seed = 3): Adapter {
  let s = seed;
  for (const t of a.tensors.values()) {
    t.A.set(uniform(t.A.length, s++, 0.5));
    t.B.set(uniform(t.B.length, s++, 0.5));
  }
  return a;
}

/** Parses a safetensors file by hand (not with the code under test). */
function header(bytes: Uint8Array) {
  const len = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + len));
  return {
    len,
    text,
    json: JSON.parse(text) as Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>,
  };
}

const text = (f: { data: Uint8Array }) => new TextDecoder().decode(f.data);

describe.skipIf(!hasFixtures)(`adapter files ${hasFixtures ? '' : NO_FIXTURES}`, () => {
  it('writes the PEFT layout: metadata first, sorted keys, [r,in] / [out,r], padded header, contiguous data', () => {
    const a = trained(
      initAdapter(loraConfig({ r: 4, targetModules: ['q_proj', 'v_proj'] }), modules('stories260K-hf'), 1),
    );
    const bytes = adapterSafetensors(a);
    const h = header(bytes);
    expect(h.len % 8).toBe(0);
    expect(
      h.text.startsWith(
        '{"__metadata__":{"format":"pt"},"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight":',
      ),
    ).toBe(true);
    const names = Object.keys(h.json).filter((k) => k !== '__metadata__');
    expect(names).toEqual([...names].sort());
    expect(names).toHaveLength(20);
    let off = 0;
    for (const n of names) {
      const t = h.json[n];
      expect(t.dtype).toBe('F32');
      expect(t.data_offsets[0]).toBe(off);
      off = t.data_offsets[1];
    }
    expect(bytes.length).toBe(8 + h.len + off);
    expect(h.json[peftKey('model.layers.2.self_attn.v_proj', 'A')].shape).toEqual([4, 64]);
    expect(h.json[peftKey('model.layers.2.self_attn.v_proj', 'B')].shape).toEqual([32, 4]);
    // The data is A itself, row-major.
    const [b0] = h.json[peftKey('model.layers.0.self_attn.q_proj', 'A')].data_offsets;
    const A = new Float32Array(bytes.slice(8 + h.len + b0, 8 + h.len + b0 + 16 * 64).buffer);
    expect(A).toEqual(a.tensors.get('model.layers.0.self_attn.q_proj')!.A);
  });

  it('GPT-2 Conv1D: LoRA shapes are nn.Linear style ([r, in], [out, r]) and fan_in_fan_out is true', async () => {
    const a = trained(
      initAdapter(loraConfig({ r: 2, targetModules: ['c_attn', 'c_fc'] }), modules('gpt2-tiny-random'), 1),
    );
    const [cfg, weights] = adapterFiles(a);
    const h = header(weights.data);
    expect(h.json['base_model.model.transformer.h.0.attn.c_attn.lora_A.weight'].shape).toEqual([2, 2]);
    expect(h.json['base_model.model.transformer.h.0.attn.c_attn.lora_B.weight'].shape).toEqual([6, 2]);
    expect(h.json['base_model.model.transformer.h.0.mlp.c_fc.lora_B.weight'].shape).toEqual([8, 2]);
    expect(JSON.parse(text(cfg)).fan_in_fan_out).toBe(true);
    const back = await importAdapter({ config: text(cfg), weights: weights.data });
    expect(checkAdapter(back, modules('gpt2-tiny-random')).missing).toEqual([]);
  });

  it.each(['f32', 'f16', 'bf16'] as const)(
    'round-trips bit for bit (%s values), config equal',
    async (dtype) => {
      const mods = modules('stories260K-hf');
      const a = trained(
        initAdapter(
          loraConfig({
            r: 4,
            loraAlpha: 8,
            targetModules: 'all-linear',
            rankPattern: { down_proj: 2 },
            useRslora: true,
          }),
          mods,
          2,
        ),
      );
      const once = await importAdapter({
        config: text(adapterFiles(a, { dtype })[0]),
        weights: adapterSafetensors(a, dtype),
      });
      expect(once.config).toEqual(a.config);
      if (dtype === 'f32') for (const [n, t] of a.tensors) expect(once.tensors.get(n)).toEqual(t);
      // Export → import → export gives the same bytes in every dtype.
      const files1 = adapterFiles(once, { dtype });
      const twice = await importAdapter({ config: text(files1[0]), weights: files1[1].data });
      expect(adapterFiles(twice, { dtype })).toEqual(files1);
      expect(checkAdapter(twice, mods).missing).toEqual([]);
    },
  );

  it('reads adapters as PEFT writes them: `.default` keys, BF16, regex targets, rank_pattern', async () => {
    const mods = modules('stories260K-hf');
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const m of mods.filter((x) => /layers\.[01]\.(self_attn\.q_proj|mlp\.up_proj)$/.test(x.name))) {
      const r = m.name.endsWith('up_proj') ? 2 : 4;
      tensors.set(`base_model.model.${m.name}.lora_A.default.weight`, {
        shape: [r, m.inFeatures],
        data: uniform(r * m.inFeatures, 1),
      });
      tensors.set(`base_model.model.${m.name}.lora_B.default.weight`, {
        shape: [m.outFeatures, r],
        data: uniform(r * m.outFeatures, 2),
      });
    }
    const config = JSON.stringify({
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      r: 4,
      lora_alpha: 16,
      target_modules: 'model\\.layers\\.[01]\\.(self_attn\\.q_proj|mlp\\.up_proj)',
      rank_pattern: { up_proj: 2 },
      use_rslora: true,
      exclude_modules: null,
      loftq_config: {},
    });
    const a = await importAdapter({ config, weights: safetensorsBytes(tensors) });
    expect([...a.tensors.keys()].sort()).toEqual([
      'model.layers.0.mlp.up_proj',
      'model.layers.0.self_attn.q_proj',
      'model.layers.1.mlp.up_proj',
      'model.layers.1.self_attn.q_proj',
    ]);
    expect(a.tensors.get('model.layers.1.mlp.up_proj')!.A).toEqual(uniform(2 * 64, 1));
    expect(checkAdapter(a, mods).missing).toEqual([]);
    // BF16 weights widen exactly.
    const bf = writeSafetensors(
      [...tensors].map(([name, t]) => ({
        name: name.replace('.default', ''),
        dtype: 'BF16' as const,
        shape: t.shape,
        data: new Uint8Array(Uint16Array.from(new Uint32Array(t.data.buffer), (u) => u >>> 16).buffer),
      })),
      { format: 'pt' },
    );
    const b = await importAdapter({ config, weights: bf });
    const want = new Float32Array(
      new Uint32Array(uniform(2 * 64, 1).buffer).map((u) => u & 0xffff0000).buffer,
    );
    expect(b.tensors.get('model.layers.1.mlp.up_proj')!.A).toEqual(want);
  });

  it('names the key or module in every error', async () => {
    const mods = modules('stories260K-hf');
    const cfg = JSON.stringify({
      peft_type: 'LORA',
      r: 2,
      lora_alpha: 2,
      target_modules: ['q_proj', 'nope'],
    });
    const one = (shape: number[]) => ({ shape, data: new Float32Array(shape[0] * shape[1]) });
    const file = (entries: [string, number[]][]) =>
      safetensorsBytes(new Map(entries.map(([n, s]) => [n, one(s)])));
    const q = 'base_model.model.model.layers.0.self_attn.q_proj';
    await expect(
      importAdapter({ config: cfg, weights: file([[`${q}.lora_A.weight`, [2, 64]]]) }),
    ).rejects.toThrow(/model\.layers\.0\.self_attn\.q_proj has lora_A but no lora_B/);
    await expect(
      importAdapter({
        config: cfg,
        weights: file([
          [`${q}.lora_A.weight`, [3, 64]],
          [`${q}.lora_B.weight`, [64, 3]],
        ]),
      }),
    ).rejects.toThrow(/q_proj\.lora_A\.weight has rank 3 but adapter_config\.json gives .* rank 2/);
    await expect(
      importAdapter({
        config: cfg,
        weights: file([
          [`${q}.lora_A.weight`, [2, 64]],
          [`${q}.lora_B.weight`, [64, 3]],
        ]),
      }),
    ).rejects.toThrow(/ranks differ/);
    await expect(
      importAdapter({
        config: cfg,
        weights: file([['base_model.model.model.embed_tokens.lora_embedding_A', [2, 512]]]),
      }),
    ).rejects.toThrow(/embed_tokens\.lora_embedding_A.*embedding LoRA/);
    await expect(
      importAdapter({ config: cfg, weights: file([[`${q}.lora_magnitude_vector`, [1, 64]]]) }),
    ).rejects.toThrow(/DoRA/);
    await expect(
      importAdapter({
        config: cfg,
        weights: file([['base_model.model.lm_head.modules_to_save.default.weight', [512, 64]]]),
      }),
    ).rejects.toThrow(/modules_to_save/);
    await expect(
      importAdapter({ config: cfg, weights: file([['model.norm.weight', [1, 64]]]) }),
    ).rejects.toThrow(/"model\.norm\.weight" is not a LoRA weight/);
    // Keys that match no module of the model, and shapes that do not fit, are named by checkAdapter.
    const ghost = await importAdapter({
      config: cfg,
      weights: file([
        ['base_model.model.model.layers.9.self_attn.nope.lora_A.weight', [2, 64]],
        ['base_model.model.model.layers.9.self_attn.nope.lora_B.weight', [64, 2]],
      ]),
    });
    expect(() => checkAdapter(ghost, mods)).toThrow(
      /base_model\.model\.model\.layers\.9\.self_attn\.nope\.lora_A\.weight.*no linear module/,
    );
    const wide = await importAdapter({
      config: cfg,
      weights: file([
        [`${q}.lora_A.weight`, [2, 32]],
        [`${q}.lora_B.weight`, [64, 2]],
      ]),
    });
    expect(() => checkAdapter(wide, mods)).toThrow(/q_proj: lora_A \[2,32\].*in 64, out 64/);
    expect(
      checkAdapter(
        await importAdapter({
          config: cfg,
          weights: file([
            [`${q}.lora_A.weight`, [2, 64]],
            [`${q}.lora_B.weight`, [64, 2]],
          ]),
        }),
        mods,
      ).missing,
    ).toHaveLength(4);
  });

  it('exports a README model card and a zip of the folder', () => {
    const a = trained(
      initAdapter(
        loraConfig({
          r: 4,
          loraAlpha: 8,
          targetModules: ['q_proj'],
          baseModelNameOrPath: 'karpathy/stories260K',
        }),
        modules('stories260K-hf'),
        1,
      ),
    );
    const readme = modelCard(a, {
      baseModel: 'karpathy/stories260K',
      data: { source: 'alpaca_sample.json', format: 'alpaca', rows: 151, evalRows: 15 },
      hyperparameters: { learning_rate: 0.0002, epochs: 3, batch_size: 4, seed: 42 },
      finalTrainLoss: 1.23456,
      finalEvalLoss: 1.5,
    });
    for (const s of [
      'base_model: "karpathy/stories260K"',
      'library_name: peft',
      '| learning_rate | 0.0002 |',
      '| seed | 42 |',
      '| final train loss | 1.2346 |',
      '| final eval loss | 1.5000 |',
      'PeftModel.from_pretrained(base, ',
      '151',
    ])
      expect(readme).toContain(s);
    const files = adapterFiles(a, { readme });
    expect(files.map((f) => f.name)).toEqual([
      'adapter_config.json',
      'adapter_model.safetensors',
      'README.md',
    ]);
    const zip = zipFolder('my-adapter', files, new Date(2024, 0, 1));
    expect(zipFolder('my-adapter', files, new Date(2024, 0, 1))).toEqual(zip);
    const back = unzipFolder(zip);
    expect(back.folder).toBe('my-adapter');
    expect(back.files).toEqual(files);
    expect(() => zipFolder('a/b', files)).toThrow(/one plain path component/);
  });
});
