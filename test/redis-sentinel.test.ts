/**
 * RedisStore under a real Sentinel failover: a master, a replica and three sentinels of our own
 * (free ports, temp dirs, nothing persisted, killed afterwards even when an assertion fails).
 * kill -9 of the master, then: writes and reads work again, on the promoted replica, and lease
 * announcements still reach a subscriber, within a bound. ioredis may leave a connection in status
 * `end` when the failover detection interrupts its reconnect (a race, not every time); the store
 * replaces it (test/redis-store-connections.test.ts forces that case deterministically).
 *
 * A master demoted while the store's connection to it stays open (REPLICAOF, as an operator or an
 * orchestrator does it; the sentinels told of the new master without a +switch-master, so nothing
 * drops the connection): writes get READONLY, and the store reconnects through the sentinels and
 * runs the write again on the current master.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisStore } from '../src/store/index.js';
import type { LeaseRecord } from '../src/store/store.js';
import { waitFor } from '../testkit/index.js';
import { HAVE_REDIS_SERVER, RedisServers, type SentinelSet } from './helpers/redis-servers.js';

if (!HAVE_REDIS_SERVER) console.log('[skip] Sentinel test: redis-server is not on PATH');

const MASTER_NAME = 'xs-test-master';
/** Sentinels call the master down after this long without an answer. */
const DOWN_AFTER_MS = 1000;
/**
 * The store must work again within this long of the kill: DOWN_AFTER_MS, the sentinels' vote
 * and promotion (~1–2 s here), then ioredis reconnecting to the new master (its backoff is at most
 * 2 s) or the store replacing a connection that ended. Generous for a machine shared with other tests.
 */
const RECOVERY_BOUND_MS = 15_000;

const servers = new RedisServers();
let set: SentinelSet;
const stores: RedisStore[] = [];

beforeAll(async () => {
  if (HAVE_REDIS_SERVER) set = await servers.sentinelSet(MASTER_NAME, DOWN_AFTER_MS);
}, 30_000);

afterAll(async () => {
  for (const s of stores.splice(0)) await s.close();
  await servers.stop();
});

/** Stores on the Sentinel URL, as several processes of a cluster would have: more connections for the race to hit. */
const STORES = 4;
/** kill -9 of the master this many times in a row (the old master comes back as a replica in between). */
const FAILOVERS = 2;

