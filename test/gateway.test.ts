import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gateway } from '../src/gateway/gateway.js';
import { ClusterNode } from '../src/node/node.js';
import type { XConfig } from '../src/config/schema.js';
import { XError } from '../src/errors.js';
import { encodeAuth, parseWelcome } from '../src/protocol/client-messages.js';
import { Cmd } from '../src/protocol/commands.js';
import { Flags, encodeFrame } from '../src/protocol/frame.js';
import { RawClient, startCluster, waitUntil } from './helpers/inproc.js';

type Cluster = Awaited<ReturnType<typeof startCluster>>;

let c: Cluster;
let gw: Gateway;
let gw2: Gateway;
const lobbies: ClusterNode[] = [];
let match: ClusterNode;
const lost: { node: string; account: string }[] = [];
const arrived: { node: string; account: string }[] = [];

async function lobby(): Promise<ClusterNode> {
  const n = c.own(new ClusterNode(c.ctx, { type: 4, name: 'lobby' }));
  n.enableRelay();
  // 1: echo with the node's id; 2: request -> reply; 3: ask to push 5 messages; 4: throw a typed error; 5, 6 below
  n.handleClient(1, (data, ctx) => void n.sendToClient(ctx.account, 1, `${n.id}:${Buffer.from(data).toString()}`));
  n.handleClient(2, (data) => `re:${Buffer.from(data).toString()}`);
  n.handleClient(3, (_d, ctx) => {
    for (let i = 0; i < 5; i++) n.sendToClient(ctx.account, 3, String(i));
  });
  n.handleClient(4, () => {
    throw new XError('BAD_REQUEST', 'nope');
  });
  // 5: async, resolves to nothing; 6: throws a plain Error whose text is internal
  n.handleClient(5, async () => {});
  n.handleClient(6, () => {
    throw new Error('db password is hunter2');
  });
  n.onAccountLost((account) => lost.push({ node: n.id, account }));
  n.on('account-arrived', (account) => arrived.push({ node: n.id, account }));
  await n.start();
  await n.ready(5000);
  lobbies.push(n);
  return n;
}

/** What the login service does: a generation, allocations, a single-use token. */
async function issueToken(account: string, gateway: Gateway, opts: { lobbyId?: string; ttlMs?: number } = {}) {
  const generation = await c.store.nextGeneration(account);
  const lobbyId =
    opts.lobbyId ??
    (await c.store.allocate(
      account,
      4,
      lobbies.filter((l) => gateway.node.has(l.id)).map((l) => ({ id: l.id, load: 0 })),
    ))!;
  const token = randomBytes(16).toString('base64url');
  await c.store.putToken(
    token,
    { account, gatewayId: gateway.node.id, generation, allocations: { '4': lobbyId }, expiresAt: Date.now() + (opts.ttlMs ?? 10_000) },
    60_000,
  );
  return { token, generation, lobbyId };
}

async function login(account: string, gateway = gw) {
  const t = await issueToken(account, gateway);
  const cl = await RawClient.connect(gateway.tcpPort);
  cl.send(Cmd.AUTH, encodeAuth({ token: t.token }));
  const w = await cl.next((f) => f.cmd === Cmd.WELCOME || f.cmd === Cmd.ERROR);
  expect(w.cmd).toBe(Cmd.WELCOME);
  return { cl, welcome: parseWelcome(w.body), ...t };
}

beforeAll(async () => {
  c = await startCluster((cfg) => {
    cfg.gateway.reconnectGraceMs = 600;
    cfg.gateway.maxFrame = 4096;
    cfg.gateway.rateLimitPerSec = 50;
    cfg.gateway.rateBurst = 50;
    cfg.gateway.floodDisconnectAfter = 200;
    cfg.gateway.maxOutboundBytes = 64 * 1024;
    cfg.gateway.authTimeoutMs = 500;
  });
  gw = c.own(new Gateway(c.ctx));
  await gw.start();
  gw2 = c.own(new Gateway(c.ctx));
  await gw2.start();
  await lobby();
  await lobby();
  match = c.own(new ClusterNode(c.ctx, { type: 5, name: 'match' }));
  match.handleClient(7, (data, ctx) => `match:${ctx.account}:${Buffer.from(data).toString()}`);
  await match.start();
  await Promise.all([gw.node.ready(5000), gw2.node.ready(5000)]);
  await waitUntil(() => gw.node.list(4).length === 2 && gw.node.list(5).length === 1 && gw2.node.list(4).length === 2, 5000, 'membership');
});

