// Evaluation for the studio: eval loss of the base and the tuned model, and a greedy continuation of one prompt by each.
import type { Example, TextTokenizer } from '../data/index';
import { datasetLoss } from '../eval/loss';
import type { GpuContext } from '../gpu/context';
import type { Adapter } from '../lora/config';
import { disposeLoraParams, uploadAdapter } from '../lora/gpu';
import { Decoder } from '../model/decoder';
import type { LoadedModel } from '../model/load';
import type { Batch } from '../model/trainable';
import type { EvalResult } from './protocol';

/** Scoring every example of a big dataset would take long; the first ones are a fair sample of a shuffled split. */
export const MAX_EVAL_EXAMPLES = 64;

export function argmax(xs: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}

/** The untrained head of an example: its tokens up to (not including) the first trained label. */
export function promptIds(ex: Pick<Example, 'inputIds' | 'labels'>): number[] {
  const first = ex.labels.findIndex((l) => l !== -100);
  const end = first <= 0 ? Math.min(ex.inputIds.length, 8) : first;
  return Array.from(ex.inputIds.subarray(0, end));
}

/**
 * Greedy decoding without a KV cache: each new token reruns the whole prefix (fine for a preview of a few tokens).
 * Stops at an end-of-sequence id, at `maxNewTokens`, or at the model's context length.
 */
export async function greedy(
  decoder: Decoder,
  prompt: readonly number[],
  o: { maxNewTokens: number; eosIds: readonly number[]; maxPositions: number },
): Promise<number[]> {
  const ids = [...prompt];
  const out: number[] = [];
  for (let i = 0; i < o.maxNewTokens && ids.length < o.maxPositions; i++) {
    const T = ids.length;
    const batch: Batch = { B: 1, T, inputIds: Int32Array.from(ids), labels: new Int32Array(T).fill(-100) };
    const next = argmax(await decoder.logits(batch));
    if (o.eosIds.includes(next)) break;
    ids.push(next);
    out.push(next);
  }
  return out;
}

export interface EvaluateInput {
  ctx: GpuContext;
  model: LoadedModel;
  adapter: Adapter;
  tok: TextTokenizer | null;
  evalSet: readonly Example[];
  trainSet: readonly Example[];
  batchSize: number;
  padId: number;
  prompt?: string;
  maxNewTokens: number;
}

export async function evaluateAdapter(e: EvaluateInput): Promise<EvalResult> {
  const split = e.evalSet.length > 0 ? 'eval' : 'train';
  const examples = (split === 'eval' ? e.evalSet : e.trainSet).slice(0, MAX_EVAL_EXAMPLES);
  if (examples.length === 0) throw new Error('there is no example to evaluate on');
  const base = new Decoder(e.ctx, e.model, []);
  const lora = uploadAdapter(e.ctx, e.adapter);
  try {
    const tuned = new Decoder(e.ctx, e.model, lora);
    const opts = { batchSize: e.batchSize, padId: e.padId };
    const baseScore = await datasetLoss(e.ctx, base, examples, opts);
    const tunedScore = await datasetLoss(e.ctx, tuned, examples, opts);

    const text = e.prompt?.trim();
    const prompt = text && e.tok ? e.tok.encode(text, true) : promptIds(examples[0]);
    const gen = {
      maxNewTokens: e.maxNewTokens,
      eosIds: e.model.spec.eosTokenIds,
      maxPositions: e.model.spec.maxPositions,
    };
    const decode = (ids: number[]) => (e.tok ? e.tok.decode(ids, true) : ids.join(' '));
    const head = decode(prompt);
    // Decoded after the prompt, not alone: SentencePiece drops a leading space of a piece decoded by itself.
    const continuation = (ids: number[]) => {
      const all = decode([...prompt, ...ids]);
      return all.startsWith(head) ? all.slice(head.length) : decode(ids);
    };
    return {
      split,
      examples: examples.length,
      tokens: tunedScore.tokens,
      loss: tunedScore.loss,
      ppl: tunedScore.ppl,
      baseLoss: baseScore.loss,
      basePpl: baseScore.ppl,
      prompt: head,
      base: continuation(await greedy(base, prompt, gen)),
      tuned: continuation(await greedy(tuned, prompt, gen)),
    };
  } finally {
    disposeLoraParams(lora);
  }
}
