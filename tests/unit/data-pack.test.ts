// Packing and batching: the packed layout holds every example intact, and a segment-aware model gets the same loss.
import { describe, expect, it } from 'vitest';
import {
  collate,
  dedupe,
  packExamples,
  seededShuffle,
  splitTrainEval,
  type Example,
} from '../../src/data/index';
import { trainedTokens, type Batch } from '../../src/model/trainable';

/** Random examples with a masked prompt (position 0 always masked, as encodeSample does). */
function examples(n: number, seed: number): Example[] {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) % 1000) / 1000;
  return Array.from({ length: n }, (_, row) => {
    const len = 2 + Math.floor(rnd() * 30);
    const prompt = Math.floor(rnd() * (len - 1));
    const inputIds = Int32Array.from({ length: len }, () => 3 + Math.floor(rnd() * 40));
    const labels = inputIds.map((x, t) => (t <= prompt ? -100 : x));
    return { inputIds, labels, row: row + 1 };
  });
}

/**
 * A toy causal LM whose prediction at t depends on every token it may attend to (same segment, ≤ t) and on their
 * position ids: if packing let attention cross segments or shifted positions, its loss would change.
 */
function toyLoss(b: Batch): number {
  const V = 48;
  let sum = 0;
  for (let r = 0; r < b.B; r++) {
    for (let t = 0; t + 1 < b.T; t++) {
      const i = r * b.T + t;
      const target = b.labels[i + 1];
      if (target === -100) continue;
      if (b.segmentIds && b.segmentIds[i + 1] !== b.segmentIds[i]) continue;
      const logits = new Float64Array(V);
      for (let s = t; s >= 0; s--) {
        const j = r * b.T + s;
        if (b.segmentIds && b.segmentIds[j] !== b.segmentIds[i]) break;
        const pos = b.positionIds ? b.positionIds[j] : s;
        for (let v = 0; v < V; v++)
          logits[v] += Math.sin(b.inputIds[j] * 1.3 + pos * 0.7 + v * 0.31) / (1 + t - s);
      }
      const max = Math.max(...logits);
      const lse = max + Math.log(logits.reduce((a, x) => a + Math.exp(x - max), 0));
      sum += lse - logits[target];
    }
  }
  return sum / trainedTokens(b);
}

describe('packing', () => {
  const ex = examples(57, 7);
  const packed = packExamples(ex, 64);

  it('keeps every example intact, positions restarting and one segment id per example', () => {
    const seen: string[] = [];
    for (const row of packed) {
      expect(row.inputIds.length).toBeLessThanOrEqual(64);
      let start = 0;
      for (let t = 1; t <= row.inputIds.length; t++) {
        if (t < row.inputIds.length && row.segmentIds[t] === row.segmentIds[t - 1]) continue;
        const ids = row.inputIds.subarray(start, t);
        expect(Array.from(row.positionIds.subarray(start, t))).toEqual(
          Array.from({ length: t - start }, (_, k) => k),
        );
        expect(row.labels[start]).toBe(-100);
        seen.push(`${Array.from(ids)}|${Array.from(row.labels.subarray(start, t))}`);
        start = t;
      }
    }
    expect(seen.sort()).toEqual(ex.map((e) => `${Array.from(e.inputIds)}|${Array.from(e.labels)}`).sort());
  });

  it('fills sequences well (best-fit decreasing)', () => {
    const total = ex.reduce((n, e) => n + e.inputIds.length, 0);
    expect(packed.length).toBeLessThanOrEqual(Math.ceil(total / 64) + 1);
  });

  it('gives the same trained-token count and the same loss as padding, for a segment-aware model', () => {
    const padded = collate(ex, { padId: 0 });
    const packedBatch = collate(packed, { padId: 0, length: 64 });
    expect(packedBatch.segmentIds).toBeDefined();
    expect(trainedTokens(packedBatch)).toBe(trainedTokens(padded));
    expect(toyLoss(packedBatch)).toBeCloseTo(toyLoss(padded), 12);
    // The check has teeth: without segment ids (attention across examples) the loss differs.
    expect(Math.abs(toyLoss({ ...packedBatch, segmentIds: undefined }) - toyLoss(padded))).toBeGreaterThan(
      1e-3,
    );
  });

  it('rejects examples longer than the sequence', () => {
    expect(() =>
      packExamples([{ inputIds: new Int32Array(9), labels: new Int32Array(9), row: 4 }], 8),
    ).toThrow(/row 4 has 9 tokens > 8/);
  });
});

describe('collate', () => {
  it('pads with the pad id and -100 labels, positions 0..T-1', () => {
    const b = collate(
      [
        { inputIds: Int32Array.from([5, 6, 7]), labels: Int32Array.from([-100, 6, 7]), row: 1 },
        { inputIds: Int32Array.from([8]), labels: Int32Array.from([-100]), row: 2 },
      ],
      { padId: 0 },
    );
    expect([b.B, b.T]).toEqual([2, 3]);
    expect(Array.from(b.inputIds)).toEqual([5, 6, 7, 8, 0, 0]);
    expect(Array.from(b.labels)).toEqual([-100, 6, 7, -100, -100, -100]);
    expect(Array.from(b.positionIds!)).toEqual([0, 1, 2, 0, 1, 2]);
    expect(b.segmentIds).toBeUndefined();
  });
});

describe('split, shuffle, dedupe', () => {
  it('splits reproducibly by seed, keeping order inside each part', () => {
    const items = Array.from({ length: 100 }, (_, i) => i);
    const a = splitTrainEval(items, 0.1, 42);
    expect(a.eval).toHaveLength(10);
    expect(a.train).toHaveLength(90);
    expect(splitTrainEval(items, 0.1, 42)).toEqual(a);
    expect(splitTrainEval(items, 0.1, 43).eval).not.toEqual(a.eval);
    expect([...a.train, ...a.eval].sort((x, y) => x - y)).toEqual(items);
    expect(a.eval).toEqual([...a.eval].sort((x, y) => x - y));
    expect(splitTrainEval([1, 2, 3], 0.01, 0).eval).toHaveLength(1);
    expect(seededShuffle(items, 1)).not.toEqual(items);
  });

  it('drops exact duplicates only (same tokens and same mask)', () => {
    const e = (ids: number[], labels: number[], row: number): Example => ({
      inputIds: Int32Array.from(ids),
      labels: Int32Array.from(labels),
      row,
    });
    const d = dedupe([
      e([1, 2], [-100, 2], 1),
      e([1, 2], [-100, 2], 2),
      e([1, 2], [-100, -100], 3),
      e([1, 3], [-100, 3], 4),
    ]);
    expect(d.kept.map((x) => x.row)).toEqual([1, 3, 4]);
    expect(d.duplicateRows).toEqual([2]);
  });
});
