// Small numeric helpers shared by the load driver and the table renderer.

export function median(values) {
  const xs = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return undefined;
  const mid = xs.length >> 1;
  return xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
}

/** Relative width of a Samples bucket: a percentile is reported at most this much high. */
const BUCKET_GROWTH = 1.01;
const LOG_GROWTH = Math.log(BUCKET_GROWTH);
/** Bucket 0 holds values up to this (a µs latency below 1 ns, a ms one below 1 µs). */
const MIN_VALUE = 0.001;
/** Buckets up to MIN_VALUE * BUCKET_GROWTH^2800 ≈ 1.2e9 (µs: 20 minutes); larger values land in the last. */
const BUCKETS = 2800;

/**
 * Latency samples counted in fixed log-scale buckets of 1% width (a constant 11 KB, whatever the
 * count). It replaced a buffer of every sample: at a million requests per second that buffer grew
 * to tens of MB within a point, and recording into it halved the request rate of the process
 * measured (bench/standalone/rpc-variants.mjs shows the A/B).
 */
export class Samples {
  constructor() {
    this.counts = new Uint32Array(BUCKETS);
    this.length = 0;
  }

  add(v) {
    const i = v > MIN_VALUE ? Math.min(BUCKETS - 1, Math.ceil(Math.log(v / MIN_VALUE) / LOG_GROWTH)) : 0;
    this.counts[i]++;
    this.length++;
  }

  /** p in [0, 100]; the upper bound of the bucket holding that rank (≤ 1% above the true value); undefined when empty. */
  percentiles(...ps) {
    if (this.length === 0) return ps.map(() => undefined);
    return ps.map((p) => {
      const rank = Math.min(this.length, Math.floor((p / 100) * this.length) + 1);
      let seen = 0;
      for (let i = 0; i < BUCKETS; i++) {
        seen += this.counts[i];
        if (seen >= rank) return MIN_VALUE * BUCKET_GROWTH ** i;
      }
      return MIN_VALUE * BUCKET_GROWTH ** (BUCKETS - 1);
    });
  }
}
