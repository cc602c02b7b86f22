/**
 * Account handoff (SPEC §12): a draining stateful node moves each bound account, with the state
 * its onAccountExport hook gives, to another node of its type, which imports it before the
 * account's first message; the gateway holds the messages meanwhile and delivers them in order.
 * Real TCP, real Redis, SDK clients; roles in this process.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XClient } from '../src/client/index.js';
import { Gateway } from '../src/gateway/gateway.js';
import { ClusterNode } from '../src/node/node.js';
import { jsonCodec } from '../src/protocol/contract.js';
import { silentLogger } from '../src/log.js';
import { drainRoles, nodeRole } from '../src/roles.js';
import { issueLogin, startCluster, waitUntil } from './helpers/inproc.js';

type Cluster = Awaited<ReturnType<typeof startCluster>>;

/** The largest state a node may hand off in this file (node.handoffMaxBytes). */
const MAX_STATE_BYTES = 1024;

let c: Cluster;
let gw: Gateway;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  c = await startCluster((cfg) => {
    cfg.statefulTypes = '4,5,6,7,8,9';
    cfg.types = { lobby: 4, hall: 5, room: 6, den: 7, nook: 8, cell: 9 };
    cfg.node.handoffMaxBytes = MAX_STATE_BYTES;
  });
  gw = c.own(new Gateway(c.ctx));
  await gw.start();
  await gw.node.ready(5000);
});

afterAll(async () => {
  await Promise.all(cleanups.splice(0).map((f) => f()));
  await c?.cleanup();
});

interface Lobby {
  node: ClusterNode;
  counters: Map<string, number>;
  lost: string[];
  moved: string[];
}

/**
 * A lobby-like stateful service: client command 1 (a request) counts per account and answers
 * `{ node, n }`. With `hooks`, the counter travels in a handoff; `pad` bytes make the state bigger.
 */
interface LobbyOptions {
  hooks: boolean;
  /** Bytes added to the exported state. */
  pad?: number;
  /** Where the node's log lines go (default: nowhere). */
  logs?: string[];
  /** Runs inside the export hook, after the state is read. */
  duringExport?: (account: string) => Promise<void>;
}

async function lobby(type: number, opts: LobbyOptions): Promise<Lobby> {
  const ctx = opts.logs ? { ...c.ctx, logger: lineLogger(opts.logs) } : c.ctx;
  const node = c.own(new ClusterNode(ctx, { type }));
  const l: Lobby = { node, counters: new Map(), lost: [], moved: [] };
  node.enableRelay();
  node.handleClient(1, async (_data, cx) => {
    const n = (l.counters.get(cx.account) ?? 0) + 1;
    l.counters.set(cx.account, n);
    await new Promise((r) => setImmediate(r)); // async: a handoff must wait for it
    return JSON.stringify({ node: node.id, n });
  });
  if (opts.hooks) {
    const State = jsonCodec<{ n: number; pad: string }>();
    node.onAccountExport(State, async (account) => {
      const n = l.counters.get(account);
      await opts.duringExport?.(account);
      return n === undefined ? undefined : { n, pad: 'x'.repeat(opts.pad ?? 0) };
    });
    node.onAccountImport(State, (account, s) => void l.counters.set(account, s.n));
  }
  node.onAccountLost((a) => l.lost.push(a));
  node.on('account-moved', (a) => l.moved.push(a));
  await node.start();
  await node.ready(5000);
  return l;
}

/** A pino logger whose JSON lines land in `lines`. */
function lineLogger(lines: string[]) {
  return pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    }),
  );
}

async function client(account: string, allocations: Record<string, string>, gateway = gw): Promise<XClient> {
  const lr = await issueLogin(c.store, gateway, account, allocations);
  const cl = new XClient({ transport: 'tcp', requestTimeoutMs: 15_000 });
  cleanups.push(() => cl.close());
  await cl.connect(lr);
  return cl;
}

async function count(cl: XClient, type: number): Promise<{ node: string; n: number }> {
  return JSON.parse(Buffer.from(await cl.request(cl.cmd(type, 1))).toString()) as { node: string; n: number };
}

async function pair(type: number, opts: LobbyOptions): Promise<[Lobby, Lobby]> {
  const a = await lobby(type, opts);
  const b = await lobby(type, { hooks: opts.hooks, pad: opts.pad });
  await waitUntil(
    () => gw.node.list(type).length === 2 && a.node.list(3).length > 0 && b.node.list(3).length > 0,
    5000,
    'gateway and lobbies list each other',
  );
  return [a, b];
}

