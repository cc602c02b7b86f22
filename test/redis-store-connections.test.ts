/**
 * RedisStore replaces a connection that ioredis gave up on (status `end`) while the store is open:
 * the command connection and the subscriber that carries lease announcements. Forced here on the
 * shared Redis by ending the underlying ioredis client (what a Sentinel failover detection that
 * interrupts a reconnect does); test/redis-sentinel.test.ts shows it under a real failover.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { Metrics } from '../src/metrics.js';
import { RedisStore } from '../src/store/index.js';
import type { LeaseRecord } from '../src/store/store.js';
import { clusterKeyPatterns, deleteKeys, waitFor } from '../testkit/index.js';

const REDIS_URL = process.env.XSERVER_TEST_REDIS ?? 'redis://127.0.0.1:6379';
/** A replacement is opened after ~0.1 s (REPLACE_MIN_MS) and connects on loopback at once. */
const RECOVERY_TIMEOUT_MS = 3000;

interface Warning {
  obj: Record<string, unknown>;
  msg: string;
}

const opened: { store: RedisStore; cluster: string }[] = [];

afterEach(async () => {
  for (const { store, cluster } of opened.splice(0)) {
    await store.close();
    await deleteKeys(REDIS_URL, clusterKeyPatterns(cluster));
  }
});

function openStore(cluster = `conn-test-${randomBytes(4).toString('hex')}`): { store: RedisStore; warnings: Warning[]; metrics: Metrics } {
  const warnings: Warning[] = [];
  const metrics = new Metrics();
  const store = new RedisStore(REDIS_URL, cluster, {
    logger: { warn: (obj, msg = '') => warnings.push({ obj: obj as Record<string, unknown>, msg }) },
    metrics,
  });
  opened.push({ store, cluster });
  return { store, warnings, metrics };
}

/** The ioredis client behind one of the store's connections (private: reached on purpose here). */
function connectionOf(store: RedisStore, role: 'client' | 'subscriber'): Redis {
  return (store as unknown as Record<string, Redis>)[role];
}

/** Ends an ioredis client as a Sentinel failover detection can: status "end", never reconnected by ioredis. */
async function endConnection(conn: Redis): Promise<void> {
  conn.disconnect();
  await waitFor(() => conn.status === 'end', { timeoutMs: RECOVERY_TIMEOUT_MS, what: 'the ioredis client to end' });
}

/** Resolves once a store write and read both answer. */
async function worksAgain(store: RedisStore, what: string): Promise<void> {
  const value = randomBytes(4).toString('hex');
  await waitFor(
    async () => {
      await store.kvSet('probe', value);
      return (await store.kvGet('probe')) === value;
    },
    { timeoutMs: RECOVERY_TIMEOUT_MS, what, retryErrors: true, pollMs: 50 },
  );
}

describe('RedisStore connections that end', () => {
  it('replaces the command connection that ended while open, logs it and counts it', async () => {
    const { store, warnings, metrics } = openStore();
    await store.ready(RECOVERY_TIMEOUT_MS);
    const ended = connectionOf(store, 'client');
    await endConnection(ended);

    await worksAgain(store, 'the store to answer again after its command connection ended');
    expect(connectionOf(store, 'client')).not.toBe(ended);
    expect(store.connectionsReplaced).toEqual({ data: 1, subscriber: 0 });
    expect(warnings).toContainEqual({
      obj: expect.objectContaining({ connection: 'data', replaced: 1 }),
      msg: 'store connection ended for good; replacing it',
    });
    expect(await metrics.text()).toMatch(/^xserver_store_connections_replaced_total\{connection="data"\} 1$/m);
    // Lease commands (scripts defined per connection) run on the replacement too.
    const rec = { instanceId: 'mgr-a', addr: '127.0.0.1', port: 7000 };
    expect(await store.acquireLease(rec, 5000)).toMatchObject(rec);
    await store.releaseLease('mgr-a');
  });

  it('replaces the subscriber that ended and subscribes it again: lease announcements keep arriving', async () => {
    const { store, warnings } = openStore();
    const cluster = opened[0].cluster;
    const announcer = new RedisStore(REDIS_URL, cluster);
    try {
      const got: LeaseRecord[] = [];
      await store.onLeaseAnnounced((rec) => got.push(rec));
      const ended = connectionOf(store, 'subscriber');
      await endConnection(ended);

      let epoch = 0;
      // Announce until one arrives: the re-subscription is asynchronous, and an announcement made
      // before it lands is lost (pub/sub keeps nothing), as it would be for any subscriber.
      await waitFor(
        async () => {
          await announcer.announceLease({ instanceId: 'mgr-a', addr: '127.0.0.1', port: 7000, epoch: ++epoch });
          return got.length > 0;
        },
        { timeoutMs: RECOVERY_TIMEOUT_MS, what: 'a lease announcement through the replaced subscriber', pollMs: 50 },
      );
      expect(connectionOf(store, 'subscriber')).not.toBe(ended);
      expect(store.connectionsReplaced).toEqual({ data: 0, subscriber: 1 });
      expect(warnings.map((w) => [w.obj.connection, w.msg])).toContainEqual(['subscriber', 'store connection ended for good; replacing it']);
    } finally {
      await announcer.close();
    }
  });

  it('replaces nothing when the store itself is closed', async () => {
    const { store, warnings } = openStore();
    await store.ready(RECOVERY_TIMEOUT_MS);
    await store.onLeaseAnnounced(() => {});
    await store.close();
    await waitFor(() => connectionOf(store, 'client').status === 'end' && connectionOf(store, 'subscriber').status === 'end', {
      timeoutMs: RECOVERY_TIMEOUT_MS,
      what: 'both connections to end',
    });
    expect(store.connectionsReplaced).toEqual({ data: 0, subscriber: 0 });
    expect(warnings).toEqual([]);
  });
});
