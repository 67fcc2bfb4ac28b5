// Where model files come from: one interface over a Node folder, a browser File list, and the Hub cache.
import type { RangeReader } from '../safetensors';

/** A read-only set of model files addressed by file name (`config.json`, `model-00001-of-00002.safetensors`). */
export interface ModelSource {
  /** What the user named: a folder path, a Hub id, "3 dropped files". Used in messages. */
  readonly name: string;
  /** File names present (top level of the model). */
  list(): Promise<string[]>;
  /** Throws `MissingFileError` when the file is absent. */
  readText(file: string): Promise<string>;
  /** Bytes [start, end) of a file. */
  readRange(file: string, start: number, end: number): Promise<Uint8Array>;
  size(file: string): Promise<number>;
  /** Releases open handles (Node); a no-op where there are none. */
  close?(): Promise<void>;
}

export class MissingFileError extends Error {
  constructor(
    readonly source: string,
    readonly file: string,
  ) {
    super(`${source}: ${file} not found`);
    this.name = 'MissingFileError';
  }
}

/** Reads a file's text, or undefined when the source does not have it. */
export async function readOptionalText(source: ModelSource, file: string): Promise<string | undefined> {
  if (!(await source.list()).includes(file)) return undefined;
  return source.readText(file);
}

/** One file of a source as a RangeReader (for the safetensors reader); errors name `source/file`. */
export function fileReader(source: ModelSource, file: string): RangeReader {
  return {
    name: `${source.name}/${file}`,
    size: () => source.size(file),
    read: (start, end) => source.readRange(file, start, end),
  };
}