afterAll(async () => {
  await c?.cleanup();
});

describe('gateway routing', () => {
  it('routes cmd/offset to the allocated lobby and back as type*offset+cmd', async () => {
    const { cl, lobbyId } = await login('alice');
    cl.send(4001, 'hi');
    const f = await cl.next((x) => x.cmd === 4001);
    expect(Buffer.from(f.body).toString()).toBe(`${lobbyId}:hi`);
    await waitUntil(() => arrived.some((a) => a.account === 'alice' && a.node === lobbyId), 2000, 'arrival event');
    cl.close();
  });

  it('answers client requests with the same rid, and typed errors as error responses', async () => {
    const { cl } = await login('bob');
    cl.send(4002, 'ping', Flags.REQUEST, 77);
    const r = await cl.next((x) => x.rid === 77);
    expect(r.flags & Flags.RESPONSE).toBeTruthy();
    expect(Buffer.from(r.body).toString()).toBe('re:ping');
    cl.send(4004, '', Flags.REQUEST, 78);
    const e = await cl.next((x) => x.rid === 78);
    expect(e.flags & Flags.ERROR).toBeTruthy();
    expect(cl.json(e)).toMatchObject({ code: 'BAD_REQUEST', message: 'nope' });
    cl.close();
  });

  it('routes stateless types by selection (match)', async () => {
    const { cl } = await login('carol');
    cl.send(5007, 'q', Flags.REQUEST, 1);
    const r = await cl.next((x) => x.rid === 1);
    expect(Buffer.from(r.body).toString()).toBe('match:carol:q');
    cl.close();
  });

  it('answers reserved commands with an error and keeps the connection', async () => {
    const { cl } = await login('dave');
    cl.send(3001, 'x');
    const e = await cl.next((x) => x.cmd === Cmd.ERROR);
    expect(cl.json(e).code).toBe('RESERVED_COMMAND');
    cl.send(1005, 'x', Flags.REQUEST, 9);
    const r = await cl.next((x) => x.rid === 9);
    expect(cl.json(r).code).toBe('RESERVED_COMMAND');
    cl.send(4002, 'still here', Flags.REQUEST, 10);
    expect(Buffer.from((await cl.next((x) => x.rid === 10)).body).toString()).toBe('re:still here');
    expect(cl.closed).toBe(false);
    cl.close();
  });

  it('broadcasts from a node reach every client on every gateway', async () => {
    const a = await login('eve', gw);
    const b = await login('frank', gw2);
    lobbies[0]!.broadcastToClients(9, 'all');
    await a.cl.next((x) => x.cmd === 4009);
    await b.cl.next((x) => x.cmd === 4009);
    a.cl.close();
    b.cl.close();
  });
});

