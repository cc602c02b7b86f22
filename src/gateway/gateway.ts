/**
 * Gateway: terminates game clients (TCP and WebSocket, same frames) and relays between them and
 * the service nodes (SPEC §6). It is itself a cluster node of type 3: ports[1] is its client TCP
 * port, ports[2] its WebSocket port, overload[0] its connection count (login balances on it).
 *
 * Per account it keeps a Session that outlives a connection by the reconnect grace: a client that
 * reconnects (AUTH {resume}) within it gets what was sent meanwhile; after it, the allocated nodes
 * get ACCOUNT_LOST. Sessions carry the login generation, so an older session can never evict a
 * newer login; a newer login kicks the older connection (here, or on another gateway via
 * KICK_ACCOUNT) and keeps the service state.
 */
import net from 'node:net';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import {
  AccountArrivedSchema,
  AccountLostSchema,
  BroadcastClientsSchema,
  FromNodeSchema,
  KickAccountSchema,
  RelayMode,
  ToNodesSchema,
} from '../gen/xserver/v1/relay_pb.js';
import { statefulTypeNumbers } from '../config/schema.js';
import { NodeType, type RoleContext } from '../context.js';
import { XError, errorCodeName } from '../errors.js';
import type { Link } from '../link/link.js';
import { ClusterNode } from '../node/node.js';
import { decode, encode } from '../wire/codec.js';
import { decodeToClient, encodeFromClient } from '../wire/relay-codec.js';
import { Cmd, SYSTEM_CMD_BASE } from '../wire/commands.js';
import { Flags, type Frame } from '../wire/frame.js';
import { ClientConnection, TcpClientConnection, WsClientConnection, errorBody, jsonBody, type ClientLimits } from './client-conn.js';

interface Session {
  account: string;
  generation: number;
  resumeKey: string;
  conn: ClientConnection | null;
  /** stateful type -> allocated node id */
  allocations: Map<number, string>;
  /** Frames for the client while it is away (bounded by count and bytes). */
  buffer: { cmd: number; body: Uint8Array; flags: number; rid: number }[];
  bufferBytes: number;
  graceTimer: NodeJS.Timeout | null;
  /** Client frames waiting while a stateful type is being reallocated (keeps their order). */
  routeQueue: { conn: ClientConnection; f: Frame }[] | null;
  /** Client requests forwarded and not answered yet: rid -> node id and client command (bounded). */
  inflight: Map<number, { target: string; cmd: number }>;
}

const textDecoder = new TextDecoder();

export class Gateway {
  readonly node: ClusterNode;
  private readonly log: Logger;
  private readonly cfg: RoleContext['config'];
  private readonly tcp: net.Server;
  private readonly httpServer: http.Server;
  private readonly wss: WebSocketServer;
  private readonly conns = new Set<ClientConnection>();
  private readonly sessions = new Map<string, Session>();
  private readonly byResume = new Map<string, Session>();
  /** Connections that sent AUTH and await the store. */
  private readonly authenticating = new Set<ClientConnection>();
  private readonly stateful: Set<number>;
  private readonly limits: ClientLimits;
  private sweepTimer: NodeJS.Timeout | null = null;
  private readonly count = { inbound: 0, outbound: 0 };
  private readonly retireCounters: (() => void)[];
  private stopping = false;
  private readonly m;

