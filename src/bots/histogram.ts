/**
 * LatencyHistogram: a log-bucketed histogram of durations (HDR-like), small and mergeable, so the
 * load generator's workers send bucket counts instead of samples and the parent adds them up.
 *
 * Values are microseconds. Bucket i < SUB_BUCKETS holds [i, i + 1) µs; above that every power of
 * two is split into SUB_BUCKETS equal buckets, so a bucket is at most 1/SUB_BUCKETS (6.25 %) wide
 * relative to its lower bound, and a percentile is reported as its bucket's midpoint (≤ 3.2 %
 * off). Values beyond MAX_US land in the last bucket; the exact max is kept apart.
 *
 * Cumulative histograms subtract (`minus`) into the histogram of a window, which is how the live
 * line gets per-second percentiles from the workers' running totals.
 */

/** Buckets per power of two (relative resolution 1/16). */
const SUB_BITS = 4;
const SUB_BUCKETS = 1 << SUB_BITS;
/** Largest value told apart: 2^36 µs ≈ 19 hours; anything longer is "longer than that". */
const MAX_EXP = 36;
const BUCKETS = (MAX_EXP - SUB_BITS + 1) * SUB_BUCKETS;

/** What travels between processes: only the non-empty buckets, as [index, count] pairs. */
export interface HistogramJson {
  buckets: [number, number][];
  count: number;
  sumUs: number;
  /** Exact extremes of what was recorded (of a `minus` window: of its buckets). */
  minUs: number;
  maxUs: number;
}

/** Bucket index of a value in µs (non-negative; fractions are truncated). */
export function bucketOf(us: number): number {
  const v = Math.max(0, Math.floor(us));
  if (v < SUB_BUCKETS) return v;
  let exp = v < 2 ** 31 ? 31 - Math.clz32(v) : Math.floor(Math.log2(v));
  if (2 ** exp > v)
    exp--; // float rounding of log2 near a power of two
  else if (2 ** (exp + 1) <= v) exp++;
  if (exp >= MAX_EXP) return BUCKETS - 1;
  const sub = Math.floor(v / 2 ** (exp - SUB_BITS)) - SUB_BUCKETS;
  return (exp - SUB_BITS + 1) * SUB_BUCKETS + sub;
}

/** [low, high) of a bucket in µs. */
export function bucketRange(i: number): [number, number] {
  if (i < SUB_BUCKETS) return [i, i + 1];
  const exp = Math.floor(i / SUB_BUCKETS) - 1 + SUB_BITS;
  const sub = i % SUB_BUCKETS;
  const width = 2 ** (exp - SUB_BITS);
  const low = (SUB_BUCKETS + sub) * width;
  return [low, low + width];
}

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  count = 0;
  sumUs = 0;
  minUs = Infinity;
  maxUs = 0;

  /** Records one duration in milliseconds. */
  recordMs(ms: number): void {
    this.recordUs(ms * 1000);
  }

  recordUs(us: number): void {
    if (!Number.isFinite(us) || us < 0) return;
    this.counts[bucketOf(us)]!++;
    this.count++;
    this.sumUs += us;
    if (us < this.minUs) this.minUs = us;
    if (us > this.maxUs) this.maxUs = us;
  }

  /** Adds another histogram's counts into this one. */
  add(other: LatencyHistogram | HistogramJson): this {
    const h = other instanceof LatencyHistogram ? other.toJSON() : other;
    for (const [i, c] of h.buckets) this.counts[i]! += c;
    this.count += h.count;
    this.sumUs += h.sumUs;
    if (h.count > 0) {
      this.minUs = Math.min(this.minUs, h.minUs);
      this.maxUs = Math.max(this.maxUs, h.maxUs);
    }
    return this;
  }

  /**
   * This (cumulative) histogram minus an earlier state of it: the window in between. Its min/max
   * are the bounds of its lowest and highest non-empty bucket (the exact ones are not subtractable).
   */
  minus(earlier: LatencyHistogram | HistogramJson): LatencyHistogram {
    const e = earlier instanceof LatencyHistogram ? earlier : LatencyHistogram.fromJSON(earlier);
    const out = new LatencyHistogram();
    let lo = -1;
    let hi = -1;
    for (let i = 0; i < BUCKETS; i++) {
      const c = this.counts[i]! - e.counts[i]!;
      if (c <= 0) continue;
      out.counts[i] = c;
      if (lo < 0) lo = i;
      hi = i;
    }
    out.count = Math.max(0, this.count - e.count);
    out.sumUs = Math.max(0, this.sumUs - e.sumUs);
    if (lo >= 0) {
      out.minUs = Math.max(this.minUs, bucketRange(lo)[0]);
      out.maxUs = Math.min(this.maxUs, bucketRange(hi)[1]);
    }
    return out;
  }

  /** The p-th percentile (p in [0, 100]) in ms: the midpoint of its bucket; undefined when empty. */
  percentileMs(p: number): number | undefined {
    if (this.count === 0) return undefined;
    const rank = Math.max(1, Math.ceil((Math.min(100, Math.max(0, p)) / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) {
        const [low, high] = bucketRange(i);
        const mid = i < SUB_BUCKETS ? low + 0.5 : (low + high) / 2;
        return Math.min(this.maxUs, Math.max(this.minUs, mid)) / 1000;
      }
    }
    return this.maxUs / 1000;
  }

  get meanMs(): number | undefined {
    return this.count === 0 ? undefined : this.sumUs / this.count / 1000;
  }

  get maxMs(): number | undefined {
    return this.count === 0 ? undefined : this.maxUs / 1000;
  }

  toJSON(): HistogramJson {
    const buckets: [number, number][] = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i]! > 0) buckets.push([i, this.counts[i]!]);
    return { buckets, count: this.count, sumUs: this.sumUs, minUs: this.count ? this.minUs : 0, maxUs: this.maxUs };
  }

  static fromJSON(j: HistogramJson): LatencyHistogram {
    return new LatencyHistogram().add(j);
  }
}
