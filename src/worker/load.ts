// The load command: open a model (dropped folder or Hub id), upload its weights, and tokenize the dataset.
import { prepareDataset, TextTokenizer } from '../data/index';
import type { GpuContext } from '../gpu/context';
import type { LoadedModel, WeightsDtype } from '../model/load';
import { loadModel } from '../model/load';
import { FileListSource } from '../model/sources/files';
import { openHubModel, parseHubId } from '../model/sources/hub';
import type { ModelSource as EngineSource } from '../model/sources/source';
import { readOptionalText } from '../model/sources/source';
import type { CommandOf, DatasetSource, ModelSource, TrainConfig } from './protocol';
import type { Loaded, Prepared, WorkerSession } from './session';
import { argsFor, datasetKey, StudioError, throttled } from './session';
import { datasetSummary, modelInfo, trainableLineFor } from './setup';

/** Opens the model's files: a dropped folder, or a Hub id (downloaded once into the cache). */
async function openSource(
  s: WorkerSession,
  m: ModelSource,
): Promise<{ source: EngineSource; baseModel: string }> {
  if (m.kind === 'files') {
    if (m.files.length === 0) throw new StudioError('bad-request', 'No model files were given.');
    const top = (m.files[0].webkitRelativePath || '').split('/')[0];
    const name = top || `${m.files.length} dropped files`;
    return { source: new FileListSource(m.files, name), baseModel: top || 'local-model' };
  }
  const id = parseHubId(m.repo.trim());
  if (!id)
    throw new StudioError(
      'bad-request',
      `"${m.repo}" is not a Hugging Face model id.`,
      'Write it as org/name, e.g. HuggingFaceTB/SmolLM2-135M-Instruct, or drop a model folder.',
    );
  const progress = throttled(s.emit, null, 'download');
  const source = await openHubModel(id.repo, {
    revision: m.revision ?? id.revision,
    cache: await s.hubCache(),
    onProgress: (p) => progress(p.loaded, p.total ?? p.loaded),
  });
  return { source, baseModel: id.repo };
}

/** Uploads the weights: the checkpoint's own dtype, f16 widened to bf16 where the adapter lacks shader-f16. */
export async function upload(s: WorkerSession, ctx: GpuContext, source: EngineSource): Promise<LoadedModel> {
  const configText = await readOptionalText(source, 'config.json');
  if (!configText)
    throw new StudioError(
      'bad-model',
      `${source.name}: no config.json.`,
      'Drop the whole model folder (config.json, tokenizer.json, *.safetensors) or give a Hub id.',
    );
  const declared = (JSON.parse(configText) as { torch_dtype?: string; dtype?: string }).torch_dtype;
  const dtype: WeightsDtype =
    declared === 'bfloat16' ? 'bf16' : declared === 'float16' ? (ctx.hasF16 ? 'f16' : 'bf16') : 'f32';
  const progress = throttled(s.emit, null, 'upload weights');
  return loadModel(ctx, source, { weightsDtype: dtype, onProgress: (p) => progress(p.loaded, p.total) });
}

async function openTokenizer(source: EngineSource): Promise<TextTokenizer | null> {
  const tokenizerJson = await readOptionalText(source, 'tokenizer.json');
  if (!tokenizerJson) return null;
  return new TextTokenizer({
    tokenizerJson,
    tokenizerConfig: await readOptionalText(source, 'tokenizer_config.json'),
    chatTemplate: await readOptionalText(source, 'chat_template.jinja'),
  });
}

/** Tokenizes and splits the dataset with the run's settings, once per file and settings. */
export async function prepare(
  s: WorkerSession,
  l: Loaded,
  dataset: DatasetSource,
  config: TrainConfig,
): Promise<Prepared> {
  const key = datasetKey(dataset.files, config);
  if (s.prepared?.key === key) return s.prepared;
  const file = dataset.files[0];
  if (!file) throw new StudioError('bad-request', 'No dataset file was given.', 'Add a dataset first.');
  const progress = throttled(s.emit, null, 'tokenize');
  const data = await prepareDataset(file, file.name, l.tok, {
    maxLen: config.max_length,
    vocabSize: l.model.spec.vocabSize,
    evalSplit: config.eval_split,
    seed: 42,
    onProgress: (p) => progress(p.bytesRead, p.totalBytes ?? p.bytesRead),
  });
  if (data.train.length === 0)
    throw new StudioError(
      'bad-data',
      `${file.name}: no usable training rows.`,
      'Lower the eval split or add rows.',
    );
  s.prepared = { key, data };
  return s.prepared;
}

export async function load(s: WorkerSession, cmd: CommandOf<'load'>): Promise<void> {
  try {
    s.claim('loading a model');
  } catch (e) {
    s.fail(cmd.id, null, e);
    return;
  }
  try {
    const ctx = await s.context();
    const { source, baseModel } = await openSource(s, cmd.model);
    const tok = await openTokenizer(source);
    const previous = s.loaded;
    s.loaded = null;
    s.prepared = null;
    previous?.model.dispose();
    const model = await upload(s, ctx, source);
    const l: Loaded = { ctx, source, model, tok, baseModel };
    s.loaded = l;
    if (!tok)
      s.emit({
        type: 'advice',
        runId: null,
        message: `${source.name} has no tokenizer.json: only pre-tokenized datasets (input_ids) work with it.`,
      });
    let trainableLine = '';
    let dataset = null;
    if (cmd.config) {
      const { args } = argsFor(s, l, { runId: 'preview', config: cmd.config }, false);
      trainableLine = trainableLineFor(model, baseModel, args);
      if (cmd.dataset?.files.length)
        dataset = datasetSummary((await prepare(s, l, cmd.dataset, cmd.config)).data, cmd.config.max_length);
    }
    s.emit({ type: 'loaded', id: cmd.id, model: modelInfo(model), trainableLine, dataset });
  } catch (e) {
    s.fail(cmd.id, null, e);
  } finally {
    s.busy = null;
  }
}
