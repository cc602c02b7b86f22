/**
 * RelayEndpoint: a node's side of the gateway relay (the seed's groups 4 and 5).
 *
 * - enable(): link to every gateway (and to gateways that join later); PeerLink re-dials a
 *   dropped link while the gateway is listed.
 * - Client messages arrive as RELAY_FROM_CLIENT; per-command client handlers run first, then the
 *   catch-all relay handler `(sourceType, peer, account, cmd, data)`.
 * - sendToClient(account) finds the account's gateway from ACCOUNT_ARRIVED (or the last message
 *   the account sent), else from the store's presence record.
 * - Lost accounts: ACCOUNT_LOST from the gateway after its reconnect grace; or, when a gateway
 *   dies with accounts on it, after the same grace here unless the account arrives elsewhere.
 *   Generation-aware: a loss older than the account's latest arrival is ignored.
 * - A session moved between gateways (same generation, another gateway in ACCOUNT_ARRIVED): the
 *   node sends HANDOFF_FENCE to the old gateway, behind its earlier messages for the account.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import {
  AccountArrivedSchema,
  AccountLostSchema,
  BroadcastClientsSchema,
  FromNodeSchema,
  RelayMode,
  ToNodesSchema,
} from '../gen/xserver/v1/relay_pb.js';
import { HandoffFenceSchema } from '../gen/xserver/v1/handoff_pb.js';
import { XError } from '../errors.js';
import type { Link } from '../link/link.js';
import type { SessionStore } from '../store/store.js';
import { decode, encode } from '../wire/codec.js';
import { decodeFromClient, encodeToClient } from '../wire/relay-codec.js';
import { Cmd } from '../protocol/commands.js';
import type { Frame } from '../protocol/frame.js';
import { NodeType } from '../context.js';
import type { Peer } from './peer.js';
import type { HandlerResult, Payload } from './types.js';
import { toBytes } from './payload.js';
import { LatencyHistogram } from '../protocol/latency.js';

/** Bytes of the reference that ties a client's HANDLER_ERROR to its log line. */
const ERROR_REF_BYTES = 4;

export interface ClientContext {
  /** The client's account ("" for a message relayed from another node). */
  account: string;
  /** 0 (client) for client messages, else the sending node's type. */
  sourceType: number;
  /** The gateway (client messages) or the sending node (node relay). */
  peer: Peer | undefined;
  cmd: number;
  isRequest: boolean;
  reply(payload?: Payload): void;
  replyError(err: XError): void;
}

export type ClientHandler = (data: Uint8Array, ctx: ClientContext) => HandlerResult;
/** The seed's FuncTypeOnRelayMsg. */
export type RelayHandler = (
  sourceType: number,
  peer: Peer | undefined,
  account: string,
  cmd: number,
  data: Uint8Array,
  ctx: ClientContext,
) => HandlerResult;

/** What the relay needs from its node. */
export interface RelayHost {
  readonly id: string;
  readonly log: Logger;
  readonly store: Pick<SessionStore, 'getPresence'>;
  readonly reconnectGraceMs: number;
  readonly maxPending: number;
  /** Accounts learned from messages (not allocated here) remembered at most, oldest forgotten first. */
  readonly seenMax: number;
  get(id: string): Peer | undefined;
  list(type: number): Peer[];
  one(type: number): Peer | undefined;
  connect(id: string): void;
  sendSystem(id: string, cmd: number, body: Uint8Array): boolean;
  handleSystem(cmd: number, handler: (f: Frame, link: Link) => void): void;
  /** Runs the node's own handler of `cmd` for a relayed node message; false when there is none. */
  dispatchRelayed(cmd: number, body: Uint8Array, fromId: string, fromType: number): boolean;
  emitArrived(account: string, gatewayId: string, generation: number): void;
  emitLost(account: string): void;
  /** The account was handed off to `nodeId` (it lives on there, not lost). */
  emitMoved(account: string, nodeId: string): void;
}

interface AccountEntry {
  gatewayId: string;
  generation: number;
  lostTimer: NodeJS.Timeout | null;
}

export class RelayEndpoint {
  private enabled = false;
  private readonly clientHandlers = new Map<number, ClientHandler>();
  /** Client requests this node answered since the previous dashboard report (arrival -> answer sent). */
  readonly latency = new LatencyHistogram();
  private relayHandler: RelayHandler | null = null;
  /** Accounts allocated to this node (ACCOUNT_ARRIVED), until lost. */
  private readonly arrived = new Map<string, AccountEntry>();
  /** Gateway of accounts that messaged this node (stateless services reply through it). */
  private readonly seen = new Map<string, string>();
  /** Messages waiting for a presence lookup, per account. */
  private readonly waiting = new Map<string, Uint8Array[]>();
  private waitingCount = 0;
  /** The number of this node's last broadcast to clients (BroadcastClients.seq). */
  private broadcastSeq = 0;
  /** Client handlers of an account still running (async ones), and who waits for none to be. */
  private readonly busy = new Map<string, { running: number; idle: (() => void)[] }>();
  dropped = 0;
  /** Async client handlers not settled yet (a stopping node waits for them). */
  handlersRunning = 0;

