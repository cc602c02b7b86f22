/**
 * XClient: a game client's connection to a gateway (docs/protocol.md §6), for browsers and Node.
 *
 *   const lr = await login('http://login:8080', 'alice', 'secret');
 *   const c = new XClient({ transport: 'ws' });
 *   c.on(c.cmd(4, 2), (data) => console.log(text(data)));
 *   await c.connect(lr);
 *   c.send(c.cmd(4, 1), 'hello');
 *   const reply = await c.request(c.cmd(4, 3), JSON.stringify({ q: 1 }));
 */
import { Emitter } from './emitter.js';
import { ClientError } from './errors.js';
import { Backoff } from '../protocol/backoff.js';
import { toBytes } from '../protocol/bytes.js';
import { PendingRequests } from '../protocol/pending.js';
import {
  DEFAULT_HEARTBEAT_MS,
  encodeAuth,
  parseErrorNotice,
  parseGoingAway,
  parseWelcome,
  type AuthRequest,
  type GoingAway,
  type HandoffGateway,
  type Welcome,
} from '../protocol/client-messages.js';
import { Cmd, DEFAULT_CMD_OFFSET, SYSTEM_CMD_BASE, isUserCmd } from '../protocol/commands.js';
import { contractHashes, isCommand, type Command, type RequestCommand } from '../protocol/contract.js';
import { DEFAULT_MAX_FRAME, Flags, encodeFrame, type Frame } from '../protocol/frame.js';
import { Heartbeat } from '../protocol/heartbeat.js';
import type { LoginResult } from './login.js';
import { DEFAULT_WS_BATCH_BYTES, openTransport, type ClientTlsOptions, type Transport, type TransportKind } from './transport.js';

export interface XClientOptions {
  /** 'ws' (default; the only one in browsers) or 'tcp' (Node only). */
  transport?: TransportKind;
  /** Must match the gateway's `gateway.cmdOffset` (default 1000). Used by `cmd()`. */
  cmdOffset?: number;
  /** Default `request()` timeout (default 10 000 ms). */
  requestTimeoutMs?: number;
  /** Time allowed to open the connection and get WELCOME (default 10 000 ms). */
  connectTimeoutMs?: number;
  /** Reconnect with the resume key after an unexpected disconnect (default true). */
  reconnect?: boolean;
  /** Reconnect attempts before giving up with 'disconnected'(RECONNECT_FAILED) (default 10). */
  maxReconnectAttempts?: number;
  /** Delay before the first reconnect attempt; doubles per attempt (default 300 ms). */
  reconnectDelayMs?: number;
  /** Upper bound of the reconnect delay (default 3000 ms). */
  maxReconnectDelayMs?: number;
  /** Messages kept while connecting/reconnecting (default 1000); beyond it send() throws QUEUE_FULL. */
  maxQueue?: number;
  /** Largest frame body accepted from, and sent to, the gateway (default 4 MiB). The gateway has its own limit (`gateway.maxFrame`). */
  maxFrame?: number;
  /**
   * WebSocket: frames of one event-loop turn go out, and may come in, as one message of up to this
   * many bytes, when the gateway agrees in WELCOME (default 64 KiB; 0 = one frame per message).
   */
  wsBatchBytes?: number;
  /** Overrides the ping interval the gateway asks for in WELCOME. */
  heartbeatMs?: number;
  /** This client's version, sent in AUTH; a gateway with `gateway.minClientVersion` refuses older ones. */
  version?: string;
  /**
   * The contracts this client was built with (e.g. `contractSet(Contracts)`): AUTH carries the
   * hash of those of each service type, and a gateway refuses the client with CONTRACT_MISMATCH
   * when a service of one of those types serves other contracts. None: not checked.
   */
  contracts?: Iterable<Command<unknown, unknown>>;
  /** TLS settings for a gateway with `tls` (Node: a CA of your own; browsers use their trust store). */
  tls?: ClientTlsOptions;
}

export type { Welcome };

/**
 * 'idle' (never connected) → 'connecting' → 'open' ⇄ 'reconnecting' → 'closed', and
 * 'open' → 'moving' → 'open' when a draining gateway sends GOING_AWAY (the session moves to
 * another gateway without a login; a failed move goes back to 'open' on the old connection, or
 * on to 'reconnecting' when that one is gone). Any state → 'closed' on close() or a kick.
 */
export type ClientState = 'idle' | 'connecting' | 'open' | 'moving' | 'reconnecting' | 'closed';

export type MessageHandler = (data: Uint8Array, cmd: number) => void;

