/**
 * Client SDK (src/client, published as xserver/client) against a FAKE gateway written here:
 * a TCP server and a `ws` WebSocketServer speaking docs/protocol.md §6. The fake answers AUTH
 * with WELCOME or ERROR, echoes user frames back with cmd + 1, answers requests (4001 echo,
 * 4002 error response, 4003 never), answers PING, and can kick, send error notices, go silent
 * or drop the connection.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import ts from 'typescript';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket as NodeWebSocket, WebSocketServer } from 'ws';
import {
  ClientError,
  Cmd,
  Flags,
  FrameDecoder,
  HEADER_SIZE,
  XClient,
  decodeFrame,
  encodeFrame,
  json,
  login,
  loginEndpoint,
  text,
  toBytes,
  type Frame,
  type LoginResult,
  type Welcome,
  type XClientOptions,
} from '../src/client/index.js';
import { encodeErrorNotice, encodeGoingAway, encodeWelcome, parseAuth } from '../src/protocol/client-messages.js';
import { decodeFrames } from '../src/protocol/frame.js';
import { waitFor as waitForCondition } from '../testkit/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The kit's waitFor in this file's short form (a fake gateway in this process: 5 ms re-checks are cheap). */
const waitFor = async (cond: () => boolean, what: string, ms = 5000): Promise<void> => {
  await waitForCondition(cond, { timeoutMs: ms, what, pollMs: 5 });
};

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Fake gateway

type Kind = 'tcp' | 'ws';

class FakeConn {
  authed = false;
  account = '';
  pings = 0;
  closed = false;
  /** Ignore everything from the client and send nothing (a hung peer). */
  silent = false;
  readonly frames: Frame[] = [];
  /** WebSocket messages received (a batched one holds several frames). */
  messages = 0;

  constructor(
    readonly kind: Kind,
    private readonly write: (frames: Uint8Array[]) => void,
    readonly drop: () => void,
    readonly end: () => void,
  ) {}

  send(cmd: number, body: Uint8Array | string = '', flags = 0, rid = 0): void {
    this.sendAll([encodeFrame(cmd, toBytes(body), flags, rid)]);
  }

  /** TCP: one write holding all frames (they arrive in one chunk); WS: one message each. */
  sendAll(frames: Uint8Array[]): void {
    if (!this.closed) this.write(frames);
  }
}

class FakeGateway {
  heartbeatMs = 200;
  /** WELCOME's graceMs (omitted when undefined). */
  graceMs: number | undefined = undefined;
  answerPings = true;
  readonly tokens = new Map([['good-token', 'alice']]);
  readonly resumes = new Map<string, string>();
  readonly conns: FakeConn[] = [];
  readonly auths: { kind: 'token' | 'resume'; ok: boolean }[] = [];
  readonly received: { cmd: number; body: string }[] = [];
  /** New connections start silent (never answer AUTH). */
  silentNew = false;
  /** Messages (cmd 7000) sent in the same write right after a resume WELCOME. */
  resumeBacklog: string[] = [];
  /** Handoff tokens this gateway takes (AUTH {handoff}) -> account. */
  readonly handoffs = new Map<string, string>();
  /** Frames sent right behind the WELCOME of a handoff (what a moved session brings). */
  handoffBacklog: Uint8Array[] = [];
  /** WELCOME `batch` (0: none): the client may then send batched WebSocket messages. */
  batch = 0;
  tcpPort = 0;
  wsPort = 0;
  private n = 0;
  private stopped = false;
  private readonly tcp = net.createServer((s) => this.acceptTcp(s));
  private wss!: WebSocketServer;

  async start(): Promise<this> {
    await new Promise<void>((r) => this.tcp.listen(0, '127.0.0.1', r));
    this.tcpPort = (this.tcp.address() as net.AddressInfo).port;
    this.wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((r) => this.wss.once('listening', r));
    this.wsPort = (this.wss.address() as net.AddressInfo).port;
    this.wss.on('connection', (ws) => this.acceptWs(ws));
    return this;
  }

  login(token = 'good-token'): LoginResult {
    return {
      token,
      account: 'alice',
      generation: 1,
      gateway: { id: 'gw-1', host: '127.0.0.1', tcpPort: this.tcpPort, wsUrl: `ws://127.0.0.1:${this.wsPort}` },
      allocations: { '4': 'lobby-1' },
      expiresInMs: 30000,
    };
  }

  latest(): FakeConn {
    const c = this.conns[this.conns.length - 1];
    if (!c) throw new Error('no connection yet');
    return c;
  }

