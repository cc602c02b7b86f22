/**
 * Live session handoff between gateways (SPEC §12, docs/protocol.md "Session handoff").
 *
 * A draining gateway A tells each attached client GOING_AWAY {gateway B, handoff token}; the
 * client connects to B with AUTH {handoff}; B claims the session from A and A hands it over:
 *
 *   client            A (draining)                          B                        node S
 *     |<--GOING_AWAY----|                                    |                          |
 *     |--AUTH {handoff}--------------------------------------->|                          |
 *     |                 |<------------HANDOFF_CLAIM-----------|                          |
 *     |<--close---------| session moved: buffer, allocations, |                          |
 *     |                 |-------------HANDOFF_STATE---------->| WELCOME {moved}, buffer  |
 *     |<-------------------------------------------------------| presence A -> B (CAS)    |
 *     |                 |<-RELAY_TO_CLIENT (sent before) ------------------------------- |
 *     |                 |-------------HANDOFF_FORWARD-------->| delivered                |
 *     |                 |                                    |--ACCOUNT_ARRIVED-------->|
 *     |                 |<--------------------------HANDOFF_FENCE------------------------|
 *     |                 |-------HANDOFF_FORWARD {fence}------>| S's direct messages held |
 *     |                 |<------------HANDOFF_DONE------------| until here, then sent    |
 *
 * Transport: gateway to gateway over the intranet link, not through the store. The state is cut
 * at the moment A answers the claim, and everything for the account that still reaches A after
 * that (replies to requests A routed, pushes a node sent before it learnt of B) travels behind it
 * on the same A -> B link, so B sees the buffer and the late messages in the order A took them.
 * Through the store, B would poll or subscribe for a state written at some point, and A would
 * still need a path for what arrives after the write. The store does the one thing that must be
 * atomic cluster-wide: the presence switch (movePresence, a compare-and-set on gateway and
 * generation). Bounded: a token works once within gateway.handoffTokenTtlMs, a state over
 * gateway.handoffStateMaxBytes is refused (the client stays), and forwarding, claims and fence
 * holds end after gateway.handoffTimeoutMs.
 *
 * Ordering per node: a node S that learns from ACCOUNT_ARRIVED (sent by B) that the account moved
 * sends HANDOFF_FENCE to A behind everything it sent A for the account; A forwards the fence to B
 * behind those messages. Until the fence of S arrives, B holds what S sends it directly, so the
 * client gets S's messages exactly once and in S's order. Services see ACCOUNT_ARRIVED from B (same
 * generation) and no ACCOUNT_LOST.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { HandoffClaimSchema, HandoffDoneSchema, HandoffFenceSchema, HandoffForwardSchema, HandoffStateSchema } from '../gen/xserver/v1/handoff_pb.js';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { XConfig } from '../config/schema.js';
import { NodeType } from '../context.js';
import { XError, errorCodeName, type ErrorCodeName } from '../errors.js';
import type { Link } from '../link/link.js';
import { clientEndpoints } from '../node/endpoints.js';
import type { Peer } from '../node/peer.js';
import type { SessionStore } from '../store/store.js';
import { decode, encode } from '../wire/codec.js';
import { Cmd } from '../protocol/commands.js';
import { encodeGoingAway, type HandoffGateway } from '../protocol/client-messages.js';
import type { Frame } from '../protocol/frame.js';
import type { ClientConnection } from './client-conn.js';
import type { NodeChannel } from './node-channel.js';
import type { BroadcastLog } from './broadcast-log.js';
import { AccountRoute, type GatewaySession, type GatewaySessions } from './routing.js';

/** 144 random bits, like a resume key. */
const HANDOFF_TOKEN_BYTES = 18;
/** Between the issuing gateway's id and the random part of a token: B finds A from the token. */
const TOKEN_SEPARATOR = '~';
/** Bytes counted per request in flight and per allocation in a state's size (ids, numbers, framing). */
const STATE_ENTRY_BYTES = 64;

// ------------------------------------------------------------------ pure pieces

/** A handoff token A issued: the session it moves and when it stops working. */
export interface HandoffTicket {
  account: string;
  generation: number;
  /** The gateway the client was sent to (only it may claim the token). */
  target: string;
}

