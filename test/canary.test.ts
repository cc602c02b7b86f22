/**
 * Canary by account cohort on an in-process cluster: real TCP, real Redis, the real login HTTP
 * server, a real gateway with raw TCP clients, and the policy set and rolled back through the
 * mgr's tool link (the path `xserver canary` takes). Two lobby nodes (stateful, type 4) and two
 * match nodes (stateless, type 5), one of each on version A and one on version B.
 *
 * The CLI's own output and errors are tested on real processes in test/cluster/canary-cli.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestCanaryClear, requestCanaryRollback, requestCanarySet } from '../src/cli/canary.js';
import { fetchStatus } from '../src/cli/status.js';
import { Gateway } from '../src/gateway/gateway.js';
import { LoginServer, type LoginResponse } from '../src/login/login.js';
import { MgrServer } from '../src/mgr/mgr.js';
import { runtimeOf } from '../src/node/internal.js';
import { ClusterNode } from '../src/node/node.js';
import { encodeAuth } from '../src/protocol/client-messages.js';
import { Cmd } from '../src/protocol/commands.js';
import { Flags } from '../src/protocol/frame.js';
import { inCohort } from '../src/protocol/routing-policy.js';
import { createRoleContext } from '../src/roles.js';
import { RedisStore } from '../src/store/redis-store.js';
import { silentLogger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';
import { RawClient, startCluster, waitUntil } from './helpers/inproc.js';

const A = '1.0.0';
const B = '1.4.0';
const LOBBY = 4;
const MATCH = 5;
/** Accounts that log in; 20% of them is the expected cohort. */
const ACCOUNTS = Array.from({ length: 400 }, (_, i) => `canary-player-${i}`);
const POLICY_20 = { version: B, basisPoints: 2000, accounts: [] as string[] };

type Cluster = Awaited<ReturnType<typeof startCluster>>;

/** A service node of `type` on `version` that answers client command 1 with its version and id. */
async function service(c: Cluster, type: number, version: string): Promise<ClusterNode> {
  const n = c.own(new ClusterNode(c.ctx, { type, version }));
  n.enableRelay();
  n.handleClient(1, () => `${version}/${n.id}`);
  await n.start();
  await n.ready(5000);
  return n;
}

