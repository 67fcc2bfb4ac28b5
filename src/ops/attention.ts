// Causal self-attention with GQA and packing, FlashAttention-2 style: forward saves only the log-sum-exp per query.
import type { GpuContext } from '../gpu/context';
import { Params } from '../gpu/kernel';
import type { BindingKind, KernelSpec } from '../gpu/kernel';
import { expectShape } from '../gpu/tensor';
import type { Tensor } from '../gpu/tensor';
import { grid1d } from './linear';

export interface AttentionConfig {
  /** Batch rows. */
  B: number;
  /** Sequence length of each row. */
  T: number;
  /** Query heads. */
  H: number;
  /** Key/value heads; H must be a multiple (GQA: query head h reads kv head h / (H / Hkv)). */
  Hkv: number;
  /** Head dim, at most 128. */
  D: number;
  /** Score scale, normally 1 / sqrt(D). */
  scale: number;
}

const MAX_D = 128;

/**
 * Head dims up to this use the row kernels (`*_rows`): one query (or key) per invocation with its rows in
 * registers (up to 4·D floats in attn_bwd_dkdv_rows), no workgroup memory and no barriers. Larger heads use the
 * tiled kernels, whose per-invocation state does not grow with D.
 */
const ROWS_MAX_D = 32;
/** Queries (keys) per workgroup of the row kernels (QPW / RPW in the shaders). */
const ROWS_PER_GROUP = 64;

/** Workgroup bytes of a kernel with `mats` [BT, D] tiles, `squares` [BT, BT] tiles and `vecs` [BT] vectors. */
const tileBytes = (bt: number, D: number, mats: number, squares: number, vecs: number) =>
  4 * (mats * bt * D + squares * bt * bt + vecs * bt);

/** The largest tile (16, 8 or 4) whose workgroup memory fits this device (16 KB on every adapter). */
function tileFor(ctx: GpuContext, D: number, mats: number, squares: number, vecs: number): number {
  const limit = ctx.device.limits.maxComputeWorkgroupStorageSize;
  for (const bt of [16, 8, 4]) if (tileBytes(bt, D, mats, squares, vecs) <= limit) return bt;
  throw new Error(`attention: head dim ${D} does not fit ${limit} bytes of workgroup memory`);
}

function spec(
  shader: 'attention' | 'attention_backward',
  entry: string,
  bindings: readonly BindingKind[],
  D: number,
  bt: number,
  segments: boolean,
): KernelSpec {
  return {
    shader,
    entry,
    bindings,
    includes: ['attention_common'],
    prelude: `const BT: u32 = ${bt}u;\nconst HD: u32 = ${D}u;\nconst DPT: u32 = ${Math.ceil(D / bt)}u;`,
    constants: { SEGMENTS: segments ? 1 : 0 },
  };
}

function params(cfg: AttentionConfig, stride = 0): ArrayBuffer {
  return new Params().u32(cfg.B).u32(cfg.T).u32(cfg.H).u32(cfg.Hkv).f32(cfg.scale).u32(stride).bytes();
}

/** Checks every tensor against the config; N = B·T rows. */
function check(cfg: AttentionConfig, named: Record<string, [Tensor, number[]]>, segmentIds?: Tensor): void {
  const { B, T, H, Hkv, D } = cfg;
  if (![B, T, H, Hkv, D].every((n) => Number.isInteger(n) && n > 0)) {
    throw new Error(`attention: bad config ${JSON.stringify(cfg)}`);
  }
  if (H % Hkv !== 0) throw new Error(`attention: H = ${H} is not a multiple of Hkv = ${Hkv}`);
  if (D > MAX_D) throw new Error(`attention: head dim ${D} exceeds ${MAX_D}`);
  if (Math.ceil(T / 4) > 65535 || H > 65535 || B > 65535)
    throw new Error(`attention: grid too large for ${T}x${H}x${B}`);
  for (const [what, [t, shape]] of Object.entries(named)) {
    expectShape(t, shape, `attention ${what} ${t.label}`);
    if (t.dtype !== 'f32') throw new Error(`attention ${what} ${t}: must be f32`);
  }
  if (segmentIds) {
    expectShape(segmentIds, [B * T], `attention segmentIds ${segmentIds.label}`);
    if (segmentIds.dtype !== 'i32') throw new Error(`attention segmentIds ${segmentIds}: must be i32`);
  }
}

/**
 * out[N, H·D] = softmax(scale · q·kᵀ + causal/segment mask) · v, per head; lse[B·H·T] (index (b·H + h)·T + t) is
 * what backward needs to recompute the probabilities. Saves for backward: out and lse (returned).
 */
