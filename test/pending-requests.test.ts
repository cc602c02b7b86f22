/** PendingRequests: one timer for every deadline (fake timers, injected clock). */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PendingRequests, turnClock } from '../src/protocol/pending.js';

describe('PendingRequests', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  const table = () => {
    const expired: [number, string][] = [];
    const t = new PendingRequests<string>(
      (rid, v) => expired.push([rid, v]),
      () => Date.now(),
    );
    return { t, expired };
  };

  it('fails each request once its deadline passed, not before, and never one that was answered', () => {
    const { t, expired } = table();
    t.add(1, 'a', 100);
    t.add(2, 'b', 300);
    t.add(3, 'c', 200);
    expect(t.take(3)).toBe('c');
    vi.advanceTimersByTime(99);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(expired).toEqual([[1, 'a']]);
    vi.advanceTimersByTime(150);
    expect(expired).toEqual([[1, 'a']]);
    vi.advanceTimersByTime(50);
    expect(expired).toEqual([
      [1, 'a'],
      [2, 'b'],
    ]);
    expect(t.size).toBe(0);
    expect(t.take(2)).toBeUndefined();
  });

  it('keeps one timer however many requests wait, and none once they are all gone', () => {
    const { t } = table();
    for (let rid = 1; rid <= 1000; rid++) t.add(rid, `r${rid}`, 5000 + rid);
    expect(vi.getTimerCount()).toBe(1);
    // An earlier deadline re-arms the one timer instead of adding one.
    t.add(1001, 'soon', 10);
    expect(vi.getTimerCount()).toBe(1);
    expect(t.takeAll((v) => v.startsWith('r')).length).toBe(1000);
    expect(t.takeAll()).toEqual(['soon']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a request added from the timeout callback is kept and timed', () => {
    const expired: number[] = [];
    const t: PendingRequests<number> = new PendingRequests<number>(
      (rid) => {
        expired.push(rid);
        if (rid === 1) t.add(2, 2, 50);
      },
      () => Date.now(),
    );
    t.add(1, 1, 10);
    vi.advanceTimersByTime(10);
    expect(expired).toEqual([1]);
    vi.advanceTimersByTime(50);
    expect(expired).toEqual([1, 2]);
  });

  it('thousands in flight, a long-lived one among them, ids wrapping past 2^32: each found once by its id', () => {
    const { t, expired } = table();
    const SLOW = 0x80000000 + 7; // the low bits of 7: its slot comes round again and again
    t.add(SLOW, 'slow', 60_000); // stays while the ids run on
    const base = 0xffffff00;
    const ids = Array.from({ length: 70_000 }, (_, k) => (base + k) % 0x100000000 || 1);
    for (const rid of ids) t.add(rid, `r${rid}`, 1000);
    expect(t.size).toBe(ids.length + 1);
    expect(t.get(SLOW)).toBe('slow');
    for (const rid of ids) expect(t.take(rid)).toBe(`r${rid}`);
    expect(t.take(ids[0]!)).toBeUndefined();
    expect(t.size).toBe(1);
    expect(t.take(SLOW)).toBe('slow');
    expect(t.size).toBe(0);
    vi.advanceTimersByTime(2000);
    expect(expired).toEqual([]);
  });

  it('takeAll and timeouts report the oldest deadline first, wherever the request is kept', () => {
    const { t, expired } = table();
    t.add(5, 'b', 200);
    t.add(5 + 64, 'a', 100); // the same slot as 5 at first: kept elsewhere
    t.add(6, 'c', 300);
    vi.advanceTimersByTime(250);
    expect(expired).toEqual([
      [69, 'a'],
      [5, 'b'],
    ]);
    t.add(70, 'd', 40);
    expect(t.takeAll()).toEqual(['d', 'c']);
  });
});

describe('turnClock', () => {
  it('reads the clock once per run of synchronous code, and again after a microtask checkpoint', async () => {
    vi.useRealTimers();
    const first = turnClock();
    const spinUntil = performance.now() + 3;
    while (performance.now() < spinUntil) {
      // the same run of synchronous code: the reading stays
    }
    expect(turnClock()).toBe(first);
    await Promise.resolve();
    expect(turnClock()).toBeGreaterThanOrEqual(first + 3);
  });
});