async function login(base: string, account: string): Promise<LoginResponse> {
  const res = await fetch(`${base}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ account, password: 'any password' }),
  });
  const body = (await res.json()) as LoginResponse;
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body;
}

/** Logs every account in, a few at a time. */
async function loginAll(base: string, accounts: string[]): Promise<Map<string, LoginResponse>> {
  const out = new Map<string, LoginResponse>();
  const queue = [...accounts];
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let a = queue.shift(); a !== undefined; a = queue.shift()) out.set(a, await login(base, a));
    }),
  );
  return out;
}

let rid = 0;
/** A client request through the gateway; resolves with the answering node's "version/id". */
async function ask(cl: RawClient, type: number): Promise<string> {
  const r = ++rid;
  cl.send(type * 1000 + 1, '', Flags.REQUEST, r);
  const f = await cl.next((x) => x.rid === r && (x.flags & Flags.RESPONSE) !== 0, 5000);
  expect(f.flags & Flags.ERROR).toBe(0);
  return Buffer.from(f.body).toString();
}

async function connect(gw: Gateway, lr: LoginResponse): Promise<RawClient> {
  const cl = await RawClient.connect(gw.tcpPort);
  cl.send(Cmd.AUTH, encodeAuth({ token: lr.token }));
  const w = await cl.next((f) => f.cmd === Cmd.WELCOME || f.cmd === Cmd.ERROR);
  expect(w.cmd).toBe(Cmd.WELCOME);
  return cl;
}

describe('canary by account cohort', () => {
  let c: Cluster;
  let gw: Gateway;
  let base: string;
  const lobby: Record<string, ClusterNode> = {};
  const match: Record<string, ClusterNode> = {};
  const clients: RawClient[] = [];

  beforeAll(async () => {
    c = await startCluster((cfg) => {
      cfg.login.probeGateways = false;
      cfg.gateway.reconnectGraceMs = 200;
    });
    lobby[A] = await service(c, LOBBY, A);
    lobby[B] = await service(c, LOBBY, B);
    match[A] = await service(c, MATCH, A);
    match[B] = await service(c, MATCH, B);
    gw = c.own(new Gateway(c.ctx));
    await gw.start();
    await gw.node.ready(5000);
    // The credential check is not what this file is about: every password is accepted.
    const ls = c.own(new LoginServer(c.ctx, { verifier: async () => true }));
    await ls.start();
    await ls.whenRegistered(5000);
    base = `http://127.0.0.1:${ls.port}`;
    const all = [...Object.values(lobby), ...Object.values(match), gw.node, ls.node];
    await waitUntil(
      () => all.every((n) => n.list(LOBBY).length === 2 && n.list(MATCH).length === 2 && n.list(3).length === 1),
      10_000,
      'everyone listed',
    );
  }, 30_000);

  afterAll(async () => {
    for (const cl of clients) cl.close();
    await c?.cleanup();
  });

  const versionOfLobby = (id: string | undefined): string | undefined => (id === lobby[A]!.id ? A : id === lobby[B]!.id ? B : undefined);

  it('sends the 20% cohort to version B and everyone else to A, at login and at the first request; sticky; rollback moves only new sessions', async () => {
    await requestCanarySet(c.config, c.store, silentLogger(), { type: 'lobby', version: B, percent: '20' });
    await requestCanarySet(c.config, c.store, silentLogger(), { type: String(MATCH), version: B, percent: '20' });
    const everyone = [gw.node, ...Object.values(lobby)];
    await waitUntil(() => everyone.every((n) => runtimeOf(n).policies().length === 2), 5000, 'members have both policies');

    // Login allocation: exactly the cohort is on B, and the cohort is about 20%.
    const first = await loginAll(base, ACCOUNTS);
    const onB = ACCOUNTS.filter((a) => versionOfLobby(first.get(a)!.allocations[String(LOBBY)]) === B);
    const expected = ACCOUNTS.filter((a) => inCohort(POLICY_20, a));
    expect(onB).toEqual(expected);
    expect(onB.length / ACCOUNTS.length).toBeGreaterThanOrEqual(0.15);
    expect(onB.length / ACCOUNTS.length).toBeLessThanOrEqual(0.25);
    expect(ACCOUNTS.every((a) => versionOfLobby(first.get(a)!.allocations[String(LOBBY)]) !== undefined)).toBe(true);

    // Sticky: a new login of the same accounts lands on the same node.
    const again = await loginAll(base, ACCOUNTS.slice(0, 100));
    for (const [a, lr] of again) expect(lr.allocations[String(LOBBY)], a).toBe(first.get(a)!.allocations[String(LOBBY)]);

    // First requests through the gateway: the stateful type goes to the allocated node, the
    // stateless one to a node of the account's version.
    const cohort = expected.slice(0, 6);
    const rest = ACCOUNTS.filter((a) => !inCohort(POLICY_20, a)).slice(0, 6);
    const sessions = new Map<string, RawClient>();
    for (const a of [...cohort, ...rest]) {
      const cl = await connect(gw, again.get(a) ?? first.get(a)!);
      clients.push(cl);
      sessions.set(a, cl);
      const want = cohort.includes(a) ? B : A;
      expect((await ask(cl, LOBBY)).split('/')[0], a).toBe(want);
      for (let i = 0; i < 3; i++) expect((await ask(cl, MATCH)).split('/')[0], a).toBe(want);
    }

    // A node's own one()/sendOne() for an account follow the policy too; without an account it is not canary traffic.
    const from = lobby[A]!;
    for (const a of [...cohort, ...rest]) {
      const want = cohort.includes(a) ? B : A;
      expect(from.one(MATCH, { account: a })?.info.version, a).toBe(want);
      expect(from.one(MATCH, { account: a, version: A })?.info.version, 'an explicit version wins').toBe(A);
    }
    expect(from.one(MATCH)?.info.version).toBe(A);

    // Status counts what the gateway's sessions are allocated to.
    const st = await fetchStatus(c.config, c.store, silentLogger());
    expect(st.policies.map((p) => [p.type, p.version, p.percent])).toEqual([
      [LOBBY, B, 20],
      [MATCH, B, 20],
    ]);
    expect(st.gatewaysCounted).toBe(1);
    expect(st.accounts).toEqual([
      { type: LOBBY, version: A, accounts: rest.length },
      { type: LOBBY, version: B, accounts: cohort.length },
    ]);

    // Rollback: new sessions go back to A, the former cohort's sticky allocations on B included ...
    await requestCanaryRollback(c.config, c.store, silentLogger(), 'lobby');
    await requestCanaryRollback(c.config, c.store, silentLogger(), String(MATCH));
    const rolledBack = (n: ClusterNode): boolean =>
      runtimeOf(n)
        .policies()
        .every((p) => p.basisPoints === 0);
    await waitUntil(() => [...everyone, ...Object.values(match)].every(rolledBack), 5000, 'members saw the rollback');
    const fresh = expected.filter((a) => !sessions.has(a)).slice(0, 20);
    const after = await loginAll(base, fresh);
    for (const a of fresh) expect(versionOfLobby(after.get(a)!.allocations[String(LOBBY)]), a).toBe(A);
    const newSession = await connect(gw, after.get(fresh[0]!)!);
    clients.push(newSession);
    expect((await ask(newSession, MATCH)).split('/')[0]).toBe(A);

    // ... while running sessions keep their node and their version, stateless type included.
    for (const a of cohort) {
      const cl = sessions.get(a)!;
      expect((await ask(cl, LOBBY)).split('/')[0], a).toBe(B);
      for (let i = 0; i < 3; i++) expect((await ask(cl, MATCH)).split('/')[0], a).toBe(B);
    }
    // ... until they end: once the session is gone, the account's next login goes to A.
    const ended = cohort[0]!;
    sessions.get(ended)!.close();
    await waitUntil(() => !lobby[B]!.accounts().includes(ended), 5000, 'the ended session lost on B');
    expect(versionOfLobby((await login(base, ended)).allocations[String(LOBBY)])).toBe(A);
  }, 120_000);

  it('with no live node of the canary version, the cohort is served by the others', async () => {
    await requestCanarySet(c.config, c.store, silentLogger(), { type: String(MATCH), version: '9.9.9', accounts: 'canary-lonely' });
    await waitUntil(
      () =>
        runtimeOf(gw.node)
          .policies()
          .some((p) => p.version === '9.9.9'),
      5000,
      'the gateway has the policy',
    );
    const cl = await connect(gw, await login(base, 'canary-lonely'));
    clients.push(cl);
    expect([A, B]).toContain((await ask(cl, MATCH)).split('/')[0]);
    expect(lobby[A]!.one(MATCH, { account: 'canary-lonely' })).toBeDefined();
    await requestCanaryClear(c.config, c.store, silentLogger(), String(MATCH));
    await requestCanaryClear(c.config, c.store, silentLogger(), 'lobby');
    await waitUntil(() => runtimeOf(gw.node).policies().length === 0, 5000, 'the gateway saw the policies cleared');
  }, 30_000);
});

