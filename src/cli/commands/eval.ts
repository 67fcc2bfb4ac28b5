// `lora-studio eval`: mean next-token loss and perplexity of a dataset, optionally the gradients of every LoRA tensor.
import { writeFile } from 'node:fs/promises';
import { datasetLoss } from '../../eval/loss';
import { createNodeGpu } from '../../gpu/node';
import { adapterSafetensors } from '../../lora/adapter-io';
import type { Adapter } from '../../lora/config';
import { downloadAdapter, uploadAdapter } from '../../lora/gpu';
import { Decoder } from '../../model/decoder';
import { loadModel } from '../../model/load';
import type { Command } from '../command';
import { int, str, UsageError } from '../command';
import { openAdapter, openDataset, openModel, openTokenizer } from '../inputs';

const USAGE = `  --model M               model folder (Hugging Face layout) or Hub id org/name[@revision]
  --data FILE             dataset in any supported format (pre-tokenized JSONL: {"input_ids": [...], "labels": [...]})
  --adapter DIR           a PEFT LoRA adapter folder to evaluate with
  --format F              force the dataset format (text | alpaca | prompt-completion | chat | tokenized)
  --batch-size N          sequences per forward pass (default 8)
  --max-len N             truncate examples to N tokens
  --grad-checkpointing    recompute block activations in backward (less memory, same numbers)
  --weights-dtype D       f32 | bf16 | f16: how frozen weights are kept on the GPU (default f32)
  --save-grads FILE       write d(mean loss)/d(LoRA) as safetensors with the adapter's key names (needs --adapter)
  --json                  print {"loss", "ppl", "tokens"} as the last line`;

export const evalCommand: Command = {
  summary: 'mean next-token loss and perplexity of a dataset (and LoRA gradients with --save-grads)',
  usage: USAGE,
  options: {
    model: { type: 'string' },
    data: { type: 'string' },
    adapter: { type: 'string' },
    format: { type: 'string' },
    'batch-size': { type: 'string' },
    'max-len': { type: 'string' },
    'grad-checkpointing': { type: 'boolean' },
    'weights-dtype': { type: 'string' },
    'save-grads': { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(values) {
    const modelArg = str(values.model, 'model');
    const dataArg = str(values.data, 'data');
    const batchSize = int(values['batch-size'], 'batch-size', 8);
    if (batchSize < 1) throw new UsageError('--batch-size must be at least 1');
    const maxLen = values['max-len'] === undefined ? undefined : int(values['max-len'], 'max-len', 0);
    const saveGrads = values['save-grads'] as string | undefined;
    if (saveGrads && !values.adapter)
      throw new UsageError('--save-grads needs --adapter (the LoRA tensors to differentiate)');
    const weightsDtype = str(values['weights-dtype'], 'weights-dtype', 'f32');
    if (weightsDtype !== 'f32' && weightsDtype !== 'bf16' && weightsDtype !== 'f16') {
      throw new UsageError(`--weights-dtype must be f32, bf16 or f16, got ${weightsDtype}`);
    }
    const json = values.json === true;

    const source = await openModel(modelArg, json);
    const tok = await openTokenizer(source);
    const ctx = await createNodeGpu();
    try {
      const model = await loadModel(ctx, source, { weightsDtype });
      let adapter: Adapter | null = null;
      if (typeof values.adapter === 'string') adapter = await openAdapter(values.adapter, model.modules);
      const lora = adapter ? uploadAdapter(ctx, adapter) : [];
      const data = await openDataset(dataArg, tok, model.spec.vocabSize, {
        format: values.format as string | undefined,
        maxLen,
      });
      const decoder = new Decoder(ctx, model, lora, {
        gradCheckpointing: values['grad-checkpointing'] === true,
      });
      const r = await datasetLoss(ctx, decoder, data.train, {
        batchSize,
        withGrads: saveGrads !== undefined,
        onProgress:
          !json && process.stderr.isTTY
            ? (i, n) => process.stderr.write(`\revaluating batch ${i}/${n}`)
            : undefined,
      });
      if (!json && process.stderr.isTTY) process.stderr.write('\n');
      if (saveGrads && adapter) {
        // The gradients, laid out as an adapter: lora_A.weight holds dA [r, in], lora_B.weight dB [out, r].
        const grads = await downloadAdapter(
          ctx,
          lora.map((p) => ({ ...p, A: p.gradA, B: p.gradB })),
          adapter.config,
        );
        await writeFile(saveGrads, adapterSafetensors(grads));
      }
      const peak = ctx.pool.snapshot().peakBytes;
      if (json) {
        console.log(JSON.stringify({ loss: r.loss, ppl: r.ppl, tokens: r.tokens }));
      } else {
        console.log(`model:   ${source.name} (${model.spec.arch}, ${weightsDtype} weights)`);
        if (adapter) console.log(`adapter: ${values.adapter} (${lora.length} LoRA modules)`);
        console.log(`data:    ${dataArg}: ${data.report.format}, ${data.train.length} examples`);
        console.log(`loss:    ${r.loss.toFixed(6)}`);
        console.log(`ppl:     ${r.ppl.toFixed(4)}`);
        console.log(`tokens:  ${r.tokens}`);
        console.log(`gpu:     peak ${(peak / 2 ** 20).toFixed(1)} MiB`);
        if (saveGrads) console.log(`grads:   ${saveGrads}`);
      }
      model.dispose();
      return 0;
    } finally {
      ctx.destroy();
    }
  },
};
