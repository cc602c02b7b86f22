/**
 * Link: one authenticated, framed, heart-beaten TCP connection between two cluster processes.
 *
 * - Frames are decoded with a size limit; a violation closes this link only, with a logged reason.
 * - Writes are batched per event-loop turn (FrameWriter); unsent bytes are bounded.
 * - The handshake (Hello -> Challenge -> Auth -> Welcome) proves both sides know the secret and
 *   lets the dialler state the type and id it expects; every refusal is flushed before the close.
 *   It runs before a Link exists: handshake-dialler.ts / handshake-acceptor.ts decide,
 *   socket-handshake.ts carries it over the socket; `Link.dial` and `LinkListener` start it.
 * - Requests carry a rid; responses are matched here, with a timeout each.
 *
 * Roles above (mgr, node runtime) see only `send`, `request`, `reply`, `onFrame`, `onClose`.
 */
import net from 'node:net';
import tls from 'node:tls';
import { ErrorReplySchema } from '../gen/xserver/v1/cluster_pb.js';
import { XError, errorCodeName } from '../errors.js';
import { decode, encode } from '../wire/codec.js';
import { Cmd, cmdName } from '../protocol/commands.js';
import { Flags, FrameDecoder, type Frame } from '../protocol/frame.js';
import { PendingRequests } from '../protocol/pending.js';
import { FrameWriter, toXError } from '../wire/frame.js';
import { Heartbeat } from '../protocol/heartbeat.js';
import type { LinkIdentity, LinkOptions } from './options.js';
import { acceptHandshake, dialHandshake } from './socket-handshake.js';

export type { LinkIdentity, LinkOptions } from './options.js';

const EMPTY = new Uint8Array(0);
/** How long a closed link's socket may take to flush; a peer that never reads must not keep it forever. */
const CLOSE_LINGER_MS = 1000;

/** Settles a request: exactly one of the two arguments is set. */
export type ReplyCallback = (err: XError | null, frame: Frame | null) => void;

interface PendingRequest {
  done: ReplyCallback;
  cmd: number;
  timeoutMs: number;
}

export class Link {
  /** Called for every application frame (including requests, excluding responses to our requests). */
  onFrame: (frame: Frame, link: Link) => void = () => {};
  /** Called once when the link is gone; `err` says why (undefined for a local, clean close). */
  onClose: (err: XError | undefined, link: Link) => void = () => {};

  readonly remote: LinkIdentity;
  readonly direction: 'in' | 'out';
  /** Frames refused because the outbound limit was reached. */
  dropped = 0;

  private readonly writer: FrameWriter;
  private readonly decoder: FrameDecoder;
  private readonly heartbeat: Heartbeat;
  /** One timer for every request deadline of this link. */
  private readonly pending = new PendingRequests<PendingRequest>((_rid, p) =>
    p.done(new XError('TIMEOUT', `request ${cmdName(p.cmd)} to ${this.describe()} timed out after ${p.timeoutMs} ms`), null),
  );
  private nextRid = 1;
  private closed = false;
  private started = false;
  private leftover: Uint8Array | null;

  /** Use Link.dial or LinkListener: they hand over a socket that already finished the handshake. */
  constructor(
    private readonly socket: net.Socket,
    remote: LinkIdentity,
    direction: 'in' | 'out',
    private readonly opts: LinkOptions,
    leftover: Uint8Array | null,
  ) {
    this.remote = remote;
    this.direction = direction;
    this.writer = new FrameWriter({ writeChunks: (c) => writeChunks(socket, c) });
    this.decoder = new FrameDecoder(opts.maxFrame, (f) => this.dispatch(f), toXError);
    this.heartbeat = new Heartbeat(
      {
        sendPing: () => this.writer.write(Cmd.PING, EMPTY),
        onHeartbeatTimeout: (ms) => this.close(new XError('HEARTBEAT_TIMEOUT', `no traffic from ${this.describe()} for ${ms} ms`)),
      },
      opts.heartbeatIntervalMs,
      opts.heartbeatTimeoutMs,
    );
    this.leftover = leftover;
    // Nothing is read until the owner has attached its handlers and called start().
    socket.pause();
    socket.on('error', (e) => this.close(new XError('LINK_CLOSED', `${this.describe()}: ${e.message}`), false));
    socket.on('close', () => this.close(new XError('LINK_CLOSED', `${this.describe()} closed the connection`), false));
    this.heartbeat.start();
  }

