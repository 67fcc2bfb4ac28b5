// A file drop zone that is also a keyboard-reachable file picker; folders are walked recursively.
import { useId, useState } from 'react';
import type { DragEvent } from 'react';
import { formatBytes } from '../format';

interface Props {
  label: string;
  hint: string;
  files: File[];
  onFiles(files: File[]): void;
  /** Pick a whole folder (a model directory) instead of single files. */
  directory?: boolean;
  accept?: string;
  testId?: string;
}

function readEntries(reader: FileSystemDirectoryReader): Promise<FileSystemEntry[]> {
  return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
}

async function walk(entry: FileSystemEntry, out: File[]): Promise<void> {
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) =>
      (entry as FileSystemFileEntry).file(resolve, reject),
    );
    out.push(file);
  } else if (entry.isDirectory) {
    const reader = (entry as FileSystemDirectoryEntry).createReader();
    // readEntries returns the listing in chunks; an empty chunk ends it.
    for (let batch = await readEntries(reader); batch.length > 0; batch = await readEntries(reader)) {
      for (const e of batch) await walk(e, out);
    }
  }
}

async function droppedFiles(dt: DataTransfer): Promise<File[]> {
  const entries = [...dt.items]
    .map((it) => (typeof it.webkitGetAsEntry === 'function' ? it.webkitGetAsEntry() : null))
    .filter((e): e is FileSystemEntry => e !== null);
  if (entries.length === 0) return [...dt.files];
  const out: File[] = [];
  for (const e of entries) await walk(e, out);
  return out;
}

export function DropZone({ label, hint, files, onFiles, directory, accept, testId }: Props) {
  const id = useId();
  const [over, setOver] = useState(false);
  const total = files.reduce((n, f) => n + f.size, 0);

  const onDrop = (ev: DragEvent<HTMLLabelElement>) => {
    ev.preventDefault();
    setOver(false);
    void droppedFiles(ev.dataTransfer).then((fs) => {
      if (fs.length > 0) onFiles(fs);
    });
  };

  return (
    <div className="field">
      <span className="field-label" id={`${id}-label`}>
        {label}
      </span>
      <label
        htmlFor={id}
        className={`dropzone${over ? ' dropzone-over' : ''}${files.length ? ' dropzone-filled' : ''}`}
        data-testid={testId}
        onDragOver={(ev) => {
          ev.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={onDrop}
      >
        <input
          id={id}
          type="file"
          className="sr-only"
          multiple
          accept={accept}
          aria-labelledby={`${id}-label`}
          aria-describedby={`${id}-hint`}
          ref={(el) => {
            if (el) el.webkitdirectory = Boolean(directory);
          }}
          onChange={(ev) => onFiles([...(ev.currentTarget.files ?? [])])}
        />
        {files.length === 0 ? (
          <>
            <span className="dropzone-title">Drop here or click to choose</span>
            <span className="muted small" id={`${id}-hint`}>
              {hint}
            </span>
          </>
        ) : (
          <>
            <span className="dropzone-title">
              {files.length === 1 ? files[0].name : `${files.length} files`} · {formatBytes(total)}
            </span>
            <span className="muted small" id={`${id}-hint`}>
              Drop again to replace.
            </span>
          </>
        )}
      </label>
    </div>
  );
}
