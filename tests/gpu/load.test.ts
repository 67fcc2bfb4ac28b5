// loadModel on the fixtures: every variant loads, weights agree across dtypes and shards, splits and ties are right.
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import type { Weight } from '../../src/gpu/weight';
import type { LoadedModel, LoadOptions } from '../../src/model/load';
import { loadModel, openCheckpoint } from '../../src/model/load';
import { f32ToBf16, f32ToF16 } from '../../src/model/safetensors';
import { bf16ToF32, f16ToF32 } from '../../src/gpu/context';
import { FolderSource } from '../../src/model/sources/folder';
import { fixture, hasFixtures } from '../helpers/fixtures';
import { testGpu } from '../helpers/gpu';

/** Embedding row 403, first 8 values, from the fixtures README (printed to 6 decimals). */
const ROW_403 = [0.003544, -0.170162, 0.031364, -0.857873, 0.276414, -0.099558, -0.024057, -0.018751];

const load = async (dir: string, o?: LoadOptions): Promise<[GpuContext, LoadedModel]> => {
  const ctx = await testGpu();
  return [ctx, await loadModel(ctx, new FolderSource(fixture(`models/${dir}`), dir), o)];
};

/** A Weight's values as one [rows, cols] f32 array, its parts concatenated. */
async function readWeight(ctx: GpuContext, w: Weight): Promise<Float32Array> {
  const out = new Float32Array(w.shape[0] * w.shape[1]);
  let at = 0;
  for (const p of w.parts) {
    const v = await ctx.read(p);
    out.set(v, at);
    at += v.length;
  }
  expect(at).toBe(out.length);
  return out;
}

const same = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  a.length === b.length && Array.prototype.every.call(a, (v: number, i: number) => Object.is(v, b[i]));

