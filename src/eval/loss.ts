// Mean next-token loss (and perplexity) of a dataset, optionally with the gradient of that mean w.r.t. every LoRA tensor.
import type { Example } from '../data/index';
import { collate } from '../data/index';
import type { GpuContext } from '../gpu/context';
import type { Decoder } from '../model/decoder';
import type { Batch } from '../model/trainable';
import { trainedTokens } from '../model/trainable';

export interface LossOptions {
  batchSize: number;
  /** Any id inside the vocabulary: padded positions carry label -100 and sit after every real token. */
  padId?: number;
  /** Also accumulate d(mean loss)/d(LoRA) into the decoder's gradA / gradB (zeroed first). */
  withGrads?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export interface LossResult {
  /** Mean token cross-entropy over every trained position of the whole dataset (nats). */
  loss: number;
  ppl: number;
  tokens: number;
}

export function batchesOf(examples: readonly Example[], batchSize: number, padId = 0): Batch[] {
  const out: Batch[] = [];
  for (let i = 0; i < examples.length; i += batchSize)
    out.push(collate(examples.slice(i, i + batchSize), { padId }));
  return out;
}

export async function datasetLoss(
  ctx: GpuContext,
  decoder: Decoder,
  examples: readonly Example[],
  o: LossOptions,
): Promise<LossResult> {
  const batches = batchesOf(examples, o.batchSize, o.padId);
  const tokens = batches.reduce((n, b) => n + trainedTokens(b), 0);
  if (tokens === 0) throw new Error('the dataset has no trained token: nothing to evaluate');
  const lossSum = ctx.zeros([1], 'f32', 'eval loss sum');
  if (o.withGrads) decoder.zeroGrads();
  try {
    for (const [i, b] of batches.entries()) {
      // The gradient of the mean over the whole file: every micro-batch is scaled by the file's token count.
      if (o.withGrads) decoder.forwardBackward(b, { gradScale: 1 / tokens, lossSum, dropoutStep: 0 });
      else decoder.forwardLoss(b, lossSum);
      if (o.onProgress) {
        await ctx.sync();
        o.onProgress(i + 1, batches.length);
      }
    }
    const sum = (await ctx.read(lossSum))[0];
    const loss = sum / tokens;
    return { loss, ppl: Math.exp(loss), tokens };
  } finally {
    lossSum.dispose();
  }
}
