// One-download export: a folder of files as a zip (fflate), for the studio's "download adapter" button.
import type { Zippable } from 'fflate';
import { unzipSync, zipSync } from 'fflate';
import type { OutFile } from './adapter-io';

/** fflate writes no ZIP64 records, so one archive (and each entry) must stay under 4 GiB. */
const ZIP_LIMIT = 0xffffffff;

/**
 * `folder/<file>` entries. Safetensors are stored (floats barely compress and storing keeps big files fast);
 * text is deflated. `mtime` fixes the timestamps (tests use it for byte-identical archives).
 */
export function zipFolder(folder: string, files: readonly OutFile[], mtime: Date = new Date()): Uint8Array {
  if (folder === '' || /[\\/]/.test(folder) || folder === '.' || folder === '..')
    throw new Error(`zip: folder name "${folder}" must be one plain path component`);
  let total = 0;
  const entries: Zippable = {};
  for (const f of files) {
    total += f.data.length;
    if (total > ZIP_LIMIT) throw new Error(`zip: ${folder} exceeds 4 GiB; download the files one by one`);
    const stored = f.name.endsWith('.safetensors');
    entries[f.name] = [f.data, { level: stored ? 0 : 6 }];
  }
  return zipSync({ [folder]: entries }, { mtime });
}

/** The files of an archive made by zipFolder (or any zip with one top folder), names relative to that folder. */
export function unzipFolder(zip: Uint8Array): { folder: string; files: OutFile[] } {
  const all = unzipSync(zip);
  const names = Object.keys(all).filter((n) => !n.endsWith('/'));
  const tops = new Set(names.map((n) => (n.includes('/') ? n.slice(0, n.indexOf('/')) : '')));
  const folder = tops.size === 1 ? [...tops][0] : '';
  const strip = folder ? folder.length + 1 : 0;
  return { folder, files: names.map((n) => ({ name: n.slice(strip), data: all[n] })) };
}
