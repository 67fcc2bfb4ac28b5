// Browser: model files the user dropped or picked (a File list), matched by file name and read with File.slice.
import type { ModelSource } from './source';
import { MissingFileError } from './source';

/**
 * From a directory picker, `webkitRelativePath` is `model/sub/file`; files in the shallowest folder win, so a
 * picked model folder with an `onnx/` or `original/` subfolder still resolves `model.safetensors` to the top one.
 */
export class FileListSource implements ModelSource {
  private readonly byName = new Map<string, { file: Blob; depth: number }>();

  constructor(
    files: Iterable<File>,
    readonly name: string = 'selected files',
  ) {
    for (const f of files) {
      const rel = f.webkitRelativePath || f.name;
      const depth = rel.split('/').length;
      const prev = this.byName.get(f.name);
      if (!prev || depth < prev.depth) this.byName.set(f.name, { file: f, depth });
    }
  }

  /** Named blobs (e.g. responses from Cache Storage), each already at the top level of the model. */
  static fromBlobs(entries: Iterable<[string, Blob]>, name: string): FileListSource {
    const src = new FileListSource([], name);
    for (const [file, blob] of entries) src.byName.set(file, { file: blob, depth: 1 });
    return src;
  }

  async list(): Promise<string[]> {
    return [...this.byName.keys()];
  }

  async readText(file: string): Promise<string> {
    return this.get(file).text();
  }

  async size(file: string): Promise<number> {
    return this.get(file).size;
  }

  async readRange(file: string, start: number, end: number): Promise<Uint8Array> {
    return new Uint8Array(await this.get(file).slice(start, end).arrayBuffer());
  }

  private get(file: string): Blob {
    const f = this.byName.get(file);
    if (!f) throw new MissingFileError(this.name, file);
    return f.file;
  }
}
