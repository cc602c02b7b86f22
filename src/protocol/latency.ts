/**
 * LatencyHistogram: request latencies counted in fixed log-scale buckets, so a gateway reports a
 * window of them in a few dozen small integers (StatsReport.latency) and the mgr merges the
 * windows of every gateway before it reads p50/p99. Percentiles of percentiles would be wrong;
 * summed buckets are exact up to the bucket width.
 *
 * Bucket i holds latencies up to BASE_MS * 2^(i / STEPS_PER_DOUBLING); the last bucket holds
 * everything above. Four steps per doubling: a percentile is off by at most 19%.
 */

/** Upper bound of bucket 0: below this, latency is not worth telling apart on a dashboard. */
const BASE_MS = 0.05;
const STEPS_PER_DOUBLING = 4;
/** 0.05 ms * 2^(63/4) ≈ 2.7 s for the last bounded bucket; slower requests land in the overflow bucket. */
export const LATENCY_BUCKETS = 65;

/** Upper bound (ms) of bucket `i`; Infinity for the overflow bucket. */
export function bucketBoundMs(i: number): number {
  return i >= LATENCY_BUCKETS - 1 ? Infinity : BASE_MS * 2 ** (i / STEPS_PER_DOUBLING);
}

export function bucketOf(ms: number): number {
  if (!(ms > BASE_MS)) return 0;
  const i = Math.ceil(Math.log2(ms / BASE_MS) * STEPS_PER_DOUBLING - 1e-9);
  return Math.min(i, LATENCY_BUCKETS - 1);
}

export class LatencyHistogram {
  private counts = new Array<number>(LATENCY_BUCKETS).fill(0);
  private n = 0;

  get count(): number {
    return this.n;
  }

  record(ms: number): void {
    this.counts[bucketOf(ms)]!++;
    this.n++;
  }

  /** Adds another window's counts (a StatsReport.latency); extra entries beyond the buckets are ignored. */
  merge(counts: readonly number[]): void {
    const len = Math.min(counts.length, LATENCY_BUCKETS);
    for (let i = 0; i < len; i++) {
      const c = counts[i]!;
      this.counts[i]! += c;
      this.n += c;
    }
  }

  /**
   * The latency (ms) below which a share `q` of the recorded requests fell: the upper bound of its
   * bucket (the overflow bucket reports the last bounded one's bound). null when nothing was recorded.
   */
  quantile(q: number): number | null {
    if (this.n === 0) return null;
    const rank = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (let i = 0; i < LATENCY_BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return bucketBoundMs(Math.min(i, LATENCY_BUCKETS - 2));
    }
    return bucketBoundMs(LATENCY_BUCKETS - 2);
  }

  /** The counts so far (trailing zero buckets cut), and a fresh window. */
  take(): number[] {
    const out = this.counts;
    this.counts = new Array<number>(LATENCY_BUCKETS).fill(0);
    this.n = 0;
    let end = out.length;
    while (end > 0 && out[end - 1] === 0) end--;
    return out.slice(0, end);
  }
}