  kick(c: FakeConn, code = 'KICKED', message = 'logged in elsewhere'): void {
    c.send(Cmd.ERROR, encodeErrorNotice({ code, message }));
    c.end();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const c of this.conns) c.drop();
    await Promise.all([new Promise<void>((r) => this.tcp.close(() => r())), new Promise<void>((r) => this.wss.close(() => r()))]);
  }

  private acceptTcp(s: net.Socket): void {
    const conn = new FakeConn(
      'tcp',
      (frames) => s.write(concat(frames)),
      () => s.destroy(),
      () => s.end(),
    );
    conn.silent = this.silentNew;
    this.conns.push(conn);
    const dec = new FrameDecoder(1 << 20, (f) => this.onFrame(conn, f));
    s.on('data', (chunk) => {
      try {
        dec.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      } catch {
        s.destroy();
      }
    });
    s.on('error', () => {}); // a reset by the client under test; 'close' follows and is what counts
    s.on('close', () => (conn.closed = true));
  }

  private acceptWs(ws: NodeWebSocket): void {
    const conn = new FakeConn(
      'ws',
      (frames) => frames.forEach((f) => ws.send(f)),
      () => ws.terminate(),
      () => ws.close(),
    );
    conn.silent = this.silentNew;
    this.conns.push(conn);
    ws.on('message', (data: Buffer) => {
      conn.messages++;
      try {
        for (const f of decodeFrames(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 1 << 20)) this.onFrame(conn, f);
      } catch {
        ws.terminate();
      }
    });
    ws.on('error', () => {}); // a reset by the client under test; 'close' follows and is what counts
    ws.on('close', () => (conn.closed = true));
  }

  private onFrame(c: FakeConn, f: Frame): void {
    if (c.silent) return;
    c.frames.push({ ...f, body: f.body.slice() });
    if (!c.authed) return this.onAuth(c, f);
    if (f.cmd === Cmd.PING) {
      c.pings++;
      if (this.answerPings) c.send(Cmd.PONG);
      return;
    }
    if (f.cmd === Cmd.PONG) return;
    if (f.flags & Flags.REQUEST) {
      if (f.cmd === 4001) c.send(f.cmd, f.body, Flags.RESPONSE, f.rid);
      else if (f.cmd === 4002) c.send(f.cmd, JSON.stringify({ code: 'NOPE', message: 'no such thing' }), Flags.RESPONSE | Flags.ERROR, f.rid);
      else if (f.cmd === 4003) {
        // never answered
      } else c.send(f.cmd, JSON.stringify({ code: 'UNKNOWN_COMMAND', message: `${f.cmd}` }), Flags.RESPONSE | Flags.ERROR, f.rid);
      return;
    }
    if (f.cmd < 4000) {
      // types 0-3 are reserved: a notice, the connection stays open (§6.3)
      c.send(Cmd.ERROR, encodeErrorNotice({ code: 'RESERVED_COMMAND', message: `command ${f.cmd} is reserved`, cmd: f.cmd }));
      return;
    }
    this.received.push({ cmd: f.cmd, body: text(f.body) });
    if (f.cmd === 6000) {
      // three pushes in one write
      c.sendAll(['1', '2', '3'].map((b) => encodeFrame(6001, toBytes(b))));
      return;
    }
    c.send(f.cmd + 1, f.body);
  }

  private onAuth(c: FakeConn, f: Frame): void {
    const refuse = (code: string, message: string) => {
      c.send(Cmd.ERROR, encodeErrorNotice({ code, message }));
      c.end();
    };
    if (f.cmd !== Cmd.AUTH) return refuse('AUTH_REQUIRED', 'first frame must be AUTH');
    const a = parseAuth(f.body);
    if ('token' in a) {
      const account = this.tokens.get(a.token);
      this.auths.push({ kind: 'token', ok: account !== undefined });
      if (account === undefined) return refuse('BAD_TOKEN', 'unknown or used token');
      this.welcome(c, account, false);
    } else if ('resume' in a) {
      const account = this.resumes.get(a.resume);
      this.auths.push({ kind: 'resume', ok: account !== undefined });
      if (account === undefined) return refuse('BAD_RESUME', 'no session to resume');
      this.resumes.delete(a.resume);
      this.welcome(c, account, true);
    } else {
      const account = this.handoffs.get(a.handoff);
      if (account === undefined) return refuse('BAD_HANDOFF_TOKEN', 'unknown handoff token');
      this.handoffs.delete(a.handoff);
      c.authed = true;
      c.account = account;
      const w = encodeWelcome({ account, generation: 1, resume: `moved-${++this.n}`, heartbeatMs: this.heartbeatMs, resumed: true, moved: true });
      c.sendAll([encodeFrame(Cmd.WELCOME, w), ...this.handoffBacklog.splice(0)]);
    }
  }

  /** GOING_AWAY to `c`, naming `to`. */
  goingAway(c: FakeConn, to: FakeGateway, handoff: string): void {
    const gateway = { id: 'gw-2', host: '127.0.0.1', tcpPort: to.tcpPort, wsUrl: `ws://127.0.0.1:${to.wsPort}`, tls: false };
    c.send(Cmd.GOING_AWAY, encodeGoingAway({ gateway, handoff }));
  }

  private welcome(c: FakeConn, account: string, resumed: boolean): void {
    c.authed = true;
    c.account = account;
    const resume = `resume-${++this.n}`;
    this.resumes.set(resume, account);
    const w = encodeFrame(
      Cmd.WELCOME,
      encodeWelcome({
        account,
        generation: 1,
        resume,
        heartbeatMs: this.heartbeatMs,
        graceMs: this.graceMs,
        resumed,
        ...(this.batch > 0 ? { batch: this.batch } : {}),
      }),
    );
    const backlog = resumed ? this.resumeBacklog.splice(0).map((b) => encodeFrame(7000, toBytes(b))) : [];
    c.sendAll([w, ...backlog]);
  }
}

// ---------------------------------------------------------------------------------------------

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type EventLog = unknown[][];

function record(c: XClient): EventLog {
  const log: EventLog = [];
  c.on('kicked', (code, message) => log.push(['kicked', code, message]));
  c.on('disconnected', (reason) => log.push(['disconnected', reason]));
  c.on('reconnecting', (attempt) => log.push(['reconnecting', attempt]));
  c.on('reconnected', (w) => log.push(['reconnected', w.resumed]));
  c.on('error', (e) => log.push(['error', e.code]));
  return log;
}

function nextEvent<T = unknown>(c: XClient, event: 'disconnected' | 'reconnected' | 'reconnecting' | 'kicked'): Promise<T> {
  return new Promise((resolve) => c.once(event, ((arg: T) => resolve(arg)) as never));
}

