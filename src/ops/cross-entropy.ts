// The LM head fused with cross-entropy, chunk by chunk of rows, so the full [N, V] logits never exist at once.
import type { GpuContext } from '../gpu/context';
import { Params } from '../gpu/kernel';
import type { Tensor } from '../gpu/tensor';
import { expectShape } from '../gpu/tensor';
import type { Weight } from '../gpu/weight';
import { copy2d, spreadGroups } from './elementwise';
import { matmul, matmulInto } from './matmul';

/** Target of a row that is not trained (prompt tokens, padding), as in transformers. */
export const IGNORE_INDEX = -100;

/** Default bytes of one chunk's logits (also bounded by the storage binding limit). */
const CHUNK_BYTES = 64 << 20;

export interface LmHeadLossOptions {
  /** dHidden is scaled by this (e.g. 1 / trained tokens of the whole accumulated batch). */
  gradScale: number;
  /** f32 [1]: the summed loss of the non-ignored rows is added to it. */
  lossSum: Tensor;
  wantGrad: boolean;
  /** Rows per chunk; by default as many as keep one chunk's logits within 64 MiB. */
  chunkRows?: number;
}

function headRows(head: Weight, p: number): [number, number] {
  const row0 = p * head.rowsPerPart;
  return [row0, Math.min(head.rowsPerPart, head.shape[0] - row0)];
}

/** logits[R, V] = h[R, C] · Wᵀ, one matmul per weight part (parts beyond the first go through a column copy). */
function logitsOf(ctx: GpuContext, h: Tensor, head: Weight): Tensor {
  const R = h.shape[0];
  const V = head.shape[0];
  if (head.parts.length === 1) return matmul(ctx, h, head.parts[0], { transB: true }, 'lm_head.logits');
  const logits = ctx.empty([R, V], 'f32', 'lm_head.logits');
  head.parts.forEach((part, p) => {
    const [v0, rows] = headRows(head, p);
    const t = matmul(ctx, h, part, { transB: true }, 'lm_head.part_logits');
    copy2d(ctx, t, logits, { rows: R, cols: rows, dstOffset: v0, dstLd: V });
    t.dispose();
  });
  return logits;
}

function checkHead(op: string, hidden: Tensor, head: Weight): [number, number, number] {
  if (hidden.shape.length !== 2 || hidden.dtype !== 'f32')
    throw new Error(`${op}: ${hidden} must be f32 [N, C]`);
  const [N, C] = hidden.shape;
  const [V, C2] = head.shape;
  if (C2 !== C) throw new Error(`${op}: ${head.name} is [${V},${C2}], hidden ${hidden} has C=${C}`);
  head.parts.forEach((part, p) =>
    expectShape(part, [headRows(head, p)[1], C], `${op}: ${head.name} part ${p}`),
  );
  return [N, C, V];
}

/** logits[N, V] = hidden[N, C] · headᵀ, for evaluation and generation of a few rows. */
export function lmHeadLogits(ctx: GpuContext, hidden: Tensor, head: Weight): Tensor {
  checkHead('lmHeadLogits', hidden, head);
  return logitsOf(ctx, hidden, head);
}

/**
 * ce_rows' lanes per row: one per 64 logits, a power of two in 1..256 (V = 512: 8 lanes, 3 reduction steps;
 * V ≥ 16384: 256 lanes); rows share a workgroup of at least 64 invocations.
 */
function ceKernel(V: number): { lanes: number; wg: number; prelude: string } {
  let lanes = 1;
  while (lanes < 256 && lanes * 2 * 64 <= V) lanes *= 2;
  const wg = Math.max(64, lanes);
  return { lanes, wg, prelude: `const LPR: u32 = ${lanes}u;\nconst WG: u32 = ${wg}u;\n` };
}

/**
 * Adds Σ over non-ignored rows of (logsumexp(logits) − logit[target]) to o.lossSum and, when o.wantGrad, returns
 * dHidden[N, C] = gradScale · (softmax − onehot) · head (zero rows where the target is ignored).
 * targets: i32 [N], already shifted (row n predicts token n + 1); −100, or anything outside [0, V), is ignored.
 * Per chunk of rows: logits = h·Wᵀ → loss per row and dlogits in place → dh = dlogits·W. The row losses are
 * summed by one small tree reduction at the end: deterministic, no float atomics.
 */