/**
 * The tokens a draining gateway issued: single use, each works until its TTL ends. One entry per
 * session at most (a new offer for the account replaces the old one), dropped at expiry.
 */
export class HandoffTokens {
  private readonly byToken = new Map<string, { ticket: HandoffTicket; timer: ReturnType<typeof setTimeout> }>();
  private readonly byAccount = new Map<string, string>();

  constructor(
    private readonly issuer: string,
    private readonly ttlMs: number,
  ) {}

  get size(): number {
    return this.byToken.size;
  }

  /** A new token for the session; "<issuer>~<random>". */
  issue(ticket: HandoffTicket): string {
    const old = this.byAccount.get(ticket.account);
    if (old !== undefined) this.drop(old);
    const token = `${this.issuer}${TOKEN_SEPARATOR}${randomBytes(HANDOFF_TOKEN_BYTES).toString('base64url')}`;
    const timer = setTimeout(() => this.drop(token), this.ttlMs);
    timer.unref?.();
    this.byToken.set(token, { ticket, timer });
    this.byAccount.set(ticket.account, token);
    return token;
  }

  /** The token's ticket, once: a second take, an expired or unknown token, or a claim by another gateway than the target gives undefined. */
  take(token: string, claimant: string): HandoffTicket | undefined {
    const e = this.byToken.get(token);
    if (!e || e.ticket.target !== claimant) return undefined;
    this.drop(token);
    return e.ticket;
  }

  clear(): void {
    for (const t of [...this.byToken.keys()]) this.drop(t);
  }

  private drop(token: string): void {
    const e = this.byToken.get(token);
    if (!e) return;
    clearTimeout(e.timer);
    this.byToken.delete(token);
    if (this.byAccount.get(e.ticket.account) === token) this.byAccount.delete(e.ticket.account);
  }
}

/** The gateway that issued a handoff token (undefined: not a handoff token). */
export function tokenIssuer(token: string): string | undefined {
  const i = token.lastIndexOf(TOKEN_SEPARATOR);
  return i > 0 ? token.slice(0, i) : undefined;
}

/** A message from a node for a moved client, held at B until that node's fence. */
export interface HeldMessage {
  sourceType: number;
  body: Uint8Array;
}

/**
 * B's hold of direct node messages for a moved account: per node that still had the account at A,
 * its messages wait until its fence arrives (through A), so they follow what it sent A. At most
 * `max` messages per node: beyond that the node's hold ends early (no loss; order across the two
 * paths is then not guaranteed, which is counted).
 */
export class FenceHold {
  private readonly byNode = new Map<string, HeldMessage[]>();

  constructor(
    nodes: Iterable<string>,
    private readonly max: number,
  ) {
    for (const n of nodes) this.byNode.set(n, []);
  }

  /** No node is awaited any more. */
  get done(): boolean {
    return this.byNode.size === 0;
  }

  awaits(nodeId: string): boolean {
    return this.byNode.has(nodeId);
  }

  /** Holds a message of `nodeId`: 'held', 'overflow' (the hold of that node ended: release it), or 'pass' (not held). */
  hold(nodeId: string, m: HeldMessage): 'held' | 'overflow' | 'pass' {
    const q = this.byNode.get(nodeId);
    if (!q) return 'pass';
    if (q.length >= this.max) return 'overflow';
    q.push(m);
    return 'held';
  }

  /** The node's fence arrived (or its hold overflowed): its held messages, in order; it is no longer awaited. */
  release(nodeId: string): HeldMessage[] {
    const q = this.byNode.get(nodeId) ?? [];
    this.byNode.delete(nodeId);
    return q;
  }

  /** The hold timed out: every held message, node by node. */
  releaseAll(): HeldMessage[] {
    const out = [...this.byNode.values()].flat();
    this.byNode.clear();
    return out;
  }
}

/**
 * A's view of a session it handed over, until B confirmed it and every node that had it here sent
 * its fence and every request routed here was answered (then A has nothing left to forward).
 *
 *   claimed --DONE from B--+--> (all fences and answers in) --> finished
 *           --fence/answer-+
 *   claimed | confirmed --gateway.handoffTimeoutMs--> finished (forwarding stops)
 */
export class MovedSession {
  private confirmed = false;

