// Packing examples into fixed-length sequences (segments keep attention and positions apart) and the padding collator.
import type { Batch } from '../model/trainable';
import type { Example, PackedRow } from './types';

/**
 * Best-fit-decreasing bin packing: longest examples first, each into the fullest sequence it still fits, so few
 * sequences are left half empty. Every example keeps its own segment id and positions 0..len-1, which is what makes
 * the loss with packing equal the loss without it. Rows are exactly as long as their content (no padding here).
 * Examples longer than maxLen must be truncated before (encodeSample's maxLen).
 */
export function packExamples(examples: readonly Example[], maxLen: number): PackedRow[] {
  if (!(maxLen > 0)) throw new Error(`packExamples: maxLen must be positive, got ${maxLen}`);
  const order = examples
    .map((_, i) => i)
    .sort((a, b) => examples[b].inputIds.length - examples[a].inputIds.length);
  const bins: { items: number[]; free: number }[] = [];
  // free[c] lists the bins with exactly c tokens free; a segment tree over c finds the smallest c ≥ len.
  const byFree = new Map<number, number[]>();
  const tree = new FreeTree(maxLen);
  for (const i of order) {
    const len = examples[i].inputIds.length;
    if (len > maxLen)
      throw new Error(`packExamples: example of row ${examples[i].row} has ${len} tokens > ${maxLen}`);
    if (len === 0) continue;
    const c = tree.smallestAtLeast(len);
    let bin: number;
    if (c < 0) {
      bin = bins.length;
      bins.push({ items: [], free: maxLen });
    } else {
      const list = byFree.get(c)!;
      bin = list.pop()!;
      tree.add(c, -1);
    }
    const b = bins[bin];
    b.items.push(i);
    b.free -= len;
    if (b.free > 0) {
      let list = byFree.get(b.free);
      if (!list) byFree.set(b.free, (list = []));
      list.push(bin);
      tree.add(b.free, 1);
    }
  }
  return bins.map((b) => {
    // Within a sequence, keep the examples in dataset order: deterministic and easy to read in a dump.
    const items = b.items.sort((x, y) => x - y).map((i) => examples[i]);
    const n = maxLen - b.free;
    const row: PackedRow = {
      inputIds: new Int32Array(n),
      labels: new Int32Array(n),
      positionIds: new Int32Array(n),
      segmentIds: new Int32Array(n),
    };
    let o = 0;
    items.forEach((ex, seg) => {
      row.inputIds.set(ex.inputIds, o);
      row.labels.set(ex.labels, o);
      // The first token of a segment is never a target of the previous one (encodeSample masks position 0).
      row.labels[o] = -100;
      for (let t = 0; t < ex.inputIds.length; t++) {
        row.positionIds[o + t] = t;
        row.segmentIds[o + t] = seg;
      }
      o += ex.inputIds.length;
    });
    return row;
  });
}

/** Counts per free-capacity value 1..n with "smallest value ≥ x that is present" in O(log n). */
class FreeTree {
  private readonly size: number;
  private readonly count: Int32Array;
  constructor(n: number) {
    this.size = 1 << Math.ceil(Math.log2(n + 1));
    this.count = new Int32Array(2 * this.size);
  }
  add(v: number, d: number): void {
    for (let i = v + this.size; i >= 1; i >>= 1) this.count[i] += d;
  }
  smallestAtLeast(x: number): number {
    return this.find(1, 0, this.size - 1, x);
  }
  private find(node: number, lo: number, hi: number, x: number): number {
    if (hi < x || this.count[node] === 0) return -1;
    if (lo === hi) return lo;
    const mid = (lo + hi) >> 1;
    const l = this.find(2 * node, lo, mid, x);
    return l >= 0 ? l : this.find(2 * node + 1, mid + 1, hi, x);
  }
}

export interface CollateOptions {
  padId: number;
  /** Pad every row to this length (default: the longest row). */
  length?: number;
}

/**
 * Pads examples (or packed rows) into one Batch [B, T]: padding gets padId, label -100, and for packed rows a
 * segment id of its own so no real token attends to it.
 */
export function collate(rows: readonly (Example | PackedRow)[], o: CollateOptions): Batch {
  const B = rows.length;
  const T = o.length ?? Math.max(1, ...rows.map((r) => r.inputIds.length));
  const inputIds = new Int32Array(B * T).fill(o.padId);
  const labels = new Int32Array(B * T).fill(-100);
  const packed = rows.some((r) => 'segmentIds' in r);
  const positionIds = new Int32Array(B * T);
  const segmentIds = packed ? new Int32Array(B * T) : undefined;
  rows.forEach((r, b) => {
    const n = r.inputIds.length;
    if (n > T) throw new Error(`collate: a row has ${n} tokens, more than T = ${T}`);
    inputIds.set(r.inputIds, b * T);
    labels.set(r.labels, b * T);
    if ('positionIds' in r) positionIds.set(r.positionIds, b * T);
    else for (let t = 0; t < n; t++) positionIds[b * T + t] = t;
    const lastSeg = 'segmentIds' in r && n ? r.segmentIds[n - 1] : 0;
    // Padding of a packed row restarts positions like a segment of its own; elsewhere it continues 0..T-1.
    for (let t = n; t < T; t++) positionIds[b * T + t] = 'positionIds' in r ? t - n : t;
    if (segmentIds) {
      if ('segmentIds' in r) segmentIds.set(r.segmentIds, b * T);
      for (let t = n; t < T; t++) segmentIds[b * T + t] = lastSeg + 1;
    }
  });
  return segmentIds
    ? { B, T, inputIds, labels, positionIds, segmentIds }
    : { B, T, inputIds, labels, positionIds };
}
