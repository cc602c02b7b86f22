/**
 * One contract suite, run against MemoryStore and RedisStore (Redis at 127.0.0.1:6379). Redis keys
 * live under a random cluster name and are deleted afterwards; the lease, mirror and announcement
 * channel are per cluster, so the tests that use them release the lease before they finish.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isXError } from '../src/errors.js';
import { clusterKeyPatterns, deleteKeys } from '../testkit/index.js';
import { createStore, MemoryStore, RedisStore, type ClusterStore, type LeaseRecord, type TokenRecord } from '../src/store/index.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const CLUSTER = `store-test-${randomBytes(4).toString('hex')}`;

const uid = (): string => randomBytes(4).toString('hex');

/** Polls `probe` until `done` holds; fails after `timeoutMs`. */
async function eventually<T>(probe: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`condition not reached within ${timeoutMs} ms (last: ${JSON.stringify(v)})`);
    await sleep(20);
  }
}

async function expectCode(p: Promise<unknown>, code: string): Promise<Error> {
  const err = await p.then(
    () => {
      throw new Error(`expected ${code}, got success`);
    },
    (e: unknown) => e,
  );
  expect(isXError(err) && err.code).toBe(code);
  return err as Error;
}

interface Harness {
  /** The store most tests use. */
  store: ClusterStore;
  /** Another client of the same backend (a separate Redis connection; the same instance in memory). */
  peer(): ClusterStore;
  dispose(): Promise<void>;
}

function memoryHarness(): Harness {
  const store = new MemoryStore(CLUSTER);
  return { store, peer: () => store, dispose: () => store.close() };
}

function redisHarness(): Harness {
  const stores = [new RedisStore(REDIS_URL, CLUSTER)];
  return {
    store: stores[0],
    peer() {
      const s = new RedisStore(REDIS_URL, CLUSTER);
      stores.push(s);
      return s;
    },
    async dispose() {
      await Promise.all(stores.map((s) => s.close()));
      await deleteKeys(REDIS_URL, clusterKeyPatterns(CLUSTER));
    },
  };
}

