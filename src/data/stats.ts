// Token-length statistics of a dataset (min, median, p95, max, total), from a compact growable list of lengths.

export interface LengthStats {
  count: number;
  min: number;
  median: number;
  p95: number;
  max: number;
  total: number;
}

export class LengthList {
  private data = new Int32Array(1024);
  private n = 0;
  push(len: number): void {
    if (this.n === this.data.length) {
      const grown = new Int32Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.n++] = len;
  }
  get length(): number {
    return this.n;
  }
  /** Nearest-rank percentiles (p50 of [1,2,3,4] is 2), so every figure is a length that occurs. */
  stats(): LengthStats {
    const s = this.data.slice(0, this.n).sort();
    const rank = (p: number) => (this.n ? s[Math.max(0, Math.ceil(p * this.n) - 1)] : 0);
    let total = 0;
    for (let i = 0; i < this.n; i++) total += s[i];
    return {
      count: this.n,
      min: this.n ? s[0] : 0,
      median: rank(0.5),
      p95: rank(0.95),
      max: this.n ? s[this.n - 1] : 0,
      total,
    };
  }
}
