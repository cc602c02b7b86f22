/**
 * Routing between clients and service nodes (SPEC §6.3, protocol.md §5).
 *
 * Client -> node: a frame with user command `cmd` goes to type floor(cmd / cmdOffset); a stateful
 * type to the account's allocated node (moved to a live node when that one is gone, frames held
 * meanwhile in order), a stateless one to a node picked per message. Requests are remembered
 * until answered, so they fail at once when their node leaves.
 *
 * Node -> gateway: the relay's system commands (RELAY_TO_CLIENT, RELAY_BROADCAST_CLIENTS,
 * RELAY_TO_NODES, KICK_ACCOUNT); and the gateway tells nodes about accounts (ACCOUNT_ARRIVED,
 * ACCOUNT_LOST).
 */
import type { Logger } from 'pino';
import {
  AccountArrivedSchema,
  AccountLostSchema,
  BroadcastClientsSchema,
  FromNodeSchema,
  KickAccountSchema,
  RelayMode,
  ToNodesSchema,
} from '../gen/xserver/v1/relay_pb.js';
import type { XConfig } from '../config/schema.js';
import { NodeType } from '../context.js';
import { XError, errorCodeName } from '../errors.js';
import type { Link } from '../link/link.js';
import type { SessionStore } from '../store/store.js';
import { decode, encode } from '../wire/codec.js';
import { decodeToClient, encodeFromClient } from '../wire/relay-codec.js';
import { Cmd, SYSTEM_CMD_BASE } from '../protocol/commands.js';
import { Flags, encodeFrame, type Frame } from '../protocol/frame.js';
import { encodeErrorNotice } from '../protocol/client-messages.js';
import { errorBody, type ClientConnection } from './client-conn.js';
import type { NodeChannel } from './node-channel.js';
import { isLive, type Session, type SessionTable } from './sessions.js';

/** A client request forwarded and not answered yet. */
interface InflightRequest {
  target: string;
  cmd: number;
}

/** The routing state of one account, carried by its session and changed only here. */
export class AccountRoute {
  /** Client frames waiting while a stateful type is being reallocated (keeps their order); null when none is. */
  queue: { conn: ClientConnection; f: Frame }[] | null = null;
  /** Client requests forwarded and not answered yet: rid -> node id and client command (bounded). */
  readonly inflight = new Map<number, InflightRequest>();

  /** `allocations`: stateful type -> allocated node id. */
  constructor(readonly allocations: Map<number, string>) {}
}

export type GatewaySession = Session<ClientConnection, AccountRoute>;
export type GatewaySessions = SessionTable<ClientConnection, AccountRoute>;

export interface RouterDeps {
  config: XConfig;
  store: Pick<SessionStore, 'allocate' | 'reallocate' | 'clearPresence' | 'releaseAllocations'>;
  node: NodeChannel;
  sessions: GatewaySessions;
  log: Logger;
  /** A client frame asked to authenticate (AUTH). */
  onAuth(conn: ClientConnection, f: Frame): void;
  /** Something was refused or dropped, by reason (a counter). */
  refused(reason: string): void;
  /** An account was reported lost to its nodes (a counter). */
  accountLost(): void;
}

export class Router {
  /** Per-message counts, plain numbers read at scrape time. */
  readonly count = { inbound: 0, outbound: 0 };
  private readonly settings: XConfig['gateway'];
  private readonly stateful: Set<number>;
  private readonly node: NodeChannel;
  private readonly sessions: GatewaySessions;

  constructor(
    private readonly deps: RouterDeps,
    statefulTypes: readonly number[],
  ) {
    this.settings = deps.config.gateway;
    this.stateful = new Set(statefulTypes);
    this.node = deps.node;
    this.sessions = deps.sessions;
    this.node.handleSystem(Cmd.RELAY_TO_CLIENT, (f, link) => this.onToClient(f, link));
    this.node.handleSystem(Cmd.RELAY_BROADCAST_CLIENTS, (f, link) => this.onBroadcast(f, link));
    this.node.handleSystem(Cmd.RELAY_TO_NODES, (f, link) => this.onToNodes(f, link));
    this.node.handleSystem(Cmd.KICK_ACCOUNT, (f) => this.onKickAccount(f));
  }

  // ------------------------------------------------------------------ client frames

  onClientFrame(conn: ClientConnection, f: Frame): void {
    if (f.cmd >= SYSTEM_CMD_BASE) return this.onClientSystemFrame(conn, f);
    const s = this.sessions.of(conn);
    if (!s) {
      this.deps.refused('not_authenticated');
      conn.close(new XError('BAD_REQUEST', 'the first frame must be AUTH'));
      return;
    }
    const now = performance.now();
    if (!conn.takeToken(now)) {
      this.deps.refused('rate_limited');
      const g = this.settings;
      if (conn.dropped >= g.floodDisconnectAfter) {
        conn.close(new XError('RATE_LIMITED', `more than ${g.rateLimitPerSec} messages/s; disconnected after ${conn.dropped} dropped`));
      } else if (f.flags & Flags.REQUEST) {
        // A dropped request fails now, typed, instead of at the client's request timeout.
        replyError(conn, f, new XError('RATE_LIMITED', `over ${g.rateLimitPerSec} messages/s: this request was dropped`));
      } else if (conn.shouldNotify(now)) {
        conn.sendFrame(Cmd.ERROR, errorBody(new XError('RATE_LIMITED', `over ${g.rateLimitPerSec} messages/s: messages are being dropped`)));
      }
      return;
    }
    this.route(s, conn, f);
  }

