/**
 * Client transports: WebSocket (browsers and Node) and TCP (Node only), behind one interface.
 *
 * Nothing Node-specific is imported at module top level: `node:net` and `ws` are loaded with a
 * dynamic import() only when needed, so this file loads unchanged in a browser.
 */
import { ClientError } from './errors.js';
import { DEFAULT_MAX_FRAME, FrameDecoder, HEADER_SIZE, batchFrames, decodeFrames, type Frame } from '../protocol/frame.js';

export type TransportKind = 'ws' | 'tcp';

/** One connection carrying frames. Callbacks are assigned by the owner after opening. */
export interface Transport {
  readonly kind: TransportKind;
  /** Sends one encoded frame. Ignored once the transport is closing or closed. */
  send(bytes: Uint8Array): void;
  /** WebSocket: from now on, the frames of one turn go out as messages of up to `maxBytes` (the gateway agreed in WELCOME). */
  batch?(maxBytes: number): void;
  /** Closes gracefully (pending writes are flushed); resolves once fully closed. Idempotent. */
  close(): Promise<void>;
  /** Called for each received frame. */
  onMessage: (frame: Frame) => void;
  /**
   * Called exactly once when the connection is gone, with a reason code: `CLOSED` (close() was
   * called), `DISCONNECTED` (peer or network), `BAD_FRAME` / `FRAME_TOO_LARGE` (bad input).
   */
  onClose: (reason: string) => void;
}

/** Where to connect: `wsUrl` for WebSocket, `host` + `port` for TCP. */
export interface TransportTarget {
  wsUrl?: string;
  host?: string;
  port?: number;
  /** TCP: TLS over TCP (the gateway's `tls`). WebSocket follows the URL's scheme. */
  tls?: boolean;
}

/**
 * TLS settings for Node (browsers use their own trust store and ignore these): a CA for a
 * gateway with a certificate of your own CA, and the name to check it against.
 */
export interface ClientTlsOptions {
  /** PEM text of the CA. */
  ca?: string;
  /** Default true; false accepts any certificate (tests only). */
  rejectUnauthorized?: boolean;
  /** Name the certificate must carry; default the host connected to. */
  servername?: string;
}

/** Default largest batched WebSocket message, each way (the SDK's `wsBatchBytes`, the gateway's `gateway.wsBatchBytes`). */
export const DEFAULT_WS_BATCH_BYTES = 65536;

export interface TransportOptions {
  /** Largest frame body accepted from the server. */
  maxFrame?: number;
  /** WebSocket: largest batched message accepted from the server (default DEFAULT_WS_BATCH_BYTES). */
  maxBatch?: number;
  /** Time allowed for the connection to open. */
  timeoutMs?: number;
  /** TLS settings (Node). */
  tls?: ClientTlsOptions;
}

/** How long a graceful close may take before the connection is torn down. */
const CLOSE_GRACE_MS = 1000;

const noop = (): void => {};

/** Opens a transport of the given kind. Rejects with a ClientError (CONNECT_FAILED, TIMEOUT, UNSUPPORTED). */
export async function openTransport(kind: TransportKind, target: TransportTarget, opts: TransportOptions = {}): Promise<Transport> {
  const maxFrame = opts.maxFrame ?? DEFAULT_MAX_FRAME;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  if (kind === 'ws') {
    if (!target.wsUrl) throw new ClientError('CONNECT_FAILED', 'no WebSocket URL to connect to');
    return openWs(target.wsUrl, maxFrame, opts.maxBatch ?? DEFAULT_WS_BATCH_BYTES, timeoutMs, opts.tls);
  }
  if (kind === 'tcp') {
    if (!target.host || !target.port) throw new ClientError('CONNECT_FAILED', 'no TCP host/port to connect to');
    return openTcp(target.host, target.port, maxFrame, timeoutMs, target.tls === true ? (opts.tls ?? {}) : undefined);
  }
  throw new ClientError('UNSUPPORTED', `unknown transport "${String(kind)}"`);
}

// ---------------------------------------------------------------------------------------------
// WebSocket

/** The part of the WebSocket API shared by browsers, Node >= 22's global and the `ws` package. */
interface WsLike {
  binaryType: string;
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code?: number; reason?: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  /** `ws` package only: drops the connection at once. */
  terminate?(): void;
}
type WsCtor = new (url: string, optsOrProtocols?: unknown) => WsLike;

const WS_OPEN = 1;
/** Close code for "message too big" (RFC 6455). */
const WS_TOO_BIG = 1009;

