/**
 * Real-process membership tests: an mgr and probe nodes as child processes on the shared Redis
 * (each test its own cluster name). See test/helpers/cluster.ts for the harness.
 */
import { describe, expect, it } from 'vitest';
import { clusterSuite, FAST, type Cluster, type ProbeProc } from '../helpers/cluster.js';

const { newCluster } = clusterSuite();

/** Waits until every probe lists every other one (from its joined events), then checks each view. */
async function allSeeAll(c: Cluster, probes: ProbeProc[], timeoutMs = 15_000): Promise<void> {
  await c.allListed(probes, timeoutMs);
  const want = probes.map((p) => p.id).sort();
  for (const p of probes) {
    const v = await p.view();
    expect(v.self).toBe(p.id);
    expect(v.mgrConnected).toBe(true);
    expect(v.ids, `${p.label}'s own view`).toEqual(want);
  }
}

describe('membership across real processes', () => {
  it('propagates joins to every node and a graceful stop as left(graceful)', async () => {
    const c = newCluster({ env: FAST });
    const mgr = await c.startMgr();
    await c.mgrActive(mgr);
    const probes = await c.startProbes(5);
    expect(new Set(probes.map((p) => p.id)).size).toBe(5);

    await allSeeAll(c, probes);
    for (const p of probes) expect(p.eventsOf('left'), `${p.label} saw no left yet`).toEqual([]);

    const [victim, ...rest] = [probes[4]!, ...probes.slice(0, 4)];
    const t0 = c.kill(victim, 'SIGTERM');
    await c.waitFor(
      'every other node sees the stopped node leave',
      () => rest.every((p) => p.about(victim.id, t0).some((e) => e.ev === 'left')),
      10_000,
    );
    const exit = await victim.exited;
    expect(exit.code, 'SIGTERM exits cleanly').toBe(0);

    const latencies: number[] = [];
    for (const p of rest) {
      const left = p.eventsOf('left');
      expect(
        left.map((e) => [e.peer, e.reason]),
        `${p.label}: exactly one left, graceful`,
      ).toEqual([[victim.id, 'graceful']]);
      latencies.push(left[0]!.t - t0);
      const v = await p.view();
      expect(v.ids).toEqual(rest.map((q) => q.id).sort());
    }
    console.log(
      `[measure] graceful leave (SIGTERM -> left on peers): max ${Math.max(...latencies).toFixed(1)} ms, per peer ${latencies.map((x) => x.toFixed(1)).join(', ')}`,
    );
  }, 60_000);

  it('`xserver status --json` lists the mgr and every member with its fields', async () => {
    const c = newCluster({ env: FAST });
    const mgr = await c.startMgr();
    await c.mgrActive(mgr);
    const probes = [await c.startProbe(), await c.startProbe({ type: 7, env: { XSERVER_NODE_VERSION: '2.5.0' } }), await c.startProbe()];
    await allSeeAll(c, probes);

    const s = await c.status();
    expect(Object.keys(s).sort()).toEqual(['accounts', 'checks', 'gatewaysCounted', 'members', 'mgr', 'policies']);
    // The mgr dialled every member back at its advertised address.
    for (const p of probes) expect(s.checks.find((x) => x.id === p.id)).toMatchObject({ advertised: `127.0.0.1:${p.port}`, reached: true });
    expect(s.mgr.instanceId).toBe(mgr.instanceId);
    expect(s.mgr.epoch).toBe(mgr.epoch);
    expect(typeof s.mgr.addr).toBe('string');
    expect(s.mgr.port).toBeGreaterThan(0);

    expect(s.members.map((m) => m.id).sort()).toEqual(probes.map((p) => p.id).sort());
    for (const p of probes) {
      const m = s.members.find((x) => x.id === p.id)!;
      expect(Object.keys(m)).toEqual(expect.arrayContaining(['id', 'type', 'name', 'addrs', 'ports', 'version', 'overload']));
      expect(m.type).toBe(p === probes[1] ? 7 : 6);
      expect(m.name).toBe('probe');
      expect(m.addrs).toEqual({ inner: '127.0.0.1', outer: '127.0.0.1' });
      expect(m.ports).toEqual([p.port]);
      expect(m.version).toBe(p === probes[1] ? '2.5.0' : '1.0.0');
      expect(Array.isArray(m.overload)).toBe(true);
      expect(m.pid).toBe(p.pid);
    }
  }, 60_000);
});