export interface ClientEvents {
  /** The gateway kicked this client (KICKED, or a limit violation such as RATE_LIMITED); no reconnect follows. */
  kicked: (code: string, message: string) => void;
  /** The session is over: close(), kick, reconnect refused or given up. `reason` is a code. */
  disconnected: (reason: string) => void;
  /** The connection dropped; reconnect attempt `attempt` (1-based) is about to start. */
  reconnecting: (attempt: number) => void;
  /** The session was resumed on a new connection; queued messages have been sent. */
  reconnected: (welcome: Welcome) => void;
  /**
   * The gateway drained and the session moved to `gateway` (GOING_AWAY, then AUTH {handoff}; no
   * login). Everything the old gateway sent was handled first; messages sent meanwhile were queued
   * and have been sent on the new connection; requests in flight are answered there.
   */
  moved: (welcome: Welcome, gateway: HandoffGateway) => void;
  /**
   * The gateway refused this client as too old (UPDATE_REQUIRED, `gateway.minClientVersion`):
   * the app should update before it logs in again. connect() rejects with the same code.
   */
  'update-required': (minVersion: string) => void;
  /**
   * The gateway refused this client because its contracts of service type `type` (hash `client`)
   * are not the ones the services of that type serve (hash `server`): the client must be rebuilt
   * with the services' contracts module. connect() rejects with CONTRACT_MISMATCH.
   */
  'contract-mismatch': (mismatch: { type: number; client: string; server: string }) => void;
  /** Non-fatal problems: error notices from the gateway, handlers that threw. */
  error: (err: ClientError) => void;
}

export interface RequestOptions {
  /** Overrides `requestTimeoutMs`. */
  timeoutMs?: number;
}

interface Pending {
  resolve: (body: Uint8Array) => void;
  reject: (err: ClientError) => void;
  cmd: number;
  timeoutMs: number;
  /** False while the request waits in the queue: a disconnect does not fail it. */
  sent: boolean;
}

interface Queued {
  bytes: Uint8Array;
  rid: number;
}

/**
 * ERROR notices after which the gateway closes the connection for good (§6.5): when the close
 * follows such a notice the client treats it as a kick and does not reconnect.
 */
const FATAL_NOTICES = new Set(['KICKED', 'RATE_LIMITED', 'SLOW_CONSUMER', 'FRAME_TOO_LARGE', 'BAD_FRAME', 'TOO_MANY_CONNECTIONS']);
/** How recent a fatal notice must be for the following close to count as a kick. */
const NOTICE_WINDOW_MS = 5000;

/** Errors that are a server refusal (ERROR frame during the handshake), as opposed to a network failure. */
const refusals = new WeakSet<ClientError>();

/** The defaults of XClientOptions (each is documented on its option). */
const CLIENT_DEFAULTS = {
  transport: 'ws',
  cmdOffset: DEFAULT_CMD_OFFSET,
  requestTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
  reconnect: true,
  maxReconnectAttempts: 10,
  reconnectDelayMs: 300,
  maxReconnectDelayMs: 3000,
  maxQueue: 1000,
  maxFrame: DEFAULT_MAX_FRAME,
  wsBatchBytes: DEFAULT_WS_BATCH_BYTES,
} as const satisfies Required<Omit<XClientOptions, 'heartbeatMs' | 'tls' | 'version' | 'contracts'>>;

/** The options that were given (an explicit `undefined` keeps the default). */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The client pings at this share of the gateway's heartbeat interval, so a ping never arrives late. */
const HEARTBEAT_PING_SHARE = 0.8;
/** Silence of this many heartbeat intervals means the gateway is gone. */
const HEARTBEAT_DEAD_AFTER = 3;
/** No faster pings than this, whatever the gateway asks. */
const MIN_PING_INTERVAL_MS = 10;

const now = (): number => (typeof performance !== 'undefined' ? performance.now() : Date.now());

export class XClient {
  /** `type * cmdOffset + sub` numbering of user commands. */
  readonly cmdOffset: number;
  private readonly opts: Required<Omit<XClientOptions, 'heartbeatMs' | 'tls' | 'version' | 'contracts'>> & { heartbeatMs?: number };
  private readonly version: string | undefined;
  /** AUTH `contracts`: per service type, the hash of this client's contracts of it (undefined: none given). */
  private readonly contractHashes: Record<string, string> | undefined;
  private readonly tls: ClientTlsOptions | undefined;
  private readonly events = new Emitter<ClientEvents>();
  private readonly handlers = new Map<number, MessageHandler[]>();
  private readonly anyHandlers: MessageHandler[] = [];
  /** One timer for every request deadline of this client. */
  private readonly pending = new PendingRequests<Pending>((_rid, p) =>
    p.reject(new ClientError('TIMEOUT', `request ${p.cmd} got no response within ${p.timeoutMs} ms`)),
  );
  private queue: Queued[] = [];
  private _state: ClientState = 'idle';
  private _welcome: Welcome | null = null;
  private target: LoginResult | null = null;
  private transport: Transport | null = null;
  /** Transport opened but not yet welcomed (closed by close()). */
  private opening: Transport | null = null;
  /** Bumped by connect(), close() and when a session ends: stale async work checks it and stops. */
  private epoch = 0;
  private nextRid = 1;
  private heartbeat: Heartbeat | null = null;
  private lastNotice: { code: string; message: string; at: number } | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private wakeRetry: (() => void) | null = null;
  /** While 'moving': called when the old connection is gone (instead of a reconnect). */
  private oldGone: (() => void) | null = null;

