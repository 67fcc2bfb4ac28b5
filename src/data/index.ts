// The data pipeline's public API (browser worker and Node alike; Node file access is in ./node).
export type { ByteSource } from './bytes';
export { encodeSample, type EncodeOptions, type Encoded } from './encode';
export { detectFormat, normalize, parseFormat, rowFormat, FORMAT_COLUMNS } from './formats';
export { collate, packExamples, type CollateOptions } from './pack';
export {
  prepareDataset,
  streamDataset,
  type DatasetReport,
  type DatasetStream,
  type PrepareOptions,
  type PreparedDataset,
  type StreamOptions,
} from './pipeline';
export { fileKind, openRecords, SUPPORTED_EXTENSIONS, type FileKind } from './readers';
export { dedupe, exampleKey, seededRandom, seededShuffle, splitTrainEval } from './split';
export type { LengthStats } from './stats';
export { PLAIN_CHAT_TEMPLATE, TextTokenizer, type TokenizerFiles } from './tokenizer';
export * from './types';
