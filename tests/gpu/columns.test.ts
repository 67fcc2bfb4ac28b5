// Column-block copies (GPT-2's fused q|k|v split and its gradient's join) against plain CPU slicing: exact.
import { expect, it } from 'vitest';
import { concatColumns, splitColumns } from '../../src/ops/columns';
import { testGpu } from '../helpers/gpu';
import { uniform } from '../helpers/random';

it('splits [N, a+b+c] into column blocks and joins them back, exactly', async () => {
  const ctx = await testGpu();
  const [N, widths] = [7, [5, 3, 9]];
  const W = widths.reduce((a, b) => a + b, 0);
  const data = uniform(N * W, 31);
  const x = ctx.upload(data, [N, W], 'f32', 'qkv');
  const parts = splitColumns(ctx, x, widths, ['q', 'k', 'v']);
  let off = 0;
  for (const [i, p] of parts.entries()) {
    const want = Float32Array.from(
      { length: N * widths[i] },
      (_, e) => data[Math.floor(e / widths[i]) * W + off + (e % widths[i])],
    );
    expect(Array.from(await ctx.read(p)), `block ${i}`).toEqual(Array.from(want));
    off += widths[i];
  }
  expect(Array.from(await ctx.read(concatColumns(ctx, parts, 'joined')))).toEqual(Array.from(data));
  expect(() => splitColumns(ctx, x, [5, 3], ['q', 'k'])).toThrow(/qkv\[7,17\].*\[N, 8\]/);
});
