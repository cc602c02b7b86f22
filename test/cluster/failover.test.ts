/**
 * Real-process mgr failover tests: graceful mgr restart, kill -9 of the active mgr with a hot
 * standby (under node->node traffic), and a node that dies while no mgr is up.
 *
 * Barrier used below: after a new mgr has settled, a late joiner is started; every node seeing
 * its JOINED proves it has already applied the settled snapshot (same mgr link, FIFO), so "no
 * spurious left" is checked after the point where one could have happened.
 */
import { describe, expect, it } from 'vitest';
import { clusterSuite, FAST, type Cluster, type MgrProc, type ProbeProc } from '../helpers/cluster.js';

const { newCluster } = clusterSuite();
const SETTLE_GRACE_MS = Number(FAST.XSERVER_MGR_SETTLE_GRACE_MS);

/** Waits for `mgr` to settle after `since`, then for every probe to see a late joiner. */
async function settledBarrier(c: Cluster, mgr: MgrProc, since: number, probes: ProbeProc[]): Promise<ProbeProc> {
  await c.waitFor(`${mgr.label} settled`, () => mgr.logs.some((l) => /^mgr settled/.test(l.msg) && l.time >= Math.floor(since)), 15_000);
  const late = await c.startProbe({ label: 'late' });
  await c.waitFor('every probe sees the late joiner', () => probes.every((p) => p.about(late.id).some((e) => e.ev === 'joined')), 10_000);
  return late;
}

function connectedTo(p: ProbeProc, mgr: MgrProc, since: number) {
  return p.eventsOf('mgr-connected', since).find((e) => e.instanceId === mgr.instanceId);
}

