/**
 * Real-process direct-link tests: node<->node request/response over the links the nodes dial
 * between themselves (no mgr involved once both sides list each other).
 */
import { describe, expect, it } from 'vitest';
import { clusterSuite, FAST } from '../helpers/cluster.js';

const { newCluster } = clusterSuite();

describe('direct links between nodes', () => {
  // KNOWN TO FAIL until src/link/link.ts is fixed (see the report). When two fresh peers dial each
  // other at once, the higher id accepts the lower id's dial and at once sends the requests it had
  // queued; they often arrive in the same TCP read as WELCOME. Link.dial() hands those bytes to the
  // new Link as `leftover`, which the constructor dispatches in a microtask queued *before* the
  // dial promise's reaction, i.e. before PeerLink.attach() sets `onFrame`: the default no-op
  // handler swallows them, and the sender's requests time out (TIMEOUT after requestTimeoutMs).
  it('first traffic in both directions at once between fresh peers: every request is answered', async () => {
    const c = newCluster({ env: FAST });
    await c.mgrActive(await c.startMgr());
    const probes = await c.startProbes(4);
    await c.allListed(probes);
    // Every ordered pair starts at once: each link is dialled from both ends simultaneously.
    const loads = await Promise.all(
      probes.flatMap((p) => probes.filter((q) => q !== p).map((q) => p.startLoad(q.id, 400, { count: 200, timeoutMs: 3000 }))),
    );
    const results = await Promise.all(loads.map((l) => l.done(20_000)));
    const failed = results.filter((r) => r.failed > 0);
    const sent = results.reduce((n, r) => n + r.sent, 0);
    const lost = results.reduce((n, r) => n + r.failed, 0);
    console.log(
      `[measure] simultaneous first traffic on ${results.length} directed pairs: sent ${sent}, failed ${lost}` +
        (failed.length ? `; e.g. ${failed[0]!.rid}: ${JSON.stringify(failed[0]!.errors)} ${failed[0]!.samples[0]?.message}` : ''),
    );
    expect(lost, failed.map((r) => `${r.rid}: ${JSON.stringify(r.errors)}`).join('; ')).toBe(0);
  }, 60_000);
});