describe('gateway authentication', () => {
  async function refusal(body: Uint8Array | string, port = gw.tcpPort) {
    const cl = await RawClient.connect(port);
    cl.send(Cmd.AUTH, body);
    const e = await cl.next((f) => f.cmd === Cmd.ERROR);
    await waitUntil(() => cl.closed, 3000, 'close');
    return cl.json(e);
  }

  it('refuses garbage, replayed, expired and foreign-gateway tokens with a reason', async () => {
    expect((await refusal('not json')).code).toBe('BAD_REQUEST');
    expect((await refusal(encodeAuth({ token: 'garbage' }))).code).toBe('BAD_TOKEN');
    const t = await issueToken('gina', gw);
    const ok = await RawClient.connect(gw.tcpPort);
    ok.send(Cmd.AUTH, encodeAuth({ token: t.token }));
    await ok.next((f) => f.cmd === Cmd.WELCOME);
    const replay = await refusal(encodeAuth({ token: t.token }));
    expect(replay.code).toBe('BAD_TOKEN');
    expect(String(replay.message)).toMatch(/already used/);
    const expired = await issueToken('hank', gw, { ttlMs: -1 });
    expect((await refusal(encodeAuth({ token: expired.token }))).code).toBe('TOKEN_EXPIRED');
    const foreign = await issueToken('ivan', gw2);
    const f = await refusal(encodeAuth({ token: foreign.token }), gw.tcpPort);
    expect(f.code).toBe('BAD_TOKEN');
    expect(String(f.message)).toMatch(/another gateway/);
    // Presented at the wrong gateway, the token was not used up: it still works at its own.
    const right = await RawClient.connect(gw2.tcpPort);
    right.send(Cmd.AUTH, encodeAuth({ token: foreign.token }));
    const w = await right.next((x) => x.cmd === Cmd.WELCOME || x.cmd === Cmd.ERROR);
    expect(w.cmd).toBe(Cmd.WELCOME);
    right.close();
    ok.close();
  });

  it('closes a connection that does not authenticate in time', async () => {
    const cl = await RawClient.connect(gw.tcpPort);
    const e = await cl.next((f) => f.cmd === Cmd.ERROR, 3000);
    expect(cl.json(e).code).toBe('HANDSHAKE_TIMEOUT');
    await waitUntil(() => cl.closed, 3000, 'close');
  });
});

describe('client handler results', () => {
  it('an async handler that resolves to nothing answers a request with an empty response', async () => {
    const { cl } = await login('empty-reply');
    cl.send(4005, 'x', Flags.REQUEST, 31);
    const r = await cl.next((f) => f.rid === 31);
    expect(r.flags).toBe(Flags.RESPONSE);
    expect(r.body.length).toBe(0);
    cl.close();
  });

  it("a handler's exception text never reaches the client: a code and a reference do", async () => {
    const { cl } = await login('thrower');
    cl.send(4006, 'x', Flags.REQUEST, 32);
    const r = await cl.next((f) => f.rid === 32);
    expect(r.flags).toBe(Flags.RESPONSE | Flags.ERROR);
    const e = cl.json(r);
    expect(e.code).toBe('HANDLER_ERROR');
    expect(String(e.message)).toMatch(/^the handler of command 6 failed \(ref [0-9a-f]{8}\)$/);
    expect(JSON.stringify(e)).not.toContain('hunter2');
    cl.close();
  });
});

