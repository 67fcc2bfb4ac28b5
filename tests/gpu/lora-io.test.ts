// Adapter ⇄ GPU: uploaded LoraParams hold A, B, zero grads and the per-module scaling; download gives them back.
import { describe, expect, it } from 'vitest';
import type { LinearModule } from '../../src/model/spec';
import { loraConfig } from '../../src/lora/config';
import { disposeLoraParams, downloadAdapter, uploadAdapter } from '../../src/lora/gpu';
import { initAdapter } from '../../src/lora/init';
import { testGpu } from '../helpers/gpu';
import { uniform } from '../helpers/random';

const mods: LinearModule[] = [
  {
    name: 'h.0.attn.c_attn',
    kind: 'c_attn',
    layer: 0,
    inFeatures: 5,
    outFeatures: 15,
    weightName: 'h.0.attn.c_attn.weight',
    fanInFanOut: true,
  },
  {
    name: 'h.0.mlp.c_fc',
    kind: 'c_fc',
    layer: 0,
    inFeatures: 5,
    outFeatures: 7,
    weightName: 'h.0.mlp.c_fc.weight',
    fanInFanOut: true,
  },
];

describe('lora/gpu', () => {
  it('uploads and downloads bit for bit', async () => {
    const ctx = await testGpu();
    const a = initAdapter(
      loraConfig({ r: 3, loraAlpha: 6, targetModules: 'all-linear', rankPattern: { c_fc: 1 } }),
      mods,
      4,
    );
    let s = 1;
    for (const t of a.tensors.values()) t.B.set(uniform(t.B.length, s++));
    const params = uploadAdapter(ctx, a);
    expect(params.map((p) => [p.module, p.A.shape, p.B.shape, p.scaling])).toEqual([
      ['h.0.attn.c_attn', [3, 5], [15, 3], 2],
      ['h.0.mlp.c_fc', [1, 5], [7, 1], 6],
    ]);
    for (const p of params) {
      expect((await ctx.read(p.gradA)).every((x) => x === 0)).toBe(true);
      expect((await ctx.read(p.gradB)).every((x) => x === 0)).toBe(true);
    }
    const back = await downloadAdapter(ctx, params, a.config);
    expect(back.tensors).toEqual(a.tensors);
    disposeLoraParams(params);
  });
});