function contract(name: string, makeHarness: () => Harness): void {
  describe(`ClusterStore contract: ${name}`, () => {
    let h: Harness;
    let s: ClusterStore;
    let peers: ClusterStore[];
    beforeAll(async () => {
      h = makeHarness();
      s = h.store;
      peers = [s, h.peer(), h.peer(), h.peer()];
      await Promise.all(peers.map((p) => p.ready(3000)));
    });
    afterAll(() => h.dispose());

    const mgr = (instanceId: string) => ({ instanceId, addr: '127.0.0.1', port: 7100 });

    it('acquires, refreshes and releases the lease, bumping the epoch on each acquisition', async () => {
      const a = await s.acquireLease({ ...mgr('mgr-a'), adminPort: 9100 }, 5000);
      expect(a).toMatchObject({ instanceId: 'mgr-a', addr: '127.0.0.1', port: 7100, adminPort: 9100 });
      expect(await s.readLease()).toEqual(a);
      expect(await peers[1].acquireLease(mgr('mgr-b'), 5000)).toBeNull();

      expect(await s.refreshLease('mgr-a', 5000)).toBe(true);
      expect(await s.refreshLease('mgr-b', 5000)).toBe(false);
      await peers[1].releaseLease('mgr-b');
      expect((await s.readLease())?.instanceId).toBe('mgr-a');

      await s.releaseLease('mgr-a');
      expect(await s.readLease()).toBeNull();
      expect(await s.refreshLease('mgr-a', 5000)).toBe(false);

      const b = await peers[1].acquireLease(mgr('mgr-b'), 5000);
      expect(b?.epoch).toBe(a!.epoch + 1);
      expect(b?.adminPort).toBeUndefined();
      await peers[1].releaseLease('mgr-b');
    });

    it('lets a second mgr take the lease only after it expires', async () => {
      const a = await s.acquireLease(mgr('mgr-a'), 200);
      expect(a).not.toBeNull();
      expect(await peers[1].acquireLease(mgr('mgr-b'), 200)).toBeNull();
      const b = await eventually(
        () => peers[1].acquireLease(mgr('mgr-b'), 5000),
        (r) => r !== null,
      );
      expect(b).toMatchObject({ instanceId: 'mgr-b', epoch: a!.epoch + 1 });
      // The old holder learns it lost the lease and cannot release the new holder's.
      expect(await s.refreshLease('mgr-a', 5000)).toBe(false);
      await s.releaseLease('mgr-a');
      expect((await s.readLease())?.instanceId).toBe('mgr-b');
      await peers[1].releaseLease('mgr-b');
    });

    it('refuses a lease acquisition or refresh past its deadline and changes nothing', async () => {
      const late = { notAfter: Date.now() - 1 };
      await expectCode(s.acquireLease(mgr('mgr-a'), 5000, late), 'STORE_UNAVAILABLE');
      expect(await s.readLease()).toBeNull();
      const a = await s.acquireLease(mgr('mgr-a'), 5000, { notAfter: Date.now() + 2000 });
      expect(a).toMatchObject({ instanceId: 'mgr-a' });
      await expectCode(s.refreshLease('mgr-a', 60_000, late), 'STORE_UNAVAILABLE');
      expect(await s.refreshLease('mgr-a', 5000, { notAfter: Date.now() + 2000 })).toBe(true);
      await s.releaseLease('mgr-a');
    });

    it('lets an instance take back a lease still held under its own id, with a new epoch', async () => {
      // It gave up waiting for an acquisition that did land: it must not wait a TTL for its own lease.
      const first = await s.acquireLease(mgr('mgr-a'), 5000);
      const again = await peers[1].acquireLease(mgr('mgr-a'), 5000);
      expect(again).toMatchObject({ instanceId: 'mgr-a', epoch: first!.epoch + 1 });
      expect(await peers[1].acquireLease(mgr('mgr-b'), 5000)).toBeNull();
      await s.releaseLease('mgr-a');
    });

    it('delivers lease announcements to subscribers until they unsubscribe', async () => {
      const gotA: LeaseRecord[] = [];
      const gotB: LeaseRecord[] = [];
      const offA = await peers[1].onLeaseAnnounced((r) => gotA.push(r));
      const offB = await peers[2].onLeaseAnnounced((r) => gotB.push(r));
      const rec1: LeaseRecord = { ...mgr('mgr-x'), epoch: 41, adminPort: 9100 };
      await s.announceLease(rec1);
      await eventually(
        async () => gotA.length + gotB.length,
        (n) => n === 2,
      );
      expect(gotA).toEqual([rec1]);
      expect(gotB).toEqual([rec1]);

      await offA();
      const rec2: LeaseRecord = { ...mgr('mgr-y'), epoch: 42 };
      await s.announceLease(rec2);
      await eventually(
        async () => gotB.length,
        (n) => n === 2,
      );
      expect(gotB[1]).toEqual(rec2);
      // Both subscribers share the channel, so B having it means A would have had it too.
      expect(gotA).toHaveLength(1);
      await offB();
    });

    it('fences mirror writes to the lease holder and keeps binary values intact', async () => {
      const bytes = new Uint8Array([0, 255, 128, 10, 13, 0xc3, 0x28]);
      expect(await s.mirrorPut('mgr-a', 'n1', bytes)).toBe(false); // nobody holds the lease
      expect(await s.acquireLease(mgr('mgr-a'), 5000)).not.toBeNull();
      try {
        expect(await s.mirrorPut('mgr-a', 'n1', bytes)).toBe(true);
        expect(await s.mirrorPut('mgr-a', 'n2', new Uint8Array([2]))).toBe(true);
        expect(await peers[1].mirrorPut('mgr-b', 'n3', new Uint8Array([3]))).toBe(false);
        expect(await peers[1].mirrorDelete('mgr-b', 'n1')).toBe(false);
        expect(await peers[1].mirrorReplace('mgr-b', new Map())).toBe(false);

        let loaded = await peers[1].mirrorLoad();
        expect([...loaded.keys()].sort()).toEqual(['n1', 'n2']);
        expect(Array.from(loaded.get('n1')!)).toEqual(Array.from(bytes));

        expect(await s.mirrorDelete('mgr-a', 'n2')).toBe(true);
        expect(
          await s.mirrorReplace(
            'mgr-a',
            new Map([
              ['n4', new Uint8Array([4, 0, 4])],
              ['n5', new Uint8Array(0)],
            ]),
          ),
        ).toBe(true);
        loaded = await s.mirrorLoad();
        expect(Object.fromEntries([...loaded].map(([k, v]) => [k, Array.from(v)]))).toEqual({ n4: [4, 0, 4], n5: [] });
      } finally {
        await s.releaseLease('mgr-a');
      }
      expect(await s.mirrorReplace('mgr-a', new Map())).toBe(false);
    });

    it('fences canary policy writes to the lease holder and keeps them apart from the mirror', async () => {
      const policy = new Uint8Array([8, 4, 0, 255, 10]);
      expect(await s.policyPut('mgr-a', 4, policy)).toBe(false); // nobody holds the lease
      expect(await s.acquireLease(mgr('mgr-a'), 5000)).not.toBeNull();
      try {
        expect(await s.policyPut('mgr-a', 4, policy)).toBe(true);
        expect(await s.policyPut('mgr-a', 7, new Uint8Array([7]))).toBe(true);
        expect(await peers[1].policyPut('mgr-b', 4, null)).toBe(false);
        const loaded = await peers[1].policyLoad();
        expect([...loaded.keys()].sort()).toEqual([4, 7]);
        expect(Array.from(loaded.get(4)!)).toEqual(Array.from(policy));
        expect([...(await s.mirrorLoad()).keys()]).not.toContain('4');
        expect(await s.policyPut('mgr-a', 4, null)).toBe(true);
        expect([...(await s.policyLoad()).keys()]).toEqual([7]);
        expect(await s.policyPut('mgr-a', 7, null)).toBe(true);
      } finally {
        await s.releaseLease('mgr-a');
      }
    });

    it('manages accounts', async () => {
      const acct = `user-${uid()}`;
      expect(await s.getAccount(acct)).toBeNull();
      expect(await s.createAccount(acct, { passwordHash: 'h1', createdAt: 1700000000000 })).toBe(true);
      expect(await peers[1].createAccount(acct, { passwordHash: 'h2', createdAt: 1 })).toBe(false);
      expect(await s.setAccountPassword(acct, 'h3')).toBe(true);
      expect(await s.getAccount(acct)).toEqual({ passwordHash: 'h3', createdAt: 1700000000000 });
      expect(await s.deleteAccount(acct)).toBe(true);
      expect(await s.deleteAccount(acct)).toBe(false);
      expect(await s.setAccountPassword(acct, 'h4')).toBe(false);
    });

    it('counts failures within a window and clears them', async () => {
      const key = `ip-${uid()}`;
      expect(await s.countFailure(key, 300)).toBe(1);
      expect(await peers[1].countFailure(key, 300)).toBe(2);
      expect(await s.countFailure(key, 300)).toBe(3);
      // Counting does not extend the window: it ends and the count starts over.
      await eventually(
        () => s.countFailure(key, 300),
        (n) => n === 1,
      );
      await s.clearFailures(key);
      expect(await s.countFailure(key, 300)).toBe(1);
      await s.clearFailures(key);
    });

    it('hands out a token once, and not after it expires', async () => {
      const rec: TokenRecord = { account: 'alice', gatewayId: 'gw-1', generation: 7, allocations: { '4': 'lobby-1' } };
      const t = uid();
      await s.putToken(t, rec, 5000);
      // At another gateway it is refused there but not used up.
      expect(await s.takeToken(t, 'gw-2')).toEqual(rec);
      const taken = await Promise.all(peers.map((p) => p.takeToken(t, 'gw-1')));
      expect(taken.filter((r) => r !== null)).toEqual([rec]);

      const short = uid();
      await s.putToken(short, rec, 100);
      // A fixed wait: polling takeToken would consume the token.
      await sleep(250);
      expect(await s.takeToken(short, 'gw-1')).toBeNull();
    });

    it('allocates sticky, least-loaded, and agrees under concurrency', async () => {
      const acct = `user-${uid()}`;
      expect(await s.allocate(acct, 4, [])).toBeNull();
      // Least loaded wins; ties go to the first candidate.
      expect(
        await s.allocate(acct, 4, [
          { id: 'a', load: 5 },
          { id: 'b', load: 2 },
          { id: 'c', load: 2 },
        ]),
      ).toBe('b');
      // Sticky while the node is a candidate, however loaded.
      expect(
        await s.allocate(acct, 4, [
          { id: 'a', load: 0 },
          { id: 'b', load: 99 },
        ]),
      ).toBe('b');
      // Moves when it no longer is.
      expect(
        await s.allocate(acct, 4, [
          { id: 'a', load: 3 },
          { id: 'c', load: 1 },
        ]),
      ).toBe('c');
      expect(
        await s.allocate(acct, 5, [
          { id: 'm', load: Number.NaN },
          { id: 'n', load: 1 },
        ]),
      ).toBe('n');
      expect(await s.getAllocations(acct)).toEqual({ '4': 'c', '5': 'n' });
      expect(await s.allocate(acct, 4, [])).toBeNull();
      expect(await s.getAllocations(acct)).toEqual({ '4': 'c', '5': 'n' });

      // Every caller sees different loads (each would pick another node alone); all must agree.
      const racer = `user-${uid()}`;
      const ids = ['n0', 'n1', 'n2', 'n3', 'n4'];
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          peers[i % peers.length].allocate(
            racer,
            4,
            ids.map((id, j) => ({ id, load: (j + i) % ids.length })),
          ),
        ),
      );
      expect(new Set(results).size).toBe(1);
      expect(await s.getAllocations(racer)).toEqual({ '4': results[0] });
    });

    it('reallocates only away from the dead node (compare-and-set)', async () => {
      const acct = `user-${uid()}`;
      expect(
        await s.reallocate(acct, 4, 'x', [
          { id: 'x', load: 0 },
          { id: 'y', load: 1 },
        ]),
      ).toBe('y'); // unset: dead id skipped
      expect(await s.reallocate(acct, 4, 'x', [{ id: 'z', load: 0 }])).toBe('y'); // not x: unchanged
      expect(await s.reallocate(acct, 4, 'y', [])).toBeNull(); // nowhere to go: kept
      expect(await s.getAllocations(acct)).toEqual({ '4': 'y' });

      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          peers[i % peers.length].reallocate(acct, 4, 'y', [
            { id: 'p', load: i % 2 },
            { id: 'q', load: (i + 1) % 2 },
          ]),
        ),
      );
      expect(new Set(results).size).toBe(1);
      expect(['p', 'q']).toContain(results[0]);
      expect(await s.getAllocations(acct)).toEqual({ '4': results[0] });
    });

    it('keeps a handoff state for its TTL, binary intact, and gives it to exactly one taker', async () => {
      const acct = `user-${uid()}`;
      const state = new Uint8Array([0, 255, 1, 0, 128, 7]);
      await s.putHandoffState(acct, 'h1', state, 60_000);
      state[0] = 9; // the store keeps its own copy
      const takers = await Promise.all(peers.map((p) => p.takeHandoffState(acct, 'h1')));
      const won = takers.filter((t) => t !== null);
      expect(won).toHaveLength(1);
      expect([...won[0]!]).toEqual([0, 255, 1, 0, 128, 7]);
      expect(await s.takeHandoffState(acct, 'h1')).toBeNull();
      expect(await s.takeHandoffState(acct, 'other')).toBeNull();

      await s.putHandoffState(acct, 'h2', new Uint8Array([1]), 100);
      await sleep(250); // past the TTL (a slower machine only makes it later)
      expect(await s.takeHandoffState(acct, 'h2')).toBeNull();
    });

    it('keeps released allocations for the affinity window; allocate cancels the expiry', async () => {
      const acct = `user-${uid()}`;
      await s.allocate(acct, 4, [{ id: 'a', load: 0 }]);
      await s.releaseAllocations(acct, 150);
      expect(await s.getAllocations(acct)).toEqual({ '4': 'a' });
      expect(
        await s.allocate(acct, 4, [
          { id: 'b', load: 0 },
          { id: 'a', load: 5 },
        ]),
      ).toBe('a');
      await sleep(300);
      expect(await s.getAllocations(acct)).toEqual({ '4': 'a' });

      await s.releaseAllocations(acct, 100);
      await eventually(
        () => s.getAllocations(acct),
        (r) => Object.keys(r).length === 0,
      );
      await s.allocate(acct, 4, [{ id: 'a', load: 0 }]);
      await s.releaseAllocations(acct, 0);
      expect(await s.getAllocations(acct)).toEqual({});
    });

    it('guards presence by generation', async () => {
      const acct = `user-${uid()}`;
      const g1 = await s.nextGeneration(acct);
      const g2 = await peers[1].nextGeneration(acct);
      expect(g2).toBeGreaterThan(g1);
      expect(await s.getPresence(acct)).toBeNull();
      await s.setPresence(acct, { gatewayId: 'gw-1', generation: g1 });
      await s.setPresence(acct, { gatewayId: 'gw-2', generation: g2 });
      expect(await s.clearPresence(acct, g1)).toBe(false); // a late loss of the older session
      expect(await s.getPresence(acct)).toEqual({ gatewayId: 'gw-2', generation: g2 });
      expect(await s.clearPresence(acct, g2)).toBe(true);
      expect(await s.getPresence(acct)).toBeNull();
      // Absent (e.g. Redis restarted empty): no newer login owns it, so the loss may be reported.
      expect(await s.clearPresence(acct, g2)).toBe(true);
      // An older session never overwrites a newer one's presence.
      await s.setPresence(acct, { gatewayId: 'gw-2', generation: g2 });
      await s.setPresence(acct, { gatewayId: 'gw-1', generation: g1 });
      expect(await s.getPresence(acct)).toEqual({ gatewayId: 'gw-2', generation: g2 });
    });

    it('moves presence between gateways only from the recorded gateway and generation (session handoff)', async () => {
      const acct = `user-${uid()}`;
      const g1 = await s.nextGeneration(acct);
      const g2 = await s.nextGeneration(acct);
      expect(await s.movePresence(acct, g1, 'gw-a', 'gw-b')).toBe(false); // no presence: nothing to move
      expect(await s.getPresence(acct)).toBeNull();
      await s.setPresence(acct, { gatewayId: 'gw-a', generation: g1 });
      expect(await s.movePresence(acct, g1, 'gw-x', 'gw-b')).toBe(false); // not held by gw-x
      expect(await s.movePresence(acct, g2, 'gw-a', 'gw-b')).toBe(false); // another generation
      expect(await peers[1].movePresence(acct, g1, 'gw-a', 'gw-b')).toBe(true);
      expect(await s.getPresence(acct)).toEqual({ gatewayId: 'gw-b', generation: g1 });
      expect(await s.movePresence(acct, g1, 'gw-a', 'gw-c')).toBe(false); // single switch: gw-a no longer holds it
      // A newer login recorded meanwhile wins: the move is refused.
      await s.setPresence(acct, { gatewayId: 'gw-c', generation: g2 });
      expect(await s.movePresence(acct, g1, 'gw-b', 'gw-a')).toBe(false);
      expect(await s.getPresence(acct)).toEqual({ gatewayId: 'gw-c', generation: g2 });
    });

    it('provides key-value and hash storage', async () => {
      const k = `role-${uid()}`;
      expect(await s.kvGet(k)).toBeNull();
      await s.kvSet(k, 'v1');
      expect(await peers[1].kvGet(k)).toBe('v1');
      await s.kvSet(k, 'v2', 100);
      await eventually(
        () => s.kvGet(k),
        (v) => v === null,
      );
      expect(await s.kvDelete(k)).toBe(false);

      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => peers[i % peers.length].kvSetIfAbsent(k, `w${i}`)));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await s.kvGet(k)).toBe(`w${results.indexOf(true)}`);
      expect(await s.kvDelete(k)).toBe(true);
      expect(await s.kvSetIfAbsent(k, 'short', 100)).toBe(true);
      await eventually(
        () => s.kvSetIfAbsent(k, 'later'),
        (ok) => ok,
      );
      expect(await s.kvGet(k)).toBe('later');
      await s.kvDelete(k);

      const hk = `roles-${uid()}`;
      expect(await s.hashGetAll(hk)).toEqual({});
      await s.hashSet(hk, 'f1', 'a');
      await s.hashSet(hk, 'f2', 'b');
      expect(await s.hashGetAll(hk)).toEqual({ f1: 'a', f2: 'b' });
      expect(await s.hashDelete(hk, 'f1')).toBe(true);
      expect(await s.hashDelete(hk, 'f1')).toBe(false);
      expect(await s.hashDelete(hk, 'f2')).toBe(true);
      expect(await s.hashGetAll(hk)).toEqual({});
    });
  });
}

