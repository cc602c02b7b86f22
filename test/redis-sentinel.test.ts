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
 *
 * An in-process xserver cluster on the Sentinel set (two mgrs, gateway, lobby, login, a connected
 * client, a login every 100 ms) through kill -9 of the master: never two active mgrs, logins
 * refused (503) only around the switch, every account and allocation still there, lease
 * announcements still arriving; the killed master comes back as a replica.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XClient } from '../src/client/index.js';
import { login as clientLogin } from '../src/client/login.js';
import { Gateway } from '../src/gateway/gateway.js';
import { silentLogger } from '../src/log.js';
import { addAccount } from '../src/login/accounts.js';
import { LoginServer } from '../src/login/login.js';
import { Metrics } from '../src/metrics.js';
import { MgrServer } from '../src/mgr/mgr.js';
import { ClusterNode } from '../src/node/node.js';
import { createRoleContext } from '../src/roles.js';
import { RedisStore } from '../src/store/index.js';
import type { LeaseRecord } from '../src/store/store.js';
import { waitFor } from '../testkit/index.js';
import { startCluster } from './helpers/inproc.js';
import { HAVE_REDIS_SERVER, RedisServers, type RedisServer, type SentinelSet } from './helpers/redis-servers.js';

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

/**
 * A login started this long after the promotion may still be refused: the store learning the new
 * master (the failover detector, else a reconnect after at most 2 s of backoff) plus the login's
 * own bound on a store call (login.storeTimeoutMs, 1 s here).
 */
const FOLLOW_MASTER_MS = 3000;
const LOBBY = 4;

const servers = new RedisServers();
let set: SentinelSet;
const stores: RedisStore[] = [];
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  if (HAVE_REDIS_SERVER) set = await servers.sentinelSet(MASTER_NAME, DOWN_AFTER_MS);
}, 30_000);

afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  for (const s of stores.splice(0)) await s.close();
  await servers.stop();
});

/** Stores on the Sentinel URL, as several processes of a cluster would have: more connections for the race to hit. */
const STORES = 4;
/** kill -9 of the master this many times in a row (the old master comes back as a replica in between). */
const FAILOVERS = 2;

/** How a round switches the master: a failover the operator asks for, or the master dying. */
type Switch = 'SENTINEL FAILOVER' | 'kill -9 of the master';

/**
 * An in-process xserver cluster on the Sentinel set (two mgrs with a store each, gateway, lobby,
 * login, a connected client) through one switch of master: never two active mgrs, logins refused
 * (503) only around the switch, every account and allocation from before still there, lease
 * announcements still arriving. Afterwards the old master is the replica of the promoted one.
 */
async function ridesOut(round: Switch): Promise<void> {
  const oldMaster: RedisServer = set.master;
  const promoted: RedisServer = set.replica;
  try {
    await ridesOutSwitch(round, oldMaster, promoted);
  } finally {
    // Whatever failed, leave a master and an in-sync replica to the next case.
    if (set.master === oldMaster && (await set.masterPort().catch(() => 0)) === promoted.port) await settle(round, oldMaster, promoted);
  }
}

/**
 * The old master serves as the replica of the promoted one: the sentinels demote it after
 * SENTINEL FAILOVER; after the kill it comes back (same port) as a replica.
 */
async function settle(round: Switch, oldMaster: RedisServer, promoted: RedisServer): Promise<void> {
  set.master = promoted;
  set.replica =
    round === 'SENTINEL FAILOVER'
      ? oldMaster
      : await servers.restart('redis-old-master', oldMaster, ['--replicaof', '127.0.0.1', String(promoted.port)]);
  await set.replicaReady(20_000);
}

