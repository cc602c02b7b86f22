/**
 * The numbered-broadcast log of a gateway (src/gateway/broadcast-log.ts): a session that moves
 * here from another gateway gets every broadcast once, whether this gateway is ahead of or behind
 * the old one on each node's stream, within the log's limits.
 */
import { describe, expect, it } from 'vitest';
import { BroadcastLog, type LoggedBroadcast } from '../src/gateway/broadcast-log.js';

const TTL = 5000;
let t = 0;
const clock = (): number => t;
const live = (): boolean => true;
const b = (source: string, seq: number, size = 10): LoggedBroadcast => ({ source, seq, cmd: 1, frame: Buffer.alloc(size, seq) });
const seqs = (l: LoggedBroadcast[]): string[] => l.map((x) => `${x.source}:${x.seq}`);

/** Feeds `n` broadcasts of `source` from `from`; answers the accounts skipped for each. */
function feed(log: BroadcastLog, source: string, from: number, to: number): Record<number, string[]> {
  const skipped: Record<number, string[]> = {};
  for (let seq = from; seq <= to; seq++) {
    const s = log.record(b(source, seq));
    if (s) skipped[seq] = [...s];
  }
  return skipped;
}

describe('BroadcastLog', () => {
  it('ahead of the old gateway: the moved session gets what this one delivered since the cut, per source, in arrival order', () => {
    const log = new BroadcastLog({ maxEntries: 100, maxBytes: 1 << 20, skipTtlMs: TTL }, clock);
    log.record(b('s1', 1));
    log.record(b('s2', 1));
    log.record(b('s1', 2));
    log.record(b('s1', 3));
    log.record(b('s2', 2));
    const { replay, missed } = log.catchUp('x', { s1: 1n, s2: 2n }, live);
    expect(seqs(replay)).toEqual(['s1:2', 's1:3']);
    expect(missed).toBe(0);
    // Nothing is skipped afterwards: the next ones are new to it.
    expect(log.record(b('s1', 4))).toBeUndefined();
  });

  it('behind the old gateway: the broadcasts still on their way here are skipped for the moved session only, then nothing is', () => {
    const log = new BroadcastLog({ maxEntries: 100, maxBytes: 1 << 20, skipTtlMs: TTL }, clock);
    feed(log, 's1', 1, 3);
    const { replay } = log.catchUp('x', { s1: 6n }, live);
    expect(replay).toEqual([]);
    log.catchUp('y', { s1: 4n }, live);
    expect(feed(log, 's1', 4, 8)).toEqual({ 4: ['x', 'y'], 5: ['x'], 6: ['x'] });
  });

  it('a source the old gateway never heard from is not repeated; one this gateway never heard from is skipped up to the cut', () => {
    const log = new BroadcastLog({ maxEntries: 100, maxBytes: 1 << 20, skipTtlMs: TTL }, clock);
    feed(log, 's1', 1, 3);
    expect(log.catchUp('x', { s2: 2n }, live).replay).toEqual([]);
    expect(feed(log, 's2', 1, 3)).toEqual({ 1: ['x'], 2: ['x'] });
  });

  it('moving on while still skipping: what the session got at its first gateway is what it has seen', () => {
    const log = new BroadcastLog({ maxEntries: 100, maxBytes: 1 << 20, skipTtlMs: TTL }, clock);
    feed(log, 's1', 1, 2);
    log.catchUp('x', { s1: 5n }, live);
    expect(log.seen('x')).toEqual({ s1: 5n });
    expect(log.seen('y')).toEqual({ s1: 2n });
    log.forgetAccount('x');
    expect(log.record(b('s1', 3))).toBeUndefined();
  });

  it('holds at most maxEntries and maxBytes (the newest always); a catch-up from before what it holds counts the missed ones', () => {
    const byCount = new BroadcastLog({ maxEntries: 3, maxBytes: 1 << 20, skipTtlMs: TTL }, clock);
    feed(byCount, 's1', 1, 10);
    expect(byCount.size).toBe(3);
    const r = byCount.catchUp('x', { s1: 4n }, live);
    expect(seqs(r.replay)).toEqual(['s1:8', 's1:9', 's1:10']);
    expect(r.missed).toBe(3); // 5, 6, 7

    const byBytes = new BroadcastLog({ maxEntries: 100, maxBytes: 25, skipTtlMs: TTL }, clock);
    for (let seq = 1; seq <= 5; seq++) byBytes.record(b('s1', seq, 10));
    expect(byBytes.size).toBe(2);
    byBytes.record(b('s1', 6, 100));
    expect(byBytes.size).toBe(1);
  });

  it('unnumbered broadcasts (seq 0, an older node) are neither logged nor skipped', () => {
    const log = new BroadcastLog({ maxEntries: 100, maxBytes: 1 << 20, skipTtlMs: TTL }, clock);
    log.catchUp('x', { s1: 9n }, live);
    expect(log.record(b('s1', 0))).toBeUndefined();
    expect(log.size).toBe(0);
  });

  it('a source that left is forgotten: its numbers and skips go', () => {
    const log = new BroadcastLog({ maxEntries: 100, maxBytes: 1 << 20, skipTtlMs: TTL }, clock);
    feed(log, 's1', 1, 2);
    log.catchUp('x', { s1: 5n }, live);
    log.forgetSource('s1');
    expect(log.seen('x')).toEqual({});
    expect(log.record(b('s1', 3))).toBeUndefined();
  });

  it('a long run stays within its bounds (the array is compacted as the oldest go)', () => {
    const log = new BroadcastLog({ maxEntries: 50, maxBytes: 1 << 20, skipTtlMs: TTL }, clock);
    feed(log, 's1', 1, 20_000);
    expect(log.size).toBe(50);
    expect(seqs(log.catchUp('x', { s1: 19_998n }, live).replay)).toEqual(['s1:19999', 's1:20000']);
  });

  it('a skip ends after skipTtlMs, when the account arrives again, and is never made for a source that is gone', () => {
    t = 0;
    const log = new BroadcastLog({ maxEntries: 100, maxBytes: 1 << 20, skipTtlMs: TTL }, clock);
    feed(log, 's1', 1, 2);
    log.catchUp('x', { s1: 9n }, live);
    t = TTL + 1; // the numbers it waits for never came
    expect(log.record(b('s1', 3))).toBeUndefined();
    expect(log.seen('x')).toEqual({ s1: 3n });

    t = 0;
    log.catchUp('y', { s1: 20n }, live);
    log.catchUp('y', { s1: 3n }, live); // a later session of the account: the old skip goes with it
    expect(log.record(b('s1', 4))).toBeUndefined();

    log.catchUp('z', { s2: 7n }, () => false);
    expect(log.record(b('s2', 1))).toBeUndefined();
    expect(log.seen('z')).toEqual({ s1: 4n, s2: 1n });
  });
});