  constructor(private readonly host: RelayHost) {
    host.handleSystem(Cmd.RELAY_FROM_CLIENT, (f, link) => this.onFromClient(f, link));
    host.handleSystem(Cmd.RELAY_FROM_NODE, (f) => this.onFromNode(f));
    host.handleSystem(Cmd.ACCOUNT_ARRIVED, (f) => this.onArrived(f));
    host.handleSystem(Cmd.ACCOUNT_LOST, (f) => this.onLost(f));
  }

  get isEnabled(): boolean {
    return this.enabled;
  }

  enable(v: boolean): void {
    this.enabled = v;
    if (v) for (const g of this.host.list(NodeType.GATEWAY)) this.host.connect(g.id);
  }

  /** Called by the node for every membership change. */
  onPeerJoined(peer: Peer): void {
    if (peer.type !== NodeType.GATEWAY) return;
    if (this.enabled) this.host.connect(peer.id);
    // The same gateway process is back (its mgr link blipped): its clients never left.
    for (const e of this.arrived.values()) {
      if (e.gatewayId === peer.id && e.lostTimer) {
        clearTimeout(e.lostTimer);
        e.lostTimer = null;
      }
    }
  }

  onPeerLeft(peer: Peer): void {
    if (peer.type !== NodeType.GATEWAY) return;
    for (const [account, gw] of this.seen) if (gw === peer.id) this.seen.delete(account);
    // Its clients may come back through another gateway within the grace; else they are lost.
    for (const [account, e] of this.arrived) {
      if (e.gatewayId !== peer.id || e.lostTimer) continue;
      const gen = e.generation;
      e.lostTimer = setTimeout(() => {
        const cur = this.arrived.get(account);
        if (cur && cur.generation === gen && cur.gatewayId === peer.id) this.lose(account);
      }, this.host.reconnectGraceMs);
      e.lostTimer.unref();
    }
  }

  handleClient(cmd: number, handler: ClientHandler): void {
    if (this.clientHandlers.has(cmd)) throw new XError('CONFIG', `a client handler for command ${cmd} is already registered`);
    this.clientHandlers.set(cmd, handler);
  }

  onRelay(fn: RelayHandler): void {
    this.relayHandler = fn;
  }

  /** The gateway id an account is reached through, if known here. */
  gatewayOf(account: string): string | undefined {
    return this.arrived.get(account)?.gatewayId ?? this.seen.get(account);
  }

  /** Accounts allocated to this node right now. */
  accounts(): string[] {
    return [...this.arrived.keys()];
  }

  /** The gateway and generation of an account allocated here. */
  entry(account: string): { gatewayId: string; generation: number } | undefined {
    const e = this.arrived.get(account);
    return e ? { gatewayId: e.gatewayId, generation: e.generation } : undefined;
  }

  /** An account handed off to `nodeId`: forgotten here without a loss (unless a newer session arrived meanwhile). */
  release(account: string, generation: number, nodeId: string): void {
    const cur = this.arrived.get(account);
    if (!cur || cur.generation > generation) return;
    if (cur.lostTimer) clearTimeout(cur.lostTimer);
    this.arrived.delete(account);
    this.host.emitMoved(account, nodeId);
  }

  /** Resolves once none of the account's client handlers is running. */
  whenIdle(account: string): Promise<void> {
    const b = this.busy.get(account);
    if (!b) return Promise.resolve();
    return new Promise((r) => b.idle.push(r));
  }

  sendToClient(account: string, cmd: number, payload: Payload): boolean {
    const body = encodeToClient({ account, cmd, data: toBytes(payload), rid: 0, errorCode: 0, errorMessage: '' });
    const gw = this.gatewayOf(account);
    // Earlier messages still waiting for a presence lookup go first (FIFO).
    if (gw !== undefined && !this.waiting.has(account) && this.host.sendSystem(gw, Cmd.RELAY_TO_CLIENT, body)) return true;
    return this.lookupAndSend(account, body);
  }

  broadcastToClients(cmd: number, payload: Payload): number {
    // Numbered, the same number at every gateway: a client moving between two gets it once.
    const body = encode(BroadcastClientsSchema, { cmd, data: toBytes(payload), seq: BigInt(++this.broadcastSeq) });
    let n = 0;
    for (const g of this.host.list(NodeType.GATEWAY)) if (this.host.sendSystem(g.id, Cmd.RELAY_BROADCAST_CLIENTS, body)) n++;
    return n;
  }

