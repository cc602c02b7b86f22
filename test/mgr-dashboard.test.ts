/**
 * The dashboard's JSON (src/mgr/dashboard.ts) apart from the browser: the active mgr's own view,
 * its member pages and policy panel, and what a standby shows when it cannot reach the active mgr
 * (a real dial to a closed port). The relayed view itself runs against real processes in
 * test/e2e/dashboard.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { AddressCheckSchema, MgrInfoSchema, NodeInfoSchema, RoutingPolicySchema, type StatusReply } from '../src/gen/xserver/v1/cluster_pb.js';
import { describePolicy } from '../src/protocol/routing-policy.js';
import { defaultConfig } from '../src/config/schema.js';
import { linkOptions } from '../src/context.js';
import { isXError } from '../src/errors.js';
import { silentLogger } from '../src/log.js';
import { ClusterHistory } from '../src/mgr/history.js';
import { DashboardViews, dashboardJson, type MemberJson, type OverviewJson, type UnavailableJson } from '../src/mgr/dashboard.js';
import type { LeaseRecord } from '../src/store/store.js';
import { freePort } from './helpers/cluster.js';

const GW = create(NodeInfoSchema, {
  id: 'gw-1',
  type: 3,
  name: 'gateway',
  innerIp: '127.0.0.1',
  ports: [4000, 4001],
  version: '1.2.3',
  overload: [2],
});
const LOBBY = create(NodeInfoSchema, { id: 'lobby-1', type: 4, name: 'lobby', innerIp: '127.0.0.1', ports: [4100], version: '1.2.3' });

function views(opts: { state?: string; lease?: LeaseRecord | null; extra?: Record<string, unknown>; membersMax?: number } = {}): {
  v: DashboardViews;
  history: ClusterHistory;
} {
  const history = new ClusterHistory({ sampleIntervalMs: 1000, samples: 10, memberSamples: 10, events: 10 }, () => []);
  const reply: Omit<StatusReply, '$typeName' | 'accounts' | 'gatewaysCounted'> = {
    mgr: create(MgrInfoSchema, { instanceId: 'mgr-a', epoch: 7n, addr: '127.0.0.1', port: 5000 }),
    members: [LOBBY, GW],
    settling: false,
    checks: [create(AddressCheckSchema, { id: GW.id, advertised: '127.0.0.1:4000', seenFrom: '127.0.0.1', reached: true, rttMs: 3 })],
    policies: [],
  };
  const cfg = defaultConfig();
  const v = new DashboardViews(
    { instanceId: 'mgr-self', state: () => opts.state ?? 'active', adminPort: 0, statusReply: () => ({ ...reply, ...opts.extra }), history },
    { readLease: () => Promise.resolve(opts.lease ?? null) },
    linkOptions(cfg, silentLogger()),
    { timeoutMs: 500, idleMs: 1000, sampleIntervalMs: 1000, membersMax: opts.membersMax ?? 100 },
    silentLogger(),
  );
  return { v, history };
}

describe('dashboard views', () => {
  it('the active overview lists members by type with their latest figures, and the timeline', async () => {
    const { v, history } = views();
    history.report(GW, { connections: 4, messagesIn: 1, messagesOut: 2, latency: [], accountsLost: 0, peers: 2, linked: [LOBBY.id], links: 1 });
    history.event({ kind: 'joined', id: GW.id, name: 'gateway', type: 3 });
    const o = (await v.view('')) as OverviewJson;
    expect(o.servedBy).toEqual({ instanceId: 'mgr-self', state: 'active', relayed: false });
    expect(o.mgr).toEqual({ instanceId: 'mgr-a', epoch: 7, addr: '127.0.0.1', port: 5000, settling: false });
    expect(o.members.map((m) => m.id)).toEqual([GW.id, LOBBY.id]);
    expect(o.members[0]!.figures?.connections).toBe(4);
    expect(o.members[1]!.figures).toBeNull();
    expect(o.events.map((e) => e.kind)).toEqual(['joined']);
    expect(o.policy).toBeNull();
    // What a standby receives over the link parses back to the same view.
    expect(JSON.parse(dashboardJson(o))).toEqual(JSON.parse(JSON.stringify(o)));
  });

  it('the overview lists at most membersMax members, and counts them all', async () => {
    const { v } = views({ membersMax: 1 });
    const o = (await v.view('')) as OverviewJson;
    expect(o.members.map((m) => m.id)).toEqual([GW.id]);
    expect(o.membersTotal).toBe(2);
  });

  it("a member's page has its info, address check and linked peers by name", () => {
    const { v, history } = views();
    history.report(GW, {
      connections: 0,
      messagesIn: 0,
      messagesOut: 0,
      latency: [],
      accountsLost: 0,
      peers: 2,
      linked: [LOBBY.id, 'gone'],
      links: 2,
    });
    const m = v.local(GW.id) as MemberJson;
    expect(m.member).toMatchObject({ id: GW.id, version: '1.2.3', overload: [2] });
    expect(m.check).toMatchObject({ advertised: '127.0.0.1:4000', reached: true, rttMs: 3 });
    expect(m.linked).toEqual([
      { id: LOBBY.id, name: 'lobby', type: 4 },
      { id: 'gone', name: '(not listed)', type: null },
    ]);
  });

  it('asking for a member that is not listed is a BAD_REQUEST naming it', () => {
    const { v } = views();
    let err: unknown;
    try {
      v.local('nobody');
    } catch (e) {
      err = e;
    }
    expect(isXError(err, 'BAD_REQUEST')).toBe(true);
    expect((err as Error).message).toContain('nobody');
  });

  it('status fields the dashboard does not know go to the policy panel', async () => {
    const { v } = views({ extra: { canary: [{ version: '1.3.0', share: 10 }] } });
    const o = (await v.view('')) as OverviewJson;
    expect(o.policy).toEqual({ canary: [{ version: '1.3.0', share: 10 }] });
  });

  it("the mgr's canary policies show in the panel, one line per type; none: the panel says so", async () => {
    const policies = [create(RoutingPolicySchema, { type: 4, version: '1.4.0', basisPoints: 2000, accounts: [] })];
    const o = (await views({ extra: { policies } }).v.view('')) as OverviewJson;
    expect(o.policy).toEqual({ canary: [{ type: 4, version: '1.4.0', policy: describePolicy(policies[0]!) }] });
    expect(((await views().v.view('')) as OverviewJson).policy).toBeNull();
  });

  it('a standby without an active mgr says so', async () => {
    const { v } = views({ state: 'standby', lease: null });
    const u = (await v.view('')) as UnavailableJson;
    expect(u.servedBy).toEqual({ instanceId: 'mgr-self', state: 'standby', relayed: true });
    expect(u.unavailable).toMatch(/no mgr holds the lease/);
    expect(u.activeDashboard).toBeNull();
  });

  it("a standby that cannot reach the active mgr links to the active mgr's dashboard from the lease", async () => {
    const port = await freePort(); // nothing listens there
    const { v } = views({ state: 'standby', lease: { instanceId: 'mgr-a', addr: '127.0.0.1', port, epoch: 7, adminPort: 7090 } });
    try {
      const u = (await v.view('')) as UnavailableJson;
      expect(u.unavailable).toMatch(/cannot show the active mgr's dashboard from this standby/);
      expect(u.activeDashboard).toBe('http://127.0.0.1:7090/dashboard');
    } finally {
      v.close();
    }
  });
});