  /**
   * Starts delivering frames (including any that arrived with the handshake) to `onFrame`.
   * Call it once the handlers are set; calling it again does nothing.
   */
  start(): this {
    if (this.started || this.closed) return this;
    this.started = true;
    const leftover = this.leftover;
    this.leftover = null;
    if (leftover && leftover.length > 0) this.receive(leftover);
    this.socket.on('data', (chunk: Buffer) => this.receive(chunk));
    this.socket.resume();
    return this;
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Bytes waiting to be written (batch + socket buffer). */
  get outboundBytes(): number {
    return this.writer.queued + this.socket.writableLength;
  }

  get inflightRequests(): number {
    return this.pending.size;
  }

  /** The peer's address as this side's socket sees it (where its connection came from). */
  get remoteAddress(): string {
    return this.socket.remoteAddress ?? '';
  }

  describe(): string {
    return `type ${this.remote.type} ${this.remote.id.slice(0, 8)} (${this.direction}, ${this.socket.remoteAddress}:${this.socket.remotePort})`;
  }

  /** Queues one frame. False when closed or over the outbound limit (counted in `dropped`). */
  send(cmd: number, body: Uint8Array = EMPTY, flags = 0, rid = 0): boolean {
    if (this.closed) return false;
    if (this.writer.queued + this.socket.writableLength + body.length > this.opts.maxOutboundBytes) {
      this.dropped++;
      return false;
    }
    this.writer.write(cmd, body, flags, rid);
    return true;
  }

  request(cmd: number, body: Uint8Array, timeoutMs: number): Promise<Frame> {
    return new Promise<Frame>((resolve, reject) => this.requestCb(cmd, body, timeoutMs, (err, f) => (err ? reject(err) : resolve(f!))));
  }

  /** Callback form of request(): no promise per request (the hot path of high-rate callers). */
  requestCb(cmd: number, body: Uint8Array, timeoutMs: number, done: ReplyCallback): void {
    if (this.closed) return done(new XError('LINK_CLOSED', `link to ${this.describe()} is closed`), null);
    const rid = this.nextRid;
    this.nextRid = this.nextRid >= 0x7fffffff ? 1 : this.nextRid + 1;
    if (!this.send(cmd, body, Flags.REQUEST, rid)) {
      return done(new XError('QUEUE_FULL', `outbound queue to ${this.describe()} is full`), null);
    }
    this.pending.add(rid, { done, cmd, timeoutMs }, timeoutMs);
  }

  reply(req: Frame, body: Uint8Array = EMPTY): boolean {
    return this.send(req.cmd, body, Flags.RESPONSE, req.rid);
  }

  replyError(req: Frame, err: XError): boolean {
    return this.send(req.cmd, encode(ErrorReplySchema, { code: err.codeNumber, message: err.message }), Flags.RESPONSE | Flags.ERROR, req.rid);
  }

  /**
   * Closes the link. With an error, the peer is sent an ERROR frame saying why (flushed first).
   * Pending requests fail with LINK_CLOSED.
   */
  close(err?: XError, notifyPeer = true): void {
    if (this.closed) return;
    this.closed = true;
    this.heartbeat.stop();
    if (notifyPeer && err && !this.socket.destroyed) {
      this.writer.write(Cmd.ERROR, encode(ErrorReplySchema, { code: err.codeNumber, message: err.message }));
    }
    if (!this.socket.destroyed) this.writer.flushNow();
    this.writer.close();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_LINGER_MS).unref();
    const failure = new XError('LINK_CLOSED', `link to ${this.describe()} closed${err ? ': ' + err.message : ''}`);
    for (const p of this.pending.takeAll()) p.done(failure, null);
    if (err && err.code !== 'LINK_CLOSED') {
      const level = err.code === 'SHUTTING_DOWN' || err.code === 'DUPLICATE_LINK' ? 'info' : 'warn';
      this.opts.logger[level]({ code: err.code, peer: this.describe() }, `link closed: ${err.message}`);
    }
    this.onClose(err, this);
  }