describe.skipIf(!HAVE_REDIS_SERVER)('RedisStore on Sentinel', () => {
  it('a write that meets READONLY on a demoted master reconnects through the sentinels and lands on the current master', async () => {
    const name = 'xs-test-readonly';
    const own = await servers.sentinelSet(name, DOWN_AFTER_MS);
    const cluster = `readonly-${randomBytes(4).toString('hex')}`;
    const store = new RedisStore(own.url, cluster, { opTimeoutMs: 5000 });
    stores.push(store);
    await store.ready(5000);
    await store.kvSet('before', 'v');
    const oldMaster = own.master;
    const newMaster = own.replica;
    // Replication is asynchronous: the swap must not drop the write made before it.
    await waitFor(async () => (await own.sentinelCommand(newMaster.port, ['GET', `xs:{${cluster}}:kv:before`])) === 'v', {
      timeoutMs: 5000,
      what: 'the write on the replica',
    });

    // Swap the roles under the open connection, then point every sentinel at the new master.
    await own.sentinelCommand(newMaster.port, ['REPLICAOF', 'NO', 'ONE']);
    await own.sentinelCommand(oldMaster.port, ['REPLICAOF', '127.0.0.1', String(newMaster.port)]);
    for (const port of own.sentinelPorts) {
      await own.sentinelCommand(port, ['SENTINEL', 'REMOVE', name]);
      await own.sentinelCommand(port, ['SENTINEL', 'MONITOR', name, '127.0.0.1', String(newMaster.port), '2']);
    }
    expect(await own.masterPort()).toBe(newMaster.port);
    const direct = new Redis(oldMaster.url, { maxRetriesPerRequest: 0 });
    try {
      // What the store's open connection now talks to:
      await expect(direct.set(`xs:{${cluster}}:kv:probe`, 'v')).rejects.toThrow(/^READONLY/);
    } finally {
      direct.disconnect();
    }

    // The first write after the demotion already succeeds, on the new master, and so do the next.
    const t0 = performance.now();
    await store.kvSet('after', 'v1');
    const firstMs = performance.now() - t0;
    await store.createAccount('after-acct', { passwordHash: 'h', createdAt: 1 });
    const check = new Redis(newMaster.url, { maxRetriesPerRequest: 0 });
    try {
      expect(await check.get(`xs:{${cluster}}:kv:after`)).toBe('v1');
      expect(await check.hget(`xs:${cluster}:acct:{after-acct}`, 'passwordHash')).toBe('h');
    } finally {
      check.disconnect();
    }
    expect(await store.kvGet('before')).toBe('v');
    console.log(`[measure] write after READONLY from a demoted master: answered from the new master in ${Math.round(firstMs)} ms`);
  }, 40_000);

  it('works again after each kill -9 of the master: writes and reads reach the new master, lease announcements keep arriving', async () => {
    const cluster = `sentinel-${randomBytes(4).toString('hex')}`;
    const warnings: string[] = [];
    const logger = { warn: (obj: object, msg = '') => warnings.push(`${msg} ${JSON.stringify(obj)}`) };
    const subscribers = Array.from({ length: STORES }, () => new RedisStore(set.url, cluster, { logger }));
    const announcer = new RedisStore(set.url, cluster, { logger });
    stores.push(...subscribers, announcer);
    await Promise.all([...subscribers, announcer].map((st) => st.ready(5000)));
    const got = subscribers.map(() => [] as LeaseRecord[]);
    await Promise.all(subscribers.map((st, i) => st.onLeaseAnnounced((rec) => got[i].push(rec))));
    let epoch = 0;
    /** Announces until every subscriber has one more announcement than it had. */
    const announceUntilReceived = (what: string) => {
      const had = got.map((g) => g.length);
      return waitFor(
        async () => {
          await announcer.announceLease({ instanceId: 'mgr-a', addr: '127.0.0.1', port: 7000, epoch: ++epoch });
          return got.every((g, i) => g.length > had[i]);
        },
        { timeoutMs: RECOVERY_BOUND_MS, what, pollMs: 100, retryErrors: true },
      );
    };
    await announceUntilReceived('an announcement before the failover');

    for (let round = 1; round <= FAILOVERS; round++) {
      const before = `before-${round}`;
      await announcer.kvSet(before, 'v');
      // Replication is asynchronous: wait until the replica has it, so the kill cannot lose it.
      const replica = new Redis(set.replica.url, { maxRetriesPerRequest: 0 });
      try {
        await waitFor(async () => (await replica.get(`xs:{${cluster}}:kv:${before}`)) === 'v', { timeoutMs: 5000, what: 'the write on the replica' });
      } finally {
        replica.disconnect();
      }

      const killedAt = performance.now();
      const killed = set.master;
      killed.proc.signal('SIGKILL');
      await waitFor(async () => (await set.masterPort().catch(() => 0)) === set.replica.port, {
        timeoutMs: RECOVERY_BOUND_MS,
        what: 'the sentinels to promote the replica',
        pollMs: 100,
      });
      const promotedMs = performance.now() - killedAt;

      const writable = await Promise.all(
        subscribers.map(async (st, i) => {
          await waitFor(
            async () => {
              await st.kvSet(`after-${round}-${i}`, 'v');
              return (await st.kvGet(`after-${round}-${i}`)) === 'v';
            },
            { timeoutMs: RECOVERY_BOUND_MS, what: `store ${i}: a write and a read after failover ${round}`, pollMs: 50, retryErrors: true },
          );
          return performance.now() - killedAt;
        }),
      );
      await announceUntilReceived(`every store receiving a lease announcement after failover ${round}`);
      const announcedMs = performance.now() - killedAt;
      console.log(
        `[sentinel] failover ${round} (kill -9 of the master): promoted after ${Math.round(promotedMs)} ms, ` +
          `stores writable after ${writable.map(Math.round).join(', ')} ms, announcements received by all after ${Math.round(announcedMs)} ms; ` +
          `connections replaced ${JSON.stringify(subscribers.map((st) => st.connectionsReplaced))}`,
      );
      for (const ms of writable) expect(ms).toBeLessThan(RECOVERY_BOUND_MS);
      for (const st of subscribers) expect(await st.kvGet(before)).toBe('v');

      // The killed master comes back as a replica of the new one; the next round kills the new one.
      set.master = set.replica;
      if (round < FAILOVERS) {
        set.replica = await servers.restart('redis-old-master', killed, ['--replicaof', '127.0.0.1', String(set.master.port)]);
        await set.replicaReady(20_000);
      }
    }
    // Every replaced connection was logged.
    const replaced = subscribers.reduce((n, st) => n + st.connectionsReplaced.data + st.connectionsReplaced.subscriber, 0);
    expect(warnings.filter((w) => w.startsWith('store connection ended for good'))).toHaveLength(replaced);
  }, 55_000);
});
