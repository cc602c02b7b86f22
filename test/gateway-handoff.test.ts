/**
 * Live session handoff between gateways (SPEC §12, docs/protocol.md "Session handoff"), in
 * process over real TCP and real Redis: SDK clients logged in through the login service on
 * gateway A move to gateway B when A drains, while a stateful service pushes a numbered stream to
 * each of them; a raw client that ignores GOING_AWAY is cut at the drain deadline instead.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XClient } from '../src/client/client.js';
import { login } from '../src/client/login.js';
import type { HandoffGateway } from '../src/protocol/client-messages.js';
import { Gateway } from '../src/gateway/gateway.js';
import { silentLogger } from '../src/log.js';
import { LoginServer } from '../src/login/login.js';
import { ClusterNode } from '../src/node/node.js';
import { Cmd } from '../src/protocol/commands.js';
import { drainRoles, gatewayRole } from '../src/roles.js';
import { RawClient, issueLogin, startCluster, waitUntil } from './helpers/inproc.js';
import { encodeAuth, parseGoingAway } from '../src/protocol/client-messages.js';

type Cluster = Awaited<ReturnType<typeof startCluster>>;
const GRACE_MS = 600;
const CLIENTS = 6;
/** Sub-commands of the lobby (type 4) in this file. */
const PUSH = 1;
const SLOW_ECHO = 2;
const PUSH_BURST = 20;
/** Sub-command of the world broadcaster (type 5). */
const WORLD = 1;

let c: Cluster;
let lobby: ClusterNode;
let loginServer: LoginServer;
const arrived: { account: string; gatewayId: string }[] = [];
const lost: string[] = [];

beforeAll(async () => {
  c = await startCluster((cfg) => {
    cfg.gateway.reconnectGraceMs = GRACE_MS;
    cfg.gateway.handoffTokenTtlMs = 5000;
    cfg.gateway.handoffTimeoutMs = 5000;
    cfg.login.autoRegister = true;
    cfg.login.probeGateways = false;
  });
  lobby = c.own(new ClusterNode(c.ctx, { type: 4, name: 'lobby' }));
  lobby.enableRelay();
  // Answers after a while, so requests are in flight while their client moves.
  lobby.handleClient(SLOW_ECHO, async (data) => {
    await sleep(30);
    return `re:${Buffer.from(data).toString()}`;
  });
  lobby.on('account-arrived', (account, gatewayId) => arrived.push({ account, gatewayId }));
  lobby.on('account-lost', (account) => lost.push(account));
  await lobby.start();
  await lobby.ready(5000);
  loginServer = c.own(new LoginServer(c.ctx));
  await loginServer.start();
});

afterAll(async () => {
  await c?.cleanup();
});

async function startGateway(): Promise<Gateway> {
  const gw = c.own(new Gateway(c.ctx));
  await gw.start();
  await gw.node.ready(5000);
  await waitUntil(() => lobby.has(gw.node.id) && loginServer.node.has(gw.node.id), 5000, 'the gateway is listed');
  return gw;
}

function loginOk(): number {
  return (loginServer.stats().results as Record<string, number>).ok ?? 0;
}