  constructor(private readonly ctx: RoleContext) {
    this.cfg = ctx.config;
    this.node = new ClusterNode(ctx, { type: NodeType.GATEWAY, name: 'gateway' });
    this.log = this.node.log;
    this.stateful = new Set(statefulTypeNumbers(ctx.config));
    const g = ctx.config.gateway;
    this.limits = { maxFrame: g.maxFrame, maxOutboundBytes: g.maxOutboundBytes, ratePerSec: g.rateLimitPerSec, burst: g.rateBurst };
    this.tcp = net.createServer((s) => this.accept(new TcpClientConnection(s, this.connHost, this.limits)));
    this.httpServer = http.createServer((_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' }).end('WebSocket only\n');
    });
    // ws enforces a hard cap at twice our limit; below it we answer with our own ERROR frame.
    this.wss = new WebSocketServer({ server: this.httpServer, maxPayload: g.maxFrame * 2 + 64, perMessageDeflate: false });
    this.wss.on('connection', (ws, req) => this.accept(new WsClientConnection(ws, req.socket, this.connHost, this.limits)));
    this.node.handleSystem(Cmd.RELAY_TO_CLIENT, (f, link) => this.onToClient(f, link));
    this.node.handleSystem(Cmd.RELAY_BROADCAST_CLIENTS, (f, link) => this.onBroadcast(f, link));
    this.node.handleSystem(Cmd.RELAY_TO_NODES, (f, link) => this.onToNodes(f, link));
    this.node.handleSystem(Cmd.KICK_ACCOUNT, (f) => this.onKickAccount(f));
    this.node.on('left', (peer) => this.failInflight(peer.id));
    const mm = ctx.metrics;
    // Per-message counts are plain numbers read at scrape time (no label hashing per message).
    this.retireCounters = [
      mm.polledCounter('gateway_client_messages_in_total', 'Client messages routed to nodes').add({}, () => this.count.inbound),
      mm.polledCounter('gateway_client_messages_out_total', 'Messages delivered to clients').add({}, () => this.count.outbound),
    ];
    this.m = {
      connections: mm.gauge('gateway_connections', 'Open client connections'),
      sessions: mm.gauge('gateway_sessions', 'Client sessions (connected or within the reconnect grace)'),
      refused: mm.counter('gateway_refused_total', 'Client frames, connections or messages refused', ['reason']),
      lost: mm.counter('gateway_accounts_lost_total', 'Accounts reported lost to nodes'),
      resumed: mm.counter('gateway_sessions_resumed_total', 'Sessions resumed within the grace period'),
    };
  }

  get tcpPort(): number {
    return (this.tcp.address() as net.AddressInfo | null)?.port ?? 0;
  }

  get wsPort(): number {
    return (this.httpServer.address() as net.AddressInfo | null)?.port ?? 0;
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  async start(): Promise<void> {
    const g = this.cfg.gateway;
    await listen(this.tcp, g.tcpPort, g.host);
    await listen(this.httpServer, g.wsPort, g.host);
    this.node.setExtraPorts([this.tcpPort, this.wsPort]);
    this.node.setOverload(0, 0);
    await this.node.start();
    const tick = Math.max(20, Math.min(1000, Math.floor(Math.min(g.authTimeoutMs, g.idleTimeoutMs) / 4)));
    this.sweepTimer = setInterval(() => this.sweep(), tick);
    this.sweepTimer.unref();
    this.log.info({ tcpPort: this.tcpPort, wsPort: this.wsPort }, 'gateway listening for clients');
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const c of [...this.conns]) c.close(new XError('SHUTTING_DOWN', 'gateway is shutting down; log in again'));
    for (const s of this.sessions.values()) if (s.graceTimer) clearTimeout(s.graceTimer);
    this.sessions.clear();
    this.byResume.clear();
    this.tcp.close();
    this.wss.close();
    this.httpServer.close();
    this.httpServer.closeAllConnections?.();
    await this.node.stop();
    for (const retire of this.retireCounters) retire();
  }

  /** True while the account has a live client connection here. */
  isConnected(account: string): boolean {
    const c = this.sessions.get(account)?.conn;
    return c !== undefined && c !== null && !c.closed;
  }

  statusJson(): Record<string, unknown> {
    let attached = 0;
    for (const s of this.sessions.values()) if (s.conn) attached++;
    return { connections: this.conns.size, sessions: this.sessions.size, attached, tcpPort: this.tcpPort, wsPort: this.wsPort };
  }

  // ------------------------------------------------------------------ connections