  private onClientSystemFrame(conn: ClientConnection, f: Frame): void {
    if (!this.sessions.of(conn) && !this.preAuthAllowed(conn, f)) return;
    switch (f.cmd) {
      case Cmd.PING:
        conn.sendFrame(Cmd.PONG, new Uint8Array(0));
        return;
      case Cmd.PONG:
        return;
      case Cmd.AUTH:
        this.deps.onAuth(conn, f);
        return;
      default:
        replyError(conn, f, new XError('UNKNOWN_COMMAND', `command 0x${f.cmd.toString(16)} is reserved`));
    }
  }

  /**
   * Before AUTH succeeded a connection may send only AUTH and PING, within the rate limit: an
   * unauthenticated peer gets no answers to probe with and cannot make the gateway work for it.
   */
  private preAuthAllowed(conn: ClientConnection, f: Frame): boolean {
    if (f.cmd !== Cmd.AUTH && f.cmd !== Cmd.PING) {
      this.deps.refused('not_authenticated');
      conn.close(new XError('BAD_REQUEST', 'the first frame must be AUTH'));
      return false;
    }
    if (!conn.takeToken(performance.now())) {
      this.deps.refused('rate_limited');
      conn.close(new XError('RATE_LIMITED', `more than ${this.settings.rateLimitPerSec} messages/s before AUTH`));
      return false;
    }
    return true;
  }

  // ------------------------------------------------------------------ client -> node

  private route(s: GatewaySession, conn: ClientConnection, f: Frame): void {
    const offset = this.settings.cmdOffset;
    const type = Math.floor(f.cmd / offset);
    if (type <= NodeType.GATEWAY) {
      this.deps.refused('reserved_command');
      return replyError(conn, f, new XError('RESERVED_COMMAND', `command ${f.cmd} targets reserved type ${type} (types 0-3 are not services)`));
    }
    const r = s.route;
    if (r.queue) {
      if (r.queue.length >= this.settings.routeQueueMax) {
        this.deps.refused('route_queue_full');
        return replyError(conn, f, new XError('QUEUE_FULL', 'too many messages while the service is being reassigned'));
      }
      r.queue.push({ conn, f: { ...f, body: f.body.slice() } });
      return;
    }
    let target: string | undefined;
    if (this.stateful.has(type)) {
      target = r.allocations.get(type);
      if (target === undefined || !this.node.has(target)) {
        r.queue = [{ conn, f: { ...f, body: f.body.slice() } }];
        void this.reallocate(s, type, target);
        return;
      }
    } else {
      target = this.node.one(type)?.id;
    }
    this.forward(s, conn, f, type, target);
  }

  private forward(s: GatewaySession, conn: ClientConnection, f: Frame, type: number, target: string | undefined): void {
    if (target === undefined) {
      this.deps.refused('no_target');
      return replyError(conn, f, new XError('NO_TARGET', `no node of type ${type} is available`));
    }
    const inflight = s.route.inflight;
    const rid = f.flags & Flags.REQUEST ? f.rid : 0;
    const body = encodeFromClient({ account: s.account, cmd: f.cmd % this.settings.cmdOffset, data: f.body, rid, generation: s.generation });
    // A frame that has to wait for the link is routed again if the node dies first (a stateful type
    // then moves to a live node). Over an open link there is nothing to keep.
    let retry: (() => void) | undefined;
    if (!this.node.isLinked(target)) {
      const kept = { ...f, body: f.body.slice() };
      retry = () => {
        // Routed again: the request is no longer the dead node's (it must not also get NO_TARGET).
        if (rid !== 0) inflight.delete(rid);
        if (isLive(s) && !conn.closed) this.route(s, conn, kept);
      };
    }
    if (this.node.sendSystem(target, Cmd.RELAY_FROM_CLIENT, body, retry)) {
      this.count.inbound++;
      if (rid !== 0) {
        if (inflight.size >= this.settings.routeQueueMax) inflight.delete(inflight.keys().next().value as number);
        inflight.set(rid, { target, cmd: f.cmd });
      }
    } else {
      this.deps.refused('node_queue_full');
      replyError(conn, f, new XError('QUEUE_FULL', `node of type ${type} is not accepting messages`));
    }
  }