  constructor(opts: XClientOptions = {}) {
    this.opts = {
      ...CLIENT_DEFAULTS,
      ...definedOnly(opts),
      heartbeatMs: opts.heartbeatMs,
    };
    this.tls = opts.tls;
    this.version = opts.version;
    this.contractHashes = opts.contracts === undefined ? undefined : contractHashes(opts.contracts);
    if (this.opts.transport !== 'ws' && this.opts.transport !== 'tcp') {
      throw new ClientError('UNSUPPORTED', `unknown transport "${String(this.opts.transport)}"`);
    }
    this.cmdOffset = this.opts.cmdOffset;
  }

  // ------------------------------------------------------------------------------------------
  // State

  get state(): ClientState {
    return this._state;
  }

  /** True while a connection is authenticated (also while the session moves to another gateway). */
  get connected(): boolean {
    return this._state === 'open' || this._state === 'moving';
  }

  /** The last WELCOME (null before the first). */
  get welcome(): Welcome | null {
    return this._welcome;
  }

  /** Messages waiting for the connection. */
  get queued(): number {
    return this.queue.length;
  }

  /** Requests waiting for their response. */
  get pendingRequests(): number {
    return this.pending.size;
  }

  // ------------------------------------------------------------------------------------------
  // Commands

  /** The command of sub-command `sub` of service type `type`: `type * cmdOffset + sub`. */
  cmd(type: number, sub: number): number {
    if (!Number.isInteger(type) || !Number.isInteger(sub) || type < 0 || sub < 0 || sub >= this.cmdOffset) {
      throw new ClientError('BAD_COMMAND', `cmd(${type}, ${sub}): need integers with 0 <= sub < ${this.cmdOffset}`);
    }
    return type * this.cmdOffset + sub;
  }

  /** Splits a command into `[type, sub]` (the inverse of `cmd()`). */
  parseCmd(cmd: number): [type: number, sub: number] {
    return [Math.floor(cmd / this.cmdOffset), cmd % this.cmdOffset];
  }

  // ------------------------------------------------------------------------------------------
  // Connection

  /**
   * Connects to the gateway chosen by `login()` and authenticates with its token. Resolves with
   * WELCOME; rejects with a ClientError carrying the gateway's code (BAD_TOKEN, TOKEN_EXPIRED, ...),
   * or CONNECT_FAILED / TIMEOUT / DISCONNECTED / CLOSED. Starts the heartbeat.
   */
  async connect(login: LoginResult): Promise<Welcome> {
    if (this._state === 'connecting' || this._state === 'open' || this._state === 'moving' || this._state === 'reconnecting') {
      throw new ClientError('ALREADY_CONNECTED', `connect() while ${this._state}`);
    }
    const epoch = ++this.epoch;
    this.target = login;
    this._welcome = null;
    this._state = 'connecting';
    try {
      return await this.open({ token: login.token, ...this.authFields() }, epoch, false);
    } catch (e) {
      const err = e instanceof ClientError ? e : new ClientError('CONNECT_FAILED', String(e), { cause: e });
      if (epoch === this.epoch) {
        this.epoch++;
        this._state = 'closed';
        this.failQueued(err);
      }
      throw err;
    }
  }

  /**
   * Closes the connection for good: no reconnect; pending requests fail with CLOSED; emits
   * 'disconnected'('CLOSED'). Resolves once the connection is closed.
   */
  async close(): Promise<void> {
    if (this._state === 'idle' || this._state === 'closed') return;
    const t = this.transport;
    const o = this.opening;
    this.opening = null;
    this.end('CLOSED', new ClientError('CLOSED', 'client closed'));
    await Promise.all([t?.close(), o?.close()]);
  }

