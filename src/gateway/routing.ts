/**
 * Routing between clients and service nodes (SPEC §6.3, protocol.md §5).
 *
 * Client -> node: a frame with user command `cmd` goes to type floor(cmd / cmdOffset); a stateful
 * type to the account's allocated node (moved to a live node when that one is gone, frames held
 * meanwhile in order), a stateless one to a node picked per message. Requests are remembered
 * until answered, so they fail at once when their node leaves.
 *
 * Canary policies (protocol/routing-policy.ts): the first time a session needs a node of a type
 * with a policy, its decision (the policy's version or the rest) is taken and kept for the rest of
 * the session, so a later `xserver canary set` or `rollback` never moves a running session; the
 * allocated node of a stateful type is kept anyway while it lives.
 *
 * Node -> gateway: the relay's system commands (RELAY_TO_CLIENT, RELAY_BROADCAST_CLIENTS,
 * RELAY_TO_NODES, KICK_ACCOUNT); and the gateway tells nodes about accounts (ACCOUNT_ARRIVED,
 * ACCOUNT_LOST).
 *
 * Account handoff (node/handoff.ts has the whole sequence): a draining stateful node asks to move
 * an account (ACCOUNT_HANDOFF); its messages are held in the route's queue, the node exports
 * (ACCOUNT_EXPORTED), the account is reallocated away from it (compare-and-set in the store), the
 * new node imports (ACCOUNT_IMPORT), and the held messages go to it in order. One handoff per
 * account at a time:
 *
 *   none --ACCOUNT_HANDOFF--> holding --ACCOUNT_EXPORTED--> rebinding --imported / import failed--> none
 *                               \--gateway.handoffHoldMs, or the old node left--> none (messages to the old node or a fresh allocation)
 */
import type { Logger } from 'pino';
import {
  AccountArrivedSchema,
  AccountExportedSchema,
  AccountHandoffSchema,
  AccountImportSchema,
  AccountLostSchema,
  AccountReboundSchema,
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
import { decodeToClient, encodeFromClient, type ToClientMsg } from '../wire/relay-codec.js';
import { Cmd, SYSTEM_CMD_BASE } from '../protocol/commands.js';
import { Flags, encodeFrame, type Frame } from '../protocol/frame.js';
import { encodeErrorNotice } from '../protocol/client-messages.js';
import { errorBody, type ClientConnection } from './client-conn.js';
import type { NodeChannel } from './node-channel.js';
import { isLive, type Session, type SessionTable } from './sessions.js';
import type { CohortDecision } from '../protocol/routing-policy.js';
import type { VersionCount } from '../gen/xserver/v1/cluster_pb.js';
import { LatencyHistogram } from '../protocol/latency.js';
import type { BroadcastLog } from './broadcast-log.js';

/** A client request forwarded and not answered yet. */
interface InflightRequest {
  target: string;
  cmd: number;
  /** performance.now() when it was forwarded: the dashboard's request latency. */
  at: number;
}

/** An account's handoff between two nodes of a stateful type (see the diagram at the top); messages wait in the route's queue. */
interface Handoff {
  readonly from: string;
  readonly type: number;
  phase: 'holding' | 'rebinding';
  /** gateway.handoffHoldMs while holding; cleared once rebinding. */
  timer: NodeJS.Timeout;
}

/** The routing state of one account, carried by its session and changed only here. */
export class AccountRoute {
  /** Client frames waiting while a stateful type is being reallocated or handed off (keeps their order); null when none is. */
  queue: { conn: ClientConnection; f: Frame }[] | null = null;
  /** The account's handoff in progress, if any. */
  handoff: Handoff | null = null;
  /** Client requests forwarded and not answered yet: rid -> node id and client command (bounded). */
  readonly inflight = new Map<number, InflightRequest>();
  /**
   * Canary decisions of this session, per type with a policy, taken at first use (at most one per
   * policy: types without one are not kept).
   */
  readonly cohorts = new Map<number, CohortDecision>();

  /** `allocations`: stateful type -> allocated node id. */
  constructor(readonly allocations: Map<number, string>) {}
}

export type GatewaySession = Session<ClientConnection, AccountRoute>;
export type GatewaySessions = SessionTable<ClientConnection, AccountRoute>;

/** What the router asks of the session handoff (handoff.ts). */
export interface RouterHandoff {
  /** A message for an account that is not here: true when it moved away from here and the message was forwarded. */
  forwardIfMoved(account: string, body: Uint8Array, rid: number, sourceType: number, sourceId: string): boolean;
  /** A node's direct message for a session that moved here: true when it waits for the node's fence. */
  holdIfFenced(s: GatewaySession, body: Uint8Array, sourceType: number, sourceId: string): boolean;
}

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
  /** The session handoff between gateways. */
  handoff(): RouterHandoff;
  /** Numbered broadcasts, so a session that moves here gets each once (broadcast-log.ts). */
  broadcasts: BroadcastLog;
}

