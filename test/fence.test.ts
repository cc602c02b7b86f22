/**
 * The fence of a node without the mgr (src/node/runtime.ts, node.mgrLostFenceMs), in process with
 * real links and the shared Redis. A node cut off from a live mgr fences itself (tested across
 * network namespaces in test/cluster/multihost.test.ts); here: with no mgr at all (no lease),
 * nobody evicts anyone, so nodes keep their peers and keep talking past the fence time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterNode } from '../src/node/node.js';
import { startCluster, waitUntil } from './helpers/inproc.js';

const FENCE_MS = 300;

type Cluster = Awaited<ReturnType<typeof startCluster>>;
let c: Cluster;
let a: ClusterNode;
let b: ClusterNode;

beforeAll(async () => {
  c = await startCluster((cfg) => {
    cfg.node.mgrLostFenceMs = FENCE_MS;
  });
  a = c.own(new ClusterNode(c.ctx, { type: 4, name: 'a' }));
  b = c.own(new ClusterNode(c.ctx, { type: 5, name: 'b' }));
  b.handle(1, (body) => body);
  await Promise.all([a.start(), b.start()]);
  await Promise.all([a.ready(5000), b.ready(5000)]);
  await waitUntil(() => a.has(b.id) && b.has(a.id), 5000, 'a and b list each other');
});

afterAll(async () => {
  await c?.cleanup();
});

describe('node.mgrLostFenceMs', () => {
  it('with no mgr holding the lease, nodes keep their peers and their traffic past the fence time', async () => {
    const left: string[] = [];
    a.on('left', (p) => left.push(p.id));
    await c.mgr.stop(); // releases the lease: no mgr runs
    await waitUntil(() => !a.mgrConnected && !b.mgrConnected, 5000, 'both lost the mgr');
    // An absence can only be observed over a window: four fence times (the fence and three re-checks).
    await new Promise((r) => setTimeout(r, FENCE_MS * 4));
    expect(left).toEqual([]);
    expect(a.has(b.id)).toBe(true);
    expect(Buffer.from(await a.request(b.id, 1, 'still here', { timeoutMs: 2000 })).toString()).toBe('still here');
    expect(await c.ctx.metrics.text()).not.toMatch(/node_fenced_total\{type="4"\} [1-9]/);
  });
});