describe('account handoff', () => {
  it('with hooks: draining A moves every account with its state to B, requests during the move answered in order, nothing lost', async () => {
    const type = 4;
    const accounts = ['h1', 'h2', 'h3', 'h4', 'h5'];
    const clients: XClient[] = [];
    // Requests in flight before, during and after the drain starts; answers recorded as they arrive.
    const answers = accounts.map(() => [] as { node: string; n: number }[]);
    const pending: Promise<void>[] = [];
    const sent = accounts.map(() => 0);
    const fireOne = (ci: number) => {
      sent[ci]!++;
      pending.push(count(clients[ci]!, type).then((r) => void answers[ci]!.push(r)));
    };
    const fire = (k: number) => {
      for (let ci = 0; ci < clients.length; ci++) for (let i = 0; i < k; i++) fireOne(ci);
    };
    // While A exports, its client sends more: they must wait at the gateway, not reach A (whose
    // counter would then move on after the export, and B would count from a stale value).
    const duringExport = async (account: string) => {
      for (let i = 0; i < 3; i++) fireOne(accounts.indexOf(account));
      await new Promise((r) => setTimeout(r, 30)); // room for them to arrive wherever they go
    };
    const [a, b] = await pair(type, { hooks: true, duringExport });
    clients.push(...(await Promise.all(accounts.map((acct) => client(acct, { [type]: a.node.id })))));
    for (const cl of clients) for (let i = 1; i <= 3; i++) expect(await count(cl, type)).toEqual({ node: a.node.id, n: i });

    fire(5);
    // drainRoles resolves once nothing is bound (what a process does before it exits), long before its deadline.
    const drained = drainRoles([nodeRole(a.node)], 15_000, silentLogger());
    fire(5);
    expect(await drained).toEqual({ cut: {} });
    expect(a.node.accounts()).toEqual([]);
    fire(5);
    await Promise.all(pending);

    for (let ci = 0; ci < clients.length; ci++) {
      const got = answers[ci]!;
      // In order, none lost, none repeated: the counter carried on across the move.
      expect(sent[ci]).toBe(18);
      expect(got.map((r) => r.n)).toEqual(Array.from({ length: 18 }, (_, i) => i + 4));
      // A first, then B, once: no message went back to A after it exported.
      const firstOnB = got.findIndex((r) => r.node === b.node.id);
      expect(firstOnB).toBeGreaterThanOrEqual(0);
      expect(got.slice(firstOnB).every((r) => r.node === b.node.id)).toBe(true);
      expect(got.slice(0, firstOnB).every((r) => r.node === a.node.id)).toBe(true);
    }
    expect([...a.moved].sort()).toEqual(accounts);
    expect(b.node.accounts().sort()).toEqual(accounts);
    expect(a.lost).toEqual([]);
    expect(b.lost).toEqual([]);
    expect(await c.store.getAllocations('h1')).toEqual({ [type]: b.node.id });
    expect(await c.ctx.metrics.text()).toMatch(/xserver_node_account_handoffs_total\{type="4",result="moved"\} 5/);
  });

  it('without hooks: nothing is handed off; once A stops, the accounts are reallocated to B and start fresh', async () => {
    const type = 5;
    const [a, b] = await pair(type, { hooks: false });
    const clients = await Promise.all(['f1', 'f2'].map((acct) => client(acct, { [type]: a.node.id })));
    for (const cl of clients) for (let i = 1; i <= 3; i++) expect(await count(cl, type)).toEqual({ node: a.node.id, n: i });
    await waitUntil(() => a.node.accounts().length === 2, 5000, 'both accounts arrived at A');

    const st = nodeRole(a.node).drain!();
    expect(st.bound()).toBe(2); // nothing moves: the accounts stay until A stops (or they leave)
    expect(await count(clients[0]!, type)).toEqual({ node: a.node.id, n: 4 });
    await a.node.stop();
    for (const cl of clients) expect(await count(cl, type)).toEqual({ node: b.node.id, n: 1 });
    expect(a.moved).toEqual([]);
    expect(clients.every((cl) => cl.state === 'open')).toBe(true);
  });

  it('a state over node.handoffMaxBytes is refused with STATE_TOO_LARGE in the log; the account moves to B fresh', async () => {
    const type = 6;
    const logs: string[] = [];
    const [a, b] = await pair(type, { hooks: true, pad: MAX_STATE_BYTES, logs });
    const cl = await client('big', { [type]: a.node.id });
    for (let i = 1; i <= 2; i++) expect(await count(cl, type)).toEqual({ node: a.node.id, n: i });

    const st = nodeRole(a.node).drain!();
    await waitUntil(() => st.bound() === 0, 15_000, 'the account handed off');
    expect(await count(cl, type)).toEqual({ node: b.node.id, n: 1 });
    expect(cl.state).toBe('open');
    const refused = logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.code === 'STATE_TOO_LARGE');
    expect(refused?.msg).toMatch(/over node\.handoffMaxBytes \(1024\): the account starts fresh/);
    expect(refused?.account).toBe('big');
    expect(a.moved).toEqual(['big']);
    expect(await c.ctx.metrics.text()).toMatch(/xserver_node_account_handoffs_total\{type="6",result="too_large"\} 1/);
  });

  it('the old node leaves before it exported: the held messages go to a fresh allocation on B, in order', async () => {
    const type = 7;
    let exporting!: () => void;
    const started = new Promise<void>((r) => (exporting = r));
    let finish!: () => void;
    const blocked = new Promise<void>((r) => (finish = r));
    const [a, b] = await pair(type, {
      hooks: true,
      duringExport: async () => {
        exporting();
        await blocked;
      },
    });
    const cl = await client('stuck', { [type]: a.node.id });
    expect(await count(cl, type)).toEqual({ node: a.node.id, n: 1 });
    nodeRole(a.node).drain!();
    await started; // the gateway holds the account now
    const held = [count(cl, type), count(cl, type)];
    await a.node.stop();
    expect(await Promise.all(held)).toEqual([
      { node: b.node.id, n: 1 },
      { node: b.node.id, n: 2 },
    ]);
    expect(cl.state).toBe('open');
    finish();
  });

  it('a gateway holds the messages at most gateway.handoffHoldMs: then they go to the old node, which keeps the account', async () => {
    const type = 8;
    const HOLD_MS = 300;
    const config = structuredClone(c.config);
    config.gateway.handoffHoldMs = HOLD_MS;
    const impatient = c.own(new Gateway({ ...c.ctx, config }));
    await impatient.start();
    await impatient.node.ready(5000);
    let exporting!: () => void;
    const started = new Promise<void>((r) => (exporting = r));
    let finish!: () => void;
    const blocked = new Promise<void>((r) => (finish = r));
    const logs: string[] = [];
    const [a] = await pair(type, {
      hooks: true,
      logs,
      duringExport: async () => {
        exporting();
        await blocked;
      },
    });
    await waitUntil(() => impatient.node.list(type).length === 2 && a.node.has(impatient.node.id), 5000, 'the second gateway lists both');
    const cl = await client('slow', { [type]: a.node.id }, impatient);
    expect(await count(cl, type)).toEqual({ node: a.node.id, n: 1 });
    const st = nodeRole(a.node).drain!();
    await started;
    const t0 = performance.now();
    expect(await count(cl, type)).toEqual({ node: a.node.id, n: 2 }); // held, then back to A
    expect(performance.now() - t0).toBeGreaterThanOrEqual(HOLD_MS - 10);
    finish(); // A's ACCOUNT_EXPORTED comes too late: refused, A keeps the account
    await waitUntil(() => logs.some((l) => l.includes('the gateway did not rebind the account')), 5000, 'the late export refused');
    expect(await c.ctx.metrics.text()).toMatch(/xserver_node_account_handoffs_total\{type="8",result="kept"\} 1/);
    expect(st.bound()).toBe(1);
    expect(a.moved).toEqual([]);
    expect(await count(cl, type)).toEqual({ node: a.node.id, n: 3 });
  });

  it('the only node of its type drains: nowhere to move, the account stays and is served there', async () => {
    const type = 9;
    const logs: string[] = [];
    const a = await lobby(type, { hooks: true, logs });
    await waitUntil(() => gw.node.list(type).length === 1 && a.node.list(3).length > 0, 5000, 'gateway and node list each other');
    const cl = await client('alone', { [type]: a.node.id });
    expect(await count(cl, type)).toEqual({ node: a.node.id, n: 1 });
    const st = nodeRole(a.node).drain!();
    await waitUntil(() => logs.some((l) => l.includes('no other live, non-draining node of type 9')), 5000, 'the refusal logged');
    expect(st.bound()).toBe(1);
    expect(await count(cl, type)).toEqual({ node: a.node.id, n: 2 });
  });
});