export class Router {
  /** Per-message counts, plain numbers read at scrape time. */
  readonly count = { inbound: 0, outbound: 0, accountsLost: 0 };
  /** Client requests answered since the previous dashboard report (forwarded -> reply delivered). */
  readonly latency = new LatencyHistogram();
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
    this.node.handleSystem(Cmd.ACCOUNT_HANDOFF, (f, link) => this.onHandoff(f, link));
    this.node.handleSystem(Cmd.ACCOUNT_EXPORTED, (f, link) => this.onExported(f, link));
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
      // Taken at the first message, so a reallocation later in the session keeps the version.
      this.cohortOf(s, type);
      target = r.allocations.get(type);
      if (target === undefined || !this.node.has(target)) {
        r.queue = [{ conn, f: { ...f, body: f.body.slice() } }];
        void this.reallocate(s, type, target);
        return;
      }
    } else {
      target = this.node.one(type, undefined, this.cohortOf(s, type))?.id;
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
    // Transient: sendSystem copies it (into the link's batch, or into the buffer of a link still opening).
    const body = encodeFromClient({ account: s.account, cmd: f.cmd % this.settings.cmdOffset, data: f.body, rid, generation: s.generation }, true);
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
        inflight.set(rid, { target, cmd: f.cmd, at: performance.now() });
      }
    } else {
      this.deps.refused('node_queue_full');
      replyError(conn, f, new XError('QUEUE_FULL', `node of type ${type} is not accepting messages`));
    }
  }

  /** The allocated node of a stateful type is gone (or none yet): move the account atomically. */
  private async reallocate(s: GatewaySession, type: number, dead: string | undefined): Promise<void> {
    const live = this.node.routed(type, this.cohortOf(s, type), this.node.list(type), (p) => p.info.version);
    const candidates = live.map((p) => ({ id: p.id, load: p.overload(0) }));
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

  /** The session's canary decision for `type`: the one taken at its first use, else now (null: no policy). */
  private cohortOf(s: GatewaySession, type: number): CohortDecision | null {
    const kept = s.route.cohorts.get(type);
    if (kept) return kept;
    const d = this.node.routingDecision(type, s.account);
    if (d) s.route.cohorts.set(type, d);
    return d;
  }

  /**
   * Accounts per service type and version: each live session's allocated nodes (stateful types),
   * by the version the node runs now. For `xserver status` (VERSION_COUNTS); one pass over the sessions.
   */
  countAccounts(): VersionCount[] {
    const counts = new Map<string, VersionCount>();
    for (const s of this.sessions.values()) {
      if (!isLive(s)) continue;
      for (const [type, id] of s.route.allocations) {
        const version = this.node.get(id)?.info.version;
        if (version === undefined) continue;
        const k = `${type}\0${version}`;
        const c = counts.get(k);
        if (c) c.accounts++;
        else counts.set(k, { $typeName: 'xserver.v1.VersionCount', type, version, accounts: 1 });
      }
    }
    return [...counts.values()];
  }

  // ------------------------------------------------------------------ accounts, to their nodes

  /** A fresh login (or a session moved here): every allocated node learns that the account is here. */
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
    if (s.route.handoff) {
      clearTimeout(s.route.handoff.timer);
      s.route.handoff = null;
    }
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
      this.count.accountsLost++;
      this.deps.accountLost();
      this.deps.log.debug({ account: s.account }, 'account lost');
    })();
  }

  /**
   * A node left: requests it never answered fail now instead of timing out in the client, and
   * handoffs it had not exported yet end (their messages go to a fresh allocation).
   */
  nodeLeft(nodeId: string): void {
    for (const s of this.sessions.values()) {
      const h = s.route.handoff;
      if (h?.from === nodeId && h.phase === 'holding') this.endHandoff(s, 'the node left before it exported the account');
    }
    // Its unanswered requests fail once its link is gone (failInflight): a node that left
    // gracefully still sends the answers it owes.
  }

  /** Requests `nodeId` never answered fail now instead of timing out in the client. */
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

  // ------------------------------------------------------------------ account handoff

  /** ACCOUNT_HANDOFF: hold the account's messages, then answer (the node exports after the answer). */
  private onHandoff(f: Frame, link: Link): void {
    const m = decode(AccountHandoffSchema, f.body);
    const from = link.remote.id;
    const s = this.sessions.get(m.account);
    if (!s || !isLive(s) || s.generation !== Number(m.generation) || s.route.allocations.get(m.type) !== from) {
      link.replyError(
        f,
        new XError('HANDOFF_FAILED', `account "${m.account}" (generation ${m.generation}) is not bound to ${from} through this gateway`),
      );
      return;
    }
    const r = s.route;
    if (r.queue || r.handoff) {
      link.replyError(f, new XError('HANDOFF_FAILED', `account "${m.account}" is being moved already; it stays on ${from}`));
      return;
    }
    r.queue = [];
    const timer = setTimeout(
      () => this.endHandoff(s, `not exported within gateway.handoffHoldMs (${this.settings.handoffHoldMs} ms)`),
      this.settings.handoffHoldMs,
    );
    timer.unref();
    r.handoff = { from, type: m.type, phase: 'holding', timer };
    link.reply(f);
  }

  /** ACCOUNT_EXPORTED: reallocate away from the sender, let the new node import, answer with AccountRebound. */
  private onExported(f: Frame, link: Link): void {
    const m = decode(AccountExportedSchema, f.body);
    const s = this.sessions.get(m.account);
    const h = s?.route.handoff;
    if (!s || !h || h.phase !== 'holding' || h.from !== link.remote.id || h.type !== m.type || s.generation !== Number(m.generation)) {
      link.replyError(
        f,
        new XError('HANDOFF_FAILED', `no handoff of "${m.account}" from ${link.remote.id} is held here (it may have expired: gateway.handoffHoldMs)`),
      );
      return;
    }
    h.phase = 'rebinding';
    clearTimeout(h.timer);
    void this.rebind(s, h, m.handoffId, m.hasState).then(
      (rebound) => link.reply(f, encode(AccountReboundSchema, rebound)),
      (e: XError) => link.replyError(f, e),
    );
  }

  private async rebind(
    s: GatewaySession,
    h: Handoff,
    handoffId: string,
    hasState: boolean,
  ): Promise<{ account: string; nodeId: string; imported: boolean }> {
    const account = s.account;
    const candidates = this.node
      .list(h.type)
      .filter((p) => p.id !== h.from && !p.info.draining)
      .map((p) => ({ id: p.id, load: p.overload(0) }));
    let target: string | null = null;
    try {
      // Compare-and-set: only one of several racers moves the account, the others get its node.
      target = await this.deps.store.reallocate(account, h.type, h.from, candidates);
    } catch (e) {
      this.deps.log.warn({ account, type: h.type, err: (e as Error).message }, 'handoff reallocation failed');
    }
    if (target === h.from || (target !== null && !this.node.has(target))) target = null;
    if (s.route.handoff !== h) throw new XError('HANDOFF_FAILED', `the session of "${account}" ended during its handoff`);
    if (target === null) {
      this.endHandoff(s, 'no other live node to move it to');
      throw new XError('HANDOFF_FAILED', `no other live, non-draining node of type ${h.type} for "${account}": it stays on ${h.from}`);
    }
    s.route.allocations.set(h.type, target);
    let imported = true;
    try {
      const body = encode(AccountImportSchema, {
        account,
        generation: BigInt(s.generation),
        gatewayId: this.node.id,
        type: h.type,
        fromNode: h.from,
        handoffId,
        hasState,
      });
      const reply = await this.node.requestSystem(target, Cmd.ACCOUNT_IMPORT, body, this.deps.config.node.handoffTimeoutMs);
      imported = decode(AccountReboundSchema, reply.body).imported;
    } catch (e) {
      imported = false;
      this.deps.log.warn(
        { account, to: target, err: (e as Error).message },
        'the new node did not confirm the import; the account arrives there fresh',
      );
      this.announce(s, target);
    }
    this.deps.log.info({ account, type: h.type, from: h.from, to: target, imported }, 'account handed off');
    this.endHandoff(s);
    return { account, nodeId: target, imported };
  }

  /** The handoff is over (done or abandoned): the held messages are routed again, in order, to the account's node now. */
  private endHandoff(s: GatewaySession, abandoned?: string): void {
    const r = s.route;
    const h = r.handoff;
    if (!h) return;
    clearTimeout(h.timer);
    r.handoff = null;
    if (abandoned !== undefined) this.deps.log.warn({ account: s.account, type: h.type, from: h.from }, `account handoff abandoned: ${abandoned}`);
    const queue = r.queue ?? [];
    r.queue = null;
    for (const q of queue) if (isLive(s) && !q.conn.closed) this.route(s, q.conn, q.f);
  }

  // ------------------------------------------------------------------ node -> client

  private onToClient(f: Frame, link: Link): void {
    const m = decodeToClient(f.body);
    const s = this.sessions.get(m.account);
    const { type, id } = link.remote;
    if (!s) {
      if (!this.deps.handoff().forwardIfMoved(m.account, f.body, m.rid, type, id)) this.deps.refused('account_not_here');
      return;
    }
    if (this.deps.handoff().holdIfFenced(s, f.body, type, id)) return;
    this.toClient(s, m, type);
  }

  /** A node's message (a ToClient body) the gateway the account moved from forwarded, or one held for its fence. */
  deliverMoved(body: Uint8Array, sourceType: number): void {
    const m = decodeToClient(body);
    const s = this.sessions.get(m.account);
    if (!s) {
      this.deps.refused('account_not_here');
      return;
    }
    this.toClient(s, m, sourceType);
  }

  private toClient(s: GatewaySession, m: ToClientMsg, sourceType: number): void {
    const cmd = sourceType * this.settings.cmdOffset + m.cmd;
    let flags = 0;
    let body: Uint8Array = m.data;
    if (m.rid !== 0) {
      const req = s.route.inflight.get(m.rid);
      if (req) this.latency.record(performance.now() - req.at);
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
    const skip = this.deps.broadcasts.record({ source: link.remote.id, seq: Number(m.seq), cmd, frame });
    for (const s of this.sessions.values()) {
      if (skip?.has(s.account)) continue; // it got this one at the gateway it moved from
      if (this.sessions.deliverEncoded(s, frame, cmd)) this.count.outbound++;
    }
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
