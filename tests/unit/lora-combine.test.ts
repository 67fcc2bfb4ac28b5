// Combining adapters (PEFT "cat"): the result's ΔW equals Σ wᵢ·sᵢ·Bᵢ·Aᵢ exactly; the adapter set; the CLI.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { LinearModule } from '../../src/model/spec';
import { adapterFiles, importAdapter } from '../../src/lora/adapter-io';
import { AdapterSet, combineAdapters } from '../../src/lora/combine';
import type { Adapter } from '../../src/lora/config';
import { loraConfig, scalingFor } from '../../src/lora/config';
import { readAdapterDir, writeFolder } from '../../src/lora/fs-node';
import { initAdapter } from '../../src/lora/init';
import { adapters as adaptersCmd } from '../../src/cli/commands/adapters';
import { uniform } from '../helpers/random';
import { compare } from '../helpers/tolerance';

const mods: LinearModule[] = [0, 1].flatMap((l): LinearModule[] => [
  {
    name: `model.layers.${l}.self_attn.q_proj`,
    kind: 'q_proj',
    layer: l,
    inFeatures: 6,
    outFeatures: 6,
    weightName: `model.layers.${l}.self_attn.q_proj.weight`,
    fanInFanOut: false,
  },
  {
    name: `model.layers.${l}.self_attn.v_proj`,
    kind: 'v_proj',
    layer: l,
    inFeatures: 6,
    outFeatures: 4,
    weightName: `model.layers.${l}.self_attn.v_proj.weight`,
    fanInFanOut: false,
  },
  {
    name: `model.layers.${l}.mlp.down_proj`,
    kind: 'down_proj',
    layer: l,
    inFeatures: 9,
    outFeatures: 6,
    weightName: `model.layers.${l}.mlp.down_proj.weight`,
    fanInFanOut: false,
  },
]);

function random(a: Adapter, seed: number): Adapter {
  let s = seed;
  for (const t of a.tensors.values()) {
    t.A.set(uniform(t.A.length, s++, 0.5));
    t.B.set(uniform(t.B.length, s++, 0.5));
  }
  return a;
}

/** float64 s·B·A of one module, [out, in]. */
function delta(a: Adapter, name: string): Float64Array {
  const t = a.tensors.get(name);
  const m = mods.find((x) => x.name === name)!;
  const d = new Float64Array(m.outFeatures * m.inFeatures);
  if (!t) return d;
  const s = scalingFor(a.config, name);
  for (let o = 0; o < t.out; o++)
    for (let i = 0; i < t.in; i++) {
      let v = 0;
      for (let k = 0; k < t.r; k++) v += t.B[o * t.r + k] * t.A[k * t.in + i];
      d[o * t.in + i] = s * v;
    }
  return d;
}

const a1 = () =>
  random(initAdapter(loraConfig({ r: 2, loraAlpha: 4, targetModules: ['q_proj', 'v_proj'] }), mods, 1), 10);
const a2 = () =>
  random(
    initAdapter(
      loraConfig({ r: 3, loraAlpha: 2, targetModules: ['q_proj', 'down_proj'], useRslora: true }),
      mods,
      2,
    ),
    20,
  );
const a3 = () =>
  random(
    initAdapter(
      loraConfig({
        r: 4,
        loraAlpha: 8,
        targetModules: ['q_proj'],
        rankPattern: { 'layers\\.1\\.self_attn\\.q_proj': 1 },
      }),
      mods,
      3,
    ),
    30,
  );