  constructor(
    readonly account: string,
    readonly generation: number,
    readonly target: string,
    private readonly fences: Set<string>,
    private readonly answers: Set<number>,
  ) {}

  /** Every condition met: B confirmed, all fences and answers forwarded. */
  get finished(): boolean {
    return this.confirmed && this.fences.size === 0 && this.answers.size === 0;
  }

  confirm(): void {
    this.confirmed = true;
  }

  fenced(nodeId: string): void {
    this.fences.delete(nodeId);
  }

  answered(rid: number): void {
    this.answers.delete(rid);
  }
}

// ------------------------------------------------------------------ the gateway part

export interface HandoffDeps {
  settings: XConfig['gateway'];
  store: Pick<SessionStore, 'movePresence' | 'getPresence'>;
  node: NodeChannel;
  sessions: GatewaySessions;
  log: Logger;
  /** Sends WELCOME {moved} to the client of a session adopted here. */
  welcome(conn: ClientConnection, s: GatewaySession): void;
  /** Refuses a client (ERROR, close, counted). */
  refuse(conn: ClientConnection, err: XError): void;
  /** Tells the session's allocated nodes the account is here (ACCOUNT_ARRIVED). */
  announce(s: GatewaySession): void;
  /** Delivers a node's ToClient body to the account's client (the router's path, without holds). */
  deliver(body: Uint8Array, sourceType: number): void;
  /** The gateway's numbered broadcasts: what a leaving session got, what an arriving one still needs. */
  broadcasts: Pick<BroadcastLog, 'seen' | 'catchUp' | 'forgetAccount'>;
  refused(reason: string): void;
  /** A session moved here (counter). */
  onMovedIn(): void;
  /** A session moved away (counter). */
  onMovedOut(): void;
}

interface PendingClaim {
  conn: ClientConnection;
  from: string;
  timer: ReturnType<typeof setTimeout>;
  done: () => void;
}

/** Both ends of the handoff on one gateway: A's GOING_AWAY, tokens, claims and forwarding; B's claims, adoption and fence holds. */
export class SessionHandoff {
  private readonly tokens: HandoffTokens;
  /** A: sessions handed over and still forwarded to, by account. */
  private readonly moved = new Map<string, { m: MovedSession; timer: ReturnType<typeof setTimeout> }>();
  /** B: claims sent, by claim id. */
  private readonly claims = new Map<number, PendingClaim>();
  /** B: fence holds of adopted sessions, by account. */
  private readonly holds = new Map<string, { hold: FenceHold; timer: ReturnType<typeof setTimeout> }>();
  private nextClaimId = 1;

  constructor(private readonly deps: HandoffDeps) {
    this.tokens = new HandoffTokens(deps.node.id, deps.settings.handoffTokenTtlMs);
    const n = deps.node;
    n.handleSystem(Cmd.HANDOFF_CLAIM, (f, link) => this.onClaim(f, link));
    n.handleSystem(Cmd.HANDOFF_STATE, (f, link) => this.onState(f, link));
    n.handleSystem(Cmd.HANDOFF_FORWARD, (f, link) => this.onForward(f, link));
    n.handleSystem(Cmd.HANDOFF_FENCE, (f, link) => this.onFence(f, link));
    n.handleSystem(Cmd.HANDOFF_DONE, (f, link) => this.onDone(f, link));
  }

  /** A: sessions handed over whose move is not finished (drain counts them as bound). */
  get moving(): number {
    let n = 0;
    for (const { m } of this.moved.values()) if (!m.finished) n++;
    return n;
  }

  /**
   * A drains: every attached client gets GOING_AWAY naming a live, non-draining gateway (the
   * least loaded, counting the clients sent to it now). Returns how many were sent; none when
   * there is no other gateway (the clients stay until the drain deadline).
   */
  offerAll(): number {
    const targets = this.targets();
    if (targets.length === 0) return 0;
    const load = new Map(targets.map((p) => [p.id, p.overload(0)]));
    let sent = 0;
    for (const s of this.deps.sessions.values()) {
      if (s.state !== 'attached' || !s.conn) continue;
      const p = targets.reduce((a, b) => (load.get(b.id)! < load.get(a.id)! ? b : a));
      load.set(p.id, load.get(p.id)! + 1);
      const handoff = this.tokens.issue({ account: s.account, generation: s.generation, target: p.id });
      const e = clientEndpoints(p.info);
      const gateway: HandoffGateway = { id: p.id, host: e.host, tcpPort: e.tcpPort, wsUrl: e.wsUrl, tls: e.tls };
      if (s.conn.sendFrame(Cmd.GOING_AWAY, encodeGoingAway({ gateway, handoff }))) sent++;
    }
    this.deps.log.info({ sent, targets: targets.map((t) => t.id) }, 'draining: clients asked to move to another gateway');
    return sent;
  }

