/**
 * `xserver drain` on real processes: the mgr relays it to the member, which drains as on SIGTERM
 * and, with nothing bound to it, stops by itself; its peers see it leave gracefully.
 */
import { describe, expect, it } from 'vitest';
import { clusterSuite, FAST } from '../helpers/cluster.js';

const { newCluster } = clusterSuite();

describe('xserver drain', () => {
  it('drains a member by id: it exits by itself and its peers see left(graceful); an unknown target is an error', async () => {
    const c = newCluster({ env: FAST });
    const mgr = await c.startMgr();
    await c.mgrActive(mgr);
    const probes = await c.startProbes(2);
    await c.allListed(probes, 15_000);
    const [victim, other] = [probes[0]!, probes[1]!];

    const r = await c.cli(['drain', victim.id]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`draining 1 member(s): ${victim.id}`);
    const exit = await victim.exited;
    expect(exit.code).toBe(0);
    await c.waitFor(
      'the other node sees the drained one leave gracefully',
      () => other.about(victim.id).some((e) => e.ev === 'left' && e.reason === 'graceful'),
      10_000,
    );

    const missing = await c.cli(['drain', 'no-such-member']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no member with id or name "no-such-member"/);
  });
});
