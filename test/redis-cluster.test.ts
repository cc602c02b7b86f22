/**
 * RedisStore and a running xserver cluster on a real Redis Cluster of our own: three masters with
 * one replica each (free ports, temp dirs, nothing persisted, killed afterwards even when an
 * assertion fails).
 *
 * - The store on redis-cluster://: accounts spread over more than one master (the per-account
 *   keys hash by account), the cluster-wide keys share one slot, lease, mirror and announcements
 *   work, and a new account waits for its replica (WAIT 1).
 * - Under an in-process cluster (two mgrs, gateway, lobby, login, a connected client): kill -9 of
 *   the master that holds the cluster's slot, then of one holding only account slots. Never two
 *   active mgrs, logins refused (503) only around the switch and working after it, every account
 *   and allocation from before still there, lease announcements still arriving, and writes work
 *   again with the killed master back as a replica, all without restarting anything.
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
import { RedisStore, type RedisStoreOptions } from '../src/store/index.js';
import type { LeaseRecord } from '../src/store/store.js';
import { waitFor } from '../testkit/index.js';
import { startCluster } from './helpers/inproc.js';
import { HAVE_REDIS_SERVER, RedisServers, type RedisClusterSet } from './helpers/redis-servers.js';

if (!HAVE_REDIS_SERVER) console.log('[skip] Redis Cluster test: redis-server is not on PATH');

/** A node not answering for this long is counted failing and its replica takes over. */
const NODE_TIMEOUT_MS = 1000;
/**
 * Logins and the mgr must work again within this long of a kill: NODE_TIMEOUT_MS, the replica's
 * election (0.5–1.5 s), ioredis finding the new slot map, and the mgr's lease poll. Generous for
 * a machine shared with other tests.
 */
const RECOVERY_BOUND_MS = 20_000;
const LOBBY = 4;
/** After the promotion, ioredis needs a moment to learn the new slot map (it asks on the next error or MOVED). */
const SLOT_MAP_REFRESH_MS = 1000;

const servers = new RedisServers();
let rc: RedisClusterSet;
const stores: RedisStore[] = [];
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  if (HAVE_REDIS_SERVER) rc = await servers.cluster(3, NODE_TIMEOUT_MS);
}, 60_000);

afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  for (const s of stores.splice(0)) await s.close();
  await servers.stop();
});

function open(cluster: string, opts: RedisStoreOptions = {}): RedisStore {
  const s = new RedisStore(rc.url, cluster, opts);
  stores.push(s);
  return s;
}

const hex = (): string => randomBytes(4).toString('hex');

/** The port of the replica of the master at `masterPort`. */
async function replicaOf(masterPort: number): Promise<number> {
  const view = await rc.view(masterPort);
  const master = view.find((n) => n.port === masterPort)!;
  const replica = view.find((n) => n.masterId === master.id && !n.failing);
  if (!replica) throw new Error(`master ${masterPort} has no replica`);
  return replica.port;
}