describe('frame codec (src/protocol, as the SDK exports it)', () => {
  it('encodes the documented 13-byte header, big-endian', () => {
    const f = encodeFrame(0xffff0005, toBytes('hi'), Flags.RESPONSE | Flags.ERROR, 0x01020304);
    expect([...f]).toEqual([0, 0, 0, 11, 0xff, 0xff, 0, 5, 6, 1, 2, 3, 4, 0x68, 0x69]);
    expect(f.length).toBe(HEADER_SIZE + 2);
    expect(f).not.toBeInstanceOf(Buffer);
    const d = decodeFrame(f);
    expect(d).toMatchObject({ cmd: 0xffff0005, flags: 6, rid: 0x01020304 });
    expect(text(d.body)).toBe('hi');
  });

  it('reassembles frames split at every byte boundary, and one byte at a time', () => {
    const all = concat([encodeFrame(1, toBytes('abc')), encodeFrame(2), encodeFrame(3, new Uint8Array(300).fill(7), Flags.REQUEST, 9)]);
    for (let cut = 1; cut < all.length; cut++) {
      const out: Frame[] = [];
      const dec = new FrameDecoder(1024, (f) => out.push(f));
      dec.push(all.subarray(0, cut));
      dec.push(all.subarray(cut));
      expect(out.map((f) => f.cmd)).toEqual([1, 2, 3]);
      expect(text(out[0]!.body)).toBe('abc');
      expect(out[2]!.body.length).toBe(300);
      expect(out[2]!.rid).toBe(9);
      expect(dec.buffered).toBe(0);
    }
    const out: Frame[] = [];
    const dec = new FrameDecoder(1024, (f) => out.push({ ...f, body: f.body.slice() }));
    for (const b of all) dec.push(Uint8Array.of(b));
    expect(out.map((f) => f.cmd)).toEqual([1, 2, 3]);
  });

  it('rejects an oversized frame as soon as its length is in, and a length below the header', () => {
    const big = encodeFrame(1, new Uint8Array(2000));
    const dec = new FrameDecoder(1000, () => {});
    expect(() => dec.push(big.subarray(0, 4))).toThrowError(expect.objectContaining({ code: 'FRAME_TOO_LARGE' }));
    expect(() => new FrameDecoder(1000, () => {}).push(Uint8Array.of(0, 0, 0, 3, 1, 2, 3))).toThrowError(
      expect.objectContaining({ code: 'BAD_FRAME' }),
    );
    // also when the length field itself arrives split
    const split = new FrameDecoder(1000, () => {});
    split.push(big.subarray(0, 2));
    expect(() => split.push(big.subarray(2, 3))).not.toThrow();
    expect(() => split.push(big.subarray(3, 6))).toThrowError(expect.objectContaining({ code: 'FRAME_TOO_LARGE' }));
    // exactly at the limit is fine
    const out: Frame[] = [];
    new FrameDecoder(1000, (f) => out.push(f)).push(encodeFrame(1, new Uint8Array(1000)));
    expect(out).toHaveLength(1);
  });

  it('reassembles a large frame from many small chunks, with the next frame behind it', () => {
    const body = new Uint8Array(1 << 20).map((_, i) => (i * 7) & 0xff);
    const all = concat([encodeFrame(42, body), encodeFrame(43, toBytes('tail'))]);
    const out: Frame[] = [];
    const dec = new FrameDecoder(1 << 20, (f) => out.push(f));
    for (let at = 0; at < all.length; at += 1000) dec.push(all.subarray(at, at + 1000));
    expect(out.map((f) => f.cmd)).toEqual([42, 43]);
    expect(out[0]!.body.length).toBe(body.length);
    expect(out[0]!.body.every((b, i) => b === body[i])).toBe(true);
    expect(text(out[1]!.body)).toBe('tail');
    expect(dec.buffered).toBe(0);
  });

  it('decodeFrame (one WebSocket message) checks size and exact length', () => {
    expect(() => decodeFrame(encodeFrame(1, new Uint8Array(50)), 10)).toThrowError(expect.objectContaining({ code: 'FRAME_TOO_LARGE' }));
    expect(() => decodeFrame(concat([encodeFrame(1), Uint8Array.of(0)]))).toThrowError(expect.objectContaining({ code: 'BAD_FRAME' }));
    expect(() => decodeFrame(Uint8Array.of(0, 0, 0, 9))).toThrowError(expect.objectContaining({ code: 'BAD_FRAME' }));
  });

  it('json() of a bad body is a BAD_FRAME ClientError', () => {
    expect(json(toBytes('{"a":1}'))).toEqual({ a: 1 });
    expect(() => json(toBytes('{nope'))).toThrowError(ClientError);
  });
});

describe('XClient basics (no connection)', () => {
  it('cmd() = type * cmdOffset + sub, parseCmd() inverts it, bad input throws', () => {
    const c = new XClient();
    expect(c.cmd(4, 2)).toBe(4002);
    expect(c.parseCmd(4002)).toEqual([4, 2]);
    const d = new XClient({ cmdOffset: 100 });
    expect(d.cmd(5, 7)).toBe(507);
    expect(() => d.cmd(5, 100)).toThrowError(expect.objectContaining({ code: 'BAD_COMMAND' }));
    expect(() => c.cmd(1.5, 0)).toThrowError(ClientError);
  });

  it('send/request before connect fail with NOT_CONNECTED; framework commands are refused', async () => {
    const c = new XClient();
    expect(c.state).toBe('idle');
    expect(() => c.send(4001, 'x')).toThrowError(expect.objectContaining({ code: 'NOT_CONNECTED' }));
    await expect(c.request(4001, 'x')).rejects.toMatchObject({ code: 'NOT_CONNECTED' });
    expect(() => c.send(Cmd.PING)).toThrowError(expect.objectContaining({ code: 'BAD_COMMAND' }));
    expect(() => c.send(-1)).toThrowError(expect.objectContaining({ code: 'BAD_COMMAND' }));
    expect(() => new XClient({ transport: 'udp' as never })).toThrowError(ClientError);
  });
});

