/** LatencyHistogram (src/bots/histogram.ts): log buckets, percentiles, merge and window subtraction. */
import { describe, expect, it } from 'vitest';
import { LatencyHistogram, bucketOf, bucketRange } from '../src/bots/histogram.js';

/** Exact nearest-rank percentile of a sorted array. */
const exact = (sorted: number[], p: number): number => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;

describe('LatencyHistogram', () => {
  it('puts every value in a bucket that contains it, at most 1/16 of the value wide', () => {
    const values = [0, 1, 15, 16, 17, 31, 32, 33, 1000, 1023, 1024, 65_535, 65_536, 2 ** 31 - 1, 2 ** 31, 2 ** 33 + 5];
    for (let v = 1; v < 1e9; v = Math.ceil(v * 1.37)) values.push(v);
    for (const v of values) {
      const [low, high] = bucketRange(bucketOf(v));
      expect(low <= v && v < high, `${v} in [${low}, ${high})`).toBe(true);
      if (v >= 16) expect((high - low) / low).toBeLessThanOrEqual(1 / 16);
    }
    expect(bucketOf(1e15)).toBe(bucketOf(1e14)); // beyond the range: the last bucket
  });

  it('gives percentiles within 3.2 % of the exact ones, and the exact max', () => {
    const h = new LatencyHistogram();
    const xs: number[] = [];
    let seed = 7;
    for (let i = 0; i < 20_000; i++) {
      seed = (seed * 48271) % 2147483647;
      const ms = 0.05 + ((seed % 100_000) / 100_000) ** 3 * 400; // skewed: many fast, a long tail
      xs.push(ms);
      h.recordMs(ms);
    }
    xs.sort((a, b) => a - b);
    for (const p of [50, 90, 99, 99.9]) {
      const want = exact(xs, p);
      expect(Math.abs(h.percentileMs(p)! - want) / want, `p${p}`).toBeLessThanOrEqual(0.032);
    }
    expect(h.maxMs).toBeCloseTo(xs[xs.length - 1]!, 9);
    expect(h.count).toBe(20_000);
    expect(new LatencyHistogram().percentileMs(50)).toBeUndefined();
  });

  it('merges: two halves added up equal the whole, also through JSON (what the workers send)', () => {
    const whole = new LatencyHistogram();
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    for (let i = 1; i <= 5000; i++) {
      const ms = (i % 97) * 0.7 + i / 1000;
      whole.recordMs(ms);
      (i % 3 === 0 ? a : b).recordMs(ms);
    }
    const merged = new LatencyHistogram().add(JSON.parse(JSON.stringify(a.toJSON()))).add(b.toJSON());
    expect(merged.toJSON()).toEqual(whole.toJSON());
    expect(merged.percentileMs(99)).toBe(whole.percentileMs(99));
  });

  it('subtracts an earlier state: the window has only what came after it', () => {
    const h = new LatencyHistogram();
    for (let i = 0; i < 1000; i++) h.recordMs(1);
    const earlier = LatencyHistogram.fromJSON(h.toJSON());
    for (let i = 0; i < 100; i++) h.recordMs(50);
    const win = h.minus(earlier);
    expect(win.count).toBe(100);
    expect(win.percentileMs(50)! / 50).toBeCloseTo(1, 1);
    expect(win.minUs).toBeGreaterThan(40_000); // the 1 ms values are not in the window
    expect(h.minus(h).count).toBe(0);
    expect(h.minus(h).percentileMs(50)).toBeUndefined();
  });
});