  /** node -> gateway -> node(s) of `type`: one (gateway's choice) or all. */
  relayToType(type: number, cmd: number, payload: Payload, opts: { broadcast?: boolean; excludeSelf?: boolean } = {}): boolean {
    const gw = this.host.one(NodeType.GATEWAY);
    if (!gw) return false;
    const mode = opts.broadcast ? RelayMode.BROADCAST : RelayMode.ONE;
    return this.host.sendSystem(
      gw.id,
      Cmd.RELAY_TO_NODES,
      encode(ToNodesSchema, { mode, targetType: type, cmd, data: toBytes(payload), excludeSender: opts.excludeSelf ?? true }),
    );
  }

  /** node -> gateway -> node by id. */
  relayToId(id: string, cmd: number, payload: Payload): boolean {
    const gw = this.host.one(NodeType.GATEWAY);
    if (!gw) return false;
    return this.host.sendSystem(
      gw.id,
      Cmd.RELAY_TO_NODES,
      encode(ToNodesSchema, { mode: RelayMode.BY_ID, targetId: id, cmd, data: toBytes(payload) }),
    );
  }

  // ------------------------------------------------------------------ inbound

  private onFromClient(f: Frame, link: Link): void {
    const m = decodeFromClient(f.body);
    const gatewayId = link.remote.id;
    if (!this.arrived.has(m.account)) this.remember(m.account, gatewayId);
    const ctx = new GatewayClientContext(link, m.account, m.cmd, m.rid, this.host.get(gatewayId), this.latency);
    const h = this.clientHandlers.get(m.cmd);
    const rh = this.relayHandler;
    if (!h && !rh) {
      if (ctx.isRequest) ctx.replyError(new XError('NO_HANDLER', `no client handler for command ${m.cmd}`));
      return;
    }
    this.run(() => (h ? h(m.data, ctx) : rh!(NodeType.CLIENT, ctx.peer, m.account, m.cmd, m.data, ctx)), ctx);
  }

  private onFromNode(f: Frame): void {
    const m = decode(FromNodeSchema, f.body);
    if (this.host.dispatchRelayed(m.cmd, m.data, m.sourceId, m.sourceType)) return;
    const rh = this.relayHandler;
    if (!rh) return;
    const peer = this.host.get(m.sourceId);
    const ctx: ClientContext = { account: '', sourceType: m.sourceType, peer, cmd: m.cmd, isRequest: false, reply: () => {}, replyError: () => {} };
    this.run(() => rh(m.sourceType, peer, '', m.cmd, m.data, ctx), ctx);
  }

  /**
   * Runs a client handler. Its return value (or what its promise resolves to) is the response to a
   * request; a promise that resolves to nothing is an empty response, as between nodes; a sync
   * handler that returns nothing may reply later with ctx.reply(). An XError the handler throws
   * reaches the client as it is (the service chose its code and text); anything else reaches it
   * only as HANDLER_ERROR with a reference, the text and stack go to the log under that reference.
   */
  private run(fn: () => HandlerResult, ctx: ClientContext): void {
    const fail = (e: unknown): void => {
      if (e instanceof XError) return ctx.replyError(e);
      const ref = randomBytes(ERROR_REF_BYTES).toString('hex');
      this.host.log.error({ err: e, cmd: ctx.cmd, account: ctx.account, ref }, 'client handler threw');
      ctx.replyError(new XError('HANDLER_ERROR', `the handler of command ${ctx.cmd} failed (ref ${ref})`, { ref }));
    };
    try {
      const r = fn();
      if (r instanceof Promise) {
        const done = this.running(ctx.account);
        this.handlersRunning++;
        r.then((v) => ctx.reply(v ?? undefined))
          .catch(fail)
          .finally(() => {
            this.handlersRunning--;
            done();
          });
      } else if (r !== undefined) ctx.reply(r);
    } catch (e) {
      fail(e);
    }
  }

  /** Counts a running async handler of `account` (a handoff exports only once none runs); returns its end. */
  private running(account: string): () => void {
    if (account === '') return () => {};
    let b = this.busy.get(account);
    if (!b) this.busy.set(account, (b = { running: 0, idle: [] }));
    b.running++;
    return () => {
      if (--b.running > 0) return;
      this.busy.delete(account);
      for (const r of b.idle) r();
    };
  }

  private onArrived(f: Frame): void {
    const m = decode(AccountArrivedSchema, f.body);
    this.adopt(m.account, m.gatewayId, Number(m.generation));
  }

