/**
 * MgrLease (src/mgr/lease.ts) alone, on the memory store, with fake timers (the fake clock drives
 * both the lease's performance.now() and the store's expiry): acquisition, refresh, step-down
 * before the TTL when the lease cannot be confirmed, and a standby's takeover.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../src/log.js';
import { MgrLease, type MgrLeaseOptions } from '../src/mgr/lease.js';
import { MemoryStore } from '../src/store/memory-store.js';
import type { ClusterStore, LeaseCommandOptions, LeaseRecord } from '../src/store/store.js';

const OPTS: MgrLeaseOptions = { ttlMs: 1000, refreshMs: 250, standbyPollMs: 100 };
/** The lease steps down this long before the TTL runs out (src/mgr/lease.ts: max(50, 10 % of the TTL)). */
const MARGIN_MS = 100;

interface Watched {
  lease: MgrLease;
  active: { at: number; rec: LeaseRecord }[];
  lost: { at: number; reason: string }[];
}

let store: MemoryStore;
const leases: MgrLease[] = [];

beforeEach(() => {
  vi.useFakeTimers();
  store = new MemoryStore('lease-test');
});

afterEach(async () => {
  for (const l of leases.splice(0)) await l.stop();
  await store.close();
  vi.useRealTimers();
});

/** A lease whose host records when it became active and lost it; `onActive` runs first. */
function newLease(instanceId: string, s: ClusterStore = store, onActive: () => void = () => {}): Watched {
  const active: Watched['active'] = [];
  const lost: Watched['lost'] = [];
  const lease = new MgrLease(
    s,
    { instanceId, addr: '127.0.0.1', port: 7000 },
    OPTS,
    {
      onActive: (rec) => {
        onActive();
        active.push({ at: performance.now(), rec });
      },
      onLost: (reason) => lost.push({ at: performance.now(), reason }),
    },
    silentLogger(),
  );
  leases.push(lease);
  return { lease, active, lost };
}

type StoreReach = 'ok' | 'failing' | 'hanging' | { delayMs: number };

/**
 * The memory store as one mgr reaches it: its lease calls answer normally, fail (unreachable),
 * never answer (hung connection), or reach the store only after `delayMs` (a command that waited
 * in a queue while the store was away), as `reach()` says at the time of the call.
 */
function storeReached(reach: () => StoreReach, onRefresh: () => void = () => {}): ClusterStore {
  const leaseCall = <T>(call: () => Promise<T>): Promise<T> => {
    const r = reach();
    if (r === 'failing') return Promise.reject(new Error('connection refused'));
    if (r === 'hanging') return new Promise<T>(() => {});
    if (typeof r === 'object') return new Promise<void>((resolve) => setTimeout(resolve, r.delayMs)).then(call);
    return call();
  };
  return new Proxy(store, {
    get: (target, prop, receiver) => {
      if (prop === 'acquireLease') {
        return (rec: Omit<LeaseRecord, 'epoch'>, ttl: number, opts?: LeaseCommandOptions) => leaseCall(() => store.acquireLease(rec, ttl, opts));
      }
      if (prop === 'refreshLease') {
        return (id: string, ttl: number, opts?: LeaseCommandOptions) => {
          onRefresh();
          return leaseCall(() => store.refreshLease(id, ttl, opts));
        };
      }
      return Reflect.get(target, prop, receiver);
    },
  });
}