  private readonly connHost = {
    onFrame: (c: ClientConnection, f: Frame) => this.onClientFrame(c, f),
    onClose: (c: ClientConnection, err: XError | undefined) => this.onClientClose(c, err),
  };

  private accept(conn: ClientConnection): void {
    if (this.stopping || this.conns.size >= this.cfg.gateway.maxConnections) {
      this.m.refused.inc({ reason: 'too_many_connections' });
      conn.close(new XError('TOO_MANY_CONNECTIONS', `gateway is full (${this.cfg.gateway.maxConnections} connections)`));
      return;
    }
    this.conns.add(conn);
    this.m.connections.set(this.conns.size);
    this.node.setOverload(0, this.conns.size);
  }

  /** Auth and idle deadlines for every connection, one timer for all. */
  private sweep(): void {
    const now = performance.now();
    const g = this.cfg.gateway;
    for (const c of this.conns) {
      if (!c.authenticated) {
        if (now - c.openedAt > g.authTimeoutMs && !this.authenticating.has(c)) {
          this.m.refused.inc({ reason: 'auth_timeout' });
          c.close(new XError('HANDSHAKE_TIMEOUT', `no AUTH frame within ${g.authTimeoutMs} ms`));
        }
      } else if (now - c.lastRx > g.idleTimeoutMs) {
        this.m.refused.inc({ reason: 'idle_timeout' });
        c.close(new XError('IDLE_TIMEOUT', `no message or ping for ${g.idleTimeoutMs} ms`));
      }
    }
  }

  private onClientClose(conn: ClientConnection, err: XError | undefined): void {
    this.conns.delete(conn);
    this.authenticating.delete(conn);
    this.m.connections.set(this.conns.size);
    this.node.setOverload(0, this.conns.size);
    if (!conn.authenticated || conn.superseded) return;
    const s = this.sessions.get(conn.account);
    if (!s || s.conn !== conn) return;
    s.conn = null;
    this.log.debug({ account: s.account, reason: err?.code }, 'client disconnected; waiting for a reconnect');
    s.graceTimer = setTimeout(() => this.expire(s), this.cfg.gateway.reconnectGraceMs);
    s.graceTimer.unref();
  }

  private onClientFrame(conn: ClientConnection, f: Frame): void {
    if (f.cmd >= SYSTEM_CMD_BASE) return this.onClientSystemFrame(conn, f);
    if (!conn.authenticated) {
      this.m.refused.inc({ reason: 'not_authenticated' });
      conn.close(new XError('BAD_REQUEST', 'the first frame must be AUTH'));
      return;
    }
    const now = performance.now();
    if (!conn.takeToken(now)) {
      this.m.refused.inc({ reason: 'rate_limited' });
      if (conn.dropped >= this.cfg.gateway.floodDisconnectAfter) {
        conn.close(new XError('RATE_LIMITED', `more than ${this.cfg.gateway.rateLimitPerSec} messages/s; disconnected after ${conn.dropped} dropped`));
      } else if (conn.shouldNotify(now)) {
        conn.sendFrame(Cmd.ERROR, errorBody(new XError('RATE_LIMITED', `over ${this.cfg.gateway.rateLimitPerSec} messages/s: messages are being dropped`)));
      }
      return;
    }
    const s = this.sessions.get(conn.account);
    if (!s || s.conn !== conn) return;
    this.route(s, conn, f);
  }

  private onClientSystemFrame(conn: ClientConnection, f: Frame): void {
    switch (f.cmd) {
      case Cmd.PING:
        conn.sendFrame(Cmd.PONG, new Uint8Array(0));
        return;
      case Cmd.PONG:
        return;
      case Cmd.AUTH:
        if (conn.authenticated || this.authenticating.has(conn)) {
          conn.close(new XError('BAD_REQUEST', 'AUTH sent twice'));
          return;
        }
        this.authenticating.add(conn);
        void this.authenticate(conn, f).finally(() => this.authenticating.delete(conn));
        return;
      default:
        this.replyError(conn, f, new XError('UNKNOWN_COMMAND', `command 0x${f.cmd.toString(16)} is reserved`));
    }
  }