describe('login()', () => {
  async function loginServer(): Promise<{ url: string; bodies: unknown[] }> {
    const bodies: unknown[] = [];
    const srv = http.createServer((req, res) => {
      let raw = '';
      req.on('data', (d) => (raw += d));
      req.on('end', () => {
        const body = JSON.parse(raw || '{}') as { account?: string; password?: string };
        bodies.push({ path: req.url, method: req.method, body });
        if (body.password === 'pw') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({
              token: 't1',
              account: body.account,
              gateway: { id: 'gw-1', host: '127.0.0.1', tcpPort: 1, wsUrl: 'ws://127.0.0.1:2' },
              allocations: { '4': 'lobby-1' },
              expiresInMs: 30000,
            }),
          );
        } else if (body.password === 'down') {
          res.writeHead(503, { 'content-type': 'text/plain' });
          res.end('upstream down');
        } else {
          res.writeHead(401, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { code: 'BAD_CREDENTIALS', message: 'wrong account or password' } }));
        }
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => srv.close(() => r())));
    return { url: `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`, bodies };
  }

  it('POSTs {account, password} to /login and returns the result', async () => {
    const s = await loginServer();
    const r = await login(s.url, 'alice', 'pw');
    expect(r).toMatchObject({ token: 't1', account: 'alice', gateway: { id: 'gw-1', tcpPort: 1 }, allocations: { '4': 'lobby-1' } });
    expect(s.bodies[0]).toEqual({ path: '/login', method: 'POST', body: { account: 'alice', password: 'pw' } });
    await login(`${s.url}/login`, 'bob', 'pw');
    expect((s.bodies[1] as { path: string }).path).toBe('/login');
  });

  it('non-2xx answers become ClientErrors with the server code and the HTTP status', async () => {
    const s = await loginServer();
    const e = await login(s.url, 'alice', 'bad').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ClientError);
    expect(e).toMatchObject({ code: 'BAD_CREDENTIALS', status: 401, message: 'wrong account or password' });
    await expect(login(s.url, 'alice', 'down')).rejects.toMatchObject({ code: 'LOGIN_FAILED', status: 503 });
  });

  it('network failures are LOGIN_FAILED; the endpoint is derived from a base URL', async () => {
    const free = net.createServer();
    await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
    const port = (free.address() as net.AddressInfo).port;
    await new Promise<void>((r) => free.close(() => r()));
    await expect(login(`http://127.0.0.1:${port}`, 'a', 'b')).rejects.toMatchObject({ code: 'LOGIN_FAILED' });
    expect(loginEndpoint('http://h:1')).toBe('http://h:1/login');
    expect(loginEndpoint('http://h:1/')).toBe('http://h:1/login');
    expect(loginEndpoint('http://h:1/api/')).toBe('http://h:1/api/login');
    expect(loginEndpoint('http://h:1/login')).toBe('http://h:1/login');
  });
});

