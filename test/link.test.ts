import net from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { XError } from '../src/errors.js';
import { Link, LinkListener, type LinkOptions } from '../src/link/link.js';
import { Cmd } from '../src/protocol/commands.js';
import { FrameDecoder, encodeFrame, type Frame } from '../src/protocol/frame.js';
import { ErrorReplySchema } from '../src/gen/xserver/v1/cluster_pb.js';
import { createIdentity } from '../src/link/identity.js';
import { DiallerHandshake } from '../src/link/handshake-dialler.js';
import { encodeFrames } from '../src/link/handshake.js';
import { decode } from '../src/wire/codec.js';
import { waitFor as waitForCondition } from '../testkit/index.js';

const opts = (over: Partial<LinkOptions> = {}): LinkOptions => ({
  cluster: 'test',
  secret: 's3cret',
  maxFrame: 64 * 1024,
  handshakeTimeoutMs: 500,
  heartbeatIntervalMs: 100,
  heartbeatTimeoutMs: 400,
  maxOutboundBytes: 1024 * 1024,
  logger: pino({ level: 'silent' }),
  identity: createIdentity(),
  ...over,
});

const server = { type: 4, id: 'server-1' };
const client = { type: 5, id: 'client-1' };
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function listen(o = opts(), onLink: (l: Link) => void = () => {}, admit = () => null as XError | null) {
  const links: Link[] = [];
  const l = new LinkListener(server, o, admit, (link) => {
    links.push(link);
    cleanups.push(() => link.close());
    onLink(link);
  });
  const port = await l.listen(0, '127.0.0.1');
  cleanups.push(() => l.close());
  return { port, links };
}

/** The kit's waitFor in this file's short form (links are local: a 5 ms re-check is cheap). */
const waitFor = <T>(fn: () => T | undefined, timeoutMs = 3000): Promise<T> => waitForCondition(fn, { timeoutMs, what: 'the condition', pollMs: 5 });

/** Raw socket that collects what the server sends back until it closes. */
function rawConnect(port: number, bytes: Uint8Array[]): Promise<{ frames: Frame[]; closed: boolean }> {
  return new Promise((resolve) => {
    const frames: Frame[] = [];
    const dec = new FrameDecoder(1 << 20, (f) => frames.push({ ...f, body: Buffer.from(f.body) }));
    const s = net.connect(port, '127.0.0.1', () => {
      for (const b of bytes) s.write(b);
    });
    s.on('data', (c) => dec.push(c));
    s.on('error', () => {}); // the server resetting the socket is a valid outcome; 'close' resolves
    s.on('close', () => resolve({ frames, closed: true }));
    setTimeout(() => {
      s.destroy();
    }, 3000).unref();
  });
}

