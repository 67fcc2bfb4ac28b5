// MLP activations, forward and backward: SwiGLU (silu(gate)·up, Llama/Qwen2) and GELU-tanh (GPT-2's gelu_new).
import type { GpuContext } from '../gpu/context';
import type { BindingKind } from '../gpu/kernel';
import { Params } from '../gpu/kernel';
import type { Tensor } from '../gpu/tensor';
import { expectShape } from '../gpu/tensor';
import { spreadGroups } from './elementwise';

const WG = 256;

function run(ctx: GpuContext, entry: string, kinds: readonly BindingKind[], ts: Tensor[], n: number): void {
  ctx.dispatch(
    { shader: 'activation', entry, bindings: kinds },
    {
      bindings: [new Params().u32(n).bytes(), ...ts],
      workgroups: spreadGroups(ctx, Math.ceil(n / WG)),
      label: `${entry} ${n}`,
    },
  );
}

function expectF32(op: string, ...ts: Tensor[]): void {
  for (const t of ts) if (t.dtype !== 'f32') throw new Error(`${op}: ${t} must be f32`);
}

/** h[N, F] = silu(gate) · up. The backward needs gate and up (kept by the caller). */
export function swigluForward(ctx: GpuContext, gate: Tensor, up: Tensor): Tensor {
  expectF32('swiglu', gate, up);
  expectShape(up, gate.shape, `swiglu: ${up.label} (up)`);
  const h = ctx.empty(gate.shape, 'f32', 'swiglu.h');
  run(ctx, 'swiglu_forward', ['uniform', 'rw', 'read', 'read'], [h, gate, up], gate.size);
  return h;
}

/** dGate = dh · up · silu'(gate), dUp = dh · silu(gate); all [N, F]. */
export function swigluBackward(
  ctx: GpuContext,
  gate: Tensor,
  up: Tensor,
  dh: Tensor,
): { dGate: Tensor; dUp: Tensor } {
  expectF32('swigluBackward', gate, up, dh);
  expectShape(up, gate.shape, `swigluBackward: ${up.label} (up)`);
  expectShape(dh, gate.shape, `swigluBackward: ${dh.label} (dh)`);
  const dGate = ctx.empty(gate.shape, 'f32', 'swiglu.dgate');
  const dUp = ctx.empty(gate.shape, 'f32', 'swiglu.dup');
  run(
    ctx,
    'swiglu_backward',
    ['uniform', 'rw', 'read', 'read', 'read', 'rw'],
    [dGate, gate, up, dh, dUp],
    gate.size,
  );
  return { dGate, dUp };
}

/** y = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), any shape. The backward needs x. */
export function geluTanhForward(ctx: GpuContext, x: Tensor): Tensor {
  expectF32('geluTanh', x);
  const y = ctx.empty(x.shape, 'f32', 'gelu.y');
  run(ctx, 'gelu_forward', ['uniform', 'rw', 'read'], [y, x], x.size);
  return y;
}

/** dx = dy · gelu'(x). */
export function geluTanhBackward(ctx: GpuContext, x: Tensor, dy: Tensor): Tensor {
  expectF32('geluTanhBackward', x, dy);
  expectShape(dy, x.shape, `geluTanhBackward: ${dy.label} (dy)`);
  const dx = ctx.empty(x.shape, 'f32', 'gelu.dx');
  run(ctx, 'gelu_backward', ['uniform', 'rw', 'read', 'read'], [dx, x, dy], x.size);
  return dx;
}
