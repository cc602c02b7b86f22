/**
 * ClientConnection: one game client on a gateway, over TCP or WebSocket, with the same frames.
 *
 * Kept small on purpose (a gateway holds tens of thousands): no per-connection timers (the
 * gateway sweeps deadlines), no write buffer while idle, the rate limiter is two numbers. Whether
 * a connection is authenticated, and for which account, is the SessionTable's to know.
 */
import type net from 'node:net';
import type { WebSocket } from 'ws';
import { XError } from '../errors.js';
import { Cmd } from '../protocol/commands.js';
import { FrameDecoder, batchFrames, decodeFrame, decodeFrames, encodeFrame, type Frame } from '../protocol/frame.js';
import { encodeErrorNotice, type ErrorNotice } from '../protocol/client-messages.js';
import { FrameWriter, toXError } from '../wire/frame.js';

export interface ClientConnHost {
  onFrame(conn: ClientConnection, f: Frame): void;
  onClose(conn: ClientConnection, err: XError | undefined): void;
  /** AUTH succeeded on this connection. */
  onAuthenticated?(conn: ClientConnection): void;
}

export interface ClientLimits {
  /** Largest frame body once authenticated (gateway.maxFrame). */
  maxFrame: number;
  /** Largest frame body before AUTH succeeded (gateway.preAuthMaxFrame): AUTH and PING are small. */
  preAuthMaxFrame: number;
  maxOutboundBytes: number;
  ratePerSec: number;
  burst: number;
  /** Largest batched WebSocket message (gateway.wsBatchBytes); 0 = one frame per message. */
  wsBatchBytes: number;
  /** Largest WebSocket message the gateway reads (its `ws` maxPayload). */
  wsMaxMessage: number;
}

/** At most one RATE_LIMITED notice per this interval: the notice itself must not become a flood. */
const RATE_NOTICE_INTERVAL_MS = 1000;
/**
 * Write batch of one TCP client (released when drained): small, because a gateway holds tens of
 * thousands of mostly idle clients, unlike the 64 KiB batches of an intranet link.
 */
const CLIENT_WRITE_SLAB_BYTES = 4096;
/** After a close, how long a client that never reads may pin its socket before it is destroyed. */
const CLOSE_LINGER_MS = 2000;
/** WebSocket close code "normal closure" (RFC 6455 §7.4.1). */
const WS_NORMAL_CLOSURE = 1000;

/** The ERROR notice (or error-response body) for `err`, optionally naming the client frame it answers. */
export function errorBody(err: XError, cmd?: number): Uint8Array {
  const minVersion = err.details?.minVersion;
  const contract = err.details?.contract as ErrorNotice['contract'];
  return encodeErrorNotice({
    code: err.code,
    message: err.message,
    cmd,
    ...(typeof minVersion === 'string' ? { minVersion } : {}),
    ...(contract ? { contract } : {}),
  });
}

export abstract class ClientConnection {
  /** performance.now() of the last frame received. */
  lastRx = performance.now();
  readonly openedAt = this.lastRx;
  /** Over-rate messages dropped. */
  dropped = 0;
  closed = false;
  private tokens: number;
  private refilledAt = this.lastRx;
  private lastNoticeAt = 0;

  constructor(
    protected readonly host: ClientConnHost,
    protected readonly limits: ClientLimits,
    readonly transport: 'tcp' | 'ws',
    /** The client's IP address (per-address limits count by it). */
    readonly address: string,
    readonly remote: string,
  ) {
    this.tokens = limits.burst;
    this.frameLimit = limits.preAuthMaxFrame;
  }

  /** AUTH succeeded: frames up to gateway.maxFrame are accepted from now on. */
  authenticated(): void {
    this.frameLimit = this.limits.maxFrame;
    // What AUTH and pre-auth PINGs used does not count against the session.
    this.tokens = this.limits.burst;
    this.host.onAuthenticated?.(this);
  }

  /** Largest frame body accepted now: the pre-auth limit until authenticated() is called. */
  protected frameLimit: number;