describe('canary policy across an mgr takeover', () => {
  let c: Cluster;
  let standby: MgrServer;
  let standbyStore: RedisStore;

  beforeAll(async () => {
    c = await startCluster();
    standbyStore = new RedisStore(c.config.redisUrl, c.cluster);
    await standbyStore.ready(2000);
    standby = new MgrServer(createRoleContext({ config: c.config, store: standbyStore, logger: silentLogger(), metrics: new Metrics() }));
    await standby.start();
  }, 30_000);

  afterAll(async () => {
    await standby?.stop();
    await standbyStore?.close();
    await c?.cleanup();
  });

  it('the standby that takes over serves the policy: in snapshots to new members, in status, and for a rollback', async () => {
    await service(c, LOBBY, A);
    await requestCanarySet(c.config, c.store, silentLogger(), { type: 'lobby', version: B, percent: '12.5', accounts: 'alice,bob' });
    expect(standby.isStandby).toBe(true);

    await c.mgr.stop();
    await waitUntil(() => standby.isActive, 10_000, 'the standby takes over');

    // A member that never saw the old mgr gets the policy in the new mgr's snapshot.
    const late = await service(c, LOBBY, B);
    const policies = runtimeOf(late).policies();
    expect(policies.map((p) => [p.type, p.version, p.basisPoints, [...p.accounts]])).toEqual([[LOBBY, B, 1250, ['alice', 'bob']]]);

    const st = await fetchStatus(c.config, c.store, silentLogger());
    expect(st.mgr.instanceId).toBe(standby.instanceId);
    expect(st.policies).toMatchObject([{ type: LOBBY, version: B, percent: 12.5, accounts: ['alice', 'bob'] }]);

    const after = await requestCanaryRollback(c.config, c.store, silentLogger(), 'lobby');
    expect(after).toMatchObject([{ type: LOBBY, version: B, percent: 0, accounts: [] }]);
    await waitUntil(() => runtimeOf(late).policies()[0]?.basisPoints === 0, 5000, 'the member saw the rollback from the new mgr');
  }, 60_000);
});