export function lmHeadLoss(
  ctx: GpuContext,
  hidden: Tensor,
  head: Weight,
  targets: Tensor,
  o: LmHeadLossOptions,
): Tensor | null {
  const [N, C, V] = checkHead('lmHeadLoss', hidden, head);
  expectShape(targets, [N], 'lmHeadLoss: targets');
  if (targets.dtype !== 'i32') throw new Error(`lmHeadLoss: ${targets} must be i32`);
  expectShape(o.lossSum, [1], 'lmHeadLoss: lossSum');
  const fit = Math.max(1, Math.floor(Math.min(CHUNK_BYTES, ctx.maxBindingBytes) / (V * 4)));
  // Whole 64-row matmul tiles where the budget allows.
  const R = Math.min(N, o.chunkRows ?? (fit >= 64 ? fit - (fit % 64) : fit));
  if (!(R >= 1)) throw new Error(`lmHeadLoss: chunkRows must be >= 1 (got ${o.chunkRows})`);
  const ce = ceKernel(V);
  const rowLoss = ctx.empty([N], 'f32', 'lm_head.row_loss');
  const dHidden = o.wantGrad ? ctx.empty([N, C], 'f32', 'lm_head.dhidden') : null;
  for (let r0 = 0; r0 < N; r0 += R) {
    const rows = Math.min(R, N - r0);
    const whole = rows === N;
    let h = hidden;
    if (!whole) {
      h = ctx.empty([rows, C], 'f32', 'lm_head.h_chunk');
      copy2d(ctx, hidden, h, { rows, cols: C, srcOffset: r0 * C });
    }
    const logits = logitsOf(ctx, h, head);
    if (h !== hidden) h.dispose();
    ctx.dispatch(
      {
        shader: 'cross_entropy',
        entry: 'ce_rows',
        bindings: ['uniform', 'rw', 'read', 'rw'],
        prelude: ce.prelude,
      },
      {
        bindings: [
          new Params()
            .u32(rows)
            .u32(V)
            .u32(r0)
            .u32(o.wantGrad ? 1 : 0)
            .f32(o.gradScale)
            .bytes(),
          logits,
          targets,
          rowLoss,
        ],
        workgroups: spreadGroups(ctx, Math.ceil((rows * ce.lanes) / ce.wg)),
        label: `ce_rows ${rows}x${V}`,
      },
    );
    if (dHidden) backwardChunk(ctx, logits, head, dHidden, r0, whole);
    logits.dispose();
  }
  ctx.dispatch(
    {
      shader: 'cross_entropy',
      entry: 'loss_sum_add',
      bindings: ['uniform', 'rw', 'read'],
      prelude: ce.prelude,
    },
    {
      bindings: [new Params().u32(N).u32(V).u32(0).u32(0).f32(0).bytes(), o.lossSum, rowLoss],
      workgroups: [1],
      label: `loss_sum_add ${N}`,
    },
  );
  rowLoss.dispose();
  return dHidden;
}

/** dHidden[r0 : r0 + R] = dlogits[R, V] · W[V, C], one matmul per weight part, accumulated. */
function backwardChunk(
  ctx: GpuContext,
  dlogits: Tensor,
  head: Weight,
  dHidden: Tensor,
  r0: number,
  whole: boolean,
): void {
  const [R, V] = dlogits.shape;
  const C = head.shape[1];
  const dh = whole ? dHidden : ctx.empty([R, C], 'f32', 'lm_head.dh_chunk');
  if (head.parts.length === 1) {
    matmulInto(ctx, dlogits, head.parts[0], dh);
  } else {
    head.parts.forEach((part, p) => {
      const [v0, rows] = headRows(head, p);
      const dl = ctx.empty([R, rows], 'f32', 'lm_head.part_dlogits');
      copy2d(ctx, dlogits, dl, { rows: R, cols: rows, srcOffset: v0, srcLd: V });
      matmulInto(ctx, dl, part, dh, { accumulate: p > 0 });
      dl.dispose();
    });
  }
  if (!whole) {
    copy2d(ctx, dh, dHidden, { rows: R, cols: C, dstOffset: r0 * C });
    dh.dispose();
  }
}
