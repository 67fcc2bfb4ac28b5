// Embedding gather and GPT-2's position add against the reference: split tables, 16-bit tables, clamped ids.
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import type { DType } from '../../src/gpu/dtype';
import type { Weight } from '../../src/gpu/weight';
import { addPositionEmbedding, embeddingForward } from '../../src/ops/embedding';
import { testGpu } from '../helpers/gpu';
import { uniform } from '../helpers/random';
import { compare } from '../helpers/tolerance';
import { embeddingRef } from '../reference/ops';

// A gather copies values: exact.
const EXACT = { rel: 0, abs: 0 };

/** Multiples of 1/64 in [-4, 4]: exact in f32, f16 and bf16, so one reference serves every dtype. */
const tableValues = (n: number, seed: number) =>
  Float32Array.from(uniform(n, seed, 4), (v) => Math.round(v * 64) / 64);

function bits16(a: Float32Array, dtype: 'f16' | 'bf16'): Uint16Array {
  if (dtype === 'bf16') return new Uint16Array(new Uint32Array(a.buffer.slice(0)).map((w) => w >>> 16));
  return Uint16Array.from(a, (v) => {
    if (v === 0) return 0;
    const e = Math.floor(Math.log2(Math.abs(v)));
    return (v < 0 ? 0x8000 : 0) | ((e + 15) << 10) | Math.round((Math.abs(v) / 2 ** e - 1) * 1024);
  });
}

/** A [V, C] weight uploaded in parts of `rowsPerPart` rows, as the model loader splits large tables. */
function weightOf(
  ctx: GpuContext,
  values: Float32Array,
  V: number,
  C: number,
  dtype: DType,
  rowsPerPart: number,
): Weight {
  const parts = [];
  for (let r0 = 0; r0 < V; r0 += rowsPerPart) {
    const rows = Math.min(rowsPerPart, V - r0);
    const slice = values.slice(r0 * C, (r0 + rows) * C);
    const data = dtype === 'f16' || dtype === 'bf16' ? bits16(slice, dtype) : slice;
    parts.push(ctx.upload(data, [rows, C], dtype, `wte[${r0}]`));
  }
  return { name: 'wte', shape: [V, C], dtype, parts, rowsPerPart };
}

describe('embedding', () => {
  const V = 11;
  for (const C of [1, 7, 65]) {
    for (const dtype of ['f32', 'bf16', 'f16'] as const) {
      for (const rowsPerPart of [V, 4]) {
        it(`gathers C=${C} ${dtype} in ${Math.ceil(V / rowsPerPart)} part(s)`, async () => {
          const ctx = await testGpu();
          const table = tableValues(V * C, C);
          const W = weightOf(ctx, table, V, C, dtype, rowsPerPart);
          const ids = Int32Array.from([0, 10, 3, 4, 7, 8, 3, 1, 9, 2, 5, 6, 0]);
          const out = embeddingForward(ctx, W, ctx.upload(ids, [ids.length], 'i32', 'ids'));
          expect(compare(await ctx.read(out), embeddingRef(table, ids, V, C), EXACT)).toBeNull();
        });
      }
    }
  }

  it('clamps out-of-range ids instead of reading past the table', async () => {
    const ctx = await testGpu();
    const [V, C] = [6, 5];
    const table = tableValues(V * C, 1);
    const W = weightOf(ctx, table, V, C, 'bf16', 4);
    const ids = Int32Array.from([-1, 6, 1 << 30, -(1 << 30), 2]);
    const out = await ctx.read(embeddingForward(ctx, W, ctx.upload(ids, [5], 'i32', 'ids')));
    expect(compare(out, embeddingRef(table, [0, 5, 5, 0, 2], V, C), EXACT)).toBeNull();
  });

  it('adds position embeddings in place (GPT-2)', async () => {
    const ctx = await testGpu();
    const [P, C, N] = [9, 7, 33];
    const wpe = tableValues(P * C, 2);
    const W = weightOf(ctx, wpe, P, C, 'f32', 4);
    const x = uniform(N * C, 3);
    const pos = Int32Array.from({ length: N }, (_, n) => n % P);
    const X = ctx.upload(x, [N, C], 'f32', 'x');
    addPositionEmbedding(ctx, X, W, ctx.upload(pos, [N], 'i32', 'positions'));
    const gathered = embeddingRef(wpe, pos, P, C);
    const want = Float32Array.from(x, (v, i) => v + gathered[i]);
    expect(compare(await ctx.read(X), want, EXACT)).toBeNull();
  });

  it('names the tensor whose shape is wrong', async () => {
    const ctx = await testGpu();
    const W = weightOf(ctx, tableValues(12, 4), 4, 3, 'f32', 4);
    const X = ctx.zeros([2, 4], 'f32', 'hidden');
    expect(() => addPositionEmbedding(ctx, X, W, ctx.zeros([2], 'i32', 'positions'))).toThrow(
      /hidden.*\[2,3\]/,
    );
  });
});