  // ------------------------------------------------------------------ authentication

  private async authenticate(conn: ClientConnection, f: Frame): Promise<void> {
    let req: { token?: unknown; resume?: unknown };
    try {
      req = JSON.parse(textDecoder.decode(f.body)) as typeof req;
    } catch {
      return this.refuse(conn, new XError('BAD_REQUEST', 'AUTH body must be JSON {"token": "..."} or {"resume": "..."}'));
    }
    if (typeof req.resume === 'string') return this.resume(conn, req.resume);
    if (typeof req.token !== 'string' || req.token.length === 0 || req.token.length > 256) {
      return this.refuse(conn, new XError('BAD_TOKEN', 'AUTH needs a "token" from the login service'));
    }
    let rec;
    try {
      rec = await this.ctx.store.takeToken(req.token);
    } catch (e) {
      return this.refuse(conn, new XError('STORE_UNAVAILABLE', `cannot check the token now: ${(e as Error).message}`));
    }
    if (conn.closed) return;
    if (!rec) return this.refuse(conn, new XError('BAD_TOKEN', 'unknown or already used token; log in again'));
    if (rec.expiresAt !== undefined && Date.now() > rec.expiresAt) return this.refuse(conn, new XError('TOKEN_EXPIRED', 'token expired; log in again'));
    if (rec.gatewayId !== this.node.id) return this.refuse(conn, new XError('BAD_TOKEN', 'token was issued for another gateway'));
    const account = rec.account;
    const generation = rec.generation;
    if ((this.sessions.get(account)?.generation ?? -1) > generation) return this.refuse(conn, new XError('BAD_TOKEN', 'a newer login of this account exists'));
    // A session on another gateway (older login) is kicked there.
    try {
      const p = await this.ctx.store.getPresence(account);
      if (p && p.gatewayId !== this.node.id && p.generation < generation) {
        this.node.sendSystem(p.gatewayId, Cmd.KICK_ACCOUNT, encode(KickAccountSchema, { account, generation: BigInt(generation), reason: 'logged in on another gateway' }));
      }
      await this.ctx.store.setPresence(account, { gatewayId: this.node.id, generation });
    } catch (e) {
      this.log.warn({ account, err: (e as Error).message }, 'presence update failed');
    }
    // Decide only now, after the awaits: another login of this account may have run meanwhile.
    if (conn.closed) return;
    const old = this.sessions.get(account);
    if (old && old.generation > generation) return this.refuse(conn, new XError('BAD_TOKEN', 'a newer login of this account exists'));
    if (old) this.supersede(old, 'logged in again');
    const s: Session = {
      account,
      generation,
      resumeKey: randomBytes(18).toString('base64url'),
      conn,
      allocations: new Map(Object.entries(rec.allocations).map(([t, id]) => [Number(t), id])),
      buffer: [],
      bufferBytes: 0,
      graceTimer: null,
      routeQueue: null,
      inflight: new Map(),
    };
    this.sessions.set(account, s);
    this.byResume.set(s.resumeKey, s);
    this.m.sessions.set(this.sessions.size);
    conn.authenticated = true;
    conn.account = account;
    conn.lastRx = performance.now();
    conn.sendFrame(Cmd.WELCOME, jsonBody({ account, generation, resume: s.resumeKey, heartbeatMs: this.cfg.gateway.heartbeatMs, graceMs: this.cfg.gateway.reconnectGraceMs, resumed: false }));
    for (const [type, id] of s.allocations) this.announce(s, type, id);
  }

