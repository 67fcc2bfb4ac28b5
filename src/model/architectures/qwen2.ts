// Qwen2: Llama's names and wiring, with biases on q, k and v (added before RoPE) and none on o_proj.
import type { ModelSpec } from '../spec';
import type { ModelLayout } from './index';
import { llamaLayout } from './llama';

export function qwen2Layout(spec: ModelSpec): ModelLayout {
  return llamaLayout(spec, { qkv: true, o: false });
}