describe.skipIf(!HAVE_REDIS_SERVER)('RedisStore on Redis Cluster', () => {
  it('spreads accounts over the masters; lease, mirror, announcements, tokens and counters work', async () => {
    const cluster = `rc-${hex()}`;
    const store = open(cluster);
    const peer = open(cluster);
    await Promise.all([store.ready(5000), peer.ready(5000)]);

    const accounts = Array.from({ length: 24 }, (_, i) => `player-${i}`);
    for (const a of accounts) {
      expect(await store.createAccount(a, { passwordHash: `h-${a}`, createdAt: 1 })).toBe(true);
      expect(await store.allocate(a, LOBBY, [{ id: 'lobby-1', load: 0 }])).toBe('lobby-1');
      await store.setPresence(a, { gatewayId: 'gw-1', generation: await store.nextGeneration(a) });
    }
    const masters = new Map<number, number>();
    for (const a of accounts) {
      const key = `xs:${cluster}:acct:{${a}}`;
      const slot = await rc.keySlot(key);
      // Every key of an account is in the account's slot.
      for (const kind of ['alloc', 'gen', 'presence']) expect(await rc.keySlot(`xs:${cluster}:${kind}:{${a}}`)).toBe(slot);
      const master = (await rc.masterOf(slot, rc.nodes[0].port))!;
      // The key is really on that master (a plain connection to it serves its own slots only).
      expect(await rc.command(master, ['EXISTS', key])).toBe(1);
      masters.set(master, (masters.get(master) ?? 0) + 1);
      expect(await peer.getAccount(a)).toEqual({ passwordHash: `h-${a}`, createdAt: 1 });
      expect(await peer.getAllocations(a)).toEqual({ [LOBBY]: 'lobby-1' });
      expect((await peer.getPresence(a))?.gatewayId).toBe('gw-1');
    }
    console.log(`[measure] Redis Cluster: ${accounts.length} accounts on masters ${JSON.stringify(Object.fromEntries(masters))}`);
    expect(masters.size).toBeGreaterThan(1);

    // The cluster-wide keys share one slot (the lease and mirror scripts touch two of them).
    const leaseSlot = await rc.keySlot(`xs:{${cluster}}:lease`);
    for (const k of ['lease:epoch', 'mirror', 'kv:x']) expect(await rc.keySlot(`xs:{${cluster}}:${k}`)).toBe(leaseSlot);

    const got: LeaseRecord[] = [];
    await peer.onLeaseAnnounced((r) => got.push(r));
    const lease = await store.acquireLease({ instanceId: 'mgr-a', addr: '127.0.0.1', port: 7000 }, 5000);
    expect(lease?.instanceId).toBe('mgr-a');
    expect(await peer.acquireLease({ instanceId: 'mgr-b', addr: '127.0.0.1', port: 7001 }, 5000)).toBeNull();
    expect(await store.refreshLease('mgr-a', 5000)).toBe(true);
    expect(await store.mirrorPut('mgr-a', 'node-1', Buffer.from('info-1'))).toBe(true);
    expect(await peer.mirrorPut('mgr-b', 'node-2', Buffer.from('info-2'))).toBe(false);
    expect([...(await peer.mirrorLoad()).keys()]).toEqual(['node-1']);
    await waitFor(
      async () => {
        await store.announceLease(lease!);
        return got.length > 0;
      },
      { timeoutMs: 5000, what: 'a lease announcement on Redis Cluster', pollMs: 100 },
    );
    expect(got[0]).toEqual(lease);

    await store.putToken('tok-1', { account: 'player-1', gatewayId: 'gw-1', generation: 1, allocations: {} }, 10_000);
    expect((await peer.takeToken('tok-1', 'gw-1'))?.account).toBe('player-1');
    expect(await peer.takeToken('tok-1', 'gw-1')).toBeNull();
    expect(await store.countFailure('acct:player-1', 10_000)).toBe(1);
    expect(await peer.countFailure('acct:player-1', 10_000)).toBe(2);
    await store.releaseLease('mgr-a');
    expect(await peer.readLease()).toBeNull();
    // Deleting an account removes its key and the single-slot layout's one: two slots, two commands.
    expect(await store.deleteAccount('player-0')).toBe(true);
    expect(await peer.getAccount('player-0')).toBeNull();
  });

  it('waits for a replica after creating an account; one that does not answer costs storeWaitReplicasMs and a warning, not the account', async () => {
    const cluster = `rc-${hex()}`;
    const warnings: string[] = [];
    const waitMs = 400;
    const store = open(cluster, { waitReplicasMs: waitMs, logger: { warn: (obj, msg = '') => warnings.push(`${msg} ${JSON.stringify(obj)}`) } });
    await store.ready(5000);

    const first = `durable-${hex()}`;
    const key = `xs:${cluster}:acct:{${first}}`;
    const master = (await rc.masterOf(await rc.keySlot(key), rc.nodes[0].port))!;
    const replicaPort = await replicaOf(master);
    expect(await store.createAccount(first, { passwordHash: 'h', createdAt: 1 })).toBe(true);
    // WAIT returned: the replica has it already.
    const replica = new Redis({ port: replicaPort, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    try {
      await replica.call('READONLY');
      expect(await replica.hget(key, 'passwordHash')).toBe('h');
    } finally {
      replica.disconnect();
    }
    expect(warnings).toEqual([]);

    // Another account on the same master, its replica frozen: created after waitMs, with a warning.
    let second = '';
    for (let i = 0; !second; i++) {
      const name = `frozen-${i}`;
      if ((await rc.masterOf(await rc.keySlot(`xs:${cluster}:acct:{${name}}`), rc.nodes[0].port)) === master) second = name;
    }
    const frozen = rc.nodes.find((n) => n.port === replicaPort)!;
    frozen.pause();
    let tookMs: number;
    try {
      const t0 = performance.now();
      expect(await store.createAccount(second, { passwordHash: 'h2', createdAt: 1 })).toBe(true);
      tookMs = performance.now() - t0;
    } finally {
      frozen.resume();
    }
    console.log(`[measure] account creation with its replica frozen: ${Math.round(tookMs)} ms (storeWaitReplicasMs ${waitMs})`);
    expect(tookMs).toBeGreaterThanOrEqual(waitMs - 50);
    expect(tookMs).toBeLessThan(waitMs + 2000);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^no replica acknowledged a new account in time/);
    expect(await store.getAccount(second)).toEqual({ passwordHash: 'h2', createdAt: 1 });
    await rc.healthy(20_000);
  });

  it('an xserver cluster rides out kill -9 of a master: one active mgr, logins back after the switch, nothing lost', async () => {
    const c = await startCluster((cfg) => {
      cfg.redisUrl = rc.url;
      cfg.login.host = '127.0.0.1';
      cfg.login.storeTimeoutMs = 1000;
    });
    cleanups.push(() => c.cleanup());
    const { cluster } = c;
    // A second mgr with a store of its own, as another process would have.
    const store2 = open(cluster);
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

    const listener = open(cluster);
    const announced: LeaseRecord[] = [];
    await listener.onLeaseAnnounced((r) => announced.push(r));

    const leaseSlot = await rc.keySlot(`xs:{${cluster}}:lease`);
    const accountSlots = await Promise.all(accounts.map((a) => rc.keySlot(`xs:${cluster}:acct:{${a}}`)));
    const mgrs = [c.mgr, mgr2];

    for (const round of ['the cluster slot', 'account slots only'] as const) {
      const live = rc.nodes.find((n) => n.proc.exitInfo === null)!;
      const leaseMaster = (await rc.masterOf(leaseSlot, live.port))!;
      let victimPort = leaseMaster;
      if (round === 'account slots only') {
        const owners = await Promise.all(accountSlots.map((s) => rc.masterOf(s, live.port)));
        victimPort = owners.find((p) => p !== undefined && p !== leaseMaster)!;
        expect(victimPort).toBeDefined();
      }
      const replicaPort = await replicaOf(victimPort);
      const victim = rc.nodes.find((n) => n.port === victimPort)!;
      const activeBefore = mgrs.find((m) => m.isActive);
      expect(activeBefore).toBeDefined();

      // Samplers: both mgrs' activity, and a login every 100 ms.
      let both = 0;
      let lastNoMgr = 0;
      let stop = false;
      const killedAt = performance.now();
      const sampler = (async () => {
        while (!stop) {
          const active = mgrs.filter((m) => m.isActive).length;
          if (active > 1) both++;
          if (active === 0) lastNoMgr = performance.now();
          await new Promise((r) => setTimeout(r, 10));
        }
      })();
      const attempts: { t: number; status: number; code?: string }[] = [];
      const prober = (async () => {
        for (let i = 0; !stop; i++) {
          const t = performance.now();
          const r = await post(accounts[i % accounts.length]).catch(() => ({ status: 0, body: {} as Record<string, unknown> }));
          attempts.push({ t: t - killedAt, status: r.status, code: (r.body.error as { code?: string } | undefined)?.code });
          await new Promise((res) => setTimeout(res, 100));
        }
      })();

      victim.proc.signal('SIGKILL');
      try {
        await waitFor(async () => (await rc.view(replicaPort)).find((n) => n.port === replicaPort)?.role === 'master', {
          timeoutMs: RECOVERY_BOUND_MS,
          what: `the replica ${replicaPort} to take over from ${victimPort}`,
          pollMs: 50,
          retryErrors: true,
        });
        const promotedMs = performance.now() - killedAt;
        // Logins work again: three in a row answered 200 by the prober.
        await waitFor(
          () => {
            const last = attempts.slice(-3);
            return last.length === 3 && last.every((a) => a.status === 200 && a.t > promotedMs);
          },
          { timeoutMs: RECOVERY_BOUND_MS, what: `logins to work again after the kill of ${round}`, pollMs: 50 },
        );
        // An mgr is active and its lease is what the store says.
        await waitFor(
          async () => {
            const active = mgrs.find((m) => m.isActive);
            const lease = await c.store.readLease().catch(() => null);
            return active !== undefined && lease !== null && mgrs.some((m) => m.isActive && lease.instanceId === m.instanceId);
          },
          { timeoutMs: RECOVERY_BOUND_MS, what: 'an active mgr holding the lease', pollMs: 50 },
        );
        const mgrBackMs = performance.now() - killedAt;
        stop = true;
        await Promise.all([sampler, prober]);

        const failed = attempts.filter((a) => a.status !== 200);
        const refusedMs = failed.length ? failed[failed.length - 1].t - failed[0].t + 100 : 0;
        console.log(
          `[measure] Redis Cluster kill -9 of the master of ${round}: replica promoted after ${Math.round(promotedMs)} ms; ` +
            `logins refused ${failed.length} of ${attempts.length} (${JSON.stringify([...new Set(failed.map((a) => `${a.status} ${a.code}`))])}) ` +
            `from ${failed.length ? Math.round(failed[0].t) : '-'} to ${failed.length ? Math.round(failed[failed.length - 1].t) : '-'} ms (~${Math.round(refusedMs)} ms); ` +
            `mgr active with its lease ${Math.round(mgrBackMs)} ms after the kill, no active mgr until ${lastNoMgr ? Math.round(lastNoMgr - killedAt) : '-'} ms; ` +
            `active mgr ${activeBefore === mgrs.find((m) => m.isActive) ? 'unchanged' : 'changed'}`,
        );
        expect(both).toBe(0);
        // A login is refused only as "try again" (503), never as bad credentials (an account lost) or a 500.
        for (const f of failed) expect([0, 503]).toContain(f.status);
        for (const f of failed) if (f.status === 503) expect(['STORE_UNAVAILABLE', 'NO_GATEWAY']).toContain(f.code);
        // ...and only while the slot had no master: no login started after the promotion is refused.
        for (const f of failed) expect(f.t).toBeLessThan(promotedMs + SLOT_MAP_REFRESH_MS);
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
      // Announcements reach a subscriber that was there before the kill.
      const had = announced.length;
      await waitFor(
        async () => {
          const lease = await c.store.readLease();
          if (lease) await c.store.announceLease(lease);
          return announced.length > had;
        },
        { timeoutMs: RECOVERY_BOUND_MS, what: 'a lease announcement after the switch', pollMs: 100, retryErrors: true },
      );
      // The mirror holds the members again (written by the lease holder).
      await waitFor(async () => (await c.store.mirrorLoad()).has(gateway.node.id), {
        timeoutMs: RECOVERY_BOUND_MS,
        what: 'the mirror to list the gateway',
        pollMs: 100,
        retryErrors: true,
      });
      expect(client.connected).toBe(true);

      // The killed master comes back (same port and node id) and turns replica of the promoted one;
      // writes reach the right node with nothing restarted (ioredis follows MOVED).
      const back = await servers.restart(`redis-cluster-back-${victimPort}`, victim);
      rc.nodes[rc.nodes.indexOf(victim)] = back;
      await rc.healthy(RECOVERY_BOUND_MS);
      expect((await rc.view(back.port)).find((n) => n.port === back.port)?.role).toBe('replica');
      const fresh = `fresh-${round === 'the cluster slot' ? 1 : 2}-${hex()}`;
      await addAccount(c.store, fresh, `pw-${fresh}`);
      expect((await post(fresh)).status).toBe(200);
      await c.store.kvSet(`after-${hex()}`, 'v');
    }
  }, 150_000);
});