describe('mgr failover', () => {
  it('mgr restart (SIGTERM, then a new mgr): nodes re-register, no left/joined for live nodes', async () => {
    const c = newCluster({ env: FAST });
    const mgr1 = await c.startMgr();
    await c.mgrActive(mgr1);
    const probes = await c.startProbes(4);
    await c.allListed(probes);
    await c.mirrorHas(probes);

    const t0 = c.kill(mgr1, 'SIGTERM');
    expect((await mgr1.exited).code).toBe(0);
    await c.waitFor('every node lost the mgr', () => probes.every((p) => p.eventsOf('mgr-lost', t0).length > 0), 10_000);

    const mgr2 = await c.startMgr();
    const active = await c.mgrActive(mgr2);
    expect(mgr2.instanceId).not.toBe(mgr1.instanceId);
    expect(mgr2.epoch).toBeGreaterThan(mgr1.epoch!);
    expect(active.mirrored, 'the new mgr loaded the members the old one mirrored').toBe(4);
    await c.waitFor('every node registered with the new mgr', () => probes.every((p) => connectedTo(p, mgr2, t0)), 10_000);

    const late = await settledBarrier(c, mgr2, active.time, probes);
    for (const p of probes) {
      expect(p.eventsOf('left'), `${p.label}: no left`).toEqual([]);
      expect(
        p.eventsOf('joined', t0).map((e) => e.peer),
        `${p.label}: no spurious joined`,
      ).toEqual([late.id]);
    }
    await c.expectViews(probes, [...probes, late]);
    const s = await c.status();
    expect(s.mgr.instanceId).toBe(mgr2.instanceId);
    expect(s.mgr.settling).toBe(false);
    expect(s.members.map((m) => m.id).sort()).toEqual([...probes, late].map((p) => p.id).sort());
  }, 60_000);

  it('kill -9 of the active mgr with a standby: takeover, no spurious membership events, node->node traffic loses nothing', async () => {
    const c = newCluster({ env: FAST });
    const mgrA = await c.startMgr();
    await c.mgrActive(mgrA);
    const mgrB = await c.startMgr();
    const probes = await c.startProbes(4);
    await c.allListed(probes);
    await c.mirrorHas(probes);
    expect(mgrB.activeLog, 'B is a standby').toBeUndefined();
    expect(probes.every((p) => p.lastOf('mgr-connected')!.instanceId === mgrA.instanceId)).toBe(true);

    const loads = [await probes[0]!.startLoad(probes[1]!.id, 200), await probes[2]!.startLoad(probes[3]!.id, 200)];
    for (const l of loads) await l.okAtLeast(50, 5000);
    const okAtKill = loads.map((l) => l.progress()!.ok);

    const tKill = c.kill(mgrA, 'SIGKILL');
    const active = await c.mgrActive(mgrB, 10_000);
    await c.waitFor('every node registered with the standby', () => probes.every((p) => connectedTo(p, mgrB, tKill)), 10_000);
    const back = probes.map((p) => connectedTo(p, mgrB, tKill)!.t - tKill);
    const okAtBack = loads.map((l) => l.progress()!.ok);
    console.log(
      `[measure] mgr failover (kill -9 -> every node registered with the standby): ${Math.max(...back).toFixed(0)} ms ` +
        `(standby active after ${(active.time - tKill).toFixed(0)} ms; per node ${back.map((x) => x.toFixed(0)).join(', ')}; lease TTL ${FAST.XSERVER_MGR_LEASE_TTL_MS} ms)`,
    );
    expect(mgrB.epoch).toBeGreaterThan(mgrA.epoch!);

    const late = await settledBarrier(c, mgrB, active.time, probes);
    for (const p of probes) {
      expect(p.eventsOf('left'), `${p.label}: no left`).toEqual([]);
      expect(
        p.eventsOf('joined', tKill).map((e) => e.peer),
        `${p.label}: no spurious joined`,
      ).toEqual([late.id]);
    }
    await c.expectViews(probes, [...probes, late]);

    const s = await c.status();
    expect(s.mgr.instanceId).toBe(mgrB.instanceId);
    expect(s.mgr.epoch).toBe(mgrB.epoch);

    for (const l of loads) await l.okAtLeast(l.progress()!.ok + 100, 10_000);
    const results = await Promise.all(loads.map((l) => l.stop()));
    results.forEach((r, i) => {
      console.log(
        `[measure] load ${i} through the failover: sent ${r.sent}, ok ${r.ok}, failed ${r.failed} ${JSON.stringify(r.errors)}, ` +
          `ok during failover ${okAtBack[i]! - okAtKill[i]!}, max latency ${r.maxLatencyMs.toFixed(1)} ms`,
      );
      expect(r.failed, JSON.stringify(r.samples)).toBe(0);
      expect(r.ok).toBe(r.sent);
      expect(okAtBack[i]! - okAtKill[i]!, 'traffic flowed during the failover').toBeGreaterThan(0);
    });
  }, 60_000);

  it('a node killed while no mgr is up is removed after the new mgr settles; live nodes see no left', async () => {
    const c = newCluster({ env: FAST });
    const mgrA = await c.startMgr();
    await c.mgrActive(mgrA);
    const probes = await c.startProbes(4);
    await c.allListed(probes);
    await c.mirrorHas(probes);
    const victim = probes[3]!;
    const live = probes.slice(0, 3);

    const t0 = c.kill(mgrA, 'SIGKILL');
    await c.waitFor('every node lost the mgr', () => probes.every((p) => p.eventsOf('mgr-lost', t0).length > 0), 10_000);
    c.kill(victim, 'SIGKILL');
    await victim.exited;

    const mgrB = await c.startMgr();
    const active = await c.mgrActive(mgrB, 10_000);
    expect(active.mirrored, 'the dead node is still in the mirror').toBe(4);
    await c.waitFor('live nodes registered with the new mgr', () => live.every((p) => connectedTo(p, mgrB, t0)), 10_000);
    await c.waitFor('live nodes see the dead one leave', () => live.every((p) => p.about(victim.id, t0).some((e) => e.ev === 'left')), 10_000);

    const after: number[] = [];
    for (const p of live) {
      const left = p.eventsOf('left');
      expect(
        left.map((e) => [e.peer, e.reason]),
        `${p.label}: only the dead node left`,
      ).toEqual([[victim.id, 'timeout']]);
      after.push(left[0]!.t - active.time);
      expect(p.eventsOf('joined', t0), `${p.label}: no joined`).toEqual([]);
    }
    console.log(
      `[measure] dead node removed ${Math.min(...after).toFixed(0)}-${Math.max(...after).toFixed(0)} ms after the new mgr became active (settle grace ${SETTLE_GRACE_MS} ms)`,
    );
    // pino's time is whole ms and the settle timer starts a moment before the ACTIVE line.
    expect(Math.min(...after)).toBeGreaterThanOrEqual(SETTLE_GRACE_MS - 50);
    expect(Math.max(...after)).toBeLessThan(SETTLE_GRACE_MS + 1500);
    await c.expectViews(live, live);
    const s = await c.status();
    expect(s.members.map((m) => m.id).sort()).toEqual(live.map((p) => p.id).sort());
  }, 60_000);

  // KNOWN TO FAIL until src/mgr/mgr.ts is fixed (see the report): MgrServer.becomeActive() sets
  // state = 'active' before `await store.mirrorLoad()` and only sets `settling` after it, so a node
  // that registers while the mirror is still loading is treated as a brand-new member and gets a
  // NON-provisional snapshot of only the sessions so far: it drops every other live member
  // (left 'timeout', direct links closed). Members that register after the mirror is loaded are
  // "known" (no JOINED is broadcast) and the early node is not provisional (no settled snapshot
  // either), so it never lists them again. A slow store path (150 ms each way, like an mgr in
  // another zone) makes that window ~300 ms wide; probe4 is held (SIGSTOP) across the takeover so
  // it registers only after the mirror is loaded.
  it('takeover by an mgr with a slow store link (150 ms): nodes that register early keep a complete view', async () => {
    const c = newCluster({ env: FAST });
    const proxy = await c.startLatencyProxy(6379, 150);
    const mgrA = await c.startMgr();
    await c.mgrActive(mgrA);
    const probes = await c.startProbes(4);
    await c.allListed(probes);
    await c.mirrorHas(probes);
    const held = probes[3]!;
    const others = probes.slice(0, 3);

    c.kill(held, 'SIGSTOP');
    const t0 = c.kill(mgrA, 'SIGKILL');
    await c.waitFor('the running nodes lost the mgr', () => others.every((p) => p.eventsOf('mgr-lost', t0).length > 0), 10_000);
    const mgrB = await c.startMgr({ env: { XSERVER_REDIS_URL: proxy.url } });
    const active = await c.mgrActive(mgrB, 10_000);
    c.kill(held, 'SIGCONT');
    await c.waitFor('every node registered with the new mgr', () => probes.every((p) => connectedTo(p, mgrB, t0)), 10_000);
    const late = await settledBarrier(c, mgrB, active.time, probes);

    const early = probes.filter((p) =>
      p.logs.some((l) => /^registered with the mgr/.test(l.msg) && l.time >= Math.floor(t0) && l.provisional === false),
    );
    console.log(
      `[info] nodes that registered with the new mgr before it was settling (non-provisional snapshot): ${early.map((p) => p.label).join(', ') || 'none'}`,
    );
    for (const p of probes) {
      expect.soft(p.eventsOf('left'), `${p.label}: no left for live nodes`).toEqual([]);
      expect
        .soft(
          p.eventsOf('joined', t0).map((e) => e.peer),
          `${p.label}: no spurious joined`,
        )
        .toEqual([late.id]);
    }
    const want = [...probes, late].map((p) => p.id).sort();
    for (const p of probes) expect.soft((await p.view()).ids, `${p.label}'s own view`).toEqual(want);
  }, 60_000);
});
