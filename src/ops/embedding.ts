// Embedding lookups: token embeddings gathered from a (split, any float dtype) table, and GPT-2's position add.
// Embeddings are frozen under LoRA, so there is no backward.
import type { GpuContext } from '../gpu/context';
import { Params } from '../gpu/kernel';
import type { Tensor } from '../gpu/tensor';
import { expectShape } from '../gpu/tensor';
import type { Weight } from '../gpu/weight';
import { spreadGroups } from './elementwise';
import { readableAs } from './wgsl';

function gather(
  ctx: GpuContext,
  table: Weight,
  ids: Tensor,
  out: Tensor,
  accumulate: boolean,
  op: string,
): void {
  const [V, C] = table.shape;
  const N = ids.shape[0];
  if (ids.shape.length !== 1 || ids.dtype !== 'i32') throw new Error(`${op}: ${ids} must be i32 [N]`);
  expectShape(out, [N, C], `${op}: ${out.label}`);
  table.parts.forEach((part, p) => {
    const row0 = p * table.rowsPerPart;
    const rows = Math.min(table.rowsPerPart, V - row0);
    expectShape(part, [rows, C], `${op}: ${table.name} part ${p}`);
    ctx.dispatch(
      {
        shader: 'embedding',
        entry: 'gather',
        bindings: ['uniform', 'rw', 'read', 'read'],
        prelude: readableAs('table', 2, table.dtype),
        constants: { ACCUMULATE: accumulate ? 1 : 0 },
      },
      {
        bindings: [
          new Params()
            .u32(N * C)
            .u32(C)
            .u32(V)
            .u32(row0)
            .u32(rows)
            .bytes(),
          out,
          part,
          ids,
        ],
        workgroups: spreadGroups(ctx, Math.ceil((N * C) / 256)),
        label: `${op} ${table.name}[${p}]`,
      },
    );
  });
}

/**
 * out[N, C] = table[ids[n], :] from a [V, C] weight in f32, f16 or bf16, split in row parts or not.
 * NOTE: ids outside [0, V) are clamped in the kernel (no out-of-bounds reads); callers validate ids on the CPU.
 */
export function embeddingForward(ctx: GpuContext, table: Weight, ids: Tensor): Tensor {
  const out = ctx.empty([ids.shape[0], table.shape[1]], 'f32', `${table.name}.out`);
  gather(ctx, table, ids, out, false, 'embedding');
  return out;
}

/** x[N, C] += wpe[positions[n], :] in place (GPT-2's learned position embeddings; positions: i32 [N]). */
export function addPositionEmbedding(ctx: GpuContext, x: Tensor, wpe: Weight, positions: Tensor): void {
  if (x.dtype !== 'f32') throw new Error(`addPositionEmbedding: ${x} must be f32`);
  gather(ctx, wpe, positions, x, true, 'addPositionEmbedding');
}