describe('before AUTH', () => {
  it('a frame over gateway.preAuthMaxFrame is refused before it is buffered, though it is under gateway.maxFrame', async () => {
    const cl = await RawClient.connect(gw.tcpPort);
    // Only the header and a few bytes of a 3000-byte AUTH: the length alone decides.
    cl.raw.write(encodeFrame(Cmd.AUTH, Buffer.alloc(3000)).subarray(0, 20));
    const e = await cl.next((f) => f.cmd === Cmd.ERROR);
    expect(cl.json(e)).toMatchObject({ code: 'FRAME_TOO_LARGE' });
    expect(String(cl.json(e).message)).toContain('limit of 1024');
    await waitUntil(() => cl.closed, 3000, 'close');
  });

  it('the same frame size is accepted once authenticated', async () => {
    const { cl } = await login('preauth-big');
    cl.send(4002, Buffer.alloc(3000), Flags.REQUEST, 77);
    const r = await cl.next((f) => f.rid === 77);
    expect(r.flags & Flags.RESPONSE).toBeTruthy();
    expect(cl.closed).toBe(false);
    cl.close();
  });

  it('only AUTH and PING are answered: another framework command closes the connection without an answer', async () => {
    const cl = await RawClient.connect(gw.tcpPort);
    cl.send(Cmd.PING);
    await cl.next((f) => f.cmd === Cmd.PONG);
    cl.send(Cmd.STATUS, new Uint8Array(0), Flags.REQUEST, 5);
    const e = await cl.next((f) => f.cmd === Cmd.ERROR);
    expect(cl.json(e)).toMatchObject({ code: 'BAD_REQUEST', message: 'the first frame must be AUTH' });
    await waitUntil(() => cl.closed, 3000, 'close');
    expect(cl.frames.some((f) => f.rid === 5)).toBe(false);
  });

  it('PINGs before AUTH are rate-limited: a flood closes the connection', async () => {
    const cl = await RawClient.connect(gw.tcpPort);
    for (let i = 0; i < 200; i++) cl.send(Cmd.PING);
    await waitUntil(() => cl.closed, 3000, 'close');
    const pongs = cl.frames.filter((f) => f.cmd === Cmd.PONG).length;
    expect(pongs).toBeLessThanOrEqual(50); // the burst
    expect(cl.frames.some((f) => f.cmd === Cmd.ERROR && cl.json(f).code === 'RATE_LIMITED')).toBe(true);
  });

  it('fuzz: random bytes and frames before AUTH get at most ERROR or PONG, the connection ends, and logins still work', async () => {
    let seed = 99;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const junk = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rnd() * 256)));
    const cmds = [Cmd.AUTH, Cmd.PING, Cmd.WELCOME, Cmd.RELAY_FROM_CLIENT, Cmd.ERROR, 4001, 7];
    const clients = await Promise.all(Array.from({ length: 30 }, () => RawClient.connect(gw.tcpPort)));
    clients.forEach((cl, i) => {
      const kind = i % 3;
      if (kind === 0) cl.raw.write(junk(1 + Math.floor(rnd() * 400)));
      else if (kind === 1)
        cl.send(cmds[Math.floor(rnd() * cmds.length)]!, junk(Math.floor(rnd() * 200)), Math.floor(rnd() * 8), Math.floor(rnd() * 100));
      else cl.send(Cmd.AUTH, junk(Math.floor(rnd() * 100)));
    });
    // Each one is refused, or closed at the 500 ms auth deadline at the latest.
    await waitUntil(() => clients.every((cl) => cl.closed), 5000, 'every fuzz connection closed');
    for (const cl of clients) expect(cl.frames.every((f) => f.cmd === Cmd.ERROR || f.cmd === Cmd.PONG)).toBe(true);
    const { cl } = await login('after-fuzz');
    cl.send(4002, 'ok', Flags.REQUEST, 5);
    expect(Buffer.from((await cl.next((f) => f.rid === 5)).body).toString()).toBe('re:ok');
    cl.close();
  });

  /** A gateway of this cluster with its own client limits. */
  async function gatewayWith(limits: Partial<XConfig['gateway']>): Promise<Gateway> {
    const g = c.own(new Gateway({ ...c.ctx, config: { ...c.ctx.config, gateway: { ...c.ctx.config.gateway, ...limits } } }));
    await g.start();
    return g;
  }

  it('caps unauthenticated connections per address; authenticating frees the slot', async () => {
    const g = await gatewayWith({ maxPendingPerAddress: 3 });
    const idle = await Promise.all([1, 2, 3].map(() => RawClient.connect(g.tcpPort)));
    const fourth = await RawClient.connect(g.tcpPort);
    const e = await fourth.next((f) => f.cmd === Cmd.ERROR);
    expect(fourth.json(e).code).toBe('TOO_MANY_CONNECTIONS');
    await waitUntil(() => fourth.closed, 3000, 'refused connection closed');
    // One of the three logs in: its slot is free again for a newcomer.
    const t = await issueToken('pending-cap', g);
    idle[0]!.send(Cmd.AUTH, encodeAuth({ token: t.token }));
    await idle[0]!.next((f) => f.cmd === Cmd.WELCOME);
    const fifth = await RawClient.connect(g.tcpPort);
    fifth.send(Cmd.PING);
    await fifth.next((f) => f.cmd === Cmd.PONG);
    expect(fifth.closed).toBe(false);
    for (const cl of [...idle, fifth]) cl.close();
  });

  it('limits the accept rate per address', async () => {
    const g = await gatewayWith({ acceptRatePerAddress: 5, maxPendingPerAddress: 100 });
    const conns = await Promise.all(Array.from({ length: 12 }, () => RawClient.connect(g.tcpPort)));
    await waitUntil(() => conns.filter((cl) => cl.closed).length >= 6, 3000, 'refusals');
    const refused = conns.filter((cl) => cl.frames.some((f) => f.cmd === Cmd.ERROR && cl.json(f).code === 'RATE_LIMITED'));
    expect(refused.length).toBeGreaterThanOrEqual(6);
    expect(refused.length).toBeLessThanOrEqual(7); // 5 in the bucket, plus what refilled meanwhile
    for (const cl of conns) cl.close();
  });

  it('a WebSocket upgrade that never completes is closed at the auth deadline', async () => {
    const sock = net.connect(gw.wsPort, '127.0.0.1');
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n'); // headers never finished
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.on('error', () => {});
    sock.resume();
    // gateway.authTimeoutMs is 500 here; Node's default would keep it for a minute.
    await expect(Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('open'), 4000))])).resolves.toBe('closed');
    sock.destroy();
  });
});

