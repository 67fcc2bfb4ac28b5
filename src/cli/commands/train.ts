// `lora-studio train`: LoRA fine-tuning with Transformers' flags and numbers; writes a PEFT adapter, logs, checkpoints.
import { parseConfigText } from '../../model/config';
import { createNodeGpu } from '../../gpu/node';
import { writeFolder } from '../../lora/fs-node';
import { loadModel } from '../../model/load';
import { readOptionalText } from '../../model/sources/source';
import { parseTrainingArgs, TRAIN_OPTIONS, TRAIN_USAGE } from '../../train/args';
import type { TrainerEvent } from '../../train/events';
import { runTrainingSession } from '../../train/session';
import { NodeStorage } from '../../train/storage-node';
import type { Command } from '../command';
import { UsageError } from '../command';
import { openAdapter, openDataset, openModel, openTokenizer } from '../inputs';

const DATA_USAGE = `  --format F --packing --train-on-prompt      dataset format override; pack examples; train on prompts too`;

export const train: Command = {
  summary: 'fine-tune a LoRA adapter (Transformers Trainer semantics); writes a PEFT adapter folder',
  usage: `${TRAIN_USAGE.split('\n').slice(1).join('\n')}\n${DATA_USAGE}`,
  options: {
    ...TRAIN_OPTIONS,
    format: { type: 'string' },
    packing: { type: 'boolean' },
    'train-on-prompt': { type: 'boolean' },
  },
  async run(values) {
    const args = parseTrainingArgs(values);
    const source = await openModel(args.model, args.json);
    const configText = await readOptionalText(source, 'config.json');
    if (!configText) throw new UsageError(`${source.name}: no config.json`);
    const declared = parseConfigText(configText, `${source.name}/config.json`).dtype;
    const weightsDtype = args.weightsDtype === 'auto' ? declared : args.weightsDtype;
    const tok = await openTokenizer(source);
    const ctx = await createNodeGpu();
    const stop = new AbortController();
    const onSigint = () => {
      console.error('\nstopping after this step (a checkpoint is saved)…');
      stop.abort();
    };
    process.on('SIGINT', onSigint);
    try {
      const model = await loadModel(ctx, source, { weightsDtype });
      const data = await openDataset(args.data, tok, model.spec.vocabSize, {
        format: values.format as string | undefined,
        maxLen: args.maxLen,
        packing: values.packing === true,
        trainOnPrompt: values['train-on-prompt'] === true,
        evalSplit: args.evalSplit,
        evalData: args.evalData ?? undefined,
        seed: args.seed,
      });
      const initAdapter = args.initAdapter ? await openAdapter(args.initAdapter, model.modules) : undefined;
      const progress = new Progress(args.json);
      if (!args.json) {
        console.log(
          `model: ${source.name} (${model.spec.arch}, ${weightsDtype} weights on ${describe(ctx.report.adapter)})`,
        );
        console.log(
          `data:  ${args.data}: ${data.report.format}, ${data.train.length} train / ${data.eval.length} eval examples`,
        );
      }
      const out = await runTrainingSession({
        ctx,
        model,
        baseModel: args.model,
        data,
        args,
        initAdapter,
        padId: tok?.eosId ?? 0,
        storage: new NodeStorage(args.out),
        onEvent: (e) => progress.event(e),
        signal: stop.signal,
      });
      progress.done();
      await writeFolder(args.out, out.files);
      if (args.json) console.log(JSON.stringify({ type: 'saved', dir: args.out, status: out.result.status }));
      else {
        console.log(out.trainableLine);
        console.log(`${out.result.message}\nadapter written to ${args.out}`);
      }
      model.dispose();
      return out.result.status === 'completed' || out.result.status === 'stopped' ? 0 : 1;
    } finally {
      process.off('SIGINT', onSigint);
      ctx.destroy();
    }
  },
};

function describe(a: { vendor: string; architecture: string; description: string }): string {
  return [a.vendor, a.architecture].filter(Boolean).join(' ') || a.description || 'WebGPU';
}

/** A one-line progress bar on a terminal; events as JSON lines with --json; plain log lines otherwise. */
class Progress {
  private total = 0;
  private readonly tty = process.stderr.isTTY === true;

  constructor(private readonly json: boolean) {}

  event(e: TrainerEvent): void {
    if (this.json) {
      console.log(JSON.stringify(e));
      return;
    }
    switch (e.type) {
      case 'start':
        this.total = e.totalSteps;
        console.log(
          `${e.resumedFrom ? `resuming from ${e.resumedFrom} at step ${e.step}` : 'training'}: ${e.totalSteps} steps, ${e.stepsPerEpoch} per epoch, warmup ${e.warmupSteps}`,
        );
        break;
      case 'step': {
        const width = 24;
        const filled = Math.round((width * e.step) / Math.max(1, this.total));
        const line =
          `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] step ${e.step}/${this.total} epoch ${e.epoch.toFixed(2)} ` +
          `loss ${e.loss.toFixed(4)} grad_norm ${e.grad_norm.toFixed(3)} lr ${e.learning_rate.toExponential(2)} ` +
          `${e.tokens_per_second.toFixed(0)} tok/s eta ${formatSeconds(e.eta)}`;
        if (this.tty) process.stderr.write(`\r${line}\x1b[K`);
        else console.log(line);
        break;
      }
      case 'eval':
        this.clearLine();
        console.log(
          `eval at step ${e.step}: eval_loss ${e.eval_loss.toFixed(4)} eval_ppl ${e.eval_ppl.toFixed(3)}`,
        );
        break;
      case 'skip':
        this.clearLine();
        console.log(`step ${e.step} skipped: ${e.reason}`);
        break;
      case 'advice':
        this.clearLine();
        console.log(`advice: ${e.message} (${e.remedy})`);
        break;
      case 'checkpoint':
        this.clearLine();
        console.log(`checkpoint saved: ${e.dir}`);
        break;
      case 'end':
        this.clearLine();
        break;
      default:
        return e satisfies never;
    }
  }

  done(): void {
    this.clearLine();
  }

  private clearLine(): void {
    if (this.tty && !this.json) process.stderr.write('\r\x1b[K');
  }
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${Math.round(s % 60)}s` : `${s.toFixed(0)}s`;
}