describe.skipIf(!hasFixtures)('loadModel', () => {
  it('stories260K-hf: f32, tied, embedding row 403 as published', async () => {
    const [ctx, m] = await load('stories260K-hf');
    expect(m.spec.arch).toBe('llama');
    expect(m.lmHead).toBe(m.embedding);
    expect(m.weights.has('lm_head.weight')).toBe(false);
    expect(m.weights.size).toBe(1 + 5 * 7);
    expect(m.vectors.size).toBe(5 * 2 + 1);
    expect(m.vector('model.norm.weight').dtype).toBe('f32');
    expect(m.files.tokenizerConfig).toContain('LlamaTokenizer');
    const e = await readWeight(ctx, m.embedding);
    const row = [...e.subarray(403 * 64, 403 * 64 + 8)];
    row.forEach((v, i) => expect(Math.abs(v - ROW_403[i])).toBeLessThan(5e-7));
    expect(() => m.weight('model.layers.9.mlp.up_proj.weight')).toThrow(
      /no weight "model.layers.9.mlp.up_proj.weight"/,
    );
    m.dispose();
  });

  it('sharded == single, untied lm_head == embeddings, exactly', async () => {
    const [ctx, single] = await load('stories260K-hf');
    const [, sharded] = await load('stories260K-hf-sharded');
    const [, untied] = await load('stories260K-hf-untied');
    for (const [name, w] of single.weights)
      expect(same(await readWeight(ctx, sharded.weight(name)), await readWeight(ctx, w)), name).toBe(true);
    for (const [name, v] of single.vectors)
      expect(same(await ctx.read(sharded.vector(name)), await ctx.read(v)), name).toBe(true);
    expect(untied.lmHead).not.toBe(untied.embedding);
    expect(untied.lmHead.name).toBe('lm_head.weight');
    expect(same(await readWeight(ctx, untied.lmHead), await readWeight(ctx, single.embedding))).toBe(true);
    for (const m of [single, sharded, untied]) m.dispose();
  });

  it('f16 and bf16 checkpoints widen exactly to the rounded f32 weights', async () => {
    const [ctx, ref] = await load('stories260K-hf');
    for (const [dir, round] of [
      ['stories260K-hf-bf16', (x: Float32Array) => bf16ToF32(f32ToBf16(x))],
      ['stories260K-hf-f16', (x: Float32Array) => f16ToF32(f32ToF16(x))],
    ] as const) {
      const [, m] = await load(dir);
      for (const [name, w] of ref.weights)
        expect(
          same(await readWeight(ctx, m.weight(name)), round(await readWeight(ctx, w))),
          `${dir} ${name}`,
        ).toBe(true);
      for (const [name, v] of ref.vectors)
        expect(same(await ctx.read(m.vector(name)), round(await ctx.read(v))), `${dir} ${name}`).toBe(true);
      m.dispose();
    }
    ref.dispose();
  });

  it('weightsDtype bf16 / f16 keeps 16-bit words (bf16 file bits kept as they are)', async () => {
    const [ctx, ref] = await load('stories260K-hf');
    const [, bf] = await load('stories260K-hf', { weightsDtype: 'bf16' });
    const [, h] = await load('stories260K-hf-bf16', { weightsDtype: 'f16' });
    const [, bfFromBf] = await load('stories260K-hf-bf16', { weightsDtype: 'bf16' });
    const name = 'model.layers.2.mlp.down_proj.weight';
    const x = await readWeight(ctx, ref.weight(name));
    expect(bf.weight(name).dtype).toBe('bf16');
    expect(bf.weight(name).parts[0].bytes).toBe(64 * 172 * 2);
    expect(same(await readWeight(ctx, bf.weight(name)), bf16ToF32(f32ToBf16(x)))).toBe(true);
    expect(same(await readWeight(ctx, bfFromBf.weight(name)), bf16ToF32(f32ToBf16(x)))).toBe(true);
    // bf16 → f16 goes through the exact f32 value, so it rounds once.
    expect(same(await readWeight(ctx, h.weight(name)), f16ToF32(f32ToF16(bf16ToF32(f32ToBf16(x)))))).toBe(
      true,
    );
    expect(bf.vector('model.norm.weight').dtype).toBe('f32');
    for (const m of [ref, bf, h, bfFromBf]) m.dispose();
  });

  it('splits a weight by rows when it exceeds the binding limit', async () => {
    const [ctx, whole] = await load('stories260K-hf');
    const limit = 100 * 64 * 4;
    const [, split] = await load('stories260K-hf', { maxBindingBytes: limit });
    const e = split.embedding;
    expect(e.rowsPerPart).toBe(100);
    expect(e.parts.map((p) => p.shape[0])).toEqual([100, 100, 100, 100, 100, 12]);
    for (const p of e.parts) expect(p.bytes).toBeLessThanOrEqual(limit);
    expect(same(await readWeight(ctx, e), await readWeight(ctx, whole.embedding))).toBe(true);
    // 16-bit: the same byte limit holds twice the rows.
    const [, split16] = await load('stories260K-hf', { maxBindingBytes: limit, weightsDtype: 'bf16' });
    expect(split16.embedding.parts.map((p) => p.shape[0])).toEqual([200, 200, 112]);
    expect(
      same(
        await readWeight(ctx, split16.embedding),
        bf16ToF32(f32ToBf16(await readWeight(ctx, whole.embedding))),
      ),
    ).toBe(true);
    for (const m of [whole, split, split16]) m.dispose();
  });

  it('qwen2-bias: q/k/v biases as f32 vectors, same matrices as stories260K', async () => {
    const [ctx, q] = await load('stories260K-qwen2-bias');
    const [, ref] = await load('stories260K-hf');
    expect(q.spec.arch).toBe('qwen2');
    expect(q.vector('model.layers.0.self_attn.q_proj.bias').shape).toEqual([64]);
    expect(q.vector('model.layers.4.self_attn.k_proj.bias').shape).toEqual([32]);
    expect(q.vectors.has('model.layers.0.self_attn.o_proj.bias')).toBe(false);
    const bias = await ctx.read(q.vector('model.layers.0.self_attn.v_proj.bias'));
    expect(bias.some((v) => v !== 0)).toBe(true);
    const name = 'model.layers.3.self_attn.q_proj.weight';
    expect(same(await readWeight(ctx, q.weight(name)), await readWeight(ctx, ref.weight(name)))).toBe(true);
    q.dispose();
    ref.dispose();
  });

  it('gpt2-tiny-random: Conv1D weights as stored [in, out], learned positions, tied head', async () => {
    const [, m] = await load('gpt2-tiny-random');
    expect(m.spec.arch).toBe('gpt2');
    expect(m.weight('transformer.h.0.attn.c_attn.weight').shape).toEqual([2, 6]);
    expect(m.weight('transformer.h.0.mlp.c_proj.weight').shape).toEqual([8, 2]);
    expect(m.positionEmbedding?.shape).toEqual([1024, 2]);
    expect(m.lmHead).toBe(m.embedding);
    expect(m.embedding.shape).toEqual([50257, 2]);
    expect(m.vector('transformer.ln_f.bias').shape).toEqual([2]);
    expect(m.modules.every((x) => x.fanInFanOut)).toBe(true);
    m.dispose();
  });

  it('malformed checkpoints fail before anything is uploaded', async () => {
    const ctx = await testGpu();
    const live = () => {
      const st = ctx.pool.snapshot();
      return [st.liveBuffers, st.liveBytes];
    };
    const before = live();
    for (const [dir, want] of [
      ['missing_tensor', /missing tensors: model.layers.4.mlp.down_proj.weight/],
      ['wrong_shape_tensor', /"model.embed_tokens.weight" has shape \[500,64\]/],
      ['unexpected_tensor_names', /unexpected tensors/],
    ] as const) {
      await expect(loadModel(ctx, new FolderSource(fixture(`malformed/models/${dir}`)))).rejects.toThrow(
        want,
      );
    }
    expect(live()).toEqual(before);
    // and a loaded model hands every buffer back on dispose
    const m = await loadModel(ctx, new FolderSource(fixture('models/stories260K-hf-untied')));
    expect(live()[0]).toBeGreaterThan(before[0]);
    m.dispose();
    expect(live()).toEqual(before);
    await expect(openCheckpoint(new FolderSource(fixture('models/stories260K-llama2c')))).rejects.toThrow(
      /no config.json/,
    );
  });
});
