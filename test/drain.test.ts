/**
 * Drain (SPEC §12): a draining member is listed as such everywhere, gets no new work from
 * one()/sendOne() or login, keeps its bound work, and drainRoles waits for that work or the deadline.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gateway } from '../src/gateway/gateway.js';
import { silentLogger } from '../src/log.js';
import { ClusterNode } from '../src/node/node.js';
import { Selector } from '../src/node/select.js';
import { create } from '@bufbuild/protobuf';
import { NodeInfoSchema } from '../src/gen/xserver/v1/cluster_pb.js';
import { drainRoles, gatewayRole, nodeRole } from '../src/roles.js';
import { Metrics } from '../src/metrics.js';
import { Cmd } from '../src/protocol/commands.js';
import { Flags } from '../src/protocol/frame.js';
import { rawLogin, startCluster, waitUntil } from './helpers/inproc.js';

type Cluster = Awaited<ReturnType<typeof startCluster>>;
let c: Cluster;
let a: ClusterNode;
let b: ClusterNode;
let m: ClusterNode;

beforeAll(async () => {
  c = await startCluster((cfg) => {
    cfg.gateway.reconnectGraceMs = 300;
  });
  a = c.own(new ClusterNode(c.ctx, { type: 4, name: 'lobby-a' }));
  b = c.own(new ClusterNode(c.ctx, { type: 4, name: 'lobby-b' }));
  m = c.own(new ClusterNode(c.ctx, { type: 5, name: 'match' }));
  await Promise.all([a.start(), b.start(), m.start()]);
  await Promise.all([a.ready(5000), b.ready(5000), m.ready(5000)]);
  await waitUntil(() => m.list(4).length === 2, 5000, 'match lists both lobbies');
});

afterAll(async () => {
  await c?.cleanup();
});

describe('drain', () => {
  it('a draining member is listed as draining by its peers and skipped by one(), still in list()', async () => {
    const updated = new Promise<void>((r) => m.on('updated', (p) => p.id === a.id && p.info.draining && r()));
    const st = nodeRole(a).drain!();
    expect(st.bound()).toBe(0);
    await updated;
    for (let i = 0; i < 50; i++) expect(m.one(4)?.id).toBe(b.id);
    expect(
      m
        .list(4)
        .map((p) => p.id)
        .sort(),
    ).toEqual([a.id, b.id].sort());
    expect(m.one(4, { includeDraining: true, excludeId: b.id })?.id).toBe(a.id);
  });

  it('selection skips draining members whatever the strategy (pure)', () => {
    const info = (id: string, draining: boolean, load: number) => create(NodeInfoSchema, { id, type: 4, draining, overload: [load] });
    const list = [info('x', true, 0), info('y', false, 9)];
    const s = new Selector('least-loaded');
    for (const strategy of ['random', 'round-robin', 'least-loaded'] as const) expect(s.pick(4, list, { strategy })?.id).toBe('y');
    expect(s.pick(4, [info('x', true, 0)])).toBeUndefined();
  });

  it('drainRoles waits until a gateway holds no session, then resolves with nothing cut', async () => {
    const gw = c.own(new Gateway(c.ctx));
    await gw.start();
    await gw.node.ready(5000);
    const cl = await rawLogin(c.store, gw, 'drainee');
    const drained = drainRoles([gatewayRole(gw)], 10_000, silentLogger());
    let done = false;
    void drained.then(() => (done = true));
    await waitUntil(() => gw.sessionCount === 1, 1000, 'the session is bound');
    expect(done).toBe(false);
    cl.close(); // away, then expired after the 300 ms grace: nothing bound
    expect(await drained).toEqual({ cut: {} });
    // No other live gateway: nobody was asked to move (SPEC §12 session handoff needs a target).
    expect(cl.frames.some((f) => f.cmd === Cmd.GOING_AWAY)).toBe(false);
    expect(gw.sessionCount).toBe(0);
  });

  it('at the deadline drainRoles resolves with what it cut', async () => {
    const gw = c.own(new Gateway(c.ctx));
    await gw.start();
    await gw.node.ready(5000);
    const cl = await rawLogin(c.store, gw, 'stayer');
    const t0 = performance.now();
    const metrics = new Metrics();
    expect(await drainRoles([gatewayRole(gw)], 300, silentLogger(), metrics)).toEqual({ cut: { 'gateway sessions': 1 } });
    // The only other gateway is draining too: no GOING_AWAY.
    expect(cl.frames.some((f) => f.cmd === Cmd.GOING_AWAY)).toBe(false);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
    expect(await metrics.text()).toMatch(/xserver_drain_cut_total\{role="gateway",what="sessions"\} 1/);
    cl.close();
  });
});

describe('a node stopping gracefully', () => {
  it('answers the requests it is still handling: peers keep its link after LEFT until its last answer', async () => {
    const gw = c.own(new Gateway(c.ctx));
    await gw.start();
    await gw.node.ready(5000);
    const slow = c.own(new ClusterNode(c.ctx, { type: 6, name: 'slow' }));
    slow.enableRelay();
    let handling = false;
    slow.handleClient(1, async (data) => {
      handling = true;
      await new Promise((r) => setTimeout(r, 150));
      return Buffer.concat([Buffer.from('done:'), data]);
    });
    await slow.start();
    await slow.ready(5000);
    await waitUntil(() => gw.node.has(slow.id), 5000, 'the gateway lists the slow node');
    const cl = await rawLogin(c.store, gw, 'slow-stop');
    cl.send(6001, 'x', Flags.REQUEST, 41);
    await waitUntil(() => handling, 3000, 'the request is being handled');
    const stopped = slow.stop(); // LEAVE: the gateway sees LEFT while the handler still runs
    const reply = await cl.next((f) => f.rid === 41);
    await stopped;
    expect(reply.flags & Flags.ERROR, Buffer.from(reply.body).toString()).toBe(0);
    expect(Buffer.from(reply.body).toString()).toBe('done:x');
    cl.close();
  });
});