  /** What AUTH carries besides the token or resume key: the version, the contract hashes, and (WebSocket) batching. */
  private authFields(): { version?: string; contracts?: Record<string, string>; batch?: number } {
    return {
      ...(this.version === undefined ? {} : { version: this.version }),
      ...(this.contractHashes === undefined ? {} : { contracts: this.contractHashes }),
      ...(this.opts.transport === 'ws' && this.opts.wsBatchBytes > 0 ? { batch: this.opts.wsBatchBytes } : {}),
    };
  }

  /** Opens a transport, authenticates and attaches it. */
  private async open(auth: AuthRequest, epoch: number, resuming: boolean): Promise<Welcome> {
    const lr = this.target!;
    const deadline = now() + this.opts.connectTimeoutMs;
    const t = await openTransport(
      this.opts.transport,
      { wsUrl: lr.gateway.wsUrl, host: lr.gateway.host, port: lr.gateway.tcpPort, tls: lr.gateway.tls === true },
      {
        maxFrame: this.opts.maxFrame,
        maxBatch: this.opts.wsBatchBytes,
        timeoutMs: this.opts.connectTimeoutMs,
        ...(this.tls ? { tls: this.tls } : {}),
      },
    );
    if (epoch !== this.epoch) {
      void t.close();
      throw new ClientError('CLOSED', 'client closed');
    }
    this.opening = t;
    return new Promise<Welcome>((resolve, reject) => {
      let done = false;
      const fail = (err: ClientError): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (this.opening === t) this.opening = null;
        void t.close();
        reject(err);
      };
      const timer = setTimeout(
        () => fail(new ClientError('TIMEOUT', `no WELCOME within ${this.opts.connectTimeoutMs} ms`)),
        Math.max(1, deadline - now()),
      );
      t.onMessage = (f) => {
        if (done) return;
        if (f.cmd === Cmd.WELCOME) {
          let w: Welcome;
          try {
            w = parseWelcome(f.body);
          } catch (e) {
            return fail(new ClientError('BAD_FRAME', (e as Error).message));
          }
          if (epoch !== this.epoch) return fail(new ClientError('CLOSED', 'client closed'));
          done = true;
          clearTimeout(timer);
          if (this.opening === t) this.opening = null;
          // Attach synchronously: frames right behind WELCOME (a resume buffer) must reach the handlers.
          this.attach(t, w);
          if (resuming) this.emit('reconnected', w);
          resolve(w);
        } else if (f.cmd === Cmd.ERROR) {
          const n = parseErrorNotice(f.body, 'AUTH_FAILED');
          const err = new ClientError(n.code, n.message);
          if (n.code === 'UPDATE_REQUIRED') this.emit('update-required', n.minVersion ?? '');
          if (n.code === 'CONTRACT_MISMATCH') this.emit('contract-mismatch', n.contract ?? { type: -1, client: '', server: '' });
          refusals.add(err);
          fail(err);
        } else if (f.cmd === Cmd.PING) {
          t.send(encodeFrame(Cmd.PONG));
        }
      };
      t.onClose = (reason) => {
        fail(
          epoch !== this.epoch
            ? new ClientError('CLOSED', 'client closed')
            : new ClientError('DISCONNECTED', `connection closed before WELCOME (${reason})`),
        );
      };
      t.send(encodeFrame(Cmd.AUTH, encodeAuth(auth)));
    });
  }

  private attach(t: Transport, w: Welcome): void {
    if (w.batch !== undefined) t.batch?.(Math.min(w.batch, this.opts.wsBatchBytes));
    this.transport = t;
    this._welcome = w;
    this._state = 'open';
    this.lastNotice = null;
    t.onMessage = (f) => this.dispatch(t, f);
    t.onClose = (reason) => this.lost(t, reason);
    this.startHeartbeat(t, this.opts.heartbeatMs ?? w.heartbeatMs);
    // Flush what was sent while (re)connecting, skipping requests that timed out meanwhile.
    this.flushQueue(t);
  }

  /** The attached transport closed (or its heartbeat died). */
  private lost(t: Transport, reason: string): void {
    if (t !== this.transport) return;
    if (this._state === 'moving') {
      // The old gateway closes the connection once the session is handed over: expected. Whether
      // the session goes on here or there is the move's to decide (move()).
      this.oldGone?.();
      return;
    }
    this.transport = null;
    this.stopHeartbeat();
    const n = this.lastNotice;
    if (n && FATAL_NOTICES.has(n.code) && now() - n.at <= NOTICE_WINDOW_MS) {
      this.kick(n.code, n.message);
      return;
    }
    this.failSent(new ClientError('DISCONNECTED', `connection lost (${reason}); the request may or may not have been processed`));
    if (!this.opts.reconnect || !this._welcome || this.opts.maxReconnectAttempts <= 0) {
      this.end(reason, new ClientError('DISCONNECTED', `connection lost (${reason})`));
      return;
    }
    this._state = 'reconnecting';
    void this.reconnectLoop(this.epoch);
  }

  private async reconnectLoop(epoch: number): Promise<void> {
    // Past the gateway's grace the session is gone: say so at once so the app logs in again.
    const graceMs = this._welcome?.graceMs;
    const deadline = graceMs !== undefined ? now() + graceMs : Infinity;
    const backoff = new Backoff(this.opts.reconnectDelayMs, this.opts.maxReconnectDelayMs);
    for (let attempt = 1; attempt <= this.opts.maxReconnectAttempts; attempt++) {
      if (epoch !== this.epoch) return;
      if (now() >= deadline) break;
      this.emit('reconnecting', attempt);
      if (epoch !== this.epoch) return; // a listener called close()
      await this.sleep(Math.min(backoff.next(), Math.max(0, deadline - now())));
      if (epoch !== this.epoch) return;
      try {
        await this.open({ resume: this._welcome!.resume, ...this.authFields() }, epoch, true);
        return;
      } catch (e) {
        if (epoch !== this.epoch) return;
        if (e instanceof ClientError && refusals.has(e)) {
          // The gateway no longer has the session (grace expired, ...): the session is over.
          this.end(e.code, e);
          return;
        }
        // Network failure: try again.
      }
    }
    if (epoch === this.epoch) {
      const why =
        now() >= deadline
          ? `the gateway's ${graceMs} ms reconnect grace has passed`
          : `gave up after ${this.opts.maxReconnectAttempts} reconnect attempts`;
      this.end('RECONNECT_FAILED', new ClientError('RECONNECT_FAILED', why));
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wakeRetry = resolve;
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.wakeRetry = null;
        resolve();
      }, ms);
    });
  }

  private kick(code: string, message: string): void {
    const t = this.transport;
    this.end(code, new ClientError(code, message), () => this.emit('kicked', code, message));
    void t?.close();
  }

  /** Ends the session: state 'closed', everything pending fails, 'disconnected'(reason). */
  private end(reason: string, err: ClientError, before?: () => void): void {
    this.epoch++;
    this._state = 'closed';
    this.transport = null;
    this.stopHeartbeat();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const wake = this.wakeRetry;
    this.wakeRetry = null;
    wake?.();
    this.oldGone?.(); // a move in progress stops waiting
    this.failQueued(err);
    for (const p of this.pending.takeAll()) p.reject(err);
    before?.();
    this.emit('disconnected', reason);
  }

  // ------------------------------------------------------------------------------------------
  // Moving to another gateway (GOING_AWAY)

  private goingAway(old: Transport, body: Uint8Array): void {
    if (this._state !== 'open') return;
    let g: GoingAway;
    try {
      g = parseGoingAway(body);
    } catch (e) {
      this.emit('error', new ClientError('BAD_FRAME', (e as Error).message));
      return;
    }
    this._state = 'moving';
    void this.move(old, g, this.epoch);
  }

  /**
   * Connects to the named gateway with AUTH {handoff} while the old connection stays attached:
   * frames from the old one are handled until it closes (the old gateway closes it once it handed
   * the session over), frames from the new one are held until then, so every message is handled
   * once and in order. Sends are queued meanwhile. Requests in flight stay pending: the old
   * gateway forwards their answers. A refused or failed move goes back to the old connection.
   */
  private async move(old: Transport, g: GoingAway, epoch: number): Promise<void> {
    let oldClosed = false;
    const oldGone = new Promise<void>((resolve) => {
      this.oldGone = () => {
        oldClosed = true;
        this.oldGone = null;
        resolve();
      };
    });
    const gw = g.gateway;
    const fail = (err: ClientError): void => {
      if (epoch !== this.epoch) return;
      this.emit('error', new ClientError(err.code, `moving to gateway ${gw.id} failed: ${err.message}`, { cause: err }));
      const closed = oldClosed;
      this.oldGone = null;
      this._state = 'open';
      if (closed) this.lost(old, 'DISCONNECTED');
      else this.flushQueue(old);
    };
    let t: Transport;
    try {
      t = await openTransport(
        this.opts.transport,
        { wsUrl: gw.wsUrl, host: gw.host, port: gw.tcpPort, tls: gw.tls },
        {
          maxFrame: this.opts.maxFrame,
          maxBatch: this.opts.wsBatchBytes,
          timeoutMs: this.opts.connectTimeoutMs,
          ...(this.tls ? { tls: this.tls } : {}),
        },
      );
    } catch (e) {
      return fail(e instanceof ClientError ? e : new ClientError('CONNECT_FAILED', String(e)));
    }
    if (epoch !== this.epoch) {
      void t.close();
      return;
    }
    this.opening = t;
    const held: Frame[] = [];
    let newClosed: string | null = null;
    const answer = await new Promise<Welcome | ClientError>((resolve) => {
      let welcomed = false;
      const timer = setTimeout(
        () => resolve(new ClientError('TIMEOUT', `no WELCOME within ${this.opts.connectTimeoutMs} ms`)),
        this.opts.connectTimeoutMs,
      );
      t.onMessage = (f) => {
        if (welcomed) {
          held.push(f);
          // The old connection does not close: stop waiting for it rather than hold without end.
          if (held.length >= this.opts.maxQueue) this.oldGone?.();
          return;
        }
        if (f.cmd === Cmd.WELCOME) {
          clearTimeout(timer);
          try {
            welcomed = true;
            resolve(parseWelcome(f.body));
          } catch (e) {
            resolve(new ClientError('BAD_FRAME', (e as Error).message));
          }
        } else if (f.cmd === Cmd.ERROR) {
          clearTimeout(timer);
          const n = parseErrorNotice(f.body, 'MOVE_FAILED');
          resolve(new ClientError(n.code, n.message));
        } else if (f.cmd === Cmd.PING) {
          t.send(encodeFrame(Cmd.PONG));
        }
      };
      t.onClose = (reason) => {
        newClosed = reason;
        clearTimeout(timer);
        resolve(new ClientError('DISCONNECTED', `connection closed before WELCOME (${reason})`));
      };
      t.send(encodeFrame(Cmd.AUTH, encodeAuth({ handoff: g.handoff, ...this.authFields() })));
    });
    if (epoch !== this.epoch) {
      void t.close();
      return;
    }
    if (answer instanceof ClientError) {
      if (this.opening === t) this.opening = null;
      void t.close();
      return fail(answer);
    }
    // The session is at the new gateway now: its answers and the old connection's last frames.
    if (!oldClosed) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([oldGone, new Promise<void>((r) => (timer = setTimeout(r, this.opts.connectTimeoutMs)))]);
      clearTimeout(timer);
    }
    this.oldGone = null;
    if (this.opening === t) this.opening = null;
    if (epoch !== this.epoch) {
      void t.close();
      return;
    }
    this.target = { ...this.target!, gateway: { ...gw } };
    this.transport = null;
    this.stopHeartbeat();
    void old.close();
    this.attach(t, answer);
    for (const f of held) this.dispatch(t, f);
    this.emit('moved', answer, gw);
    if (newClosed !== null) this.lost(t, newClosed);
  }

  /** Sends what was queued (while connecting or moving), skipping requests that timed out meanwhile. */
  private flushQueue(t: Transport): void {
    const q = this.queue;
    this.queue = [];
    for (const m of q) {
      if (m.rid !== 0) {
        const p = this.pending.get(m.rid);
        if (!p) continue;
        p.sent = true;
      }
      t.send(m.bytes);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Heartbeat

  /**
   * The shared Heartbeat (the one links and the gateway use): a PING a little more often than the
   * gateway asks (HEARTBEAT_PING_SHARE of its interval), the gateway declared gone after
   * HEARTBEAT_DEAD_AFTER intervals of silence. A late timer (suspended tab) restarts the clock.
   */
  private startHeartbeat(t: Transport, heartbeatMs: number): void {
    this.stopHeartbeat();
    const hb = heartbeatMs > 0 ? heartbeatMs : DEFAULT_HEARTBEAT_MS;
    const every = Math.max(MIN_PING_INTERVAL_MS, Math.floor(hb * HEARTBEAT_PING_SHARE));
    this.heartbeat = new Heartbeat(
      {
        sendPing: () => t.send(encodeFrame(Cmd.PING)),
        onHeartbeatTimeout: () => {
          this.lost(t, 'HEARTBEAT_TIMEOUT');
          void t.close();
        },
      },
      every,
      HEARTBEAT_DEAD_AFTER * hb,
    );
    this.heartbeat.start();
  }

  private stopHeartbeat(): void {
    this.heartbeat?.stop();
    this.heartbeat = null;
  }

  // ------------------------------------------------------------------------------------------
  // Receiving

  private dispatch(t: Transport, f: Frame): void {
    if (t !== this.transport) return;
    this.heartbeat?.touch();
    if (f.flags & Flags.RESPONSE) {
      const p = this.pending.take(f.rid);
      if (!p) return; // late reply to a request that timed out
      if (f.flags & Flags.ERROR) p.reject(errorFromBody(f.body, 'REQUEST_FAILED'));
      else p.resolve(f.body);
      return;
    }
    if (f.cmd >= SYSTEM_CMD_BASE) {
      if (f.cmd === Cmd.PING) t.send(encodeFrame(Cmd.PONG));
      else if (f.cmd === Cmd.ERROR) this.notice(f.body);
      else if (f.cmd === Cmd.GOING_AWAY) this.goingAway(t, f.body);
      return; // PONG and unknown framework commands
    }
    const list = this.handlers.get(f.cmd);
    if (list) for (const h of list.slice()) this.call(h, f);
    for (const h of this.anyHandlers.slice()) this.call(h, f);
  }

  private call(h: MessageHandler, f: Frame): void {
    try {
      h(f.body, f.cmd);
    } catch (e) {
      this.emit('error', new ClientError('HANDLER_ERROR', `handler for cmd ${f.cmd} threw: ${(e as Error)?.message ?? String(e)}`, { cause: e }));
    }
  }

  /** An ERROR frame outside a response: KICKED ends the session; others are reported. */
  private notice(body: Uint8Array): void {
    const err = errorFromBody(body, 'ERROR');
    if (err.code === 'KICKED') {
      this.kick(err.code, err.message);
      return;
    }
    this.lastNotice = { code: err.code, message: err.message, at: now() };
    this.emit('error', err);
  }

  // ------------------------------------------------------------------------------------------
  // Sending

  /**
   * Sends a message. While connecting, reconnecting or moving it is queued (up to `maxQueue`) and sent
   * after WELCOME. Throws ClientError NOT_CONNECTED (idle/closed), QUEUE_FULL, BAD_COMMAND,
   * FRAME_TOO_LARGE.
   */
  send(cmd: number, data?: Uint8Array | string): void;
  /** Sends a contract's one-way message, encoded by its codec (a wrong payload does not compile). */
  send<Req>(command: Command<Req, unknown>, message: Req): void;
  send(a: number | Command<unknown, unknown>, data: unknown = EMPTY): void {
    if (isCommand(a)) return this.send(this.cmd(a.type, a.cmd), a.request.encode(data));
    const body = this.checkOut(a, data as Uint8Array | string);
    this.write(encodeFrame(a, body), 0);
  }

  /**
   * Sends a request and resolves with the response body. Rejects with a ClientError: the
   * server's code for an error response, TIMEOUT, DISCONNECTED (the connection dropped while
   * the request was in flight), CLOSED, or the errors of `send()`.
   */
  request(cmd: number, data?: Uint8Array | string, opts?: RequestOptions): Promise<Uint8Array>;
  /**
   * A contract's request: encoded and decoded by its codecs, typed by them. A response that does
   * not decode rejects with ClientError BAD_PAYLOAD.
   */
  request<Req, Res>(command: RequestCommand<Req, Res>, request: Req, opts?: RequestOptions): Promise<Res>;
  request(a: number | Command<unknown, unknown>, data: unknown = EMPTY, opts: RequestOptions = {}): Promise<unknown> {
    if (isCommand(a)) {
      const c = a;
      let body: Uint8Array;
      try {
        body = c.request.encode(data);
      } catch (e) {
        return Promise.reject(new ClientError('BAD_PAYLOAD', `${c.name}: cannot encode the request: ${(e as Error).message}`));
      }
      return this.request(this.cmd(c.type, c.cmd), body, opts).then((bytes) => decodeOrFail(c, bytes));
    }
    const cmd = a;
    const payload = data as Uint8Array | string;
    return new Promise<Uint8Array>((resolve, reject) => {
      let body: Uint8Array;
      try {
        body = this.checkOut(cmd, payload);
      } catch (e) {
        return reject(e);
      }
      const rid = this.nextRid;
      this.nextRid = this.nextRid >= 0xffffffff ? 1 : this.nextRid + 1;
      const timeoutMs = opts.timeoutMs ?? this.opts.requestTimeoutMs;
      this.pending.add(rid, { resolve, reject, cmd, timeoutMs, sent: false }, timeoutMs);
      try {
        this.write(encodeFrame(cmd, body, Flags.REQUEST, rid), rid);
      } catch (e) {
        this.pending.take(rid);
        reject(e);
      }
    });
  }

  private checkOut(cmd: number, data: Uint8Array | string): Uint8Array {
    if (!isUserCmd(cmd)) {
      throw new ClientError('BAD_COMMAND', `command ${cmd} is not a user command (0 .. 0x${(SYSTEM_CMD_BASE - 1).toString(16)})`);
    }
    const body = toBytes(data);
    if (body.length > this.opts.maxFrame) {
      throw new ClientError('FRAME_TOO_LARGE', `body of ${body.length} bytes exceeds maxFrame ${this.opts.maxFrame}`);
    }
    return body;
  }

  private write(bytes: Uint8Array, rid: number): void {
    if (this._state === 'open' && this.transport) {
      if (rid !== 0) this.pending.get(rid)!.sent = true;
      this.transport.send(bytes);
      return;
    }
    if (this._state === 'connecting' || this._state === 'reconnecting' || this._state === 'moving') {
      if (this.queue.length >= this.opts.maxQueue) {
        throw new ClientError('QUEUE_FULL', `${this.queue.length} messages already wait for the connection`);
      }
      this.queue.push({ bytes, rid });
      return;
    }
    throw new ClientError('NOT_CONNECTED', `cannot send while ${this._state}`);
  }

  /** Fails requests that went out on the lost connection. */
  private failSent(err: ClientError): void {
    for (const p of this.pending.takeAll((x) => x.sent)) p.reject(err);
  }

  /** Drops the queue, failing the requests in it. */
  private failQueued(err: ClientError): void {
    const q = this.queue;
    this.queue = [];
    for (const m of q) {
      if (m.rid === 0) continue;
      this.pending.take(m.rid)?.reject(err);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Handlers and events

  /** Handles messages with command `cmd`; returns a function that removes the handler. */
  on(cmd: number, handler: MessageHandler): () => void;
  /**
   * Handles a contract's messages (a service's pushes), decoded by its codec; a body that does not
   * decode is reported as an 'error' event (BAD_PAYLOAD), the handler is not called.
   */
  on<M>(command: Command<M, unknown>, handler: (message: M) => void): () => void;
  /** Listens to a client event; returns a function that removes the listener. */
  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): () => void;
  on(key: number | Command<unknown, unknown> | keyof ClientEvents, fn: unknown): () => void {
    if (isCommand(key)) {
      const c = key;
      const typed = fn as (m: unknown) => void;
      return this.on(this.cmd(c.type, c.cmd), (data: Uint8Array) => {
        let m: unknown;
        try {
          m = c.request.decode(data);
        } catch (e) {
          this.emit('error', new ClientError('BAD_PAYLOAD', `${c.name}: ${(e as Error).message}`));
          return;
        }
        typed(m);
      });
    }
    if (typeof key === 'number') {
      const h = fn as MessageHandler;
      const list = this.handlers.get(key);
      if (list) list.push(h);
      else this.handlers.set(key, [h]);
      return () => this.off(key, h);
    }
    return this.events.addListener(key, fn as ClientEvents[typeof key]);
  }

  /** Removes a handler or listener added with `on()`. */
  off(cmd: number, handler: MessageHandler): void;
  off<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): void;
  off(key: number | keyof ClientEvents, fn: MessageHandler | ClientEvents[keyof ClientEvents]): void {
    if (typeof key === 'number') {
      const list = this.handlers.get(key);
      if (!list) return;
      const i = list.indexOf(fn as MessageHandler);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.handlers.delete(key);
      return;
    }
    this.events.removeListener(key, fn as ClientEvents[typeof key]);
  }

  /** Listens to an event once. */
  once<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): () => void {
    const off = this.events.addListener(event, ((...args: Parameters<ClientEvents[E]>) => {
      off();
      (listener as (...a: Parameters<ClientEvents[E]>) => void)(...args);
    }) as ClientEvents[E]);
    return off;
  }

  /** Handles every user message (after the per-command handlers); returns a remover. */
  onAny(handler: MessageHandler): () => void {
    this.anyHandlers.push(handler);
    return () => {
      const i = this.anyHandlers.indexOf(handler);
      if (i >= 0) this.anyHandlers.splice(i, 1);
    };
  }

  private emit<E extends keyof ClientEvents>(event: E, ...args: Parameters<ClientEvents[E]>): void {
    this.events.emit(event, args, (e) => {
      if (event !== 'error') {
        this.emit('error', new ClientError('HANDLER_ERROR', `'${event}' listener threw: ${(e as Error)?.message ?? String(e)}`, { cause: e }));
      }
    });
  }
}

const EMPTY = new Uint8Array(0);

/** A contract's response, or BAD_PAYLOAD when it does not decode. */
function decodeOrFail(c: Command<unknown, unknown>, bytes: Uint8Array): unknown {
  if (!c.response) return undefined;
  try {
    return c.response.decode(bytes);
  } catch (e) {
    throw new ClientError('BAD_PAYLOAD', `${c.name}: cannot decode the response: ${(e as Error).message}`);
  }
}

/** Builds a ClientError from an ERROR body (tolerates garbage). */
function errorFromBody(body: Uint8Array, fallback: string): ClientError {
  const n = parseErrorNotice(body, fallback);
  return new ClientError(n.code, n.message);
}