describe.each(['tcp', 'ws'] as const)('XClient over %s', (kind) => {
  /** What AUTH carries besides its credential: over WebSocket the SDK asks for batched messages. */
  const authExtra = kind === 'ws' ? { batch: 65536 } : {};
  let gw: FakeGateway;

  beforeEach(async () => {
    gw = await new FakeGateway().start();
    cleanups.push(() => gw.stop());
  });

  function mk(opts: XClientOptions = {}): XClient {
    const c = new XClient({ transport: kind, reconnectDelayMs: 20, ...opts });
    cleanups.push(() => c.close());
    return c;
  }

  it('connects, authenticates with the token and gets WELCOME', async () => {
    const c = mk();
    const w = await c.connect(gw.login());
    expect(w).toEqual({ account: 'alice', generation: 1, resume: 'resume-1', heartbeatMs: 200, resumed: false });
    expect(c.state).toBe('open');
    expect(c.connected).toBe(true);
    expect(c.welcome).toEqual(w);
    expect(gw.latest().kind).toBe(kind);
    expect(gw.latest().frames[0]).toMatchObject({ cmd: Cmd.AUTH, flags: 0, rid: 0 });
    expect(json(gw.latest().frames[0]!.body)).toEqual({ token: 'good-token', ...authExtra });
    await expect(c.connect(gw.login())).rejects.toMatchObject({ code: 'ALREADY_CONNECTED' });
  });

  it('sends the messages of one turn in one WebSocket message once WELCOME agreed to batches, one each otherwise', async () => {
    for (const batch of [65536, 0]) {
      gw.batch = batch;
      const c = mk();
      const w = await c.connect(gw.login());
      expect(w.batch).toBe(batch > 0 ? batch : undefined);
      const conn = gw.latest();
      const before = conn.messages;
      for (let i = 0; i < 10; i++) c.send(4010, `m${i}`);
      await waitFor(() => gw.received.filter((m) => m.cmd === 4010).length === 10, 'the ten messages');
      const messages = conn.messages - before;
      if (kind === 'ws') expect(messages, `batch ${batch}`).toBe(batch > 0 ? 1 : 10);
      gw.received.length = 0;
      await c.close();
    }
  });

  it('GOING_AWAY: moves to the named gateway with AUTH {handoff}, no login; the old connection is read to its end first, sends are queued, a pending request is answered by the new gateway', async () => {
    const to = await new FakeGateway().start();
    cleanups.push(() => to.stop());
    const c = mk();
    const got: string[] = [];
    c.on(7000, (d) => got.push(text(d)));
    const moved: string[] = [];
    c.on('moved', (w, g) => moved.push(`${g.id}:${w.moved}`));
    await c.connect(gw.login());
    const old = gw.latest();
    const pending = c.request(4003, 'in flight'); // the old gateway never answers it
    await waitFor(() => old.frames.some((f) => f.cmd === 4003), 'the request reached the old gateway');
    const rid = old.frames.find((f) => f.cmd === 4003)!.rid;
    to.handoffs.set('h-1', 'alice');
    // What the session brings: its answer to the pending request (forwarded), then a push.
    to.handoffBacklog = [encodeFrame(4003, toBytes('answered at the new gateway'), Flags.RESPONSE, rid), encodeFrame(7000, toBytes('new-1'))];
    gw.goingAway(old, to, 'h-1');
    await waitFor(() => to.conns.some((x) => x.authed), 'the client authenticated at the new gateway');
    expect(c.state).toBe('moving');
    c.send(4010, 'sent while moving');
    // The old gateway's last frames arrive after the new WELCOME: they still come first.
    old.send(7000, 'old-1');
    old.send(7000, 'old-2');
    await waitFor(() => got.length === 2, "the old gateway's last frames");
    expect(got).toEqual(['old-1', 'old-2']);
    old.end();
    await waitFor(() => moved.length === 1, 'moved');
    expect(moved).toEqual(['gw-2:true']);
    expect(got).toEqual(['old-1', 'old-2', 'new-1']);
    expect(text(await pending)).toBe('answered at the new gateway');
    const fresh = to.conns.find((x) => x.authed)!;
    expect(json(fresh.frames[0]!.body)).toEqual({ handoff: 'h-1', ...authExtra });
    await waitFor(() => to.received.some((m) => m.cmd === 4010), 'the queued send reached the new gateway');
    expect(gw.received.some((m) => m.cmd === 4010)).toBe(false);
    expect(c.state).toBe('open');
    expect(c.welcome?.resume).toMatch(/^moved-/);
    expect(gw.auths.filter((a) => a.kind === 'token')).toHaveLength(1);
  });

  it('a refused handoff leaves the client on the old gateway: an error event, queued sends go there', async () => {
    const to = await new FakeGateway().start();
    cleanups.push(() => to.stop());
    const c = mk();
    const log = record(c);
    await c.connect(gw.login());
    const old = gw.latest();
    gw.goingAway(old, to, 'unknown-token');
    c.send(4010, 'while moving');
    await waitFor(() => log.some((e) => e[0] === 'error'), 'the move failed');
    expect(log).toEqual([['error', 'BAD_HANDOFF_TOKEN']]);
    expect(c.state).toBe('open');
    await waitFor(() => gw.received.some((m) => m.cmd === 4010), 'the queued send went to the old gateway');
    c.send(4012, 'after');
    await waitFor(() => gw.received.some((m) => m.cmd === 4012), 'the old gateway still serves the client');
  });

  it('a refused AUTH rejects with the gateway code; the client can connect again afterwards', async () => {
    const c = mk();
    const log = record(c);
    const e = await c.connect(gw.login('bogus')).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ClientError);
    expect(e).toMatchObject({ code: 'BAD_TOKEN', message: 'unknown or used token' });
    expect(c.state).toBe('closed');
    await sleep(100);
    expect(gw.conns).toHaveLength(1); // no reconnect after a refusal
    expect(log).toEqual([]);
    await c.connect(gw.login());
    expect(c.state).toBe('open');
  });

  it('connect to a closed port fails with CONNECT_FAILED', async () => {
    const lr = gw.login();
    await gw.stop();
    await expect(mk().connect(lr)).rejects.toMatchObject({ code: 'CONNECT_FAILED' });
  });

  it('routes messages to per-command handlers and onAny; off() removes a handler', async () => {
    const c = mk();
    const a: string[] = [];
    const any: [number, string][] = [];
    const offA = c.on(5001, (d, cmd) => a.push(`${cmd}:${text(d)}`));
    c.onAny((d, cmd) => any.push([cmd, text(d)]));
    const pushes: string[] = [];
    c.on(6001, (d) => pushes.push(text(d)));
    const p = c.connect(gw.login());
    c.send(5000, 'early'); // queued while connecting, sent after WELCOME
    await p;
    c.send(5000, 'str');
    c.send(5000, new TextEncoder().encode('bytes'));
    c.send(6000);
    await waitFor(() => pushes.length === 3 && a.length === 3, 'echoes');
    expect(a).toEqual(['5001:early', '5001:str', '5001:bytes']);
    expect(pushes).toEqual(['1', '2', '3']);
    expect(any.map(([cmd]) => cmd)).toEqual([5001, 5001, 5001, 6001, 6001, 6001]);
    expect(gw.received.map((r) => r.body)).toEqual(['early', 'str', 'bytes', '']);
    offA();
    c.send(5000, 'after-off');
    await waitFor(() => any.length === 7, 'onAny');
    expect(a).toHaveLength(3);
  });

  it('carries large bodies (split across TCP chunks)', async () => {
    const c = mk();
    await c.connect(gw.login());
    const big = new Uint8Array(300_000).map((_, i) => i & 0xff);
    const got = await c.request(4001, big);
    expect(got.length).toBe(big.length);
    expect(got.every((b, i) => b === big[i])).toBe(true);
    expect(() => mk({ maxFrame: 10 }).send(5000, 'x'.repeat(11))).toThrowError(expect.objectContaining({ code: 'FRAME_TOO_LARGE' }));
  });

  it('request/response: success, error response with code, timeout', async () => {
    const c = mk();
    await c.connect(gw.login());
    expect(text(await c.request(4001, 'ping me'))).toBe('ping me');
    const [a, b] = await Promise.all([c.request(4001, 'a'), c.request(4001, 'b')]);
    expect([text(a), text(b)]).toEqual(['a', 'b']);
    const e = await c.request(4002, '{}').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ClientError);
    expect(e).toMatchObject({ code: 'NOPE', message: 'no such thing' });
    const t0 = Date.now();
    await expect(c.request(4003, 'x', { timeoutMs: 150 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(c.pendingRequests).toBe(0);
    const rids = gw
      .latest()
      .frames.filter((f) => f.flags & Flags.REQUEST)
      .map((f) => f.rid);
    expect(new Set(rids).size).toBe(rids.length);
    expect(rids.every((r) => r > 0)).toBe(true);
  });

  it('an error notice (RESERVED_COMMAND) is reported as an error event; the connection stays open', async () => {
    const c = mk();
    const log = record(c);
    await c.connect(gw.login());
    c.send(c.cmd(1, 5), 'x');
    await waitFor(() => log.length > 0, 'error event');
    expect(log).toEqual([['error', 'RESERVED_COMMAND']]);
    expect(text(await c.request(4001, 'still here'))).toBe('still here');
    expect(c.state).toBe('open');
  });

  it('a handler that throws is reported, other handlers still run', async () => {
    const c = mk();
    const log = record(c);
    const seen: string[] = [];
    c.on(5001, () => {
      throw new Error('boom');
    });
    c.on(5001, (d) => seen.push(text(d)));
    await c.connect(gw.login());
    c.send(5000, 'x');
    await waitFor(() => seen.length === 1, 'second handler');
    expect(log).toEqual([['error', 'HANDLER_ERROR']]);
  });

  it('pings every heartbeat and stays up while PONGs come back', async () => {
    gw.heartbeatMs = 100;
    const c = mk();
    const log = record(c);
    await c.connect(gw.login());
    await sleep(600);
    const conn = gw.latest();
    expect(conn.pings).toBeGreaterThanOrEqual(4);
    expect(conn.frames.filter((f) => f.cmd === Cmd.PING).every((f) => f.body.length === 0 && f.flags === 0)).toBe(true);
    expect(c.state).toBe('open');
    expect(gw.conns).toHaveLength(1);
    expect(log).toEqual([]);
  });

  it('a silent gateway is detected (~3 heartbeats) and the session is resumed on a new connection', async () => {
    gw.heartbeatMs = 100;
    const c = mk();
    const log = record(c);
    await c.connect(gw.login());
    const first = gw.latest();
    const reconnected = nextEvent<Welcome>(c, 'reconnected');
    const t0 = Date.now();
    first.silent = true;
    const w = await reconnected;
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(3000);
    expect(w.resumed).toBe(true);
    expect(gw.auths).toEqual([
      { kind: 'token', ok: true },
      { kind: 'resume', ok: true },
    ]);
    expect(json(gw.latest().frames[0]!.body)).toEqual({ resume: 'resume-1', ...authExtra });
    await waitFor(() => first.closed, 'old connection closed');
    expect(log).toEqual([
      ['reconnecting', 1],
      ['reconnected', true],
    ]);
  });

  it('reconnects with resume after a drop: in-flight requests fail, queued sends are delivered, backlog arrives', async () => {
    const c = mk();
    const log = record(c);
    const echoes: string[] = [];
    const backlog: string[] = [];
    c.on(5001, (d) => echoes.push(text(d)));
    c.on(7000, (d) => backlog.push(text(d)));
    const w1 = await c.connect(gw.login());
    c.send(5000, 'before');
    await waitFor(() => echoes.length === 1, 'first echo');

    const inflight = c.request(4003, 'lost');
    let queuedReq: Promise<Uint8Array> | undefined;
    c.once('reconnecting', () => {
      expect(c.state).toBe('reconnecting');
      c.send(5000, 'q1');
      c.send(5000, 'q2');
      queuedReq = c.request(4001, 'during');
    });
    const reconnected = nextEvent<Welcome>(c, 'reconnected');
    gw.resumeBacklog = ['while-away-1', 'while-away-2'];
    await waitFor(() => gw.latest().frames.some((f) => f.cmd === 4003), 'request at the gateway');
    gw.latest().drop();

    await expect(inflight).rejects.toMatchObject({ code: 'DISCONNECTED' });
    const w2 = await reconnected;
    expect(w2.resumed).toBe(true);
    expect(w2.resume).not.toBe(w1.resume);
    expect(c.welcome).toEqual(w2);
    expect(text(await queuedReq!)).toBe('during');
    await waitFor(() => echoes.length === 3, 'queued echoes');
    expect(echoes).toEqual(['before', 'q1', 'q2']);
    expect(gw.received.map((r) => r.body)).toEqual(['before', 'q1', 'q2']);
    // frames written right behind WELCOME (same TCP chunk) reach the handlers
    expect(backlog).toEqual(['while-away-1', 'while-away-2']);
    expect(gw.conns).toHaveLength(2);
    expect(json(gw.latest().frames[0]!.body)).toEqual({ resume: w1.resume, ...authExtra });
    expect(log).toEqual([
      ['reconnecting', 1],
      ['reconnected', true],
    ]);
    expect(c.state).toBe('open');
    expect(c.queued).toBe(0);
  });

  it('a refused resume ends the session with disconnected(<code>)', async () => {
    const c = mk();
    const log = record(c);
    await c.connect(gw.login());
    const disconnected = nextEvent<string>(c, 'disconnected');
    gw.resumes.clear(); // the grace period is over
    gw.latest().drop();
    expect(await disconnected).toBe('BAD_RESUME');
    expect(log).toEqual([
      ['reconnecting', 1],
      ['disconnected', 'BAD_RESUME'],
    ]);
    expect(c.state).toBe('closed');
    await sleep(100);
    expect(gw.conns).toHaveLength(2);
    expect(() => c.send(5000, 'x')).toThrowError(expect.objectContaining({ code: 'NOT_CONNECTED' }));
  });

  it('gives up after maxReconnectAttempts when the gateway is gone; queued requests fail', async () => {
    const c = mk({ maxReconnectAttempts: 3, reconnectDelayMs: 10 });
    const log = record(c);
    await c.connect(gw.login());
    let queued: Promise<unknown> | undefined;
    c.once('reconnecting', () => {
      queued = c.request(4001, 'never').catch((e: unknown) => e);
    });
    const disconnected = nextEvent<string>(c, 'disconnected');
    await gw.stop();
    expect(await disconnected).toBe('RECONNECT_FAILED');
    expect(log).toEqual([
      ['reconnecting', 1],
      ['reconnecting', 2],
      ['reconnecting', 3],
      ['disconnected', 'RECONNECT_FAILED'],
    ]);
    expect(await queued).toMatchObject({ code: 'RECONNECT_FAILED' });
  });

  it('stops resuming once the grace announced in WELCOME has passed', async () => {
    gw.graceMs = 150;
    const c = mk({ maxReconnectAttempts: 1000, reconnectDelayMs: 10, maxReconnectDelayMs: 20 });
    const w = await c.connect(gw.login());
    expect(w.graceMs).toBe(150);
    expect(c.welcome?.graceMs).toBe(150);
    let attempts = 0;
    c.on('reconnecting', () => attempts++);
    let queued: Promise<unknown> | undefined;
    c.once('reconnecting', () => {
      queued = c.request(4001, 'never').catch((e: unknown) => e);
    });
    const disconnected = nextEvent<string>(c, 'disconnected');
    await gw.stop();
    expect(await disconnected).toBe('RECONNECT_FAILED');
    // Retries every 10-20 ms for the 150 ms grace, not the 1000 attempts the options allow.
    expect(attempts).toBeGreaterThan(0);
    expect(attempts).toBeLessThan(100);
    expect(await queued).toMatchObject({ code: 'RECONNECT_FAILED', message: expect.stringMatching(/150 ms reconnect grace/) });
  });

  it('with reconnect: false a drop ends the session', async () => {
    const c = mk({ reconnect: false });
    const log = record(c);
    await c.connect(gw.login());
    const disconnected = nextEvent<string>(c, 'disconnected');
    gw.latest().drop();
    expect(await disconnected).toBe('DISCONNECTED');
    await sleep(100);
    expect(gw.conns).toHaveLength(1);
    expect(log).toEqual([['disconnected', 'DISCONNECTED']]);
  });

  it('KICKED: kicked event, pending requests fail, no reconnect', async () => {
    const c = mk();
    const log = record(c);
    await c.connect(gw.login());
    const pending = c.request(4003, 'x').catch((e: unknown) => e);
    const disconnected = nextEvent<string>(c, 'disconnected');
    await waitFor(() => gw.latest().frames.some((f) => f.cmd === 4003), 'request at the gateway');
    gw.kick(gw.latest());
    expect(await disconnected).toBe('KICKED');
    expect(await pending).toMatchObject({ code: 'KICKED' });
    await sleep(150);
    expect(gw.conns).toHaveLength(1);
    expect(log).toEqual([
      ['kicked', 'KICKED', 'logged in elsewhere'],
      ['disconnected', 'KICKED'],
    ]);
    expect(c.state).toBe('closed');
    expect(() => c.send(5000, 'x')).toThrowError(expect.objectContaining({ code: 'NOT_CONNECTED' }));
  });

  it('a limit violation notice followed by the close counts as a kick (no reconnect)', async () => {
    const c = mk();
    const log = record(c);
    await c.connect(gw.login());
    const disconnected = nextEvent<string>(c, 'disconnected');
    gw.kick(gw.latest(), 'SLOW_CONSUMER', 'too slow');
    expect(await disconnected).toBe('SLOW_CONSUMER');
    await sleep(150);
    expect(gw.conns).toHaveLength(1);
    expect(log).toEqual([
      ['error', 'SLOW_CONSUMER'],
      ['kicked', 'SLOW_CONSUMER', 'too slow'],
      ['disconnected', 'SLOW_CONSUMER'],
    ]);
  });

  it('close(): graceful, no reconnect, pending requests fail with CLOSED', async () => {
    const c = mk();
    const log = record(c);
    await c.connect(gw.login());
    const pending = c.request(4003, 'x').catch((e: unknown) => e);
    await c.close();
    expect(await pending).toMatchObject({ code: 'CLOSED' });
    expect(c.state).toBe('closed');
    await waitFor(() => gw.latest().closed, 'server side closed');
    await sleep(100);
    expect(gw.conns).toHaveLength(1);
    expect(log).toEqual([['disconnected', 'CLOSED']]);
    await c.close(); // idempotent
    expect(log).toHaveLength(1);
  });

  it('close() during connect rejects connect with CLOSED', async () => {
    const c = mk();
    gw.silentNew = true; // the gateway never answers AUTH
    const p = c.connect(gw.login()).catch((e: unknown) => e);
    await waitFor(() => gw.conns.length === 1, 'connection');
    await sleep(20);
    expect(c.state).toBe('connecting');
    await c.close();
    expect(await p).toMatchObject({ code: 'CLOSED' });
  });

  it('connect times out without WELCOME', async () => {
    const c = mk({ connectTimeoutMs: 200 });
    gw.silentNew = true;
    const p = c.connect(gw.login()).catch((e: unknown) => e);
    expect(await p).toMatchObject({ code: 'TIMEOUT' });
    await waitFor(() => gw.latest().closed, 'connection closed by the client');
    expect(c.state).toBe('closed');
  });
});

describe('WebSocket through globalThis.WebSocket (the browser code path)', () => {
  it('uses a global WebSocket when one exists', async () => {
    const gw = await new FakeGateway().start();
    cleanups.push(() => gw.stop());
    const g = globalThis as { WebSocket?: unknown };
    const saved = g.WebSocket;
    let constructed = 0;
    g.WebSocket = class extends NodeWebSocket {
      constructor(url: string, ...rest: unknown[]) {
        super(url, ...(rest as []));
        constructed++;
      }
    };
    try {
      const c = new XClient({ transport: 'ws' });
      cleanups.push(() => c.close());
      const echoed = new Promise<string>((r) => c.on(5001, (d) => r(text(d))));
      await c.connect(gw.login());
      c.send(5000, 'via global');
      expect(await echoed).toBe('via global');
      expect(constructed).toBe(1);
    } finally {
      g.WebSocket = saved;
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Browser safety of the emitted modules

/** Compiles src/client on its own (project compiler options) into `outDir` (client/ and the protocol/ it imports). */
function compileClientAlone(outDir: string): { diagnostics: string[]; sources: string[] } {
  const cfg = ts.readConfigFile(path.join(ROOT, 'tsconfig.json'), ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(cfg.config, ts.sys, ROOT);
  const options: ts.CompilerOptions = {
    ...parsed.options,
    rootDir: path.join(ROOT, 'src'),
    outDir,
    sourceMap: false,
    declaration: true,
    noEmit: false,
    incremental: false,
  };
  const program = ts.createProgram([path.join(ROOT, 'src/client/index.ts')], options);
  const diags = [...ts.getPreEmitDiagnostics(program), ...program.emit().diagnostics];
  return {
    diagnostics: diags.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')),
    sources: program
      .getSourceFiles()
      .filter((f) => !f.isDeclarationFile)
      .map((f) => path.relative(ROOT, f.fileName)),
  };
}

const NODE_GLOBALS = new Set(['Buffer', 'process', 'require', '__dirname', '__filename', 'global', 'module', 'exports']);

/** Static import/export specifiers, dynamic import() specifiers (and whether at top level), Node globals used. */
function analyzeJs(file: string): { staticSpecs: string[]; dynamic: { spec: string; topLevel: boolean }[]; nodeGlobals: string[] } {
  const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true, ts.ScriptKind.JS);
  const staticSpecs: string[] = [];
  const dynamic: { spec: string; topLevel: boolean }[] = [];
  const nodeGlobals: string[] = [];
  const visit = (node: ts.Node, inFunction: boolean): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      staticSpecs.push(node.moduleSpecifier.text);
    }
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const a = node.arguments[0];
      dynamic.push({ spec: a && ts.isStringLiteral(a) ? a.text : '<computed>', topLevel: !inFunction });
    }
    if (ts.isIdentifier(node) && NODE_GLOBALS.has(node.text)) {
      const p = node.parent;
      const isMemberName =
        (ts.isPropertyAccessExpression(p) && p.name === node) ||
        (ts.isPropertyAssignment(p) && p.name === node) ||
        (ts.isMethodDeclaration(p) && p.name === node);
      if (!isMemberName) nodeGlobals.push(node.text);
    }
    const fn = inFunction || ts.isFunctionLike(node);
    ts.forEachChild(node, (c) => visit(c, fn));
  };
  visit(sf, false);
  return { staticSpecs, dynamic, nodeGlobals };
}

/** Static imports the SDK may have: its own siblings, and the protocol module next to it. */
const CLIENT_IMPORT = /^(\.\/|\.\.\/protocol\/)[\w-]+\.js$/;
const PROTOCOL_IMPORT = /^\.\/[\w-]+\.js$/;

function checkBrowserSafe(dir: string, allowed = CLIENT_IMPORT): void {
  const js = fs.readdirSync(dir).filter((f) => f.endsWith('.js'));
  expect(js).toContain('index.js');
  for (const f of js) {
    const a = analyzeJs(path.join(dir, f));
    for (const s of a.staticSpecs) {
      expect(s, `${f}: static import "${s}"`).toMatch(allowed);
      expect(fs.existsSync(path.join(dir, s)), `${f}: ${s} exists`).toBe(true);
    }
    for (const d of a.dynamic) {
      expect(['ws', 'node:net', 'node:tls'], `${f}: dynamic import "${d.spec}"`).toContain(d.spec);
      expect(d.topLevel, `${f}: import("${d.spec}") at top level`).toBe(false);
    }
    expect(a.nodeGlobals, `${f}: Node globals`).toEqual([]);
  }
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.d.ts'))) {
    const src = fs.readFileSync(path.join(dir, f), 'utf8');
    expect(src, `${f} mentions node types`).not.toMatch(/from ['"](ws|node:[\w/]+)['"]|reference types="node"|\bBuffer\b/);
  }
}

describe('browser safety of the emitted SDK', () => {
  let out: string;

  beforeEach(() => {
    out = fs.mkdtempSync(path.join(os.tmpdir(), 'xclient-'));
    cleanups.push(() => fs.rmSync(out, { recursive: true, force: true }));
  });

  it('src/client compiles on its own, importing nothing outside src/client and src/protocol', () => {
    const { diagnostics, sources } = compileClientAlone(out);
    expect(diagnostics).toEqual([]);
    const within = (dir: string) => sources.filter((s) => s.startsWith(`src${path.sep}${dir}${path.sep}`));
    expect(within('client').length + within('protocol').length).toBe(sources.length);
    const own = fs.readdirSync(path.join(ROOT, 'src/client')).filter((f) => f.endsWith('.ts'));
    expect(
      within('client')
        .map((s) => path.basename(s))
        .sort(),
    ).toEqual(own.sort());
    checkBrowserSafe(path.join(out, 'client'));
    checkBrowserSafe(path.join(out, 'protocol'), PROTOCOL_IMPORT);
  });

  it('the built dist/client (if built) has only relative static imports and no Node globals', () => {
    let dist = path.join(ROOT, 'dist');
    if (!fs.existsSync(path.join(dist, 'client/index.js'))) {
      console.warn('dist/client not built (run `npm run build`); checked a fresh compile only');
      compileClientAlone(out);
      dist = out;
    }
    checkBrowserSafe(path.join(dist, 'client'));
    checkBrowserSafe(path.join(dist, 'protocol'), PROTOCOL_IMPORT);
  });

  it('runs in a context with only browser globals (no process/Buffer/require, no bare imports)', async () => {
    compileClientAlone(out);
    const gw = await new FakeGateway().start();
    cleanups.push(() => gw.stop());
    const srv = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(gw.login()));
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => srv.close(() => r())));
    const loginUrl = `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`;

    // Each module is linked only to relative siblings; the context has browser-like globals only.
    const script = `
      import vm from 'node:vm';
      import fs from 'node:fs';
      import path from 'node:path';
      import { WebSocket } from 'ws';
      const [dir, loginUrl] = process.argv.slice(1);
      const ctx = vm.createContext({
        WebSocket, fetch, TextEncoder, TextDecoder, URL, AbortController, performance, console,
        setTimeout, clearTimeout, setInterval, clearInterval, queueMicrotask,
      });
      const mods = new Map();
      const load = (file) => {
        let m = mods.get(file);
        if (!m) {
          m = new vm.SourceTextModule(fs.readFileSync(file, 'utf8'), { identifier: file, context: ctx });
          mods.set(file, m);
        }
        return m;
      };
      const root = load(path.join(dir, 'client', 'index.js'));
      await root.link((spec, ref) => {
        if (!spec.startsWith('./') && !spec.startsWith('../protocol/')) throw new Error('static import outside the SDK and protocol: ' + spec);
        return load(path.resolve(path.dirname(ref.identifier), spec));
      });
      await root.evaluate();
      const sdk = root.namespace;
      const out = { globals: vm.runInContext('[typeof process, typeof Buffer, typeof require].join()', ctx) };
      const lr = await sdk.login(loginUrl, 'alice', 'pw');
      const c = new sdk.XClient();
      const echoed = new Promise((r) => c.on(5001, (d) => r(sdk.text(d))));
      out.account = (await c.connect(lr)).account;
      c.send(5000, 'from-browser');
      out.echo = await echoed;
      out.reply = sdk.text(await c.request(4001, 'req'));
      await c.close();
      out.tcp = await new sdk.XClient({ transport: 'tcp' }).connect(lr).then(() => 'connected', (e) => e.code);
      console.log(JSON.stringify(out));
    `;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--experimental-vm-modules', '--no-warnings', '--input-type=module', '-e', script, out, loginUrl],
      { cwd: ROOT, timeout: 20000 },
    );
    expect(JSON.parse(stdout.trim().split('\n').pop()!)).toEqual({
      globals: 'undefined,undefined,undefined',
      account: 'alice',
      echo: 'from-browser',
      reply: 'req',
      tcp: 'UNSUPPORTED',
    });
    expect(gw.received.map((r) => r.body)).toEqual(['from-browser']);
  });
});
