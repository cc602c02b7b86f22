/**
 * Multi-host tests: every role in its own Linux network namespace with its own address on one
 * bridge (test/helpers/netns.ts), real processes (the xserver CLI) and a private redis-server on
 * the bridge's own address (the shared one listens on loopback only, which namespaces cannot
 * reach). Peers dial each other's namespace addresses; faults are real packet drops.
 *
 *   discovery and messaging across hosts
 *   login -> gateway -> service, each on its own host, with an SDK client outside them
 *   a partition between two nodes that both still see the mgr: typed failures, no hang, recovery,
 *     messages older than node.pendingMaxAgeMs dropped rather than delivered late
 *   a node cut off from the mgr only: evicted, refused by its peers, fenced, back after healing
 *   50 ms RTT and 5% loss: no false heartbeat timeouts, every message arrives
 *
 * Needs root and `ip netns`; skipped with a message otherwise. The loss test needs iptables.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import path from 'node:path';
import { clusterSuite, FAST, freePort, ROOT, wall, type Cluster, type MgrProc, type ProbeProc } from '../helpers/cluster.js';
import { netnsUnavailable, Topology, type Host } from '../helpers/netns.js';
import { XClient, login } from '../../dist/client/index.js';
import { CreateRole, EnterGame, LOBBY, WorldChat, WorldMessage, lobbyContracts } from '../../examples/contracts.js';

const why = netnsUnavailable();
if (why) console.log(`[skip] multi-host tests: ${why}`);

const { newCluster } = clusterSuite();

const topologies: Topology[] = [];
function topology(n: number): Topology {
  const t = Topology.create(n);
  topologies.push(t);
  return t;
}
afterEach(() => {
  for (const t of topologies.splice(0)) {
    t.destroy();
    expect(t.leftovers(), 'namespaces, veths and bridge removed').toEqual([]);
  }
});
afterAll(() => {
  for (const t of topologies.splice(0)) t.destroy();
});

/** Env of a role bound to (and advertising) an address of its host. */
function onHost(h: Host, advertise = h.ip, extra: Record<string, string> = {}): Record<string, string> {
  return { XSERVER_BIND_HOST: h.ip, XSERVER_INNER_IP: advertise, ...extra };
}

/** A cluster whose processes share a fresh secret and a private Redis on the bridge. */
async function multiHostCluster(t: Topology, env: Record<string, string>): Promise<Cluster> {
  const c = newCluster({ env: { ...env, XSERVER_SECRET: randomBytes(32).toString('base64') } });
  const redis = await c.startRedis(undefined, t.hostSideIp);
  c.redisUrl = redis.url;
  return c;
}

async function mgrOn(c: Cluster, t: Topology, h: Host, extra: Record<string, string> = {}): Promise<MgrProc> {
  const m = await c.startMgr({ prefix: t.spawnPrefix(h), env: onHost(h, h.ip, extra) });
  await c.mgrActive(m);
  return m;
}

function probeOn(c: Cluster, t: Topology, h: Host, extra: Record<string, string> = {}, advertise = h.ip): Promise<ProbeProc> {
  return c.startProbe({ prefix: t.spawnPrefix(h), env: onHost(h, advertise, extra), label: `probe@${h.index}` });
}

/** Established TCP connections inside `h` between its address and `peer:port` (either direction). */
function tcpBetween(h: Host, peer: string, port: number, ownPort: number): number {
  const out = execFileSync('ip', ['netns', 'exec', h.ns, 'ss', '-Htn', 'state', 'established'], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(`${peer}:${port}`) || (l.includes(`${h.ip}:${ownPort}`) && l.includes(`${peer}:`))).length;
}

const ms = (x: number): string => `${x.toFixed(0)} ms`;