describe('link handshake', () => {
  it('opens a link when both sides share the secret and the target matches', async () => {
    const { port, links } = await listen();
    const link = await Link.dial('127.0.0.1', port, client, { type: 4, id: 'server-1' }, opts());
    cleanups.push(() => link.close());
    expect(link.remote).toMatchObject({ type: 4, id: 'server-1' });
    expect(link.remote.publicKey).toHaveLength(32);
    const inbound = await waitFor(() => links[0]);
    expect(inbound.remote).toMatchObject(client);
    expect(inbound.remote.publicKey).toHaveLength(32);
  });

  it('refuses a dialler with the wrong secret, with a reason, and keeps serving others', async () => {
    const { port } = await listen();
    await expect(Link.dial('127.0.0.1', port, client, { type: 4, id: '' }, opts({ secret: 'nope' }))).rejects.toMatchObject({ code: 'AUTH_FAILED' });
    const ok = await Link.dial('127.0.0.1', port, client, { type: 4, id: '' }, opts());
    cleanups.push(() => ok.close());
    expect(ok.isOpen).toBe(true);
  });

  it('refuses when the dialler expects another type or id', async () => {
    const { port } = await listen();
    await expect(Link.dial('127.0.0.1', port, client, { type: 1, id: '' }, opts())).rejects.toMatchObject({ code: 'WRONG_TARGET' });
    await expect(Link.dial('127.0.0.1', port, client, { type: 4, id: 'someone-else' }, opts())).rejects.toMatchObject({ code: 'WRONG_TARGET' });
  });

  it('refuses another cluster', async () => {
    const { port } = await listen();
    await expect(Link.dial('127.0.0.1', port, client, { type: 4, id: '' }, opts({ cluster: 'other' }))).rejects.toMatchObject({
      code: 'WRONG_CLUSTER',
    });
  });

  it('passes the admit policy refusal to the dialler', async () => {
    const { port } = await listen(
      opts(),
      () => {},
      () => new XError('NOT_ACTIVE', 'standby'),
    );
    await expect(Link.dial('127.0.0.1', port, client, { type: 4, id: '' }, opts())).rejects.toMatchObject({ code: 'NOT_ACTIVE' });
  });

  it('answers garbage bytes with an error frame and closes', async () => {
    const { port } = await listen();
    const r = await rawConnect(port, [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]);
    expect(r.closed).toBe(true);
    expect(r.frames[0]?.cmd).toBe(Cmd.ERROR);
    const e = decode(ErrorReplySchema, r.frames[0]!.body);
    expect(['BAD_FRAME', 'FRAME_TOO_LARGE']).toContain(XError.fromWire(e.code, e.message).code);
  });

  it('closes a connection that never completes the handshake (truncated frame)', async () => {
    const { port } = await listen();
    const t0 = Date.now();
    const partial = encodeFrame(Cmd.HELLO, Buffer.alloc(40)).subarray(0, 20);
    const r = await rawConnect(port, [partial]);
    expect(r.closed).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
    const e = decode(ErrorReplySchema, r.frames[0]!.body);
    expect(XError.fromWire(e.code, e.message).code).toBe('HANDSHAKE_TIMEOUT');
  });

  it('an address check reset by the prober right after WELCOME does not crash the acceptor', async () => {
    const { port } = await listen();
    const uncaught: Error[] = [];
    const onUncaught = (e: Error): void => void uncaught.push(e);
    process.on('uncaughtException', onUncaught);
    cleanups.push(() => process.off('uncaughtException', onUncaught));
    const o = opts();
    const machine = new DiallerHandshake({ ...o, self: client, expect: { type: 4, id: '' }, peer: `127.0.0.1:${port}`, probe: true });
    // The mgr's probe destroys its socket on WELCOME; a reset (RST) is the harshest form of that.
    await new Promise<void>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => s.write(encodeFrames([machine.hello])));
      s.on('data', (chunk) => {
        const step = machine.receive(chunk);
        if (step.refuse) return reject(step.refuse);
        if (step.send.length > 0) s.write(encodeFrames(step.send));
        if (step.done) {
          s.resetAndDestroy();
          resolve();
        }
      });
      s.on('error', reject);
    });
    // The acceptor still serves, and its side of the reset socket raised nothing uncaught.
    const link = await Link.dial('127.0.0.1', port, client, { type: 4, id: '' }, opts());
    cleanups.push(() => link.close());
    expect(link.isOpen).toBe(true);
    expect(uncaught).toEqual([]);
  });

  it('fails the dial when the address is not an xserver process', async () => {
    const http = net.createServer((s) => {
      s.resume(); // a real server reads what it is sent
      s.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => http.close(r)));
    const port = (http.address() as net.AddressInfo).port;
    await expect(Link.dial('127.0.0.1', port, client, { type: 1, id: '' }, opts())).rejects.toBeInstanceOf(XError);
  });
});

describe('handshake fuzz', () => {
  it('random bytes and random frames never crash the acceptor; each connection is closed with a reason', async () => {
    const { port } = await listen();
    let seed = 424242;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rnd() * 256)));
    const cmds = [Cmd.HELLO, Cmd.AUTH, Cmd.CHALLENGE, Cmd.PING, Cmd.ERROR, 7];
    const attempts: Promise<{ frames: Frame[]; closed: boolean }>[] = [];
    for (let i = 0; i < 60; i++) {
      const kind = i % 3;
      const payload =
        kind === 0
          ? bytes(1 + Math.floor(rnd() * 200)) // raw garbage
          : kind === 1
            ? encodeFrame(cmds[Math.floor(rnd() * cmds.length)]!, bytes(Math.floor(rnd() * 64))) // a frame with a garbage body
            : Buffer.concat([encodeFrame(Cmd.HELLO, bytes(40)), encodeFrame(Cmd.AUTH, bytes(40))]); // wrong sequence
      attempts.push(rawConnect(port, [payload]));
    }
    const results = await Promise.all(attempts);
    for (const r of results) {
      expect(r.closed).toBe(true);
      // Whatever was sent, the acceptor never opened a link: at most an ERROR (or CHALLENGE for a parseable HELLO).
      expect(r.frames.every((f) => f.cmd === Cmd.ERROR || f.cmd === Cmd.CHALLENGE)).toBe(true);
    }
    const ok = (await Link.dial('127.0.0.1', port, client, { type: 4, id: '' }, opts())).start();
    cleanups.push(() => ok.close());
    expect(ok.isOpen).toBe(true);
  });
});