describe('combineAdapters', () => {
  it('ΔW of the combination = Σ wᵢ·ΔWᵢ for every module (different ranks, targets, rsLoRA, rank_pattern)', async () => {
    const parts = [a1(), a2(), a3()];
    const w = [0.7, -0.3, 1.5];
    const c = combineAdapters(parts, w);
    expect(c.config.useRslora).toBe(false);
    expect(c.config.targetModules).toEqual(['down_proj', 'q_proj', 'v_proj']);
    // q_proj layer 0: 2 + 3 + 4; layer 1: 2 + 3 + 1 (rank_pattern) → carried in rank_pattern.
    expect(c.tensors.get('model.layers.0.self_attn.q_proj')!.r).toBe(9);
    expect(c.tensors.get('model.layers.1.self_attn.q_proj')!.r).toBe(6);
    // Modules an adapter lacks get zero blocks of its rank, as PEFT pads.
    expect(c.tensors.get('model.layers.0.mlp.down_proj')!.r).toBe(9);
    expect(c.config.r).toBe(9);
    expect(c.config.rankPattern).toEqual({ 'model\\.layers\\.1\\.self_attn\\.q_proj': 6 });
    for (const m of mods) {
      const want = new Float64Array(m.outFeatures * m.inFeatures);
      parts.forEach((p, i) => delta(p, m.name).forEach((v, j) => (want[j] += w[i] * v)));
      expect(compare(delta(c, m.name), want, { rel: 1e-6, abs: 1e-7 }), m.name).toBeNull();
    }
    // It survives export and import (the patterns resolve to the same ranks and scaling 1).
    const files = adapterFiles(c);
    const back = await importAdapter({
      config: new TextDecoder().decode(files[0].data),
      weights: files[1].data,
    });
    for (const m of mods)
      expect(compare(delta(back, m.name), delta(c, m.name), { rel: 0, abs: 0 })).toBeNull();
  });

  it('with PEFT-uniform inputs gives r = lora_alpha = Σ rᵢ and no patterns', () => {
    const c = combineAdapters([a1(), a1()], [0.5, 0.5]);
    expect([c.config.r, c.config.loraAlpha, c.config.rankPattern]).toEqual([4, 4, {}]);
    expect(c.config.targetModules).toEqual(['q_proj', 'v_proj']);
    // Equal halves of the same adapter give the adapter back.
    for (const m of mods)
      expect(compare(delta(c, m.name), delta(a1(), m.name), { rel: 1e-6, abs: 1e-7 })).toBeNull();
  });

  it('refuses mismatched shapes and weight counts', () => {
    const bad = a1();
    const t = bad.tensors.get('model.layers.0.self_attn.v_proj')!;
    bad.tensors.set('model.layers.0.self_attn.v_proj', { ...t, out: 5, B: new Float32Array(5 * t.r) });
    expect(() => combineAdapters([a1(), bad], [1, 1])).toThrow(
      /v_proj is 4x6 in one adapter and 5x6 in adapter 2/,
    );
    expect(() => combineAdapters([a1(), a2()], [1])).toThrow(/2 adapters but 1 weights/);
  });
});

describe('AdapterSet', () => {
  it('loads several, switches the active one, combines into a new one', () => {
    const set = new AdapterSet();
    set.add('a', a1());
    set.add('b', a2());
    expect(set.active).toBe('a');
    set.setActive('b');
    expect(set.activeAdapter()).toBe(set.get('b'));
    set.setActive(null);
    expect(set.activeAdapter()).toBeNull();
    expect(() => set.setActive('zzz')).toThrow(/no adapter named "zzz" \(loaded: a, b\)/);
    set.combine(['a', 'b'], [1, 1], 'ab');
    expect(set.names).toEqual(['a', 'b', 'ab']);
    expect(() => set.add('a', a1())).toThrow(/already loaded/);
    set.remove('a');
    expect(set.names).toEqual(['b', 'ab']);
  });
});

describe('lora-studio adapters combine', () => {
  it('writes the combination of adapter folders', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lora-combine-'));
    await writeFolder(join(root, 'A'), adapterFiles(a1()));
    await writeFolder(join(root, 'B'), adapterFiles(a2()));
    const out = join(root, 'AB');
    expect(
      await adaptersCmd.run({ weights: '0.7,0.3', out }, ['combine', join(root, 'A'), join(root, 'B')]),
    ).toBe(0);
    const got = await readAdapterDir(out);
    const want = combineAdapters([a1(), a2()], [0.7, 0.3]);
    expect(got.tensors).toEqual(want.tensors);
    expect(JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')).lora_alpha).toBe(5);
    await expect(
      adaptersCmd.run({ weights: '0.7', out }, ['combine', join(root, 'A'), join(root, 'B')]),
    ).rejects.toThrow(/1 numbers for 2 adapters/);
    await expect(
      adaptersCmd.run({ weights: '0.7,x', out }, ['combine', join(root, 'A'), join(root, 'B')]),
    ).rejects.toThrow(/--weights/);
    await expect(adaptersCmd.run({ out }, ['combine', join(root, 'A'), join(root, 'nope')])).rejects.toThrow(
      /nope: no such adapter folder/,
    );
  });
});