async function webSocketCtor(needNodeOptions: boolean): Promise<{ Ctor: WsCtor; isNodeWs: boolean }> {
  const g = (globalThis as { WebSocket?: unknown }).WebSocket;
  const inBrowser = typeof (globalThis as { document?: unknown }).document !== 'undefined';
  // TLS options (a CA of your own) need the `ws` package in Node; a browser has its own trust store.
  if (typeof g === 'function' && (!needNodeOptions || inBrowser)) return { Ctor: g as WsCtor, isNodeWs: false };
  try {
    const mod = (await import(/* webpackIgnore: true */ /* @vite-ignore */ 'ws')) as unknown as { WebSocket?: unknown; default?: unknown };
    const Ctor = (mod.WebSocket ?? mod.default) as WsCtor | undefined;
    if (typeof Ctor !== 'function') throw new Error('module "ws" has no WebSocket export');
    return { Ctor, isNodeWs: true };
  } catch (e) {
    throw new ClientError('UNSUPPORTED', `no WebSocket implementation (no global WebSocket and cannot load "ws": ${(e as Error).message})`, {
      cause: e,
    });
  }
}

async function openWs(url: string, maxFrame: number, maxBatch: number, timeoutMs: number, tlsOpts?: ClientTlsOptions): Promise<Transport> {
  const { Ctor, isNodeWs } = await webSocketCtor(tlsOpts !== undefined);
  let ws: WsLike;
  try {
    const maxPayload = Math.max(maxFrame + HEADER_SIZE, maxBatch);
    ws = isNodeWs ? new Ctor(url, { maxPayload, perMessageDeflate: false, ...(tlsOpts ?? {}) }) : new Ctor(url);
  } catch (e) {
    throw new ClientError('CONNECT_FAILED', `WebSocket ${url}: ${(e as Error).message}`, { cause: e });
  }
  ws.binaryType = 'arraybuffer';
  await new Promise<void>((resolve, reject) => {
    let lastError = '';
    const timer = setTimeout(() => {
      cleanup();
      abortWs(ws);
      reject(new ClientError('TIMEOUT', `WebSocket ${url}: not open after ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      ws.onopen = ws.onclose = null;
      ws.onerror = noop; // keep a listener: `ws` would otherwise throw an unhandled 'error'
    };
    ws.onopen = () => {
      cleanup();
      resolve();
    };
    ws.onerror = (ev) => {
      lastError = errorText(ev);
    };
    ws.onclose = (ev) => {
      cleanup();
      reject(new ClientError('CONNECT_FAILED', `WebSocket ${url}: ${lastError || `closed (${ev.code ?? '?'})`}`));
    };
  });
  return new WsTransport(ws, maxFrame);
}

function errorText(ev: unknown): string {
  const e = ev as { message?: unknown; error?: { message?: unknown } } | null;
  if (e && typeof e.message === 'string' && e.message) return e.message;
  if (e && e.error && typeof e.error.message === 'string') return e.error.message;
  return 'connection failed';
}

function abortWs(ws: WsLike): void {
  try {
    if (ws.terminate) ws.terminate();
    else ws.close();
  } catch {
    // closing a socket that never opened may throw in some implementations
  }
}

function toUint8(data: unknown): Uint8Array | null {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (Object.prototype.toString.call(data) === '[object ArrayBuffer]') return new Uint8Array(data as ArrayBuffer);
  return null;
}

class WsTransport implements Transport {
  readonly kind = 'ws' as const;
  onMessage: (frame: Frame) => void = noop;
  onClose: (reason: string) => void = noop;
  private reason: string | null = null;
  private closing = false;
  private finished = false;
  private readonly closed: Promise<void>;
  private resolveClosed: () => void = noop;
  private killTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly ws: WsLike,
    private readonly maxFrame: number,
  ) {
    this.closed = new Promise((r) => (this.resolveClosed = r));
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onerror = () => {
      this.reason ??= 'DISCONNECTED';
    };
    ws.onclose = (ev) => {
      if (ev.code === WS_TOO_BIG) this.reason ??= 'FRAME_TOO_LARGE';
      this.finish();
    };
  }

  private receive(data: unknown): void {
    if (this.finished || this.closing) return;
    const bytes = toUint8(data);
    if (bytes === null) return this.fail('BAD_FRAME'); // text messages are not part of the protocol
    // One frame, or (batched) several whole frames.
    let frames: Frame[];
    try {
      frames = decodeFrames(bytes, this.maxFrame);
    } catch (e) {
      return this.fail((e as ClientError).code ?? 'BAD_FRAME');
    }
    for (const frame of frames) {
      if (this.finished || this.closing) return;
      try {
        this.onMessage(frame);
      } catch {
        // the owner handles its own errors
      }
    }
  }

  private fail(reason: string): void {
    this.reason ??= reason;
    this.closing = true;
    abortWs(this.ws);
    this.armKill();
  }

  send(bytes: Uint8Array): void {
    if (this.closing || this.finished || this.ws.readyState !== WS_OPEN) return;
    if (this.batchBytes > 0) {
      // Sent once the turn's synchronous code is done, all of the turn's frames together.
      if (this.outbox.length === 0) queueMicrotask(this.flush);
      this.outbox.push(bytes);
      return;
    }
    this.write(bytes);
  }

  batch(maxBytes: number): void {
    this.batchBytes = Math.max(0, maxBytes);
  }

  /** Largest message of frames sent together; 0 = one message per frame. */
  private batchBytes = 0;
  private outbox: Uint8Array[] = [];
  private readonly flush = (): void => {
    const q = this.outbox;
    this.outbox = [];
    if (this.closing || this.finished || this.ws.readyState !== WS_OPEN) return;
    for (const m of q.length === 1 ? q : batchFrames(q, this.batchBytes)) this.write(m);
  };

  private write(bytes: Uint8Array): void {
    try {
      this.ws.send(bytes);
    } catch {
      // a send racing the close; the close event follows
    }
  }

  close(): Promise<void> {
    if (!this.closing && !this.finished) {
      if (this.outbox.length > 0) this.flush(); // what this turn sent goes before the close
      this.closing = true;
      this.reason ??= 'CLOSED';
      try {
        this.ws.close(1000);
      } catch {
        abortWs(this.ws);
      }
      this.armKill();
    }
    return this.closed;
  }

  private armKill(): void {
    if (this.killTimer) return;
    this.killTimer = setTimeout(() => {
      abortWs(this.ws);
      this.finish();
    }, CLOSE_GRACE_MS);
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.killTimer) clearTimeout(this.killTimer);
    this.ws.onmessage = null;
    this.ws.onclose = null;
    this.ws.onerror = noop;
    const reason = this.reason ?? 'DISCONNECTED';
    this.resolveClosed();
    try {
      this.onClose(reason);
    } catch {
      // the owner handles its own errors
    }
  }
}

// ---------------------------------------------------------------------------------------------
// TCP (Node only)

type NetSocket = import('node:net').Socket;

async function openTcp(host: string, port: number, maxFrame: number, timeoutMs: number, tlsOpts?: ClientTlsOptions): Promise<Transport> {
  let socket: NetSocket;
  try {
    if (tlsOpts) {
      const tls = await import(/* webpackIgnore: true */ /* @vite-ignore */ 'node:tls');
      socket = tls.connect({
        host,
        port,
        servername: tlsOpts.servername ?? host,
        ca: tlsOpts.ca,
        rejectUnauthorized: tlsOpts.rejectUnauthorized ?? true,
      });
    } else {
      const net = await import(/* webpackIgnore: true */ /* @vite-ignore */ 'node:net');
      socket = net.connect({ host, port });
    }
  } catch (e) {
    throw new ClientError('UNSUPPORTED', 'the TCP transport needs Node.js (node:net); use transport "ws" in browsers', { cause: e });
  }
  const ready = tlsOpts ? 'secureConnect' : 'connect';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      socket.destroy();
      reject(new ClientError('TIMEOUT', `TCP ${host}:${port}: not connected after ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off(ready, onConnect);
      socket.off('error', onError);
    };
    const onConnect = (): void => {
      cleanup();
      resolve();
    };
    const onError = (e: Error): void => {
      cleanup();
      socket.destroy();
      reject(new ClientError('CONNECT_FAILED', `TCP ${host}:${port}: ${e.message}`, { cause: e }));
    };
    socket.on(ready, onConnect);
    socket.on('error', onError);
  });
  socket.setNoDelay(true);
  return new TcpTransport(socket, maxFrame);
}

class TcpTransport implements Transport {
  readonly kind = 'tcp' as const;
  onMessage: (frame: Frame) => void = noop;
  onClose: (reason: string) => void = noop;
  private reason: string | null = null;
  private closing = false;
  private finished = false;
  private readonly decoder: FrameDecoder;
  private readonly closed: Promise<void>;
  private resolveClosed: () => void = noop;
  private killTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly socket: NetSocket,
    maxFrame: number,
  ) {
    this.closed = new Promise((r) => (this.resolveClosed = r));
    this.decoder = new FrameDecoder(maxFrame, (frame) => {
      try {
        this.onMessage(frame);
      } catch {
        // the owner handles its own errors
      }
    });
    socket.on('data', (chunk: Uint8Array) => {
      if (this.finished || this.closing) return;
      try {
        // A plain Uint8Array view (no copy): handlers get the same type in Node and browsers.
        this.decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      } catch (e) {
        this.reason ??= (e as ClientError).code ?? 'BAD_FRAME';
        this.closing = true;
        socket.destroy();
      }
    });
    socket.on('error', () => {
      this.reason ??= 'DISCONNECTED';
    });
    socket.on('close', () => this.finish());
  }

  /**
   * Frames sent in one turn of the event loop leave in one write: the socket is corked at the
   * first and uncorked once the turn's synchronous code is done.
   */
  send(bytes: Uint8Array): void {
    if (this.closing || this.finished || this.socket.destroyed) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      queueMicrotask(this.uncork);
    }
    this.socket.write(bytes);
  }

  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  close(): Promise<void> {
    if (!this.closing && !this.finished) {
      this.closing = true;
      this.reason ??= 'CLOSED';
      this.socket.end();
      this.killTimer = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
    }
    return this.closed;
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.killTimer) clearTimeout(this.killTimer);
    this.decoder.reset();
    this.resolveClosed();
    try {
      this.onClose(this.reason ?? 'DISCONNECTED');
    } catch {
      // the owner handles its own errors
    }
  }
}