describe('gateway limits', () => {
  it('closes the connection on an oversized frame, with a reason', async () => {
    const { cl } = await login('big');
    cl.send(4001, Buffer.alloc(5000));
    const e = await cl.next((f) => f.cmd === Cmd.ERROR);
    expect(cl.json(e).code).toBe('FRAME_TOO_LARGE');
    await waitUntil(() => cl.closed, 3000, 'close');
  });

  it('throttles a flooding client: a dropped request is answered RATE_LIMITED at once, and a client that keeps going is disconnected', async () => {
    const { cl } = await login('flood');
    for (let i = 0; i < 120; i++) cl.send(4002, 'x', Flags.REQUEST, 1000 + i);
    // Every request gets its response: the reply, or RATE_LIMITED at once for a dropped one (no client timeout).
    await waitUntil(() => cl.frames.filter((f) => f.rid >= 1000).length === 120, 3000, 'a response to every request');
    const responses = cl.frames.filter((f) => f.rid >= 1000);
    const limited = responses.filter((f) => f.flags & Flags.ERROR);
    expect(limited.length).toBeGreaterThan(0);
    expect(limited.every((f) => cl.json(f).code === 'RATE_LIMITED')).toBe(true);
    expect(new Set(responses.map((f) => f.rid)).size).toBe(120);
    for (let i = 0; i < 400; i++) cl.send(4002, 'x');
    // One-way messages dropped get a notice now and then, not one each.
    const notice = await cl.next((f) => f.cmd === Cmd.ERROR);
    expect(cl.json(notice).code).toBe('RATE_LIMITED');
    await waitUntil(() => cl.closed, 3000, 'disconnect');
    expect(cl.frames.some((f) => f.cmd === Cmd.ERROR && String(cl.json(f).message).includes('disconnected'))).toBe(true);
  });

  it('disconnects a client that never reads, without buffering without bound', async () => {
    const { cl } = await login('slow');
    cl.raw.pause();
    await waitUntil(() => gw.isConnected('slow'), 2000, 'connected');
    const l = lobbies.find((x) => x.accounts().includes('slow'))!;
    // 64 KiB outbound limit; push 1 KiB messages until the gateway gives up on the client.
    const payload = Buffer.alloc(1024, 1);
    for (let i = 0; i < 20 && gw.isConnected('slow'); i++) {
      for (let j = 0; j < 500; j++) l.sendToClient('slow', 8, payload);
      await new Promise((r) => setTimeout(r, 20));
    }
    await waitUntil(() => !gw.isConnected('slow'), 5000, 'slow client dropped');
    expect(await c.ctx.metrics.text()).toMatch(/gateway_refused_total\{reason="slow_consumer"\} [1-9]/);
    cl.close();
  });
});