export function attentionForward(
  ctx: GpuContext,
  q: Tensor, // [N, H*D]
  k: Tensor, // [N, Hkv*D]
  v: Tensor, // [N, Hkv*D]
  cfg: AttentionConfig,
  segmentIds?: Tensor, // i32 [N]
): { out: Tensor; lse: Tensor } {
  const { B, T, H, Hkv, D } = cfg;
  const N = B * T;
  check(cfg, { q: [q, [N, H * D]], k: [k, [N, Hkv * D]], v: [v, [N, Hkv * D]] }, segmentIds);
  const rows = D <= ROWS_MAX_D;
  const bt = rows ? 16 : tileFor(ctx, D, 3, 2, 2);
  const perGroup = rows ? ROWS_PER_GROUP : bt;
  const out = ctx.empty([N, H * D], 'f32', 'attn.out');
  const lse = ctx.empty([B * H * T], 'f32', 'attn.lse');
  const kinds: BindingKind[] = ['uniform', 'read', 'read', 'read', 'read', 'rw', 'rw'];
  // Without segments the kernel never reads binding 4; q stands in (read-only, so the aliasing is legal).
  ctx.dispatch(spec('attention', rows ? 'attn_fwd_rows' : 'attn_fwd', kinds, D, bt, !!segmentIds), {
    bindings: [params(cfg), q, k, v, segmentIds ?? q, out, lse],
    workgroups: [Math.ceil(T / perGroup), H, B],
    label: `attention fwd B${B} T${T} H${H}/${Hkv} D${D}`,
  });
  return { out, lse };
}

/**
 * dq [N, H·D], dk and dv [N, Hkv·D] from dOut, recomputing the probabilities tile by tile from lse:
 * first D_i = rowsum(dO_i ⊙ O_i), then dq (per query tile) and dk, dv (per key tile, looping over the query heads
 * of each kv head). Memory O(T·D); no T×T buffer, no float atomics.
 */
export function attentionBackward(
  ctx: GpuContext,
  q: Tensor, // [N, H*D]
  k: Tensor, // [N, Hkv*D]
  v: Tensor, // [N, Hkv*D]
  out: Tensor, // [N, H*D]
  lse: Tensor, // [B*H*T]
  dOut: Tensor, // [N, H*D]
  cfg: AttentionConfig,
  segmentIds?: Tensor, // i32 [N]
): { dq: Tensor; dk: Tensor; dv: Tensor } {
  const { B, T, H, Hkv, D } = cfg;
  const N = B * T;
  check(
    cfg,
    {
      q: [q, [N, H * D]],
      k: [k, [N, Hkv * D]],
      v: [v, [N, Hkv * D]],
      out: [out, [N, H * D]],
      lse: [lse, [B * H * T]],
      dOut: [dOut, [N, H * D]],
    },
    segmentIds,
  );
  const rows = D <= ROWS_MAX_D;
  const bt = rows ? 16 : tileFor(ctx, D, 4, 2, 4);
  const perGroup = rows ? ROWS_PER_GROUP : bt;
  const suffix = rows ? '_rows' : '';
  const seg = !!segmentIds;
  const label = `B${B} T${T} H${H}/${Hkv} D${D}`;
  const stats = ctx.empty([B * H * T, 2], 'f32', 'attn.stats');
  const g = grid1d(B * H * T);
  ctx.dispatch(
    spec('attention_backward', 'attn_bwd_delta', ['uniform', 'read', 'read', 'read', 'rw'], D, bt, seg),
    {
      bindings: [params(cfg, g.stride), dOut, out, lse, stats],
      workgroups: g.workgroups,
      label: `attention delta ${label}`,
    },
  );
  const kinds: BindingKind[] = ['uniform', 'read', 'read', 'read', 'rw', 'read', 'read', 'rw'];
  const dq = ctx.empty([N, H * D], 'f32', 'attn.dq');
  ctx.dispatch(spec('attention_backward', `attn_bwd_dq${suffix}`, kinds, D, bt, seg), {
    bindings: [params(cfg), dOut, q, k, stats, v, segmentIds ?? q, dq],
    workgroups: [Math.ceil(T / perGroup), H, B],
    label: `attention dq ${label}`,
  });
  const dk = ctx.empty([N, Hkv * D], 'f32', 'attn.dk');
  const dv = ctx.empty([N, Hkv * D], 'f32', 'attn.dv');
  ctx.dispatch(spec('attention_backward', `attn_bwd_dkdv${suffix}`, [...kinds, 'rw'], D, bt, seg), {
    bindings: [params(cfg), dOut, q, k, stats, v, segmentIds ?? q, dk, dv],
    workgroups: [Math.ceil(T / perGroup), Hkv, B],
    label: `attention dk dv ${label}`,
  });
  stats.dispose();
  return { dq, dk, dv };
}
