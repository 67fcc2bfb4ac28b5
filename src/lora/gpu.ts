// Moves an Adapter between the CPU and the GPU: LoraParam tensors (f32, with zeroed grads) and back.
import type { GpuContext } from '../gpu/context';
import type { LoraParam } from '../model/trainable';
import type { Adapter, LoraConfig, LoraTensors } from './config';
import { scalingFor } from './config';

/** One LoraParam per adapter module, in the adapter's order; A [r, in], B [out, r], grads zero. */
export function uploadAdapter(ctx: GpuContext, adapter: Adapter): LoraParam[] {
  const params: LoraParam[] = [];
  for (const [module, t] of adapter.tensors) {
    if (t.A.length !== t.r * t.in || t.B.length !== t.out * t.r)
      throw new Error(
        `adapter module ${module}: A has ${t.A.length} values for [${t.r},${t.in}], B ${t.B.length} for [${t.out},${t.r}]`,
      );
    params.push({
      module,
      A: ctx.upload(t.A, [t.r, t.in], 'f32', `${module}.lora_A`),
      B: ctx.upload(t.B, [t.out, t.r], 'f32', `${module}.lora_B`),
      gradA: ctx.zeros([t.r, t.in], 'f32', `${module}.lora_A.grad`),
      gradB: ctx.zeros([t.out, t.r], 'f32', `${module}.lora_B.grad`),
      scaling: scalingFor(adapter.config, module),
    });
  }
  return params;
}

/** Reads trained LoraParams back into an Adapter with `config` (the one they were created from). */
export async function downloadAdapter(
  ctx: GpuContext,
  params: readonly LoraParam[],
  config: LoraConfig,
): Promise<Adapter> {
  const tensors = new Map<string, LoraTensors>();
  for (const p of params) {
    const [r, inF] = p.A.shape;
    const [outF, rB] = p.B.shape;
    if (p.A.shape.length !== 2 || p.B.shape.length !== 2 || r !== rB)
      throw new Error(
        `LoRA ${p.module}: A [${p.A.shape.join(',')}] and B [${p.B.shape.join(',')}] do not pair`,
      );
    // ctx.read may return a view of a larger staging copy; slice so each array owns exactly its values.
    const A = (await ctx.read(p.A)).slice(0, r * inF);
    const B = (await ctx.read(p.B)).slice(0, outF * r);
    tensors.set(p.module, { A, B, r, in: inF, out: outF });
  }
  return { config, tensors };
}

/** Frees the tensors of uploaded params. */
export function disposeLoraParams(params: readonly LoraParam[]): void {
  for (const p of params) for (const t of [p.A, p.B, p.gradA, p.gradB]) t.dispose();
}