  private resume(conn: ClientConnection, key: string): void {
    const s = this.byResume.get(key);
    if (!s) return this.refuse(conn, new XError('BAD_TOKEN', 'unknown or expired session; log in again'));
    if (s.graceTimer) clearTimeout(s.graceTimer);
    s.graceTimer = null;
    if (s.conn && s.conn !== conn) {
      // The old connection is half-dead from the client's point of view.
      s.conn.superseded = true;
      s.conn.close(new XError('KICKED', 'resumed on a new connection'));
    }
    s.conn = conn;
    conn.authenticated = true;
    conn.account = s.account;
    conn.lastRx = performance.now();
    // A resume key works once: the next drop needs the new one.
    this.byResume.delete(s.resumeKey);
    s.resumeKey = randomBytes(18).toString('base64url');
    this.byResume.set(s.resumeKey, s);
    this.m.resumed.inc();
    conn.sendFrame(Cmd.WELCOME, jsonBody({ account: s.account, generation: s.generation, resume: s.resumeKey, heartbeatMs: this.cfg.gateway.heartbeatMs, graceMs: this.cfg.gateway.reconnectGraceMs, resumed: true }));
    const buffered = s.buffer;
    s.buffer = [];
    s.bufferBytes = 0;
    for (const b of buffered) conn.sendFrame(b.cmd, b.body, b.flags, b.rid);
  }

  private refuse(conn: ClientConnection, err: XError): void {
    this.m.refused.inc({ reason: err.code.toLowerCase() });
    this.log.info({ from: conn.remote, code: err.code }, `client refused: ${err.message}`);
    conn.close(err);
  }

  /** A newer login replaces `s`: kick its connection, no ACCOUNT_LOST (the service state stays). */
  private supersede(s: Session, why: string): void {
    if (s.graceTimer) clearTimeout(s.graceTimer);
    s.graceTimer = null;
    this.sessions.delete(s.account);
    this.byResume.delete(s.resumeKey);
    const c = s.conn;
    s.conn = null;
    if (c) {
      c.superseded = true;
      c.close(new XError('KICKED', why));
    }
    this.m.sessions.set(this.sessions.size);
  }

  private onKickAccount(f: Frame): void {
    const m = decode(KickAccountSchema, f.body);
    const s = this.sessions.get(m.account);
    if (s && s.generation < Number(m.generation)) this.supersede(s, m.reason || 'logged in elsewhere');
  }

  /** Reconnect grace over: the account is lost (unless a newer login took over meanwhile). */
  private expire(s: Session): void {
    s.graceTimer = null;
    if (this.sessions.get(s.account) !== s || s.conn) return;
    this.sessions.delete(s.account);
    this.byResume.delete(s.resumeKey);
    this.m.sessions.set(this.sessions.size);
    void (async () => {
      let current = true;
      try {
        current = await this.ctx.store.clearPresence(s.account, s.generation);
        if (current) await this.ctx.store.releaseAllocations(s.account, this.cfg.login.affinityMs);
      } catch (e) {
        this.log.warn({ account: s.account, err: (e as Error).message }, 'presence cleanup failed');
      }
      if (!current) return; // a newer login elsewhere owns the account now
      const body = encode(AccountLostSchema, { account: s.account, generation: BigInt(s.generation) });
      for (const id of new Set(s.allocations.values())) this.node.sendSystem(id, Cmd.ACCOUNT_LOST, body);
      this.m.lost.inc();
      this.log.debug({ account: s.account }, 'account lost');
    })();
  }

  // ------------------------------------------------------------------ routing client -> node

  private route(s: Session, conn: ClientConnection, f: Frame): void {
    const offset = this.cfg.gateway.cmdOffset;
    const type = Math.floor(f.cmd / offset);
    if (type <= NodeType.GATEWAY) {
      this.m.refused.inc({ reason: 'reserved_command' });
      return this.replyError(conn, f, new XError('RESERVED_COMMAND', `command ${f.cmd} targets reserved type ${type} (types 0-3 are not services)`));
    }
    if (s.routeQueue) {
      if (s.routeQueue.length >= this.cfg.gateway.routeQueueMax) {
        this.m.refused.inc({ reason: 'route_queue_full' });
        return this.replyError(conn, f, new XError('QUEUE_FULL', 'too many messages while the service is being reassigned'));
      }
      s.routeQueue.push({ conn, f: { ...f, body: f.body.slice() } });
      return;
    }
    let target: string | undefined;
    if (this.stateful.has(type)) {
      target = s.allocations.get(type);
      if (target === undefined || !this.node.has(target)) {
        s.routeQueue = [{ conn, f: { ...f, body: f.body.slice() } }];
        void this.reallocate(s, type, target);
        return;
      }
    } else {
      target = this.node.one(type)?.id;
    }
    this.forward(s, conn, f, type, target);
  }