describe('MgrLease', () => {
  it('acquires a free lease at start: active with epoch 1, valid, and named by the store', async () => {
    const a = newLease('mgr-a');
    a.lease.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(a.active.map((x) => x.rec)).toEqual([expect.objectContaining({ instanceId: 'mgr-a', epoch: 1 })]);
    expect(a.lease.isValid()).toBe(true);
    expect((await store.readLease())?.instanceId).toBe('mgr-a');
  });

  it('keeps the lease by refreshing inside the TTL: still active and valid after ten TTLs', async () => {
    const refreshes: number[] = [];
    const a = newLease(
      'mgr-a',
      storeReached(
        () => 'ok',
        () => refreshes.push(performance.now()),
      ),
    );
    a.lease.start();
    await vi.advanceTimersByTimeAsync(10 * OPTS.ttlMs);
    expect(a.lost).toEqual([]);
    expect(a.lease.isValid()).toBe(true);
    expect((await store.readLease())?.instanceId).toBe('mgr-a');
    // One refresh every refreshMs, each well inside the TTL of the one before.
    expect(refreshes.length).toBeGreaterThanOrEqual(10 * (OPTS.ttlMs / OPTS.refreshMs) - 1);
    for (let i = 1; i < refreshes.length; i++) expect(refreshes[i]! - refreshes[i - 1]!).toBeLessThanOrEqual(OPTS.refreshMs);
  });

  it('steps down before the TTL when refreshes fail (store unreachable from this mgr)', async () => {
    let reach: StoreReach = 'ok';
    const a = newLease(
      'mgr-a',
      storeReached(() => reach),
    );
    a.lease.start();
    await vi.advanceTimersByTimeAsync(0);
    reach = 'failing';
    const confirmedAt = a.active[0]!.at;
    await vi.advanceTimersByTimeAsync(3 * OPTS.ttlMs);
    expect(a.lost).toHaveLength(1);
    expect(a.lost[0]!.reason).toMatch(/not confirmed/);
    expect(a.lost[0]!.at).toBeLessThan(confirmedAt + OPTS.ttlMs);
    expect(a.lost[0]!.at).toBeGreaterThanOrEqual(confirmedAt + OPTS.ttlMs - MARGIN_MS);
    expect(a.lease.isValid()).toBe(false);
  });

  it('steps down before the TTL when a refresh never answers (unconfirmed)', async () => {
    let reach: StoreReach = 'ok';
    const a = newLease(
      'mgr-a',
      storeReached(() => reach),
    );
    a.lease.start();
    await vi.advanceTimersByTimeAsync(0);
    reach = 'hanging';
    const confirmedAt = a.active[0]!.at;
    await vi.advanceTimersByTimeAsync(3 * OPTS.ttlMs);
    expect(a.lost).toHaveLength(1);
    expect(a.lost[0]!.at).toBeLessThan(confirmedAt + OPTS.ttlMs);
    expect(a.lease.isValid()).toBe(false);
  });

  it('steps down at the next refresh when the store says another mgr holds the lease', async () => {
    const a = newLease('mgr-a');
    a.lease.start();
    await vi.advanceTimersByTimeAsync(0);
    // Another instance holds it now (say, this one was frozen past the TTL and lost it).
    await store.releaseLease('mgr-a');
    await store.acquireLease({ instanceId: 'mgr-x', addr: '127.0.0.1', port: 7001 }, 60_000);
    await vi.advanceTimersByTimeAsync(OPTS.refreshMs);
    expect(a.lost).toEqual([{ at: OPTS.refreshMs, reason: 'another mgr holds the lease' }]);
    expect(a.lease.isValid()).toBe(false);
  });

  it('a standby takes over only once the silent active has stepped down and its lease expired', async () => {
    let reachA: StoreReach = 'ok';
    const a = newLease(
      'mgr-a',
      storeReached(() => reachA),
    );
    let aValidWhenBActive: boolean | undefined;
    const b = newLease('mgr-b', store, () => (aValidWhenBActive = a.lease.isValid()));
    a.lease.start();
    await vi.advanceTimersByTimeAsync(10);
    b.lease.start();
    await vi.advanceTimersByTimeAsync(2 * OPTS.ttlMs);
    expect(b.active).toEqual([]); // a standby while A refreshes

    reachA = 'failing'; // A is cut off from the store; B is not
    const cutAt = performance.now();
    await vi.advanceTimersByTimeAsync(3 * OPTS.ttlMs);
    expect(a.lost).toHaveLength(1);
    expect(b.active).toHaveLength(1);
    expect(b.active[0]!.rec).toMatchObject({ instanceId: 'mgr-b', epoch: 2 });
    // A's last confirmed refresh was at most refreshMs before the cut; the store keeps it a TTL.
    expect(b.active[0]!.at).toBeGreaterThan(cutAt - OPTS.refreshMs + OPTS.ttlMs);
    expect(a.lost[0]!.at).toBeLessThan(b.active[0]!.at);
    expect(aValidWhenBActive).toBe(false);
    expect(b.active[0]!.at - a.lost[0]!.at).toBeLessThanOrEqual(MARGIN_MS + OPTS.standbyPollMs);
  });

  it('an acquisition that reaches the store late is not applied: no lease for a standby that gave up, no active mgr with a stale confirmation', async () => {
    // The first attempt reaches the store after 0.8 TTL (it waited for the store to come back).
    let calls = 0;
    const a = newLease(
      'mgr-a',
      storeReached(() => (calls++ === 0 ? { delayMs: 0.8 * OPTS.ttlMs } : 'ok')),
    );
    a.lease.start();
    await vi.advanceTimersByTimeAsync(0.8 * OPTS.ttlMs);
    // Had it been applied, the lease would be held by an instance that does not act on it, or one
    // whose watchdog, dated from the call, fires 0.1 TTL after it became active.
    const held = await store.readLease();
    expect(held === null || a.lease.current !== null).toBe(true);
    // It gave up on the late attempt and took the lease at its next poll instead; it keeps it.
    await vi.advanceTimersByTimeAsync(2 * OPTS.ttlMs);
    expect(a.active).toHaveLength(1);
    expect(a.lost).toEqual([]);
    expect(a.lease.isValid()).toBe(true);
  });

  it('a refresh that reaches the store after the watchdog fired does not extend the lease', async () => {
    let reach: StoreReach = 'ok';
    const a = newLease(
      'mgr-a',
      storeReached(() => reach),
    );
    a.lease.start();
    await vi.advanceTimersByTimeAsync(0);
    // The refresh sent at refreshMs lands at 0.95 TTL: after the watchdog (0.9 TTL), before expiry.
    reach = { delayMs: 0.95 * OPTS.ttlMs - OPTS.refreshMs };
    await vi.advanceTimersByTimeAsync(OPTS.ttlMs + 10);
    expect(a.lost).toHaveLength(1);
    // Applied, it would keep the lease for a TTL under a mgr that no longer acts on it.
    expect(await store.readLease()).toBeNull();
  });

  it('a graceful stop releases the lease: the standby takes over at its next poll', async () => {
    const a = newLease('mgr-a');
    const b = newLease('mgr-b');
    a.lease.start();
    await vi.advanceTimersByTimeAsync(10);
    b.lease.start();
    await vi.advanceTimersByTimeAsync(500);
    const stoppedAt = performance.now();
    await a.lease.stop();
    await vi.advanceTimersByTimeAsync(OPTS.standbyPollMs);
    expect(b.active).toHaveLength(1);
    expect(b.active[0]!.at - stoppedAt).toBeLessThanOrEqual(OPTS.standbyPollMs);
  });
});
