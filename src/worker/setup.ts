// Pure glue from the studio's settings and the engine's results to TrainingArgs and protocol payloads.
import type { DatasetReport, PreparedDataset } from '../data/index';
import { where } from '../data/index';
import type { LoraConfig } from '../lora/config';
import { trainableParamsLine } from '../lora/count';
import type { LoadedModel } from '../model/load';
import { countParams } from '../model/load';
import type { TrainingArgs } from '../train/args';
import { parseTrainingArgs } from '../train/args';
import type { StepMetrics } from '../train/events';
import { sessionLoraConfig } from '../train/session';
import type { DatasetSummary, MetricPoint, ModelInfo, TrainConfig } from './protocol';

/** Leaf names of the model's linear layers (`q_proj`, `c_attn`), the vocabulary of `target_modules`. */
export function moduleLeaves(model: Pick<LoadedModel, 'modules'>): Set<string> {
  return new Set(model.modules.map((m) => m.name.slice(m.name.lastIndexOf('.') + 1)));
}

/**
 * The chosen target modules this model has, comma-joined; null (the architecture's PEFT default) when none of them
 * exist here (the studio lists Llama names; a GPT-2 has `c_attn`). `dropped` names the ones left out.
 */
export function targetsFor(
  model: Pick<LoadedModel, 'modules'>,
  wanted: readonly string[],
): { target: string | null; dropped: string[] } {
  const leaves = moduleLeaves(model);
  const kept = wanted.filter((m) => leaves.has(m));
  return { target: kept.length ? kept.join(',') : null, dropped: wanted.filter((m) => !leaves.has(m)) };
}

/** TrainingArgs (Transformers' and PEFT's defaults) overridden by the studio's settings. */
export function trainingArgs(
  config: TrainConfig,
  o: { model: string; data: string; out: string; target: string | null; resume?: boolean },
): TrainingArgs {
  const base = parseTrainingArgs({ model: 'x', data: 'x', out: 'x' });
  return {
    ...base,
    model: o.model,
    data: o.data,
    out: o.out,
    target: o.target,
    r: config.r,
    alpha: config.lora_alpha,
    dropout: config.lora_dropout,
    lr: config.learning_rate,
    scheduler: config.lr_scheduler_type,
    warmupSteps: config.warmup_steps,
    batchSize: config.per_device_train_batch_size,
    gradAccum: config.gradient_accumulation_steps,
    epochs: config.num_train_epochs,
    maxSteps: config.max_steps > 0 ? config.max_steps : -1,
    maxLen: config.max_length,
    // A checkpoint every 50 steps (and one on pause / stop / the last step), so a reload or a lost device costs little.
    saveSteps: 50,
    resume: o.resume ?? false,
  };
}

export function loraConfigFor(model: LoadedModel, baseModel: string, args: TrainingArgs): LoraConfig {
  return sessionLoraConfig({ args, model, baseModel });
}

export function trainableLineFor(model: LoadedModel, baseModel: string, args: TrainingArgs): string {
  return trainableParamsLine(model.spec, model.modules, loraConfigFor(model, baseModel, args));
}

export function modelInfo(model: LoadedModel): ModelInfo {
  return {
    name: model.source,
    architecture: model.spec.modelType || model.spec.arch,
    parameters: countParams(model.spec),
    layers: model.spec.numLayers,
    hiddenSize: model.spec.hiddenSize,
    vocabSize: model.spec.vocabSize,
    weightsDtype: model.weightsDtype,
    gpuBytes: model.gpuBytes,
  };
}

export function datasetSummary(data: PreparedDataset, maxLength: number): DatasetSummary {
  const r: DatasetReport = data.report;
  return {
    file: r.file,
    format: r.format,
    rowsRead: r.rowsRead,
    rowsUsed: r.rowsUsed,
    skipped: r.skipped.length,
    skippedExamples: r.skipped.slice(0, 5).map((s) => `${where(s, r.lineOriented)}: ${s.reason}`),
    truncated: r.truncatedRows,
    duplicates: r.duplicateRows.length,
    trainedTokens: r.trainedTokens,
    trainExamples: data.train.length,
    evalExamples: data.eval.length,
    maxLength,
  };
}

export function metricPoint(e: StepMetrics): MetricPoint {
  return {
    step: e.step,
    epoch: e.epoch,
    loss: e.loss,
    grad_norm: e.grad_norm,
    learning_rate: e.learning_rate,
    tokens_per_sec: e.tokens_per_second,
    gpu_bytes: e.gpu_bytes,
    tokens: e.tokens,
    elapsed: e.elapsed,
    eta: e.eta,
  };
}

/** A name for files and folders: letters, digits, `-_.` only. */
export function safeName(s: string): string {
  const n = s
    .replace(/[^\w.-]+/g, '-')
    .replace(/^[-.]+|-+$/g, '')
    .slice(0, 60);
  return n || 'model';
}