  private forward(s: Session, conn: ClientConnection, f: Frame, type: number, target: string | undefined): void {
    if (target === undefined) {
      this.m.refused.inc({ reason: 'no_target' });
      return this.replyError(conn, f, new XError('NO_TARGET', `no node of type ${type} is available`));
    }
    const rid = f.flags & Flags.REQUEST ? f.rid : 0;
    const body = encodeFromClient({ account: s.account, cmd: f.cmd % this.cfg.gateway.cmdOffset, data: f.body, rid, generation: s.generation });
    // A frame that has to wait for the link is routed again if the node dies first (a stateful type
    // then moves to a live node). Over an open link there is nothing to keep.
    let retry: (() => void) | undefined;
    if (!this.node.isLinked(target)) {
      const kept = { ...f, body: f.body.slice() };
      retry = () => {
        // Routed again: the request is no longer the dead node's (it must not also get NO_TARGET).
        if (rid !== 0) s.inflight.delete(rid);
        if (this.sessions.get(s.account) === s && !conn.closed) this.route(s, conn, kept);
      };
    }
    if (this.node.sendSystem(target, Cmd.RELAY_FROM_CLIENT, body, retry)) {
      this.count.inbound++;
      if (rid !== 0) {
        if (s.inflight.size >= this.cfg.gateway.routeQueueMax) s.inflight.delete(s.inflight.keys().next().value as number);
        s.inflight.set(rid, { target, cmd: f.cmd });
      }
    } else {
      this.m.refused.inc({ reason: 'node_queue_full' });
      this.replyError(conn, f, new XError('QUEUE_FULL', `node of type ${type} is not accepting messages`));
    }
  }

  /** The allocated node of a stateful type is gone (or none yet): move the account atomically. */
  private async reallocate(s: Session, type: number, dead: string | undefined): Promise<void> {
    const candidates = this.node.list(type).map((p) => ({ id: p.id, load: p.overload(0) }));
    let target: string | null = null;
    try {
      target = dead === undefined ? await this.ctx.store.allocate(s.account, type, candidates) : await this.ctx.store.reallocate(s.account, type, dead, candidates);
    } catch (e) {
      this.log.warn({ account: s.account, type, err: (e as Error).message }, 'reallocation failed');
    }
    // The store may answer with a node we do not list yet (or one that just left): accept only live ones.
    if (target !== null && !this.node.has(target)) target = null;
    const queue = s.routeQueue ?? [];
    s.routeQueue = null;
    if (target !== null) {
      const moved = s.allocations.get(type) !== target;
      s.allocations.set(type, target);
      if (moved) {
        this.announce(s, type, target);
        this.log.info({ account: s.account, type, from: dead, to: target }, 'account reallocated');
      }
    }
    for (const q of queue) {
      if (this.sessions.get(s.account) !== s || q.conn.closed) continue;
      this.forward(s, q.conn, q.f, type, target ?? undefined);
    }
  }

  private announce(s: Session, _type: number, nodeId: string): void {
    this.node.sendSystem(nodeId, Cmd.ACCOUNT_ARRIVED, encode(AccountArrivedSchema, { account: s.account, generation: BigInt(s.generation), gatewayId: this.node.id }));
  }

