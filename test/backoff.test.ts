/** Backoff alone, with an injected random source (no timers involved: it only computes delays). */
import { describe, expect, it } from 'vitest';
import { Backoff } from '../src/protocol/backoff.js';

const MIN_MS = 100;
const MAX_MS = 1000;
/** Just under 1, the largest value Math.random can return. */
const TOP = () => 0.999999;
const BOTTOM = () => 0;

function seeded(seed: number): () => number {
  return () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
}

describe('Backoff', () => {
  it('the ceiling doubles per attempt from the minimum', () => {
    const b = new Backoff(MIN_MS, MAX_MS, TOP);
    expect([b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 800]);
  });

  it('the delay is capped at the maximum however many attempts fail', () => {
    const b = new Backoff(MIN_MS, MAX_MS, TOP);
    const delays = Array.from({ length: 10_000 }, () => b.next());
    expect(delays.slice(4, 8)).toEqual([1000, 1000, 1000, 1000]);
    expect(Math.max(...delays)).toBe(MAX_MS);
    expect(delays.at(-1)).toBe(MAX_MS); // no overflow after many attempts
  });

  it('reset() starts over from the minimum', () => {
    const b = new Backoff(MIN_MS, MAX_MS, TOP);
    for (let i = 0; i < 6; i++) b.next();
    b.reset();
    expect([b.next(), b.next()]).toEqual([100, 200]);
  });

  it('the smallest jittered delay is half the minimum, at every attempt', () => {
    const b = new Backoff(MIN_MS, MAX_MS, BOTTOM);
    expect(Array.from({ length: 8 }, () => b.next())).toEqual(Array(8).fill(MIN_MS / 2));
  });

  it('jitter stays within [min/2, ceiling] of each attempt', () => {
    const random = seeded(7);
    const seen = new Set<number>();
    for (let run = 0; run < 200; run++) {
      const b = new Backoff(MIN_MS, MAX_MS, random);
      for (let attempt = 0; attempt < 8; attempt++) {
        const ceiling = Math.min(MAX_MS, MIN_MS * 2 ** attempt);
        const d = b.next();
        expect(d).toBeGreaterThanOrEqual(MIN_MS / 2);
        expect(d).toBeLessThanOrEqual(ceiling);
        seen.add(d);
      }
    }
    // Spread, not a constant: the point of jitter is that peers do not retry in lockstep.
    expect(seen.size).toBeGreaterThan(100);
  });
});