contract('memory', memoryHarness);
contract('redis', redisHarness);

describe('store selection and failure modes', () => {
  it('creates the backend named by the URL', async () => {
    for (const url of ['memory://', 'memory']) {
      const m = createStore(url, CLUSTER);
      expect(m).toBeInstanceOf(MemoryStore);
      expect(m.kind).toBe('memory');
      await m.close();
    }
    const r = createStore(REDIS_URL, CLUSTER);
    expect(r.kind).toBe('redis');
    expect(r.description).toBe(`${REDIS_URL} (cluster ${CLUSTER})`);
    await r.ready(3000);
    await r.close();
    expect(() => createStore('http://127.0.0.1:6379', CLUSTER)).toThrow(/bad store URL/);
    expect(() => createStore('redis-sentinel://127.0.0.1:26379', CLUSTER)).toThrow(/master name/);
  });

  it('fails operations after close()', async () => {
    for (const store of [new MemoryStore(CLUSTER), new RedisStore(REDIS_URL, CLUSTER)]) {
      await store.close();
      await expectCode(store.kvGet('x'), 'STORE_UNAVAILABLE');
    }
  });

  it.each([
    ['redis://:s3cret@127.0.0.1:1/0', 'redis://:***@127.0.0.1:1/0'],
    ['redis-sentinel://:s3cret@127.0.0.1:1,127.0.0.1:2/mymaster', 'redis-sentinel://:***@127.0.0.1:1,127.0.0.1:2/mymaster'],
    ['redis-cluster://user:s3cret@127.0.0.1:1', 'redis-cluster://user:***@127.0.0.1:1'],
  ])('an unreachable %s fails fast with STORE_UNAVAILABLE and closes promptly', async (url, redacted) => {
    const store = new RedisStore(url, CLUSTER, { opTimeoutMs: 2000 });
    expect(store.description).toBe(`${redacted} (cluster ${CLUSTER})`);

    let t0 = Date.now();
    const err = await expectCode(store.ready(300), 'STORE_UNAVAILABLE');
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(err.message).toContain(redacted);
    expect(err.message).not.toContain('s3cret');

    t0 = Date.now();
    await expectCode(store.kvGet('x'), 'STORE_UNAVAILABLE');
    expect(Date.now() - t0).toBeLessThan(3000);

    t0 = Date.now();
    await store.close();
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('never queues a lease command while disconnected: it fails at once instead of running when Redis is back', async () => {
    const store = new RedisStore('redis://127.0.0.1:1/0', CLUSTER, { opTimeoutMs: 2000 });
    try {
      const t0 = Date.now();
      const err = await expectCode(store.acquireLease({ instanceId: 'mgr-a', addr: '127.0.0.1', port: 7100 }, 5000), 'STORE_UNAVAILABLE');
      expect(err.message).toMatch(/not connected/);
      expect(Date.now() - t0).toBeLessThan(100);
      await expectCode(store.refreshLease('mgr-a', 5000), 'STORE_UNAVAILABLE');
    } finally {
      await store.close();
    }
  });
});

describe('RedisStore key layout', () => {
  const stores: RedisStore[] = [];
  const open = (): RedisStore => {
    const s = new RedisStore(REDIS_URL, CLUSTER);
    stores.push(s);
    return s;
  };
  const admin = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });

  afterAll(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    await deleteKeys(REDIS_URL, clusterKeyPatterns(CLUSTER));
    admin.disconnect();
  });

  it('keeps the cluster-wide keys on the cluster tag and tags per-account keys by the account, braces encoded', async () => {
    const s = open();
    const acct = `a{b}%-${uid()}`;
    const tag = acct.replace(/%/g, '%25').replace(/\{/g, '%7B').replace(/\}/g, '%7D');
    await s.createAccount(acct, { passwordHash: 'h', createdAt: 1 });
    await s.allocate(acct, 5, [{ id: 'n1', load: 0 }]);
    await s.nextGeneration(acct);
    await s.setPresence(acct, { gatewayId: 'gw', generation: 1 });
    await s.countFailure(`acct:${acct}`, 60_000);
    await s.putToken(`tok-${uid()}`, { account: acct, gatewayId: 'gw', generation: 1, allocations: {} }, 60_000);
    await s.kvSet('k', 'v');
    const keys = new Set<string>();
    for (const pattern of clusterKeyPatterns(CLUSTER)) {
      for await (const batch of admin.scanStream({ match: pattern, count: 500 })) for (const k of batch as string[]) keys.add(k);
    }
    for (const kind of ['acct', 'alloc', 'gen', 'presence']) expect(keys).toContain(`xs:${CLUSTER}:${kind}:{${tag}}`);
    expect(keys).toContain(`xs:${CLUSTER}:fail:{acct:${tag}}`);
    expect([...keys].some((k) => k.startsWith(`xs:${CLUSTER}:token:{tok-`))).toBe(true);
    expect(keys).toContain(`xs:{${CLUSTER}}:kv:k`);
    // Every key's hash tag is the first {...}: the cluster's for the cluster-wide ones, the id's otherwise.
    for (const k of keys) {
      const hashTag = /\{([^}]*)\}/.exec(k)?.[1];
      if (k.startsWith(`xs:{${CLUSTER}}:`)) expect(hashTag).toBe(CLUSTER);
      else expect(hashTag === tag || hashTag === `acct:${tag}` || hashTag?.startsWith('tok-')).toBe(true);
    }
  });

  it('reads an account of the single-slot layout through: copied to its key, found by create, deleted with it', async () => {
    const s = open();
    const acct = `legacy-${uid()}`;
    await admin.hset(`xs:{${CLUSTER}}:acct:${acct}`, 'passwordHash', 'old', 'createdAt', '42');
    expect(await s.createAccount(acct, { passwordHash: 'new', createdAt: 1 })).toBe(false);
    expect(await s.getAccount(acct)).toEqual({ passwordHash: 'old', createdAt: 42 });
    expect(await admin.hget(`xs:${CLUSTER}:acct:{${acct}}`, 'passwordHash')).toBe('old');
    expect(await s.setAccountPassword(acct, 'changed')).toBe(true);
    expect(await s.getAccount(acct)).toEqual({ passwordHash: 'changed', createdAt: 42 });
    expect(await s.deleteAccount(acct)).toBe(true);
    expect(await admin.exists(`xs:{${CLUSTER}}:acct:${acct}`, `xs:${CLUSTER}:acct:{${acct}}`)).toBe(0);
    expect(await s.getAccount(acct)).toBeNull();
  });
});