  /** A node left: requests it never answered fail now instead of timing out in the client. */
  private failInflight(nodeId: string): void {
    for (const s of this.sessions.values()) {
      if (s.inflight.size === 0) continue;
      for (const [rid, { target, cmd }] of s.inflight) {
        if (target !== nodeId) continue;
        s.inflight.delete(rid);
        const err = new XError('NO_TARGET', 'the service node handling this request stopped before answering; it may or may not have been processed');
        if (s.conn) s.conn.sendFrame(cmd, errorBody(err), Flags.RESPONSE | Flags.ERROR, rid);
      }
    }
  }

  private replyError(conn: ClientConnection, f: Frame, err: XError): void {
    if (f.flags & Flags.REQUEST) conn.sendFrame(f.cmd, errorBody(err), Flags.RESPONSE | Flags.ERROR, f.rid);
    else conn.sendFrame(Cmd.ERROR, jsonBody({ code: err.code, message: err.message, cmd: f.cmd }));
  }

  // ------------------------------------------------------------------ node -> client

  private onToClient(f: Frame, link: Link): void {
    const m = decodeToClient(f.body);
    const s = this.sessions.get(m.account);
    if (!s) {
      this.m.refused.inc({ reason: 'account_not_here' });
      return;
    }
    const cmd = link.remote.type * this.cfg.gateway.cmdOffset + m.cmd;
    let flags = 0;
    let body: Uint8Array = m.data;
    if (m.rid !== 0) {
      s.inflight.delete(m.rid);
      flags = Flags.RESPONSE;
      if (m.errorCode !== 0) {
        flags |= Flags.ERROR;
        body = jsonBody({ code: errorCodeName(m.errorCode), message: m.errorMessage });
      }
    }
    this.deliver(s, cmd, body, flags, m.rid);
  }

  private deliver(s: Session, cmd: number, body: Uint8Array, flags: number, rid: number, shared = false): void {
    if (s.conn) {
      if (s.conn.sendFrame(cmd, body, flags, rid)) this.count.outbound++;
      return;
    }
    // Away: keep it for the resume, oldest first out when full (by count or bytes).
    const g = this.cfg.gateway;
    if (g.resumeBufferMax === 0 || body.length > g.resumeBufferMaxBytes) return;
    while (s.buffer.length > 0 && (s.buffer.length >= g.resumeBufferMax || s.bufferBytes + body.length > g.resumeBufferMaxBytes)) {
      s.bufferBytes -= s.buffer.shift()!.body.length;
      this.m.refused.inc({ reason: 'resume_buffer_full' });
    }
    // Broadcast bodies are already private copies shared by every session; others are views into a socket chunk.
    s.buffer.push({ cmd, body: shared ? body : body.slice(), flags, rid });
    s.bufferBytes += body.length;
  }

  private onBroadcast(f: Frame, link: Link): void {
    const m = decode(BroadcastClientsSchema, f.body);
    const cmd = link.remote.type * this.cfg.gateway.cmdOffset + m.cmd;
    const data = m.data.slice();
    for (const s of this.sessions.values()) this.deliver(s, cmd, data, 0, 0, true);
  }

  // ------------------------------------------------------------------ node -> gateway -> node(s)

  private onToNodes(f: Frame, link: Link): void {
    const m = decode(ToNodesSchema, f.body);
    const body = encode(FromNodeSchema, { sourceType: link.remote.type, sourceId: link.remote.id, cmd: m.cmd, data: m.data });
    const from = link.remote.id;
    switch (m.mode) {
      case RelayMode.BY_ID:
        this.node.sendSystem(m.targetId, Cmd.RELAY_FROM_NODE, body);
        return;
      case RelayMode.BROADCAST:
        for (const p of this.node.list(m.targetType)) if (!(m.excludeSender && p.id === from)) this.node.sendSystem(p.id, Cmd.RELAY_FROM_NODE, body);
        return;
      default: {
        const p = this.node.one(m.targetType, m.excludeSender ? { excludeId: from } : undefined);
        if (p) this.node.sendSystem(p.id, Cmd.RELAY_FROM_NODE, body);
      }
    }
  }
}

function listen(server: net.Server | http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