describe('session handoff', () => {
  it('a draining gateway moves every SDK client to another one: no login, no ACCOUNT_LOST, every pushed number once and in order', async () => {
    const a = await startGateway();
    const url = `http://127.0.0.1:${loginServer.port}`;
    const clients: { account: string; client: XClient; got: number[]; moved: HandoffGateway[] }[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      const account = `mover-${i}-${c.cluster}`;
      const lr = await login(url, account, 'secret-pw-1');
      expect(lr.gateway.id).toBe(a.node.id);
      const client = new XClient({ transport: i % 2 === 0 ? 'tcp' : 'ws', requestTimeoutMs: 10_000 });
      const entry = { account, client, got: [] as number[], moved: [] as HandoffGateway[] };
      client.on(client.cmd(4, PUSH), (data) => entry.got.push(Number(Buffer.from(data).toString())));
      client.on('moved', (_w, gw) => entry.moved.push(gw));
      await client.connect(lr);
      clients.push(entry);
    }
    const logins = loginOk();
    expect(logins).toBeGreaterThanOrEqual(CLIENTS);
    await waitUntil(() => clients.every((e) => lobby.accounts().includes(e.account)), 5000, 'the lobby has every account');
    const b = await startGateway();

    // The service pushes a numbered stream to every client, before, during and after the move, in
    // bursts; and a burst at the very moment it learns the account is at B (its first messages
    // straight to B, while its last ones to A may still be on their way there): the fences keep
    // those in order.
    const next = new Map(clients.map((e) => [e.account, 0]));
    const push = (account: string): void => {
      for (let k = 0; k < PUSH_BURST; k++) {
        const n = next.get(account)!;
        lobby.sendToClient(account, PUSH, String(n));
        next.set(account, n + 1);
      }
    };
    const pushing = { on: true };
    lobby.on('account-arrived', (account, gatewayId) => {
      if (pushing.on && gatewayId === b.node.id && next.has(account)) push(account);
    });
    const pusher = setInterval(() => {
      for (const e of clients) push(e.account);
    }, 2);
    const least = (): number => Math.min(...next.values());
    try {
      await waitUntil(() => least() >= 30 * PUSH_BURST, 5000, 'the stream is running');
      // Requests in flight across the move: answered, through whichever gateway holds the session.
      const requests = clients.flatMap((e) => [0, 1, 2].map((k) => e.client.request(e.client.cmd(4, SLOW_ECHO), `${e.account}/${k}`)));
      const drained = drainRoles([gatewayRole(a)], 15_000, silentLogger());
      const more = clients.map((e) => e.client.request(e.client.cmd(4, SLOW_ECHO), `${e.account}/late`));
      expect(await drained).toEqual({ cut: {} });
      const answers = await Promise.all([...requests, ...more]);
      expect(answers.map((x) => Buffer.from(x).toString())).toEqual([
        ...clients.flatMap((e) => [0, 1, 2].map((k) => `re:${e.account}/${k}`)),
        ...clients.map((e) => `re:${e.account}/late`),
      ]);
      const stopAt = least() + 30 * PUSH_BURST;
      await waitUntil(() => least() >= stopAt, 5000, 'the stream runs on after the move');
    } finally {
      clearInterval(pusher);
      pushing.on = false;
    }
    await waitUntil(() => clients.every((e) => e.got.at(-1) === next.get(e.account)! - 1), 10_000, 'every client got its last number');
    for (const e of clients) {
      expect(
        e.moved.map((g) => g.id),
        e.account,
      ).toEqual([b.node.id]);
      expect(e.client.state).toBe('open');
      expect(e.client.welcome?.moved).toBe(true);
      // Every number exactly once, in order, from 0.
      expect(e.got, e.account).toEqual(Array.from({ length: next.get(e.account)! }, (_, k) => k));
      expect((await c.store.getPresence(e.account))?.gatewayId).toBe(b.node.id);
    }
    expect(loginOk()).toBe(logins); // nobody logged in again
    expect(a.sessionCount).toBe(0);
    expect(b.sessionCount).toBe(CLIENTS);
    const moved = new Set(clients.map((e) => e.account));
    expect(arrived.filter((x) => moved.has(x.account) && x.gatewayId === b.node.id).length).toBe(CLIENTS);
    await a.stop();
    // A has stopped: the lobby still reaches every client (through B), and never saw them lost.
    for (const e of clients) push(e.account);
    await waitUntil(() => clients.every((e) => e.got.length === next.get(e.account)), 5000, 'a push after the old gateway stopped arrives');
    await sleep(GRACE_MS * 2);
    expect(lost.filter((x) => moved.has(x))).toEqual([]);
    await Promise.all(clients.map((e) => e.client.close()));
  });

  it('a node broadcasting a numbered stream (world chat) while its clients move: each client gets every number once, in order', async () => {
    // A broadcaster no client is allocated to: it sends each broadcast to every gateway on its own
    // link, so the gateways are at different points of its stream when a session moves.
    const world = c.own(new ClusterNode(c.ctx, { type: 5, name: 'world' }));
    world.enableRelay();
    await world.start();
    await world.ready(5000);
    const src = await startGateway();
    await startGateway(); // somewhere to move to, besides the gateways of the tests before
    await waitUntil(() => world.has(src.node.id), 5000, 'the broadcaster links the gateway');
    const clients: { client: XClient; got: number[] }[] = [];
    for (let i = 0; i < CLIENTS * 2; i++) {
      const lr = await issueLogin(c.store, src, `world-${i}-${c.cluster}`);
      const client = new XClient({ transport: i % 2 === 0 ? 'tcp' : 'ws', requestTimeoutMs: 10_000 });
      const entry = { client, got: [] as number[] };
      client.on(client.cmd(5, WORLD), (data) => entry.got.push(Number(Buffer.from(data).toString())));
      await client.connect(lr);
      clients.push(entry);
    }
    let n = 0;
    const caster = setInterval(() => {
      for (let k = 0; k < PUSH_BURST; k++) world.broadcastToClients(WORLD, String(n++));
    }, 1);
    try {
      await waitUntil(() => clients.every((e) => e.got.length >= 10 * PUSH_BURST), 5000, 'every client hears the stream');
      expect(await drainRoles([gatewayRole(src)], 15_000, silentLogger())).toEqual({ cut: {} });
      const stopAt = n + 30 * PUSH_BURST;
      await waitUntil(() => n >= stopAt, 5000, 'the stream runs on after the move');
    } finally {
      clearInterval(caster);
    }
    await waitUntil(() => clients.every((e) => e.got.at(-1) === n - 1), 10_000, 'every client got the last number');
    for (const [i, e] of clients.entries()) {
      expect(e.client.welcome?.moved, `client ${i} moved`).toBe(true);
      const first = e.got[0]!;
      expect(e.got, `client ${i}: every number from its first, once, in order`).toEqual(Array.from({ length: n - first }, (_, k) => first + k));
    }
    await src.stop();
    await Promise.all(clients.map((e) => e.client.close()));
    await world.stop();
  });

  it('a raw client that ignores GOING_AWAY stays until the drain deadline, is then cut and reported lost once', async () => {
    const other = await startGateway();
    const gw = await startGateway();
    const account = `raw-${c.cluster}`;
    const lr = await issueLogin(c.store, gw, account, { '4': lobby.id });
    const raw = await RawClient.connect(gw.tcpPort);
    raw.send(Cmd.AUTH, encodeAuth({ token: lr.token }));
    await raw.next((f) => f.cmd === Cmd.WELCOME);
    await waitUntil(() => lobby.accounts().includes(account), 5000, 'the lobby has the account');
    const started = performance.now();
    const drained = drainRoles([gatewayRole(gw)], 800, silentLogger());
    const going = parseGoingAway((await raw.next((f) => f.cmd === Cmd.GOING_AWAY)).body);
    expect(going.gateway.id).not.toBe(gw.node.id);
    expect(lobby.has(going.gateway.id) && lobby.get(going.gateway.id)?.info.draining).toBe(false);
    expect(other.node.id).not.toBe(gw.node.id);
    expect(going.handoff).not.toBe('');
    expect(raw.closed).toBe(false);
    expect(await drained).toEqual({ cut: { 'gateway sessions': 1 } });
    expect(performance.now() - started).toBeGreaterThanOrEqual(800);
    expect(raw.closed).toBe(false); // still served until the role stops
    await gw.stop();
    await waitUntil(() => raw.closed, 5000, 'the raw client is cut');
    await waitUntil(() => lost.includes(account), GRACE_MS * 10, 'the lobby reports the account lost');
    await sleep(GRACE_MS * 2);
    expect(lost.filter((x) => x === account)).toEqual([account]);
  });
});