  /**
   * AUTH asked for batched messages of up to `clientMax` bytes: the byte count the gateway
   * accepts back (WELCOME `batch`), or 0 when it does not batch (TCP is a stream: never).
   */
  batch(_clientMax: number): number {
    return 0;
  }

  /** What AUTH asked for (`batch`), kept until WELCOME answers it. */
  batchAsked = 0;

  abstract get outboundBytes(): number;
  /** Queues a frame without checks. */
  protected abstract push(cmd: number, body: Uint8Array, flags: number, rid: number): void;
  /** Queues an encoded frame by reference, without checks. */
  protected abstract pushEncoded(frame: Buffer): void;
  protected abstract end(): void;

  /** Queues a frame; a client that stopped reading is disconnected instead (SLOW_CONSUMER). */
  sendFrame(cmd: number, body: Uint8Array, flags = 0, rid = 0): boolean {
    if (this.closed) return false;
    if (this.outboundBytes > this.limits.maxOutboundBytes) {
      this.close(new XError('SLOW_CONSUMER', `client is not reading: more than ${this.limits.maxOutboundBytes} bytes waiting`));
      return false;
    }
    this.push(cmd, body, flags, rid);
    return true;
  }

  /**
   * sendFrame for a frame encoded once for many clients (a broadcast): every connection writes
   * the same bytes, none copies them. Same slow-consumer rule.
   */
  sendEncoded(frame: Buffer): boolean {
    if (this.closed) return false;
    if (this.outboundBytes > this.limits.maxOutboundBytes) {
      this.close(new XError('SLOW_CONSUMER', `client is not reading: more than ${this.limits.maxOutboundBytes} bytes waiting`));
      return false;
    }
    this.pushEncoded(frame);
    return true;
  }

  /** Token bucket: false when this message is over the rate (the caller drops it). */
  takeToken(now: number): boolean {
    this.tokens = Math.min(this.limits.burst, this.tokens + ((now - this.refilledAt) * this.limits.ratePerSec) / 1000);
    this.refilledAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    this.dropped++;
    return false;
  }

  /** At most one RATE_LIMITED notice per second. */
  shouldNotify(now: number): boolean {
    if (now - this.lastNoticeAt < RATE_NOTICE_INTERVAL_MS) return false;
    this.lastNoticeAt = now;
    return true;
  }

  /** Closes; with an error the client first gets an ERROR frame saying why (flushed). */
  close(err?: XError): void {
    if (this.closed) return;
    this.closed = true;
    if (err) this.push(Cmd.ERROR, errorBody(err), 0, 0);
    this.end();
    this.host.onClose(this, err);
  }

  /** Called by transports when the peer went away. */
  protected gone(err?: XError): void {
    if (this.closed) return;
    this.closed = true;
    this.host.onClose(this, err);
  }

  protected received(f: Frame): void {
    this.lastRx = performance.now();
    this.host.onFrame(this, f);
  }
}

export class TcpClientConnection extends ClientConnection {
  private readonly decoder: FrameDecoder;
  private readonly writer: FrameWriter;

  constructor(
    private readonly socket: net.Socket,
    host: ClientConnHost,
    limits: ClientLimits,
  ) {
    super(host, limits, 'tcp', socket.remoteAddress ?? '', `${socket.remoteAddress}:${socket.remotePort}`);
    this.decoder = new FrameDecoder(limits.preAuthMaxFrame, (f) => this.received(f), toXError);
    this.writer = new FrameWriter(
      {
        writeChunks: (chunks) => {
          if (socket.destroyed) return false;
          if (chunks.length === 1) socket.write(chunks[0]!);
          else {
            socket.cork();
            for (const c of chunks) socket.write(c);
            socket.uncork();
          }
          return socket.writableLength === 0;
        },
      },
      CLIENT_WRITE_SLAB_BYTES,
      false,
    );
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      if (this.closed) return;
      try {
        this.decoder.push(chunk);
      } catch (e) {
        this.close(e instanceof XError ? e : new XError('BAD_FRAME', String(e)));
      }
    });
    socket.on('error', () => this.gone(new XError('LINK_CLOSED', 'connection error')));
    socket.on('close', () => this.gone());
  }

  override authenticated(): void {
    super.authenticated();
    this.decoder.maxFrame = this.frameLimit;
  }

  get outboundBytes(): number {
    return this.writer.queued + this.socket.writableLength;
  }

  protected push(cmd: number, body: Uint8Array, flags: number, rid: number): void {
    this.writer.write(cmd, body, flags, rid);
  }

  protected pushEncoded(frame: Buffer): void {
    this.writer.writeEncoded(frame);
  }

  protected end(): void {
    this.writer.flushNow();
    this.writer.close();
    this.socket.end();
    // A client that never reads must not pin the socket.
    setTimeout(() => this.socket.destroy(), CLOSE_LINGER_MS).unref();
  }
}