describe.skipIf(why !== null)('multiple hosts (network namespaces)', () => {
  it('discovery and messaging across hosts: mgr on A, services on B and C dial each other directly', async () => {
    const t = topology(3);
    const [a, b, cHost] = t.hosts as [Host, Host, Host];
    const c = await multiHostCluster(t, FAST);
    await mgrOn(c, t, a);
    const [pb, pc] = await Promise.all([probeOn(c, t, b), probeOn(c, t, cHost)]);
    await c.allListed([pb, pc]);

    const r = await pb.request(pc.id, 'across');
    expect(r).toMatchObject({ ok: true, body: 'across' });
    const sent = await pc.sendMessages(pb.id, 'hello', { count: 5 });
    expect(sent).toEqual({ accepted: 5, refused: 0 });
    await c.waitFor('B got the 5 messages from C', () => pb.messagesFrom(pc.id).length === 5 || undefined, 5000);
    expect(pb.messagesFrom(pc.id)).toEqual(['hello:0', 'hello:1', 'hello:2', 'hello:3', 'hello:4']);

    // The link between them runs between the two namespace addresses, not through the mgr.
    expect(tcpBetween(b, cHost.ip, pc.port, pb.port)).toBeGreaterThan(0);
    expect(tcpBetween(cHost, b.ip, pb.port, pc.port)).toBeGreaterThan(0);
  }, 30_000);

  it('login -> gateway -> service across hosts: an SDK client logs in on A, connects to the gateway on B, its requests reach the lobby on C', async () => {
    const t = topology(3);
    const [a, b, cHost] = t.hosts as [Host, Host, Host];
    const c = await multiHostCluster(t, FAST);
    await mgrOn(c, t, a);
    const account = `p${randomBytes(3).toString('hex')}`;
    const password = randomBytes(12).toString('base64');
    const added = await c.cli(['account', 'add', account, '--password', password]);
    expect(added.code, added.stderr).toBe(0);
    const [lg] = await Promise.all([
      c.startRole({
        label: 'login@0',
        args: ['login', '--set', 'login.port=0', '--set', `login.host=${a.ip}`],
        ready: /^login listening/,
        prefix: t.spawnPrefix(a),
        env: onHost(a),
      }),
      c.startRole({
        label: 'gateway@1',
        args: ['gateway', '--set', `gateway.host=${b.ip}`, '--set', `outerIp=${b.ip}`],
        ready: /^gateway listening/,
        prefix: t.spawnPrefix(b),
        env: onHost(b),
      }),
      c.startRole({
        label: 'lobby@2',
        args: ['node', '--entry', path.join(ROOT, 'dist/examples/lobby/service.js')],
        ready: /^registered with the mgr/,
        prefix: t.spawnPrefix(cHost),
        env: onHost(cHost),
      }),
    ]);
    const loginUrl = String(lg.logsMatching(/^login listening/)[0]!.url);
    const base = `http://${a.ip}:${new URL(loginUrl).port}`;
    // The login learns the gateway and the lobby from the mgr: it allocates both once it lists them.
    const session = await c.pollUntil(
      'the login on A allocates the gateway on B and the lobby on C',
      async () => {
        const s = await login(base, account, password);
        return s.allocations[String(LOBBY)] !== undefined ? s : undefined;
      },
      10_000,
      100,
    );
    expect(session.gateway.host).toBe(b.ip);
    const client = new XClient({ transport: 'tcp', requestTimeoutMs: 5000, contracts: lobbyContracts });
    try {
      await client.connect(session);
      const role = `r${randomBytes(3).toString('hex')}`;
      expect(await client.request(CreateRole, { name: role })).toMatchObject({ name: role });
      expect(await client.request(EnterGame, { name: role })).toMatchObject({ name: role });
      const world = new Promise<unknown>((resolve) => client.on(WorldMessage, resolve));
      client.send(WorldChat, { text: 'across hosts' });
      expect(await world).toMatchObject({ from: role, text: 'across hosts' });
    } finally {
      await client.close();
    }
  }, 40_000);

  it('a partition between two nodes that both see the mgr: typed failures within the timeout, late messages dropped, recovery after healing', async () => {
    const t = topology(3);
    const [a, b, cHost] = t.hosts as [Host, Host, Host];
    // Buffered messages may wait 1 s: the 3 s partition outlasts them.
    const c = await multiHostCluster(t, { ...FAST, XSERVER_NODE_PENDING_MAX_AGE_MS: '1000' });
    await mgrOn(c, t, a);
    const [pb, pc] = await Promise.all([probeOn(c, t, b), probeOn(c, t, cHost)]);
    await c.allListed([pb, pc]);
    expect(await pb.request(pc.id, 'before')).toMatchObject({ ok: true });

    const t0 = wall();
    t.partition(b, cHost);
    // The first request goes out on the link that is still open; it must fail, typed, in time.
    const timeoutMs = 2000;
    const r1 = await pb.request(pc.id, 'during', timeoutMs);
    const failMs = wall() - t0;
    expect(r1.ok).toBe(false);
    expect(['TIMEOUT', 'HEARTBEAT_TIMEOUT', 'LINK_CLOSED', 'NO_TARGET']).toContain(r1.code);
    expect(failMs).toBeLessThan(timeoutMs + 500);
    // By now (heartbeat timeout 1000 + interval 300 < 2000) the link is down: this one waits in the buffer.
    const r2 = await pb.request(pc.id, 'buffered', 800);
    expect(r2).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(await pb.sendMessages(pc.id, 'late', { count: 3 })).toEqual({ accepted: 3, refused: 0 });
    const lateAt = wall();

    await c.waitFor('B drops the late messages for age', () => pb.logsMatching(/node\.pendingMaxAgeMs/).length > 0 || undefined, 5000);
    const droppedAfterMs = wall() - lateAt;
    expect(droppedAfterMs).toBeGreaterThanOrEqual(900);
    // Both still see the mgr, so neither loses the other from its view.
    const viewB = await pb.view();
    expect(viewB.ids).toContain(pc.id);
    expect(viewB.mgrConnected).toBe(true);
    expect(pb.eventsOf('left', t0)).toEqual([]);
    expect(pc.eventsOf('left', t0)).toEqual([]);
    while (wall() - t0 < 3000) await pb.request(pc.id, 'still-partitioned', 500);

    const tHeal = wall();
    t.heal();
    let recoveredMs = 0;
    await c.pollUntil(
      'B reaches C again after healing',
      async () => {
        const r = await pb.request(pc.id, 'after', 1000);
        if (r.ok) recoveredMs = wall() - tHeal;
        return r.ok;
      },
      10_000,
      50,
    );
    expect(await pc.request(pb.id, 'back')).toMatchObject({ ok: true });
    // Delivered after healing would mean a message older than its bound went out.
    expect(pc.messagesFrom(pb.id).filter((m) => m.startsWith('late'))).toEqual([]);
    console.log(
      `[measure] partition B|C: first request failed after ${ms(failMs)} (${r1.code}, timeout ${timeoutMs} ms); recovered ${ms(recoveredMs)} after healing; 3 late messages dropped ${ms(droppedAfterMs)} after they were sent (pendingMaxAgeMs 1000)`,
    );
  }, 40_000);

  it('a node cut off from the mgr only: evicted, refused by its peers, fenced, and back after healing', async () => {
    const t = topology(4);
    const [a, b, cHost, d] = t.hosts as [Host, Host, Host, Host];
    const env = { ...FAST, XSERVER_NODE_MGR_LOST_FENCE_MS: '3000', XSERVER_NODE_UNLISTED_HOLD_MS: '300' };
    const c = await multiHostCluster(t, env);
    await mgrOn(c, t, a);
    const [pb, pc, pd] = await Promise.all([probeOn(c, t, b), probeOn(c, t, cHost), probeOn(c, t, d)]);
    await c.allListed([pb, pc, pd]);
    expect(await pd.request(pb.id, 'member')).toMatchObject({ ok: true });

    const t0 = wall();
    t.partition(d, a);
    await c.waitFor('B and C see D leave', () => [pb, pc].every((p) => p.about(pd.id, t0).some((e) => e.ev === 'left')) || undefined, 10_000);
    const evictedMs = Math.max(...[pb, pc].map((p) => p.about(pd.id, t0).find((e) => e.ev === 'left')!.t - t0));
    expect(pb.about(pd.id, t0).find((e) => e.ev === 'left')).toMatchObject({ reason: 'timeout' });

    // D still lists B (it has not fenced yet) but B no longer serves it.
    const zombie = await pd.request(pb.id, 'zombie', 1500);
    expect(zombie.ok, `an evicted node's request must not be answered: ${JSON.stringify(zombie)}`).toBe(false);
    expect(await pc.request(pb.id, 'member-traffic')).toMatchObject({ ok: true });

    // D fences itself: every peer leaves its view.
    await c.waitFor('D drops its peers', () => [pb, pc].every((p) => pd.about(p.id, t0).some((e) => e.ev === 'left')) || undefined, 10_000);
    const fencedMs = pd.eventsOf('left', t0).at(-1)!.t - t0;
    expect(pd.eventsOf('left', t0).map((e) => e.reason)).toEqual(['lost', 'lost']);
    expect((await pd.view()).ids).toEqual([pd.id]);
    const refused = await pd.request(pb.id, 'fenced', 500);
    expect(refused).toMatchObject({ ok: false, code: 'NO_TARGET' });

    const tHeal = wall();
    t.heal();
    await c.waitFor(
      'D registered again; everyone lists everyone',
      () =>
        (pd.eventsOf('mgr-connected', tHeal).length > 0 &&
          [pb, pc].every((p) => p.about(pd.id, tHeal).some((e) => e.ev === 'joined') && pd.about(p.id, tHeal).some((e) => e.ev === 'joined'))) ||
        undefined,
      15_000,
    );
    const backMs = pd.eventsOf('mgr-connected', tHeal)[0]!.t - tHeal;
    expect(await pd.request(pb.id, 'back')).toMatchObject({ ok: true, body: 'back' });
    expect(await pb.request(pd.id, 'back')).toMatchObject({ ok: true, body: 'back' });
    expect((await pd.view()).self).toBe(pd.id); // the same id: the mgr takes it back
    console.log(
      `[measure] node cut off from the mgr (heartbeat 300/1000, fence 3000): evicted after ${ms(evictedMs)}, fenced after ${ms(fencedMs)}, re-registered ${ms(backMs)} after healing`,
    );
  }, 40_000);

  it.skipIf(why === null && !Topology.iptablesAvailable())(
    '50 ms RTT and 5% loss (default heartbeat 1000/3000): no false heartbeat timeouts; every message and request arrives',
    async () => {
      const t = topology(3);
      const [a, b, cHost] = t.hosts as [Host, Host, Host];
      // Everything FAST except the heartbeat, which stays on its defaults.
      const { XSERVER_LINK_HEARTBEAT_INTERVAL_MS: _i, XSERVER_LINK_HEARTBEAT_TIMEOUT_MS: _t, ...env } = FAST;
      const c = await multiHostCluster(t, env);
      // Each role advertises a bridge address where a proxy delays every chunk by 25 ms and
      // forwards to the role's own address: one proxy per connection, 50 ms round trip.
      const place = async (h: Host): Promise<{ adv: string; port: number }> => {
        const port = await freePort();
        const adv = t.alias(h.index);
        await c.startLatencyProxy(port, 25, { targetHost: h.ip, listenHost: adv, listenPort: port });
        return { adv, port };
      };
      const [pa, pbPlace, pcPlace] = await Promise.all([place(a), place(b), place(cHost)]);
      await mgrOn(c, t, a, { XSERVER_INNER_IP: pa.adv, XSERVER_MGR_PORT: String(pa.port) });
      const [pb, pc] = await Promise.all([
        probeOn(c, t, b, { XSERVER_NODE_PORT: String(pbPlace.port) }, pbPlace.adv),
        probeOn(c, t, cHost, { XSERVER_NODE_PORT: String(pcPlace.port) }, pcPlace.adv),
      ]);
      await c.allListed([pb, pc]);
      const t1 = wall();
      expect(await pb.request(pc.id, 'rtt')).toMatchObject({ ok: true });
      const rttMs = wall() - t1;
      expect(rttMs, 'the proxies add the delay').toBeGreaterThanOrEqual(45);
      for (const h of t.hosts) t.lossy(h, 0.05);

      const t0 = wall();
      const load = await pb.startLoad(pc.id, 50, { count: 500, timeoutMs: 5000 });
      const sent = await pc.sendMessages(pb.id, 'm', { count: 500, rate: 50 }, 20_000);
      const result = await load.done(20_000);
      await c.waitFor('B got every message C accepted', () => pb.messagesFrom(pc.id, t0).length >= sent.accepted || undefined, 10_000);
      const runMs = wall() - t0;
      const got = pb.messagesFrom(pc.id, t0);
      expect(sent).toEqual({ accepted: 500, refused: 0 });
      expect(got).toEqual(Array.from({ length: 500 }, (_, i) => `m:${i}`));
      expect(result).toMatchObject({ sent: 500, ok: 500, failed: 0 });
      for (const p of [pb, pc]) {
        expect(p.eventsOf('left', t0), `${p.label}: no peer timed out`).toEqual([]);
        expect(p.eventsOf('mgr-lost', t0), `${p.label}: the mgr link held`).toEqual([]);
      }
      console.log(
        `[measure] 50 ms RTT (request ${ms(rttMs)}) + 5% loss for ${ms(runMs)}: messages sent ${sent.accepted} / received ${got.length}; requests ${result.ok}/${result.sent} ok, max latency ${ms(result.maxLatencyMs)}; false timeouts 0`,
      );
    },
    60_000,
  );
});