  /** The account is allocated here, reached through `gatewayId` (ACCOUNT_ARRIVED, or a handoff's import). */
  adopt(account: string, gatewayId: string, gen: number): void {
    const cur = this.arrived.get(account);
    if (cur && cur.generation > gen) return; // stale
    if (cur?.lostTimer) clearTimeout(cur.lostTimer);
    // The session moved between gateways: the fence follows everything sent to the old one for it,
    // so the new one can deliver this node's messages in order (src/gateway/handoff.ts).
    if (cur && cur.generation === gen && cur.gatewayId !== gatewayId) {
      this.host.sendSystem(cur.gatewayId, Cmd.HANDOFF_FENCE, encode(HandoffFenceSchema, { account, generation: BigInt(gen) }));
    }
    this.arrived.set(account, { gatewayId, generation: gen, lostTimer: null });
    this.seen.delete(account);
    this.flushWaiting(account, gatewayId);
    this.host.emitArrived(account, gatewayId, gen);
  }

  private onLost(f: Frame): void {
    const m = decode(AccountLostSchema, f.body);
    const cur = this.arrived.get(m.account);
    if (cur && cur.generation > Number(m.generation)) return; // a newer session lives on
    this.lose(m.account);
  }

  private lose(account: string): void {
    const cur = this.arrived.get(account);
    if (cur?.lostTimer) clearTimeout(cur.lostTimer);
    this.arrived.delete(account);
    this.seen.delete(account);
    this.host.emitLost(account);
  }

  private remember(account: string, gatewayId: string): void {
    this.seen.delete(account);
    this.seen.set(account, gatewayId);
    if (this.seen.size > this.host.seenMax) this.seen.delete(this.seen.keys().next().value as string);
  }

  private lookupAndSend(account: string, body: Uint8Array): boolean {
    if (this.waitingCount >= this.host.maxPending) {
      this.dropped++;
      return false;
    }
    const q = this.waiting.get(account);
    this.waitingCount++;
    if (q) {
      q.push(body);
      return true;
    }
    this.waiting.set(account, [body]);
    this.host.store.getPresence(account).then(
      (p) => {
        if (p) this.flushWaiting(account, p.gatewayId);
        else this.dropWaiting(account, 'account not online');
      },
      (e: Error) => this.dropWaiting(account, `presence lookup failed: ${e.message}`),
    );
    return true;
  }

  private flushWaiting(account: string, gatewayId: string): void {
    const q = this.waiting.get(account);
    if (!q) return;
    this.waiting.delete(account);
    this.waitingCount -= q.length;
    if (!this.arrived.has(account)) this.remember(account, gatewayId);
    for (const body of q) if (!this.host.sendSystem(gatewayId, Cmd.RELAY_TO_CLIENT, body)) this.dropped++;
  }

  private dropWaiting(account: string, why: string): void {
    const q = this.waiting.get(account);
    if (!q) return;
    this.waiting.delete(account);
    this.waitingCount -= q.length;
    this.dropped += q.length;
    this.host.log.debug({ account, count: q.length }, `messages to client dropped: ${why}`);
  }
}

/**
 * Context of a client message relayed by a gateway. The gateway's link is an ES private field:
 * a user handler can answer its client, never send system commands on the link.
 */
class GatewayClientContext implements ClientContext {
  readonly sourceType = NodeType.CLIENT;
  readonly isRequest: boolean;
  readonly #link: Link;
  readonly #rid: number;
  readonly #latency: LatencyHistogram;
  readonly #at = performance.now();
  #replied = false;

  constructor(
    link: Link,
    readonly account: string,
    readonly cmd: number,
    rid: number,
    readonly peer: Peer | undefined,
    latency: LatencyHistogram,
  ) {
    this.#link = link;
    this.#rid = rid;
    this.#latency = latency;
    this.isRequest = rid !== 0;
  }

  reply(p?: Payload): void {
    if (!this.isRequest || this.#replied) return;
    this.#replied = true;
    this.#latency.record(performance.now() - this.#at);
    // Transient: Link.send copies it into its batch before it returns.
    this.#link.send(
      Cmd.RELAY_TO_CLIENT,
      encodeToClient({ account: this.account, cmd: this.cmd, data: toBytes(p), rid: this.#rid, errorCode: 0, errorMessage: '' }, true),
    );
  }

  replyError(e: XError): void {
    if (!this.isRequest || this.#replied) return;
    this.#replied = true;
    this.#latency.record(performance.now() - this.#at);
    this.#link.send(
      Cmd.RELAY_TO_CLIENT,
      encodeToClient({
        account: this.account,
        cmd: this.cmd,
        data: new Uint8Array(0),
        rid: this.#rid,
        errorCode: e.codeNumber,
        errorMessage: e.message,
      }),
    );
  }
}