/**
 * Frames up to this size are copied into a batch; larger ones (a big broadcast, shared by every
 * socket) are sent by reference, each as its own message: copying them per connection would cost
 * more than the message they save.
 */
const WS_BATCH_COPY_MAX = 1024;

export class WsClientConnection extends ClientConnection {
  private queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private scheduled = false;
  /** Largest message of frames sent together; 0 until the client asked for batches (AUTH `batch`). */
  private batchBytes = 0;

  constructor(
    private readonly ws: WebSocket,
    private readonly socket: net.Socket,
    host: ClientConnHost,
    limits: ClientLimits,
  ) {
    super(host, limits, 'ws', socket.remoteAddress ?? '', `${socket.remoteAddress}:${socket.remotePort}`);
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (this.closed) return;
      const f = isBinary
        ? parseMessage(data, this.frameLimit, this.batchBytes > 0)
        : new XError('BAD_FRAME', 'text messages are not accepted; send binary frames');
      if (f instanceof XError) return this.close(f);
      for (const x of f) {
        if (this.closed) return;
        this.received(x);
      }
    });
    ws.on('error', () => this.gone(new XError('LINK_CLOSED', 'connection error')));
    ws.on('close', () => this.gone());
  }

  get outboundBytes(): number {
    return this.queuedBytes + this.ws.bufferedAmount;
  }

  protected push(cmd: number, body: Uint8Array, flags: number, rid: number): void {
    this.pushEncoded(encodeFrame(cmd, body, flags, rid));
  }

  protected pushEncoded(frame: Uint8Array): void {
    this.queue.push(frame);
    this.queuedBytes += frame.length;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  override batch(clientMax: number): number {
    // Batches start with WELCOME: what was queued before it (a PONG) goes as it was.
    this.flush();
    this.batchBytes = Math.min(clientMax, this.limits.wsBatchBytes);
    return this.batchBytes > 0 ? Math.min(this.limits.wsBatchBytes, this.limits.wsMaxMessage) : 0;
  }

  /** One corked write per turn for all messages queued in it; batched, when the client reads batches, into few messages. */
  private readonly flush = (): void => {
    this.scheduled = false;
    const q = this.queue;
    if (q.length === 0) return;
    this.queue = [];
    this.queuedBytes = 0;
    if (this.ws.readyState !== this.ws.OPEN) return;
    const messages = this.batchBytes > 0 && q.length > 1 ? batchFrames(q, this.batchBytes, WS_BATCH_COPY_MAX) : q;
    this.socket.cork();
    for (const m of messages) this.ws.send(m, { binary: true });
    this.socket.uncork();
  };

  protected end(): void {
    this.flush();
    this.ws.close(WS_NORMAL_CLOSURE);
    setTimeout(() => this.ws.terminate(), CLOSE_LINGER_MS).unref();
  }
}

/**
 * The frames of one WebSocket message: exactly one whole frame, or (batched, once negotiated)
 * several whole frames; else the error that closes the connection.
 */
function parseMessage(data: Uint8Array, maxFrame: number, batched: boolean): Frame[] | XError {
  try {
    return batched ? decodeFrames(data, maxFrame, toXError) : [decodeFrame(data, maxFrame, toXError)];
  } catch (e) {
    return e as XError;
  }
}