  /**
   * A: a node's message for an account that is not here. True when it was forwarded (the account
   * moved to another gateway from here).
   */
  forwardIfMoved(account: string, body: Uint8Array, rid: number, sourceType: number, sourceId: string): boolean {
    const e = this.moved.get(account);
    if (!e) return false;
    this.deps.node.sendSystem(e.m.target, Cmd.HANDOFF_FORWARD, encode(HandoffForwardSchema, { sourceType, sourceId, toClient: body }));
    if (rid !== 0) {
      e.m.answered(rid);
      this.finishIfDone(account);
    }
    return true;
  }

  /**
   * B: a node's direct message for `s`; true when it is held for the node's fence.
   */
  holdIfFenced(s: GatewaySession, body: Uint8Array, sourceType: number, sourceId: string): boolean {
    const h = this.holds.get(s.account);
    if (!h) return false;
    const r = h.hold.hold(sourceId, { sourceType, body: body.slice() });
    if (r === 'held') return true;
    if (r === 'overflow') {
      this.deps.refused('handoff_hold_full');
      this.release(s.account, sourceId);
    }
    return false;
  }

  /** B: AUTH {handoff}: claims the session from the gateway that issued the token; resolves once answered or timed out. */
  claim(conn: ClientConnection, token: string): Promise<void> {
    const from = tokenIssuer(token);
    const peer = from === undefined ? undefined : this.deps.node.list(NodeType.GATEWAY).find((p) => p.id === from);
    if (!peer || from === this.deps.node.id) {
      this.deps.refuse(conn, new XError('BAD_HANDOFF_TOKEN', 'the handoff token names no gateway that is still running; log in again'));
      return Promise.resolve();
    }
    const claimId = this.nextClaimId;
    this.nextClaimId = this.nextClaimId >= 0xffffffff ? 1 : this.nextClaimId + 1;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.claims.delete(claimId);
        this.deps.refuse(
          conn,
          new XError(
            'MOVE_FAILED',
            `gateway ${from} did not hand the session over within ${this.deps.settings.handoffTimeoutMs} ms; reconnect there or log in again`,
          ),
        );
        resolve();
      }, this.deps.settings.handoffTimeoutMs);
      timer.unref();
      this.claims.set(claimId, { conn, from: peer.id, timer, done: resolve });
      if (!this.deps.node.sendSystem(peer.id, Cmd.HANDOFF_CLAIM, encode(HandoffClaimSchema, { claimId, token }))) {
        clearTimeout(timer);
        this.claims.delete(claimId);
        this.deps.refuse(conn, new XError('MOVE_FAILED', `cannot reach gateway ${peer.id} to take the session over; log in again`));
        resolve();
      }
    });
  }

  stop(): void {
    this.tokens.clear();
    for (const e of this.moved.values()) clearTimeout(e.timer);
    this.moved.clear();
    for (const c of this.claims.values()) {
      clearTimeout(c.timer);
      c.done();
    }
    this.claims.clear();
    for (const h of this.holds.values()) clearTimeout(h.timer);
    this.holds.clear();
  }

  // ------------------------------------------------------------------ A: the old gateway

  private onClaim(f: Frame, link: Link): void {
    const m = decode(HandoffClaimSchema, f.body);
    const b = link.remote.id;
    const answer = (st: MessageInitShape<typeof HandoffStateSchema>): void => {
      this.deps.node.sendSystem(b, Cmd.HANDOFF_STATE, encode(HandoffStateSchema, st));
    };
    const refuse = (code: ErrorCodeName, message: string): void =>
      answer({ claimId: m.claimId, errorCode: new XError(code, message).codeNumber, errorMessage: message });
    const ticket = this.tokens.take(m.token, b);
    if (!ticket) return refuse('BAD_HANDOFF_TOKEN', 'unknown, used or expired handoff token; log in again');
    const s = this.deps.sessions.get(ticket.account);
    if (!s || s.generation !== ticket.generation || (s.state !== 'attached' && s.state !== 'away')) {
      return refuse('MOVE_FAILED', 'the session ended before it could move; log in again');
    }
    const r = s.route;
    if (r.queue) return refuse('MOVE_FAILED', 'the session is being reassigned to a service node; stay connected to the old gateway');
    const size = s.bufferedBytes + STATE_ENTRY_BYTES * (s.bufferedCount + r.inflight.size + r.allocations.size);
    const max = this.deps.settings.handoffStateMaxBytes;
    if (size > max)
      return refuse(
        'HANDOFF_TOO_LARGE',
        `the session state (${size} bytes) exceeds gateway.handoffStateMaxBytes (${max}); stay connected to the old gateway`,
      );
    const inflight = [...r.inflight].map(([rid, x]) => ({ rid, target: x.target, cmd: x.cmd }));
    const allocations = Object.fromEntries([...r.allocations].map(([t, id]) => [t, id]));
    const frames = this.deps.sessions.handOff(s);
    // The cut: what the session got here, of every node's broadcasts, is what B must not repeat.
    const broadcastsSeen = this.deps.broadcasts.seen(s.account);
    this.deps.broadcasts.forgetAccount(s.account);
    answer({
      claimId: m.claimId,
      account: s.account,
      generation: BigInt(s.generation),
      allocations,
      frames: frames.map((x) => ({ ...x })),
      inflight,
      broadcastsSeen,
    });
    const mv = new MovedSession(s.account, s.generation, b, new Set(r.allocations.values()), new Set(r.inflight.keys()));
    const timer = setTimeout(() => {
      if (this.moved.get(s.account)?.m === mv) this.moved.delete(s.account);
      if (!mv.finished) this.deps.log.warn({ account: s.account, to: b }, 'session handoff: forwarding ended before every fence and answer arrived');
    }, this.deps.settings.handoffTimeoutMs);
    timer.unref();
    this.moved.set(s.account, { m: mv, timer });
    this.deps.onMovedOut();
    this.deps.log.debug({ account: s.account, to: b, frames: frames.length, inflight: inflight.length }, 'session handed over');
  }

  /** A: node S learnt that the account is at B: what S sent here before is forwarded, so is the fence. */
  private onFence(f: Frame, link: Link): void {
    const m = decode(HandoffFenceSchema, f.body);
    const e = this.moved.get(m.account);
    if (!e || BigInt(e.m.generation) !== m.generation) return;
    const nodeId = link.remote.id;
    this.deps.node.sendSystem(
      e.m.target,
      Cmd.HANDOFF_FORWARD,
      encode(HandoffForwardSchema, { sourceType: link.remote.type, sourceId: nodeId, fence: { account: m.account, generation: m.generation } }),
    );
    e.m.fenced(nodeId);
    this.finishIfDone(m.account);
  }

  private onDone(f: Frame, link: Link): void {
    const m = decode(HandoffDoneSchema, f.body);
    const e = this.moved.get(m.account);
    if (!e || e.m.target !== link.remote.id || BigInt(e.m.generation) !== m.generation) return;
    e.m.confirm();
    this.finishIfDone(m.account);
  }

  private finishIfDone(account: string): void {
    const e = this.moved.get(account);
    if (!e?.m.finished) return;
    clearTimeout(e.timer);
    this.moved.delete(account);
  }

  // ------------------------------------------------------------------ B: the new gateway

  private onState(f: Frame, link: Link): void {
    const m = decode(HandoffStateSchema, f.body);
    const c = this.claims.get(m.claimId);
    if (c) {
      clearTimeout(c.timer);
      this.claims.delete(m.claimId);
    }
    const from = link.remote.id;
    if (m.errorCode !== 0) {
      if (c) {
        this.deps.refuse(c.conn, new XError(errorCodeName(m.errorCode) as ErrorCodeName, m.errorMessage));
        c.done();
      }
      return;
    }
    const { sessions } = this.deps;
    const generation = Number(m.generation);
    const allocations = new Map(Object.entries(m.allocations).map(([t, id]) => [Number(t), id]));
    const route = new AccountRoute(allocations);
    // Their latency counts from the move (the forwarding time stayed on the old gateway's clock).
    const now = performance.now();
    for (const x of m.inflight) route.inflight.set(x.rid, { target: x.target, cmd: x.cmd, at: now });
    // The state is here even when the claim gave up or its client left: adopted as away, it
    // expires after the grace and its nodes get ACCOUNT_LOST, once.
    const conn = c && !c.conn.closed ? c.conn : null;
    const s = sessions.adopt(conn, m.account, generation, route, m.frames, (s) => this.deps.welcome(conn!, s));
    c?.done();
    if (!s) {
      if (conn) this.deps.refuse(conn, new XError('BAD_TOKEN', 'a newer login of this account exists'));
      return;
    }
    // Broadcasts this gateway delivered before the session arrived and A had not: now, in order.
    const { replay, missed } = this.deps.broadcasts.catchUp(s.account, m.broadcastsSeen, (id) => this.deps.node.isLinked(id));
    for (const b of replay) sessions.deliverEncoded(s, b.frame, b.cmd);
    if (missed > 0) {
      for (let i = 0; i < missed; i++) this.deps.refused('broadcast_missed');
      this.deps.log.warn({ account: s.account, missed }, 'session handoff: broadcasts older than gateway.broadcastLogMax/Bytes were not repeated');
    }
    const nodes = new Set(allocations.values());
    if (nodes.size > 0) {
      const timer = setTimeout(() => this.releaseAll(m.account), this.deps.settings.handoffTimeoutMs);
      timer.unref();
      this.holds.set(m.account, { hold: new FenceHold(nodes, this.deps.settings.resumeBufferMax), timer });
    }
    this.deps.onMovedIn();
    void this.switchPresence(s, from);
  }

  /** B: presence A -> B (atomic), then the nodes learn the account is here, then A learns it is done. */
  private async switchPresence(s: GatewaySession, from: string): Promise<void> {
    const { store, node, log } = this.deps;
    try {
      if (!(await store.movePresence(s.account, s.generation, from, node.id))) {
        const p = await store.getPresence(s.account);
        if (p && p.generation > s.generation) {
          this.deps.sessions.kick(s.account, p.generation, 'logged in on another gateway');
          return;
        }
        log.warn({ account: s.account, presence: p }, 'session handoff: presence did not name the old gateway; moving on');
      }
    } catch (e) {
      log.warn({ account: s.account, err: (e as Error).message }, 'session handoff: presence update failed');
    }
    if (this.deps.sessions.get(s.account) !== s) return;
    this.deps.announce(s);
    node.sendSystem(from, Cmd.HANDOFF_DONE, encode(HandoffDoneSchema, { account: s.account, generation: BigInt(s.generation) }));
  }

  /** B: a message A forwarded (delivered at once: it precedes anything held), or a node's fence. */
  private onForward(f: Frame, _link: Link): void {
    const m = decode(HandoffForwardSchema, f.body);
    if (m.fence) {
      this.release(m.fence.account, m.sourceId);
      return;
    }
    this.deps.deliver(m.toClient, m.sourceType);
  }

  private release(account: string, nodeId: string): void {
    const h = this.holds.get(account);
    if (!h) return;
    const held = h.hold.release(nodeId);
    if (h.hold.done) {
      clearTimeout(h.timer);
      this.holds.delete(account);
    }
    for (const x of held) this.deps.deliver(x.body, x.sourceType);
  }

  private releaseAll(account: string): void {
    const h = this.holds.get(account);
    if (!h) return;
    this.holds.delete(account);
    const held = h.hold.releaseAll();
    if (held.length > 0)
      this.deps.log.warn({ account, held: held.length }, 'session handoff: fences did not arrive in time; delivering what was held');
    for (const x of held) this.deps.deliver(x.body, x.sourceType);
  }

  /** Live gateways other than this one that take clients and are not draining. */
  private targets(): Peer[] {
    return this.deps.node.list(NodeType.GATEWAY).filter((p) => {
      if (p.id === this.deps.node.id || p.info.draining) return false;
      const e = clientEndpoints(p.info);
      return e.tcpPort > 0 || e.wsUrl !== '';
    });
  }
}