  private receive(chunk: Uint8Array): void {
    if (this.closed) return;
    this.heartbeat.touch();
    try {
      this.decoder.push(chunk);
    } catch (e) {
      this.close(e instanceof XError ? e : new XError('BAD_FRAME', String(e)));
    }
  }

  private dispatch(f: Frame): void {
    if (this.closed) return;
    if (f.flags & Flags.RESPONSE) {
      const p = this.pending.take(f.rid);
      if (!p) return; // timed out already
      if (f.flags & Flags.ERROR) {
        try {
          const e = decode(ErrorReplySchema, f.body);
          p.done(XError.fromWire(e.code, e.message), null);
        } catch (e) {
          p.done(e as XError, null);
          throw e; // a malformed frame still closes the link
        }
      } else {
        p.done(null, f);
      }
      return;
    }
    switch (f.cmd) {
      case Cmd.PING:
        this.writer.write(Cmd.PONG, EMPTY);
        return;
      case Cmd.PONG:
        return;
      case Cmd.ERROR: {
        const e = decode(ErrorReplySchema, f.body);
        this.close(XError.fromWire(e.code, `peer ${this.describe()} closed: ${errorCodeName(e.code)}: ${e.message}`), false);
        return;
      }
    }
    this.onFrame(f, this);
  }

  /**
   * Dials `host:port`, expecting to reach `expect` (id "" = any process of that type).
   * Resolves with an open link, not yet reading: set `onFrame`/`onClose`, then call `start()`.
   * Rejects with a typed error (AUTH_FAILED, WRONG_TARGET, NOT_ACTIVE,
   * HANDSHAKE_TIMEOUT, LINK_CLOSED, BAD_FRAME...).
   */
  static dial(host: string, port: number, self: LinkIdentity, expect: LinkIdentity, opts: LinkOptions): Promise<Link> {
    return dialHandshake(host, port, self, expect, opts, (socket, remote, leftover) => new Link(socket, remote, 'out', opts, leftover));
  }
}

/**
 * Accepts links for one process. `admit` runs after authentication and may refuse a peer with a
 * typed error (a standby mgr says NOT_ACTIVE; a node refuses a duplicate link).
 */
export class LinkListener {
  private readonly server: net.Server;
  /** Sockets still in the handshake: close() drops them, they belong to no link yet. */
  private readonly handshaking = new Set<net.Socket>();
  private stopReload: () => void = () => {};

  constructor(
    private readonly self: LinkIdentity,
    private readonly opts: LinkOptions,
    private readonly admit: (remote: LinkIdentity) => XError | null,
    private readonly onLink: (link: Link) => void,
  ) {
    const material = opts.tls;
    if (material) {
      // Mutual TLS: a peer without a certificate of the cluster CA never reaches the handshake.
      const server = tls.createServer({ noDelay: true, ...material.options, requestCert: true, rejectUnauthorized: true }, (s) => this.accept(s));
      this.stopReload = material.onReload((o) => server.setSecureContext({ ...o }));
      this.server = server;
    } else {
      this.server = net.createServer({ noDelay: true }, (s) => this.accept(s));
    }
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ port, host, backlog: this.opts.listenBacklog }, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as net.AddressInfo).port);
      });
    });
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo | null)?.port ?? 0;
  }

  close(): Promise<void> {
    this.stopReload();
    for (const s of this.handshaking) s.destroy();
    this.handshaking.clear();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    this.handshaking.add(socket);
    acceptHandshake(socket, this.self, this.opts, this.admit, {
      settled: () => this.handshaking.delete(socket),
      open: (s, remote, leftover) => {
        const link = new Link(s, remote, 'in', this.opts, leftover);
        this.onLink(link);
        link.start();
      },
    });
  }
}

function writeChunks(socket: net.Socket, chunks: Buffer[]): boolean {
  if (socket.destroyed) return false;
  if (chunks.length === 1) {
    socket.write(chunks[0]!);
  } else {
    socket.cork();
    for (const c of chunks) socket.write(c);
    socket.uncork();
  }
  return socket.writableLength === 0;
}