describe('open link', () => {
  async function pair(o = opts()) {
    const { port, links } = await listen(o);
    const out = (await Link.dial('127.0.0.1', port, client, { type: 4, id: '' }, o)).start();
    cleanups.push(() => out.close());
    const inb = await waitFor(() => links[0]);
    return { out, inb };
  }

  it('delivers frames in order', async () => {
    const { out, inb } = await pair();
    const got: number[] = [];
    inb.onFrame = (f) => got.push(f.cmd);
    for (let i = 0; i < 5000; i++) out.send(i, Buffer.alloc(64));
    await waitFor(() => got.length === 5000 || undefined);
    expect(got).toEqual(Array.from({ length: 5000 }, (_, i) => i));
  });

  it('matches responses to requests and carries typed errors', async () => {
    const { out, inb } = await pair();
    inb.onFrame = (f, l) => {
      if (f.cmd === 1) l.reply(f, Buffer.from(`echo:${Buffer.from(f.body).toString()}`));
      else l.replyError(f, new XError('NO_HANDLER', 'no handler for 2'));
    };
    const replies = await Promise.all([1, 2, 3].map((i) => out.request(1, Buffer.from(String(i)), 1000)));
    expect(replies.map((r) => Buffer.from(r.body).toString())).toEqual(['echo:1', 'echo:2', 'echo:3']);
    await expect(out.request(2, Buffer.alloc(0), 1000)).rejects.toMatchObject({ code: 'NO_HANDLER' });
  });

  it('times out a request nobody answers', async () => {
    const { out } = await pair();
    await expect(out.request(9, Buffer.alloc(0), 100)).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(out.inflightRequests).toBe(0);
  });

  it('closes only the offending link on an oversized frame', async () => {
    const { port, links } = await listen(opts({ maxFrame: 1024 }));
    const a = (await Link.dial('127.0.0.1', port, client, { type: 4, id: '' }, opts({ maxFrame: 1 << 20 }))).start();
    const b = (await Link.dial('127.0.0.1', port, { type: 5, id: 'client-2' }, { type: 4, id: '' }, opts())).start();
    cleanups.push(
      () => a.close(),
      () => b.close(),
    );
    const [ia, ib] = await waitFor(() => (links.length === 2 ? links : undefined));
    let reason: XError | undefined;
    a.onClose = (e) => (reason = e);
    const gotB: number[] = [];
    ib!.onFrame = (f) => gotB.push(f.cmd);
    a.send(7, Buffer.alloc(4096));
    await waitFor(() => reason);
    expect(reason!.code).toBe('FRAME_TOO_LARGE');
    expect(ia!.isOpen).toBe(false);
    b.send(8);
    await waitFor(() => gotB.length === 1 || undefined);
    expect(ib!.isOpen).toBe(true);
  });

  it('detects a silent peer within the heartbeat timeout', async () => {
    const o = opts({ heartbeatIntervalMs: 50, heartbeatTimeoutMs: 300 });
    const { port, links } = await listen(o);
    // A dialler that completes the handshake, then stops reading and answering.
    const out = await Link.dial('127.0.0.1', port, client, { type: 4, id: '' }, opts({ heartbeatIntervalMs: 10_000, heartbeatTimeoutMs: 60_000 }));
    cleanups.push(() => out.close());
    (out as unknown as { socket: net.Socket }).socket.pause();
    (out as unknown as { heartbeat: { stop(): void } }).heartbeat.stop();
    const inb = await waitFor(() => links[0]);
    const t0 = Date.now();
    let reason: XError | undefined;
    inb.onClose = (e) => (reason = e);
    await waitFor(() => reason, 2000);
    expect(reason!.code).toBe('HEARTBEAT_TIMEOUT');
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('bounds the outbound queue', async () => {
    const { out } = await pair(opts({ maxOutboundBytes: 100_000 }));
    let refused = 0;
    for (let i = 0; i < 100; i++) if (!out.send(1, Buffer.alloc(4096))) refused++;
    expect(refused).toBeGreaterThan(0);
    expect(out.dropped).toBe(refused);
  });
});
