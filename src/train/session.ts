// One training run from loaded pieces: adapter init (or an existing one), the decoder, the trainer, the PEFT files.
// Runtime-neutral: the CLI (Node) and the studio's worker both call it.
import type { Example as DataExample, PackedRow, PreparedDataset } from '../data/index';
import { collate } from '../data/index';
import type { GpuContext } from '../gpu/context';
import { adapterFiles } from '../lora/adapter-io';
import type { OutFile } from '../lora/adapter-io';
import { loraConfig } from '../lora/config';
import type { Adapter, LoraConfig } from '../lora/config';
import { formatTrainableLine, loraParamCount } from '../lora/count';
import { parseTargets } from '../lora/defaults';
import { disposeLoraParams, downloadAdapter, uploadAdapter } from '../lora/gpu';
import { initAdapter } from '../lora/init';
import { modelCard } from '../lora/model-card';
import { countParams } from '../model/architectures/index';
import { Decoder } from '../model/decoder';
import type { LoadedModel } from '../model/load';
import type { TrainingArgs } from './args';
import { trainerConfig } from './args';
import type { TrainerListener } from './events';
import type { CheckpointStorage } from './storage';
import { Trainer } from './trainer';
import type { TrainResult } from './trainer';

export interface SessionInput {
  ctx: GpuContext;
  model: LoadedModel;
  /** Name or Hub id of the base model, written into adapter_config.json and the model card. */
  baseModel: string;
  data: PreparedDataset;
  /** The LoRA and trainer settings (the CLI's flags; the studio fills the same shape). */
  args: TrainingArgs;
  /** Start from this adapter (its r, alpha and targets) instead of a fresh PEFT init. */
  initAdapter?: Adapter;
  /** Pad id for batches (any id in the vocabulary: padded positions are never trained nor attended to). */
  padId: number;
  storage: CheckpointStorage;
  onEvent?: TrainerListener;
  signal?: AbortSignal;
}

export interface SessionResult {
  result: TrainResult;
  adapter: Adapter;
  /** adapter_config.json, adapter_model.safetensors and README.md, ready to write or zip. */
  files: OutFile[];
  trainableLine: string;
}

export function sessionLoraConfig(s: Pick<SessionInput, 'args' | 'model' | 'baseModel'>): LoraConfig {
  const a = s.args;
  return loraConfig({
    targetModules: parseTargets(a.target, s.model.spec.arch),
    r: a.r,
    loraAlpha: a.alpha,
    loraDropout: a.dropout,
    useRslora: a.rslora,
    baseModelNameOrPath: s.baseModel,
  });
}

export async function runTrainingSession(s: SessionInput): Promise<SessionResult> {
  const { ctx, model, args } = s;
  const adapter0 = s.initAdapter ?? initAdapter(sessionLoraConfig(s), model.modules, args.seed);
  const config = adapter0.config;
  const lora = uploadAdapter(ctx, adapter0);
  const trainableLine = formatTrainableLine(
    loraParamCount(config, model.modules),
    countParams(model.spec) + loraParamCount(config, model.modules),
  );
  const decoder = new Decoder(ctx, model, lora, {
    gradCheckpointing: args.gradCheckpointing,
    dropout: config.loraDropout,
    seed: args.seed,
  });
  const rows: readonly (DataExample | PackedRow)[] = s.data.trainPacked ?? s.data.train;
  const evalRows: readonly (DataExample | PackedRow)[] = s.data.evalPacked ?? s.data.eval;
  const last = { train: null as number | null, eval: null as number | null };
  const onEvent: TrainerListener = (e) => {
    if (e.type === 'step') last.train = e.loss;
    if (e.type === 'eval') last.eval = e.eval_loss;
    s.onEvent?.(e);
  };
  const trainer = new Trainer(
    {
      ctx,
      model: decoder,
      train: rows,
      evalSet: evalRows.length ? evalRows : undefined,
      collate: (ex) => collate(ex as readonly (DataExample | PackedRow)[], { padId: s.padId }),
      storage: s.storage,
      onEvent,
      signal: s.signal,
    },
    trainerConfig(args),
  );
  try {
    const result = await trainer.run({ resume: args.resume });
    const adapter = await downloadAdapter(ctx, lora, config);
    const readme = modelCard(adapter, {
      baseModel: s.baseModel,
      data: {
        source: args.data,
        format: s.data.report.format,
        rows: s.data.train.length,
        evalRows: s.data.eval.length,
        tokens: s.data.report.trainedTokens,
      },
      hyperparameters: hyperparameters(args),
      finalTrainLoss: last.train,
      finalEvalLoss: last.eval,
      trainedWith: `LoRA Studio (WebGPU, ${ctx.report.adapter.description || ctx.report.adapter.vendor || 'unknown adapter'})`,
    });
    return { result, adapter, files: adapterFiles(adapter, { readme }), trainableLine };
  } finally {
    trainer.dispose();
    disposeLoraParams(lora);
  }
}

function hyperparameters(a: TrainingArgs): Record<string, string | number | boolean | null> {
  return {
    r: a.r,
    lora_alpha: a.alpha,
    lora_dropout: a.dropout,
    use_rslora: a.rslora,
    target_modules: a.target ?? '(architecture default)',
    learning_rate: a.lr,
    lr_scheduler_type: a.scheduler,
    warmup_steps: a.warmupSteps,
    warmup_ratio: a.warmupRatio,
    num_cycles: a.numCycles,
    per_device_train_batch_size: a.batchSize,
    gradient_accumulation_steps: a.gradAccum,
    num_train_epochs: a.epochs,
    max_steps: a.maxSteps,
    max_len: a.maxLen,
    optim: a.optim,
    weight_decay: a.weightDecay,
    adam_beta1: a.adamBeta1,
    adam_beta2: a.adamBeta2,
    adam_epsilon: a.adamEps,
    max_grad_norm: a.maxGradNorm,
    gradient_checkpointing: a.gradCheckpointing,
    weights_dtype: a.weightsDtype,
    seed: a.seed,
  };
}
