// Small numeric helpers shared by the load driver and the table renderer.

export function median(values) {
  const xs = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return undefined;
  const mid = xs.length >> 1;
  return xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
}

/** Growable sample buffer (Float64Array) with percentile lookup. */
export class Samples {
  constructor(capacity = 1 << 16) {
    this.data = new Float64Array(capacity);
    this.length = 0;
  }

  add(v) {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = v;
  }

  /** p in [0, 100]; returns undefined when empty. */
  percentiles(...ps) {
    if (this.length === 0) return ps.map(() => undefined);
    const sorted = this.data.slice(0, this.length).sort();
    return ps.map((p) => sorted[Math.min(this.length - 1, Math.floor((p / 100) * this.length))]);
  }
}