describe('sessions and lost accounts', () => {
  it('reports a lost account only after the reconnect grace', async () => {
    const { cl, lobbyId } = await login('lena');
    await waitUntil(() => arrived.some((a) => a.account === 'lena'), 2000, 'arrival');
    const t0 = Date.now();
    cl.close();
    await waitUntil(() => lost.some((l) => l.account === 'lena'), 5000, 'lost');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(550);
    expect(lost.find((l) => l.account === 'lena')!.node).toBe(lobbyId);
  });

  it('a reconnect within the grace loses nothing: no lost-account, buffered messages delivered', async () => {
    const { cl, welcome } = await login('mia');
    cl.close();
    await waitUntil(() => cl.closed, 2000, 'closed');
    const l = lobbies.find((x) => x.accounts().includes('mia'))!;
    for (let i = 0; i < 3; i++) l.sendToClient('mia', 6, `while-away-${i}`);
    const again = await RawClient.connect(gw.tcpPort);
    again.send(Cmd.AUTH, encodeAuth({ resume: welcome.resume }));
    const w = await again.next((f) => f.cmd === Cmd.WELCOME);
    expect(again.json(w).resumed).toBe(true);
    await waitUntil(() => again.frames.filter((f) => f.cmd === 4006).length === 3, 2000, 'buffered messages');
    expect(again.frames.filter((f) => f.cmd === 4006).map((f) => Buffer.from(f.body).toString())).toEqual([
      'while-away-0',
      'while-away-1',
      'while-away-2',
    ]);
    await new Promise((r) => setTimeout(r, 900)); // past the grace: nothing may be reported lost
    expect(lost.some((x) => x.account === 'mia')).toBe(false);
    again.close();
  });

  it('a second login kicks the old connection with a reason and keeps the lobby state (no lost-account)', async () => {
    const first = await login('noah');
    const second = await login('noah');
    const k = await first.cl.next((f) => f.cmd === Cmd.ERROR);
    expect(first.cl.json(k).code).toBe('KICKED');
    await waitUntil(() => first.cl.closed, 2000, 'kicked close');
    expect(second.lobbyId).toBe(first.lobbyId);
    second.cl.send(4001, 'after');
    await second.cl.next((f) => f.cmd === 4001);
    await new Promise((r) => setTimeout(r, 900));
    expect(lost.some((x) => x.account === 'noah')).toBe(false);
    second.cl.close();
  });

  it('a login on another gateway kicks the session on the first one', async () => {
    const first = await login('olga', gw);
    const second = await login('olga', gw2);
    const k = await first.cl.next((f) => f.cmd === Cmd.ERROR);
    expect(first.cl.json(k).code).toBe('KICKED');
    second.cl.close();
  });

  it('when the allocated lobby dies, the next message is served by another lobby without a disconnect', async () => {
    const extra = await lobby();
    await waitUntil(() => gw.node.has(extra.id), 3000, 'gateway sees the new lobby');
    const t = await issueToken('pete', gw, { lobbyId: extra.id });
    const cl = await RawClient.connect(gw.tcpPort);
    cl.send(Cmd.AUTH, encodeAuth({ token: t.token }));
    await cl.next((f) => f.cmd === Cmd.WELCOME);
    cl.send(4001, 'one');
    expect(Buffer.from((await cl.next((f) => f.cmd === 4001)).body).toString()).toBe(`${extra.id}:one`);
    await extra.stop();
    await waitUntil(() => !gw.node.has(extra.id), 3000, 'gateway sees the lobby leave');
    cl.send(4001, 'two');
    const r = await cl.next((f) => f.cmd === 4001 && Buffer.from(f.body).toString().endsWith(':two'));
    const servedBy = Buffer.from(r.body).toString().split(':')[0];
    expect(servedBy).not.toBe(extra.id);
    expect(lobbies.map((l) => l.id)).toContain(servedBy);
    expect(cl.closed).toBe(false);
    cl.close();
  });
});