async function ridesOutSwitch(round: Switch, oldMaster: RedisServer, promoted: RedisServer): Promise<void> {
  const c = await startCluster((cfg) => {
    cfg.redisUrl = set.url;
    cfg.login.host = '127.0.0.1';
    cfg.login.storeTimeoutMs = 1000;
  });
  cleanups.push(() => c.cleanup());
  const { cluster } = c;
  // A second mgr with a store of its own, as another process would have.
  const store2 = new RedisStore(set.url, cluster);
  stores.push(store2);
  await store2.ready(5000);
  const mgr2 = c.own(new MgrServer(createRoleContext({ config: c.config, store: store2, logger: silentLogger(), metrics: new Metrics() })));
  await mgr2.start();
  const gateway = c.own(new Gateway(c.ctx));
  const lobby = c.own(new ClusterNode(c.ctx, { type: LOBBY, name: 'lobby' }));
  const login = c.own(new LoginServer(c.ctx, { trustProxy: true }));
  await Promise.all([gateway.start(), lobby.start()]);
  await Promise.all([gateway.node.ready(5000), lobby.ready(5000)]);
  await login.start();
  await login.whenRegistered(5000);
  await waitFor(() => login.node.has(gateway.node.id) && login.node.has(lobby.id), { timeoutMs: 5000, what: 'login sees gateway and lobby' });
  const base = `http://127.0.0.1:${login.port}`;

  let ip = 0;
  const post = async (account: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`${base}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': `10.9.${Math.floor(++ip / 250) % 250}.${(ip % 250) + 1}` },
      body: JSON.stringify({ account, password: `pw-${account}` }),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  const accounts = Array.from({ length: 12 }, (_, i) => `hero-${i}`);
  for (const a of accounts) await addAccount(c.store, a, `pw-${a}`);
  const before = new Map<string, unknown>();
  for (const a of accounts) {
    const r = await post(a);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    before.set(a, { gateway: (r.body.gateway as { id: string }).id, allocations: r.body.allocations });
  }
  const client = new XClient({ transport: 'tcp' });
  cleanups.push(() => client.close());
  await client.connect(await clientLogin(base, 'hero-0', 'pw-hero-0'));

  const listener = new RedisStore(set.url, cluster);
  stores.push(listener);
  await listener.ready(5000);
  const announced: LeaseRecord[] = [];
  await listener.onLeaseAnnounced((r) => announced.push(r));
  const mgrs = [c.mgr, mgr2];

  // Replication is asynchronous: wait until the replica has everything so far (a marker written
  // last), so the switch cannot lose an account or an allocation made before it.
  const markerKey = `sync-${round === 'SENTINEL FAILOVER' ? 1 : 2}`;
  await c.store.kvSet(markerKey, 'v');
  await waitFor(async () => (await set.sentinelCommand(set.replica.port, ['GET', `xs:{${cluster}}:kv:${markerKey}`])) === 'v', {
    timeoutMs: 5000,
    what: 'the replica to catch up',
  });
  const activeBefore = mgrs.find((m) => m.isActive);
  expect(activeBefore).toBeDefined();

  // Samplers: both mgrs' activity, and a login every 100 ms.
  let both = 0;
  let bothFrom = 0;
  let bothTo = 0;
  let lastNoMgr = 0;
  let stop = false;
  const switchedAt = performance.now();
  const sampler = (async () => {
    while (!stop) {
      const active = mgrs.filter((m) => m.isActive).length;
      if (active > 1) {
        both++;
        bothFrom ||= performance.now();
        bothTo = performance.now();
      }
      if (active === 0) lastNoMgr = performance.now();
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const attempts: { t: number; status: number; code?: string }[] = [];
  const prober = (async () => {
    for (let i = 0; !stop; i++) {
      const t = performance.now();
      const r = await post(accounts[i % accounts.length]).catch(() => ({ status: 0, body: {} as Record<string, unknown> }));
      attempts.push({ t: t - switchedAt, status: r.status, code: (r.body.error as { code?: string } | undefined)?.code });
      await new Promise((res) => setTimeout(res, 100));
    }
  })();

  try {
    if (round === 'SENTINEL FAILOVER') await set.sentinelCommand(set.sentinelPorts[0], ['SENTINEL', 'FAILOVER', MASTER_NAME]);
    else oldMaster.proc.signal('SIGKILL');
    await waitFor(async () => (await set.masterPort().catch(() => 0)) === promoted.port, {
      timeoutMs: RECOVERY_BOUND_MS,
      what: `the sentinels to promote the replica (${round})`,
      pollMs: 50,
    });
    const promotedMs = performance.now() - switchedAt;
    // Logins work again: three in a row answered 200 by the prober.
    await waitFor(
      () => {
        const last = attempts.slice(-3);
        return last.length === 3 && last.every((a) => a.status === 200 && a.t > promotedMs);
      },
      { timeoutMs: RECOVERY_BOUND_MS, what: `logins to work again after ${round}`, pollMs: 50 },
    );
    // An mgr is active and its lease is what the store says.
    await waitFor(
      async () => {
        const lease = await c.store.readLease().catch(() => null);
        return lease !== null && mgrs.some((m) => m.isActive && lease.instanceId === m.instanceId);
      },
      { timeoutMs: RECOVERY_BOUND_MS, what: 'an active mgr holding the lease', pollMs: 50 },
    );
    const mgrBackMs = performance.now() - switchedAt;
    stop = true;
    await Promise.all([sampler, prober]);

    const failed = attempts.filter((a) => a.status !== 200);
    const refusedMs = failed.length ? failed[failed.length - 1].t - failed[0].t + 100 : 0;
    console.log(
      `[measure] Sentinel ${round}: replica promoted after ${Math.round(promotedMs)} ms; ` +
        `logins refused ${failed.length} of ${attempts.length} (${JSON.stringify([...new Set(failed.map((a) => `${a.status} ${a.code}`))])}) ` +
        `from ${failed.length ? Math.round(failed[0].t) : '-'} to ${failed.length ? Math.round(failed[failed.length - 1].t) : '-'} ms (~${Math.round(refusedMs)} ms); ` +
        `mgr active with its lease ${Math.round(mgrBackMs)} ms after the switch, no active mgr until ${lastNoMgr ? Math.round(lastNoMgr - switchedAt) : '-'} ms; ` +
        `two active mgrs ${both ? `from ${Math.round(bothFrom - switchedAt)} to ${Math.round(bothTo - switchedAt)} ms (${both} samples)` : 'never'}; ` +
        `active mgr ${activeBefore === mgrs.find((m) => m.isActive) ? 'unchanged' : 'changed'}`,
    );
    expect(both).toBe(0);
    // A login is refused only as "try again" (503), never as bad credentials (an account lost) or a 500.
    for (const f of failed) expect([0, 503]).toContain(f.status);
    for (const f of failed) if (f.status === 503) expect(['STORE_UNAVAILABLE', 'NO_GATEWAY']).toContain(f.code);
    // ...and only around the switch: none started well after the promotion is refused.
    for (const f of failed) expect(f.t).toBeLessThan(promotedMs + FOLLOW_MASTER_MS);
    expect(promotedMs).toBeLessThan(RECOVERY_BOUND_MS);
  } finally {
    stop = true;
    await Promise.all([sampler, prober]);
  }

  // Every account logs in with its password, on the same gateway and lobby as before.
  for (const a of accounts) {
    const r = await post(a);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect({ gateway: (r.body.gateway as { id: string }).id, allocations: r.body.allocations }).toEqual(before.get(a));
  }
  // Announcements reach a subscriber that was there before the switch.
  const had = announced.length;
  await waitFor(
    async () => {
      const lease = await c.store.readLease();
      if (lease) await c.store.announceLease(lease);
      return announced.length > had;
    },
    { timeoutMs: RECOVERY_BOUND_MS, what: `a lease announcement after ${round}`, pollMs: 100, retryErrors: true },
  );
  expect(client.connected).toBe(true);

  await settle(round, oldMaster, promoted);
  const fresh = `fresh-${round === 'SENTINEL FAILOVER' ? 1 : 2}`;
  await addAccount(c.store, fresh, `pw-${fresh}`);
  expect((await post(fresh)).status).toBe(200);
}

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

  // Fails in about 2 of 3 runs: two mgrs active at once for ~0.2 s, about 1.4 s after the command.
  it(
    'an xserver cluster rides out SENTINEL FAILOVER: one active mgr, logins back after the switch, nothing lost',
    () => ridesOut('SENTINEL FAILOVER'),
    40_000,
  );

  it(
    'an xserver cluster rides out kill -9 of the Sentinel master: one active mgr, logins back after the switch, nothing lost',
    () => ridesOut('kill -9 of the master'),
    40_000,
  );

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
      // Each store wrote and read within RECOVERY_BOUND_MS of the promotion (the waits above); the
      // times since the kill are logged, not asserted: they include the sentinels' own detection.
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