  /** The allocated node of a stateful type is gone (or none yet): move the account atomically. */
  private async reallocate(s: GatewaySession, type: number, dead: string | undefined): Promise<void> {
    const candidates = this.node.list(type).map((p) => ({ id: p.id, load: p.overload(0) }));
    let target: string | null = null;
    try {
      target =
        dead === undefined
          ? await this.deps.store.allocate(s.account, type, candidates)
          : await this.deps.store.reallocate(s.account, type, dead, candidates);
    } catch (e) {
      this.deps.log.warn({ account: s.account, type, err: (e as Error).message }, 'reallocation failed');
    }
    // The store may answer with a node we do not list yet (or one that just left): accept only live ones.
    if (target !== null && !this.node.has(target)) target = null;
    const r = s.route;
    const queue = r.queue ?? [];
    r.queue = null;
    if (target !== null) {
      const moved = r.allocations.get(type) !== target;
      r.allocations.set(type, target);
      if (moved) {
        this.announce(s, target);
        this.deps.log.info({ account: s.account, type, from: dead, to: target }, 'account reallocated');
      }
    }
    for (const q of queue) {
      if (!isLive(s) || q.conn.closed) continue;
      this.forward(s, q.conn, q.f, type, target ?? undefined);
    }
  }

  // ------------------------------------------------------------------ accounts, to their nodes

  /** A fresh login: every allocated node learns that the account is here. */
  announceAll(s: GatewaySession): void {
    for (const id of s.route.allocations.values()) this.announce(s, id);
  }

  private announce(s: GatewaySession, nodeId: string): void {
    this.node.sendSystem(
      nodeId,
      Cmd.ACCOUNT_ARRIVED,
      encode(AccountArrivedSchema, { account: s.account, generation: BigInt(s.generation), gatewayId: this.node.id }),
    );
  }

  /** The session expired: clear its presence, then tell its nodes (unless a newer login took over meanwhile). */
  accountLost(s: GatewaySession): void {
    void (async () => {
      let current = true;
      try {
        current = await this.deps.store.clearPresence(s.account, s.generation);
        if (current) await this.deps.store.releaseAllocations(s.account, this.deps.config.login.affinityMs);
      } catch (e) {
        this.deps.log.warn({ account: s.account, err: (e as Error).message }, 'presence cleanup failed');
      }
      if (!current) return; // a newer login elsewhere owns the account now
      const body = encode(AccountLostSchema, { account: s.account, generation: BigInt(s.generation) });
      for (const id of new Set(s.route.allocations.values())) this.node.sendSystem(id, Cmd.ACCOUNT_LOST, body);
      this.deps.accountLost();
      this.deps.log.debug({ account: s.account }, 'account lost');
    })();
  }

  /** A node left: requests it never answered fail now instead of timing out in the client. */
  failInflight(nodeId: string): void {
    for (const s of this.sessions.values()) {
      const inflight = s.route.inflight;
      if (inflight.size === 0) continue;
      for (const [rid, { target, cmd }] of inflight) {
        if (target !== nodeId) continue;
        inflight.delete(rid);
        const err = new XError('NO_TARGET', 'the service node handling this request stopped before answering; it may or may not have been processed');
        if (s.conn) s.conn.sendFrame(cmd, errorBody(err), Flags.RESPONSE | Flags.ERROR, rid);
      }
    }
  }

  // ------------------------------------------------------------------ node -> client

  private onToClient(f: Frame, link: Link): void {
    const m = decodeToClient(f.body);
    const s = this.sessions.get(m.account);
    if (!s) {
      this.deps.refused('account_not_here');
      return;
    }
    const cmd = link.remote.type * this.settings.cmdOffset + m.cmd;
    let flags = 0;
    let body: Uint8Array = m.data;
    if (m.rid !== 0) {
      s.route.inflight.delete(m.rid);
      flags = Flags.RESPONSE;
      if (m.errorCode !== 0) {
        flags |= Flags.ERROR;
        body = encodeErrorNotice({ code: errorCodeName(m.errorCode), message: m.errorMessage });
      }
    }
    if (this.sessions.deliver(s, cmd, body, flags, m.rid)) this.count.outbound++;
  }

  private onBroadcast(f: Frame, link: Link): void {
    const m = decode(BroadcastClientsSchema, f.body);
    const cmd = link.remote.type * this.settings.cmdOffset + m.cmd;
    // Encoded once: every client socket is handed these same bytes, away sessions keep a view of them.
    const e = encodeFrame(cmd, m.data);
    const frame = Buffer.from(e.buffer, e.byteOffset, e.length);
    for (const s of this.sessions.values()) if (this.sessions.deliverEncoded(s, frame, cmd)) this.count.outbound++;
  }

  private onKickAccount(f: Frame): void {
    const m = decode(KickAccountSchema, f.body);
    this.sessions.kick(m.account, Number(m.generation), m.reason || 'logged in elsewhere');
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

/** An error for a client frame: an error response to a request, an ERROR frame otherwise. */
function replyError(conn: ClientConnection, f: Frame, err: XError): void {
  if (f.flags & Flags.REQUEST) conn.sendFrame(f.cmd, errorBody(err), Flags.RESPONSE | Flags.ERROR, f.rid);
  else conn.sendFrame(Cmd.ERROR, errorBody(err, f.cmd));
}
