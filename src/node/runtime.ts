/**
 * NodeRuntime: the machinery behind a ClusterNode. It holds the membership, the links, the
 * request plumbing and the framework's system channel (relay commands, account arrival and
 * loss). User code gets the ClusterNode facade (node.ts); framework roles reach this object
 * through runtimeOf() (internal.ts), which src/index.ts does not export.
 *
 * It listens for direct links from peers, registers with the mgr through MgrClient, keeps its
 * own MembershipTable (kept across mgr outages), and talks to peers over one PeerLink each.
 * Delivery: FIFO per sender->receiver pair, at most once, never silently duplicated; a send
 * returns false at once when there is no target.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { advertisedAddresses, hostPort } from '../config/addresses.js';
import type { Logger } from 'pino';
import { create } from '@bufbuild/protobuf';
import { contractHash, type Command } from '../protocol/contract.js';
import {
  LeaveReason,
  NodeInfoSchema,
  type ContractInfo,
  type NodeInfo,
  type RoutingPolicy,
  type Snapshot,
  type VersionCount,
} from '../gen/xserver/v1/cluster_pb.js';
import { decide, describePolicy, routeCandidates, type CohortDecision } from '../protocol/routing-policy.js';
import { publishedContracts } from './contract-info.js';
import { XError } from '../errors.js';
import { LinkListener, type Link, type LinkIdentity, type LinkOptions } from '../link/link.js';
import { linkOptions, NodeType, type RoleContext } from '../context.js';
import { Flags, type Frame } from '../protocol/frame.js';
import { Cmd, cmdName, isSystemCmd, SYSTEM_CMD_BASE } from '../protocol/commands.js';
import type { LeaseRecord } from '../store/store.js';
import { MembershipTable } from './membership.js';
import { MgrClient } from './mgr-client.js';
import { Peer, infoToJson, type IpKind } from './peer.js';
import { PeerLink, type PeerLinkHost } from './peer-link.js';
import { toBytes } from './payload.js';
import { RelayEndpoint, type ClientHandler, type RelayHandler } from './relay.js';
import { AccountHandoff, type AccountExporter, type AccountImporter } from './handoff.js';
import { Selector, type SelectOptions } from './select.js';
import type {
  HandlerResult,
  LeftReason,
  MessageContext,
  NodeEvents,
  NodeOptions,
  Payload,
  RawHandler,
  RequestOptions,
  SendOptions,
} from './types.js';
import { SystemFrameGate } from './authorization.js';
import { sameKey } from '../link/identity.js';
import { LogThrottle } from '../log.js';
import { StatsReporter, type StatsFigures, type StatsOverride } from './stats.js';

/** Frames of commands >= SYSTEM_CMD_BASE that a node handles besides the user's (relay etc.). */
export type SystemFrameHandler = (frame: Frame, link: Link) => void;

/** Default wait of ready(): a cold start may first wait out a dead mgr's lease, then register. */
const READY_TIMEOUT_MS = 30_000;
/** The LEAVE request gets at least this long to be answered, even with node.shutdownDrainMs 0. */
const MIN_LEAVE_WAIT_MS = 200;
/** How often stop() looks whether the links have flushed during node.shutdownDrainMs. */
const DRAIN_POLL_MS = 10;
/**
 * After LEAVE, links stay open until no peer frame arrived for this long: peers that sent before
 * they saw LEFT still get their answers (a peer no longer routes here once it processed LEFT).
 */
const LEAVE_QUIET_MS = 50;

/** Facade -> its runtime; read through runtimeOf() in internal.ts (framework code only). */
const runtimes = new WeakMap<object, NodeRuntime>();

/** Called once by the facade's constructor. */
export function bindFacade(facade: object, rt: NodeRuntime): void {
  if (runtimes.has(facade)) throw new XError('CONFIG', 'this node already has a runtime');
  runtimes.set(facade, rt);
}

export function runtimeBehind(facade: object): NodeRuntime | undefined {
  return runtimes.get(facade);
}

/** Where the runtime's events go: the ClusterNode facade, which is the user's EventEmitter. */
export interface NodeEventSink {
  emit<K extends keyof NodeEvents>(event: K, ...args: NodeEvents[K]): boolean;
}

/** A refused framework command is logged at most once per command and this interval (anyone with the secret can repeat it). */
const FORBIDDEN_LOG_INTERVAL_MS = 1000;
const forbiddenLog = new LogThrottle(FORBIDDEN_LOG_INTERVAL_MS);
/** Messages dropped for age are logged at most once per peer and this interval. */
const EXPIRED_LOG_INTERVAL_MS = 1000;

export class NodeRuntime {
  readonly id = randomUUID();
  readonly type: number;
  readonly name: string;
  readonly log: Logger;

  private readonly cfg: RoleContext['config'];
  /** innerIp / outerIp, or what they derive to when empty. */
  private readonly addrs: { inner: string; outer: string };
  private readonly linkOpts: LinkOptions;
  private readonly listener: LinkListener;
  private readonly mgrClient: MgrClient;
  private readonly membership = new MembershipTable();
  private readonly selector: Selector;
  /** Canary routing policy per service type, as the mgr last sent it. */
  private routing = new Map<number, RoutingPolicy>();
  /** "type:canary" keys whose fallback (no node of the wanted version) was logged; reset when the policies change. */
  private readonly fallbacksLogged = new Set<string>();
  private accountCounter: () => VersionCount[] = () => [];
  private readonly peers = new Map<string, Peer>();
  private readonly links = new Map<string, PeerLink>();
  /**
   * Links to peers that left gracefully: kept open, so what the peer still sends (answers to our
   * requests, messages for our clients) arrives; the leaving peer closes them once it has flushed,
   * or node.shutdownDrainMs + LEAVE_QUIET_MS after its LEFT they are closed here.
   */
  private readonly leaving = new Map<string, { pl: PeerLink; info: NodeInfo; timer: ReturnType<typeof setTimeout> }>();
  private readonly linkGoneListeners: ((peerId: string) => void)[] = [];
  /** Frames received from peers, ever: stop() waits until it stops moving. */
  private peerFramesIn = 0;
  /** Async message handlers not settled yet: stop() lets them answer before the links close. */
  private handlersRunning = 0;
  private readonly handlers = new Map<number, RawHandler>();
  private readonly peerLinkHost: PeerLinkHost;
  private readonly relay: RelayEndpoint;
  private readonly handoff: AccountHandoff;
  private readonly systemHandlers = new Map<number, SystemFrameHandler>();
  private readonly gate: SystemFrameGate;
  private version: string;
  /** contractHash() of the contracts of this node's type it declared ("" = none). */
  private contractHash = '';
  /** The contracts of this node's type it lists in its info, for the login playground (bounded). */
  private contractInfos: ContractInfo[] = [];
  private overloads: number[];
  private extraPorts: number[];
  private readonly extraListeners: { name: string; bind: string; advertised: string }[] = [];
  private listenPort = 0;
  private inflight = 0;
  private readonly count = { sent: 0, received: 0, unhandled: 0 };
  private readonly retireCounters: (() => void)[];
  private readonly startedAt = Date.now();
  private updateTimer: NodeJS.Timeout | null = null;
  /** Runs node.mgrLostFenceMs after the mgr link was lost (cleared when it is back). */
  private fenceTimer: NodeJS.Timeout | null = null;
  /** True from the fence until the next registration: no peer is listed or served. */
  private fenced = false;
  private readonly expiredLog = new LogThrottle(EXPIRED_LOG_INTERVAL_MS);
  /** Read at the fence: is an mgr holding the lease (alive, evicting), or is there none? */
  private readonly leases: Pick<RoleContext['store'], 'readLease'>;
  private lastUpdateAt = 0;
  private started = false;
  private stopping = false;
  private isDraining = false;
  private registeredOnce: Promise<void>;
  private resolveRegistered!: () => void;
  /** The dashboard's figures, to the mgr (dashboard.statsIntervalMs). */
  private readonly stats: StatsReporter;
  private statsOverride: StatsOverride | null = null;
  private readonly m;

  constructor(
    ctx: RoleContext,
    opts: NodeOptions,
    private readonly events: NodeEventSink,
  ) {
    if (!Number.isInteger(opts.type) || opts.type < NodeType.LOGIN) {
      throw new XError('CONFIG', `node type must be an integer >= ${NodeType.LOGIN} (0 client and 1 mgr are reserved), got ${opts.type}`);
    }
    this.cfg = ctx.config;
    this.addrs = advertisedAddresses(ctx.config);
    this.leases = ctx.store;
    this.type = opts.type;
    this.name = opts.name ?? nameOfType(ctx.config.types, opts.type);
    this.version = opts.version ?? ctx.config.node.version;
    this.overloads = [...(opts.overload ?? [])];
    this.extraPorts = [...(opts.extraPorts ?? [])];
    this.log = ctx.logger.child({ role: this.name, node: this.id.slice(0, 8) });
    this.linkOpts = linkOptions(ctx.config, this.log);
    this.selector = new Selector(ctx.config.node.selection);
    const self: LinkIdentity = { type: this.type, id: this.id };
    this.peerLinkHost = {
      self,
      linkOptions: this.linkOpts,
      log: this.log,
      addressOf: (id) => {
        const i = this.membership.get(id);
        return i ? { host: i.innerIp, port: i.ports[0] ?? 0, type: i.type, publicKey: i.publicKey.length > 0 ? i.publicKey : undefined } : undefined;
      },
      onFrame: (f, link) => this.onPeerFrame(f, link),
      onLinkUp: () => this.m.links.set(this.openLinks()),
      onLinkDown: (peerId) => {
        if (this.leaving.has(peerId)) return this.closeLeaving(peerId);
        // A link from a node we do not list (it left, or never registered) is not kept warm.
        if (!this.membership.has(peerId)) {
          this.links.get(peerId)?.close(new XError('NO_TARGET', `node ${peerId} is not listed`));
          this.links.delete(peerId);
        }
        this.m.links.set(this.openLinks());
      },
      onPendingOverflow: (peerId) => this.log.warn({ peer: peerId }, 'pending buffer full: message dropped'),
      onPendingExpired: (peerId, count) => {
        this.m.dropped.inc({ type: String(this.type), where: 'expired' }, count);
        this.expiredLog.run(peerId, (suppressed) =>
          this.log.warn(
            { peer: peerId, dropped: count, ...(suppressed > 0 ? { suppressed } : {}) },
            `messages waited more than node.pendingMaxAgeMs (${this.cfg.node.pendingMaxAgeMs} ms) for the link: dropped`,
          ),
        );
      },
    };
    this.listener = new LinkListener(
      self,
      this.linkOpts,
      (remote) => this.admitPeer(remote),
      (link) => this.onInbound(link),
    );
    this.mgrClient = new MgrClient(
      ctx.store,
      self,
      this.linkOpts,
      {
        minBackoffMs: ctx.config.node.discoveryMinBackoffMs,
        maxBackoffMs: ctx.config.node.discoveryMaxBackoffMs,
        registerTimeoutMs: ctx.config.node.registerTimeoutMs,
        maxMembers: ctx.config.mgr.maxMembers,
      },
      {
        selfInfo: () => this.info(),
        onSnapshot: (s) => this.applySnapshot(s),
        onJoined: (info) => this.applyJoined(info),
        onLeft: (l) => this.applyLeft(l.id, l.reason),
        onUpdated: (u) => this.applyUpdated(u.id, u.overload, u.version, u.draining),
        onDrainRequested: () => {
          this.log.info('drain requested by an operator (xserver drain)');
          this.emit('drain-requested');
        },
        onPolicies: (p) => this.applyPolicies(p),
        countAccounts: () => this.accountCounter(),
        onConnected: (lease) => this.onMgrConnected(lease),
        onLost: (why) => this.onMgrLost(why),
      },
      this.log,
    );
    this.registeredOnce = new Promise((r) => (this.resolveRegistered = r));
    this.stats = new StatsReporter(
      ctx.config.dashboard.statsIntervalMs,
      () => this.statsFigures(),
      (body) => this.mgrClient.sendStats(body),
    );
    this.relay = new RelayEndpoint({
      id: this.id,
      log: this.log,
      store: ctx.store,
      reconnectGraceMs: ctx.config.gateway.reconnectGraceMs,
      maxPending: ctx.config.node.pendingMaxMessages,
      seenMax: ctx.config.node.relaySeenMax,
      get: (id) => this.get(id),
      list: (t) => this.list(t),
      one: (t) => this.one(t),
      connect: (id) => this.connect(id),
      sendSystem: (id, cmd, body) => this.sendSystem(id, cmd, body),
      handleSystem: (cmd, h) => this.handleSystem(cmd, h),
      dispatchRelayed: (cmd, body, fromId, fromType) => this.dispatchRelayed(cmd, body, fromId, fromType),
      emitArrived: (a, g, gen) => {
        this.emit('account-arrived', a, g, gen);
        this.handoff.arrived(a);
      },
      emitLost: (a) => this.emit('account-lost', a),
      emitMoved: (a, to) => this.emit('account-moved', a, to),
    });
    const handoffs = ctx.metrics.counter('node_account_handoffs_total', 'Accounts a draining stateful node handed off, by result', [
      'type',
      'result',
    ]);
    this.handoff = new AccountHandoff({
      type: this.type,
      log: this.log,
      settings: {
        maxBytes: ctx.config.node.handoffMaxBytes,
        stateTtlMs: ctx.config.node.handoffStateTtlMs,
        timeoutMs: ctx.config.node.handoffTimeoutMs,
        concurrency: ctx.config.node.handoffConcurrency,
      },
      store: ctx.store,
      accounts: () => this.relay.accounts(),
      entry: (a) => this.relay.entry(a),
      whenIdle: (a) => this.relay.whenIdle(a),
      request: async (id, cmd, body, timeoutMs) => (await this.requestSystem(id, cmd, body, timeoutMs)).body,
      release: (a, gen, to) => this.relay.release(a, gen, to),
      adopt: (a, gw, gen) => this.relay.adopt(a, gw, gen),
      counted: (result) => handoffs.inc({ type: String(this.type), result }),
    });
    this.handleSystem(Cmd.ACCOUNT_IMPORT, (f, link) => this.handoff.onImport(f, link));
    const lbl = { type: String(this.type) };
    // Per-message counts are plain numbers read at scrape time (label hashing per message cost ~20% CPU).
    this.retireCounters = [
      ctx.metrics
        .polledCounter('node_messages_sent_total', 'Messages sent to peers (including local delivery)', ['type'])
        .add(lbl, () => this.count.sent),
      ctx.metrics.polledCounter('node_messages_received_total', 'Messages received from peers', ['type']).add(lbl, () => this.count.received),
      ctx.metrics.polledCounter('node_messages_unhandled_total', 'Messages with no handler', ['type']).add(lbl, () => this.count.unhandled),
    ];
    this.gate = new SystemFrameGate(
      {
        isMember: (remote) => this.isListedAs(remote),
        deliver: (f, link) => (f.cmd >= SYSTEM_CMD_BASE ? this.onSystemFrame(f, link) : this.onUserFrame(f, link)),
        forbid: (link, cmd, why) => {
          // User command numbers are the application's: one label for all of them.
          const name = cmd < SYSTEM_CMD_BASE ? 'user' : cmdName(cmd);
          this.m.forbidden.inc({ cmd: name });
          forbiddenLog.run(name, (suppressed) =>
            this.log.warn(
              { cmd: name, from: link.remote.id, fromType: link.remote.type, ...(suppressed > 0 ? { suppressed } : {}) },
              `refused a framework command: ${why}`,
            ),
          );
          link.close(new XError('FORBIDDEN', why));
        },
      },
      ctx.config.node.unlistedHoldMs,
      ctx.config.node.unlistedHoldMax,
    );
    this.m = {
      forbidden: ctx.metrics.counter('node_forbidden_total', 'Framework commands refused by the authorization table (the link was closed)', ['cmd']),
      dropped: ctx.metrics.counter(
        'node_messages_dropped_total',
        'Messages refused or dropped: pending buffer or outbound queue full, or too old in the pending buffer (where=expired)',
        ['type', 'where'],
      ),
      fenced: ctx.metrics
        .counter('node_fenced_total', 'Times this node dropped its peer table after node.mgrLostFenceMs without the mgr', ['type'])
        .labels(lbl),
      peers: ctx.metrics.gauge('node_peers', "Members in this node's view", ['type']).labels(lbl),
      mgrConnected: ctx.metrics.gauge('node_mgr_connected', '1 while registered with an mgr', ['type']).labels(lbl),
      links: ctx.metrics.gauge('node_links', 'Open direct links', ['type']).labels(lbl),
    };
  }

  private emit<K extends keyof NodeEvents>(event: K, ...args: NodeEvents[K]): void {
    this.events.emit(event, ...args);
  }

  // ================================================================ lifecycle

  /** Listens for peers and starts discovery. Use `ready()` to wait for the first registration. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.listenPort = await this.listener.listen(this.cfg.node.port, this.cfg.bindHost);
    await this.mgrClient.start();
    this.stats.start();
    this.log.info({ port: this.listenPort, type: this.type }, 'node started; looking for the mgr');
  }

  /** Resolves once registered with an mgr (rejects after `timeoutMs`). */
  ready(timeoutMs = READY_TIMEOUT_MS): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        const last = this.mgrClient.lastFailure;
        reject(new XError('TIMEOUT', `not registered with an mgr after ${timeoutMs} ms${last ? ` (last attempt: ${last})` : ''}`));
      }, timeoutMs);
      void this.registeredOnce.then(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Graceful stop: LEAVE first (peers learn at once), drain, then close links. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.updateTimer) clearTimeout(this.updateTimer);
    if (this.fenceTimer) clearTimeout(this.fenceTimer);
    this.fenceTimer = null;
    this.stats.stop();
    await this.mgrClient.stop(Math.max(MIN_LEAVE_WAIT_MS, this.cfg.node.shutdownDrainMs));
    // Peers learn of LEFT about now; until they stop sending, the handlers answered and the
    // answers are out (or node.shutdownDrainMs), the links stay.
    const deadline = performance.now() + this.cfg.node.shutdownDrainMs;
    let seen = this.peerFramesIn;
    let quietSince = performance.now();
    for (;;) {
      const now = performance.now();
      if (this.peerFramesIn !== seen) {
        seen = this.peerFramesIn;
        quietSince = now;
      }
      const busy = this.handlersRunning > 0 || this.relay.handlersRunning > 0;
      const flushed = ![...this.links.values()].some((l) => (l.current?.outboundBytes ?? 0) > 0);
      if ((!busy && flushed && now - quietSince >= LEAVE_QUIET_MS) || now >= deadline) break;
      await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
    }
    for (const l of this.links.values()) l.close(new XError('SHUTTING_DOWN', 'node is stopping'));
    this.links.clear();
    for (const id of [...this.leaving.keys()]) this.closeLeaving(id);
    this.gate.stop();
    await this.listener.close();
    this.m.mgrConnected.set(0);
    for (const retire of this.retireCounters) retire();
    this.log.info('node stopped');
  }

  /**
   * Calls `fn` with a peer's id once nothing more can arrive from it: at once when it was lost,
   * when its link closes after a graceful LEFT (requests to it that are still unanswered then
   * never will be).
   */
  onPeerLinkGone(fn: (peerId: string) => void): void {
    this.linkGoneListeners.push(fn);
  }

  private closeLeaving(peerId: string): void {
    const e = this.leaving.get(peerId);
    if (!e) return;
    this.leaving.delete(peerId);
    clearTimeout(e.timer);
    e.pl.close(new XError('NO_TARGET', `node ${peerId} left`));
    this.notifyLinkGone(peerId);
  }

  private notifyLinkGone(peerId: string): void {
    for (const fn of this.linkGoneListeners) {
      try {
        fn(peerId);
      } catch (e) {
        this.log.error({ err: e, peer: peerId }, 'link-gone listener threw');
      }
    }
  }

  // ================================================================ group 1: own info

  get mgrConnected(): boolean {
    return this.mgrClient.connected;
  }

  ip(kind: IpKind = 'inner'): string {
    return kind === 'outer' ? this.addrs.outer : this.addrs.inner;
  }

  /** ports[0] is the intranet port; roles add theirs after it. */
  port(i = 0): number {
    return this.ports()[i] ?? 0;
  }

  ports(): number[] {
    return [this.listenPort, ...this.extraPorts];
  }

  overload(i = 0): number {
    return this.overloads[i] ?? 0;
  }

  getVersion(): string {
    return this.version;
  }

  /** Sets overload[i]; propagated to all peers through the mgr (rate-limited). */
  setOverload(i: number, value: number): void {
    if (!Number.isInteger(i) || i < 0 || i > 63) throw new XError('BAD_REQUEST', `overload index must be 0..63, got ${i}`);
    while (this.overloads.length <= i) this.overloads.push(0);
    if (this.overloads[i] === value) return;
    this.overloads[i] = Math.max(0, Math.round(value)) >>> 0;
    this.scheduleUpdate();
  }

  setVersion(version: string): void {
    if (version === this.version) return;
    this.version = version;
    this.scheduleUpdate();
  }

  /**
   * Declares the contracts this node serves; their hash (of this node's type) travels in its
   * NodeInfo and gateways refuse clients built with other contracts of the type (CONTRACT_MISMATCH).
   * Call before start().
   */
  useContracts(contracts: Iterable<Command<unknown, unknown>>): void {
    if (this.started) throw new XError('CONFIG', 'useContracts() must be called before start()');
    const list = [...contracts];
    this.contractHash = contractHash(list, this.type);
    const { maxPublishedContracts: maxCount, maxContractInfoBytes: maxBytes } = this.cfg.node;
    const pub = publishedContracts(list, this.type, { maxCount, maxBytes });
    this.contractInfos = pub.infos;
    if (pub.examplesDropped.length > 0) {
      this.log.warn(
        { contracts: pub.examplesDropped, maxContractInfoBytes: maxBytes },
        "contract examples left out of this node's info to stay within node.maxContractInfoBytes; raise it to list them in the playground",
      );
    }
    if (pub.unlisted.length > 0) {
      this.log.warn(
        { contracts: pub.unlisted, maxPublishedContracts: maxCount, maxContractInfoBytes: maxBytes },
        'contracts served but not listed for the playground (over node.maxPublishedContracts or node.maxContractInfoBytes); raise them to list these',
      );
    }
  }

  /** Advertises extra ports (ports[1..]); call before start(). */
  setExtraPorts(ports: number[]): void {
    this.extraPorts = [...ports];
  }

  /** Lists one more listener of this process in its info (what `xserver doctor` shows); call before start(). */
  addListener(name: string, bind: string, advertised: string): void {
    this.extraListeners.push({ name, bind, advertised });
  }

  info(): NodeInfo {
    return create(NodeInfoSchema, {
      id: this.id,
      type: this.type,
      name: this.name,
      innerIp: this.addrs.inner,
      outerIp: this.addrs.outer,
      ports: this.ports(),
      overload: this.overloads,
      version: this.version,
      startedAt: BigInt(this.startedAt),
      pid: process.pid,
      host: os.hostname(),
      publicKey: this.linkOpts.identity.publicKey,
      clientTls: this.type === NodeType.GATEWAY && this.cfg.gateway.tls,
      draining: this.isDraining,
      publicUrl: this.type === NodeType.GATEWAY ? this.cfg.gateway.publicUrl : '',
      publicTcp: this.type === NodeType.GATEWAY ? this.cfg.gateway.publicTcp : '',
      listeners: [
        { name: 'intranet', bind: hostPort(this.cfg.bindHost, this.listenPort), advertised: hostPort(this.addrs.inner, this.listenPort) },
        ...this.extraListeners,
      ],
      contractHash: this.contractHash,
      contracts: this.contractInfos,
    });
  }

  // ================================================================ group 2: membership

  /**
   * One node of `type`, by the selection strategy (random by default); undefined if none. A canary
   * policy of the type narrows the choice for `opts.account` (or for `decision`, one a caller took
   * earlier); an explicit `opts.version` overrides the policy.
   */
  one(type: number, opts?: SelectOptions, decision?: CohortDecision | null): Peer | undefined {
    const info = this.selector.pick(type, this.candidatesOf(type, opts, decision), opts);
    return info ? this.peerOf(info) : undefined;
  }

  /** The canary decision for an account and a type now (null: the type has no policy). */
  routingDecision(type: number, account: string | undefined): CohortDecision | null {
    return decide(this.routing.get(type), account);
  }

  /**
   * The members of `list` (of one type) a decision allows; all of them, logged once per type and
   * side, when none of the wanted version lives.
   */
  routed<T>(type: number, decision: CohortDecision | null, list: readonly T[], versionOf: (c: T) => string): readonly T[] {
    const r = routeCandidates(decision, list, versionOf);
    if (r.fallback && decision) {
      const key = `${type}:${decision.canary}`;
      if (!this.fallbacksLogged.has(key)) {
        this.fallbacksLogged.add(key);
        this.log.warn(
          { type, version: decision.version, canary: decision.canary },
          decision.canary
            ? `no live node of type ${type} runs canary version ${decision.version}: its cohort goes to any version`
            : `every live node of type ${type} runs canary version ${decision.version}: accounts outside the cohort go there too`,
        );
      }
    } else if (decision) this.fallbacksLogged.delete(`${type}:${decision.canary}`);
    return r.list;
  }

  /** The routing policies this node knows (what the mgr last sent). */
  policies(): RoutingPolicy[] {
    return [...this.routing.values()];
  }

  /** Framework roles that hold accounts (the gateway) answer the mgr's account count with this. */
  setAccountCounter(fn: () => VersionCount[]): void {
    this.accountCounter = fn;
  }

  private candidatesOf(type: number, opts: SelectOptions | undefined, decision: CohortDecision | null | undefined): readonly NodeInfo[] {
    const all = this.membership.ofType(type);
    if (opts?.version !== undefined || !this.routing.has(type)) return all;
    const d = decision === undefined ? this.routingDecision(type, opts?.account) : decision;
    // Draining and excluded members go first, so a fallback is about the members that could be chosen.
    const open = all.filter((n) => n.id !== opts?.excludeId && (opts?.includeDraining === true || !n.draining));
    return this.routed(type, d, open, (n) => n.version);
  }

  private applyPolicies(list: readonly RoutingPolicy[]): void {
    const next = new Map(list.map((p) => [p.type, p]));
    const same = next.size === this.routing.size && [...next].every(([t, p]) => samePolicy(this.routing.get(t), p));
    this.routing = next;
    if (same) return;
    this.fallbacksLogged.clear();
    this.log.info({ policies: list.map((p) => `type ${p.type}: ${describePolicy(p)}`) }, 'canary routing policies changed');
  }

  list(type: number): Peer[] {
    return this.membership.ofType(type).map((i) => this.peerOf(i));
  }

  all(): Peer[] {
    return this.membership.all().map((i) => this.peerOf(i));
  }

  get(id: string): Peer | undefined {
    const info = this.membership.get(id);
    return info ? this.peerOf(info) : undefined;
  }

  has(id: string): boolean {
    return this.membership.has(id);
  }

  /** Logs the members of one type (the seed's PrintNodeInfo). */
  printNodes(type: number, log: Logger = this.log): void {
    log.info({ type, nodes: this.membership.ofType(type).map(infoToJson) }, `nodes of type ${type}`);
  }

  /** Logs every member (the seed's PrintAllNodeInfo). */
  printAllNodes(log: Logger = this.log): void {
    for (const t of this.membership.types()) this.printNodes(t, log);
  }

  // ================================================================ group 3: sending

  /** Sends to one node of `type` chosen by the strategy. False at once when there is none. */
  sendOne(type: number, cmd: number, payload: Payload, opts?: SendOptions): boolean {
    const info = this.selector.pick(type, this.candidatesOf(type, opts, undefined), opts);
    return info ? this.sendById(info.id, cmd, payload) : false;
  }

  /** Sends to every node of `type`; returns how many were sent to. */
  sendByType(type: number, cmd: number, payload: Payload, excludeSelf = true): number {
    const body = toBytes(payload);
    let n = 0;
    for (const info of this.membership.ofType(type)) {
      if (excludeSelf && info.id === this.id) continue;
      if (this.sendBytes(info.id, cmd, body)) n++;
    }
    return n;
  }

  /** Sends to one node by id. False at once when it is not listed, or its buffer is full. */
  sendById(id: string, cmd: number, payload: Payload): boolean {
    return this.sendBytes(id, cmd, toBytes(payload));
  }

  /** Sends to every member; returns how many were sent to. */
  sendAll(cmd: number, payload: Payload, excludeSelf = true): number {
    const body = toBytes(payload);
    let n = 0;
    for (const info of this.membership.all()) {
      if (excludeSelf && info.id === this.id) continue;
      if (this.sendBytes(info.id, cmd, body)) n++;
    }
    return n;
  }

  /** Request/response with one node by id; rejects with a typed XError (TIMEOUT, NO_TARGET, NO_HANDLER, ...). */
  request(id: string, cmd: number, payload: Payload, opts: RequestOptions = {}): Promise<Uint8Array> {
    return new Promise((resolve, reject) => this.requestCb(id, cmd, payload, (err, body) => (err ? reject(err) : resolve(body!)), opts));
  }

  /**
   * Callback form of request(), for high request rates (no promise per request). `done` is always
   * called exactly once, never synchronously.
   */
  requestCb(id: string, cmd: number, payload: Payload, done: (err: XError | null, body: Uint8Array | null) => void, opts: RequestOptions = {}): void {
    checkUserCmd(cmd);
    const timeoutMs = opts.timeoutMs ?? this.cfg.node.requestTimeoutMs;
    const body = toBytes(payload);
    const fail = (e: XError): void => queueMicrotask(() => done(e, null));
    if (id === this.id) {
      this.requestLocal(cmd, body, timeoutMs).then(
        (b) => done(null, b),
        (e: XError) => done(e, null),
      );
      return;
    }
    if (!this.membership.has(id) && !this.links.has(id)) return fail(new XError('NO_TARGET', `node ${id} is not listed`));
    if (this.inflight >= this.cfg.node.maxInflightRequests) {
      return fail(new XError('QUEUE_FULL', `${this.inflight} requests outstanding (node.maxInflightRequests)`));
    }
    this.inflight++;
    const pl = this.linkTo(id);
    const link = pl.current;
    if (link !== null && link.isOpen) {
      // Refusals from the link itself are synchronous: keep the "never synchronous" promise.
      // One closure per request (this path runs at a million requests a second).
      let sync = true;
      link.requestCb(cmd, body, timeoutMs, (err, f) => {
        if (sync) return queueMicrotask(() => this.settleRequest(done, err, f));
        this.settleRequest(done, err, f);
      });
      sync = false;
    } else {
      pl.request(cmd, body, timeoutMs).then(
        (f) => this.settleRequest(done, null, f),
        (e: XError) => this.settleRequest(done, e, null),
      );
    }
  }

  private settleRequest(done: (err: XError | null, body: Uint8Array | null) => void, err: XError | null, f: Frame | null): void {
    this.inflight--;
    done(err, f ? f.body : null);
  }

  /** Request to one node of `type` chosen by the strategy. */
  requestOne(type: number, cmd: number, payload: Payload, opts: RequestOptions & SelectOptions = {}): Promise<Uint8Array> {
    const info = this.selector.pick(type, this.candidatesOf(type, opts, undefined), opts);
    if (!info) return Promise.reject(new XError('NO_TARGET', `no node of type ${type}`));
    return this.request(info.id, cmd, payload, opts);
  }

  // ================================================================ group 4: relay through gateways

  /** Links this node to every gateway (now and as they join), so clients' messages reach it. */
  enableRelay(v = true): void {
    this.relay.enable(v);
  }

  /** The seed's RegisterFuncOnRelayMsg: catch-all for client messages without a handleClient handler. */
  onRelay(fn: RelayHandler): void {
    this.relay.onRelay(fn);
  }

  /** Handles client command `cmd` (as the node sees it: cmd % cmdOffset). Returning a Payload answers a client request. */
  handleClient(cmd: number, handler: ClientHandler): void {
    this.relay.handleClient(cmd, handler);
  }

  /** The seed's SendClientMsgByRelay: to the account's client through its gateway. */
  sendToClient(account: string, cmd: number, payload: Payload): boolean {
    return this.relay.sendToClient(account, cmd, payload);
  }

  /** To every client on every gateway; returns the number of gateways sent to. */
  broadcastToClients(cmd: number, payload: Payload): number {
    return this.relay.broadcastToClients(cmd, payload);
  }

  /** node -> gateway -> one node of `type` (or all with broadcast), for nodes without a direct link. */
  relayToType(type: number, cmd: number, payload: Payload, opts?: { broadcast?: boolean; excludeSelf?: boolean }): boolean {
    return this.relay.relayToType(type, cmd, payload, opts);
  }

  /** node -> gateway -> node by id. */
  relayToId(id: string, cmd: number, payload: Payload): boolean {
    return this.relay.relayToId(id, cmd, payload);
  }

  /** The account's gateway, if this node knows it. */
  gatewayOf(account: string): string | undefined {
    return this.relay.gatewayOf(account);
  }

  /** Accounts allocated to this node (arrived and not lost). */
  accounts(): string[] {
    return this.relay.accounts();
  }

  /** The export hook of account handoff: a draining node hands each bound account's state to its successor. */
  onAccountExport(fn: AccountExporter): void {
    this.handoff.setExporter(fn);
  }

  /** The import hook of account handoff: runs before the handed-off account's first message. */
  onAccountImport(fn: AccountImporter): void {
    this.handoff.setImporter(fn);
  }

  // ================================================================ handlers

  /** Handles user command `cmd`; the facade decodes typed messages before this handler. */
  handle(cmd: number, handler: RawHandler): void {
    checkUserCmd(cmd);
    if (this.handlers.has(cmd)) throw new XError('CONFIG', `a handler for command ${cmd} is already registered`);
    this.handlers.set(cmd, handler);
  }

  /** Removes the handler of `cmd`. */
  unhandle(cmd: number): void {
    this.handlers.delete(cmd);
  }

  /** For framework roles (relay): frames with system commands. */
  handleSystem(cmd: number, handler: SystemFrameHandler): void {
    if (!isSystemCmd(cmd)) throw new XError('CONFIG', `${cmd} is not a system command`);
    this.systemHandlers.set(cmd, handler);
  }

  /**
   * Sends a frame with a system command to a peer (framework roles only). `onDropped` runs if the
   * frame was buffered for a link that never came up because the peer left.
   */
  sendSystem(id: string, cmd: number, body: Uint8Array, onDropped?: (e: XError) => void): boolean {
    if (!this.membership.has(id) && !this.links.has(id)) return false;
    return this.linkTo(id).send(cmd, body, 0, 0, onDropped);
  }

  requestSystem(id: string, cmd: number, body: Uint8Array, timeoutMs: number): Promise<Frame> {
    if (!this.membership.has(id) && !this.links.has(id)) return Promise.reject(new XError('NO_TARGET', `node ${id} is not listed`));
    return this.linkTo(id).request(cmd, body, timeoutMs);
  }

  /** Opens (or keeps) the direct link to a listed peer without sending anything. */
  connect(id: string): void {
    if (id !== this.id && this.membership.has(id)) this.linkTo(id).ensure();
  }

  isLinked(id: string): boolean {
    return this.links.get(id)?.isOpen ?? false;
  }

  // ================================================================ internals: sending

  private sendBytes(id: string, cmd: number, body: Uint8Array): boolean {
    checkUserCmd(cmd);
    if (id === this.id) {
      queueMicrotask(() => this.deliverLocal(cmd, body));
      this.count.sent++;
      return true;
    }
    if (!this.membership.has(id)) return false;
    const pl = this.links.get(id) ?? this.linkTo(id);
    const ok = pl.send(cmd, body);
    if (ok) this.count.sent++;
    else this.m.dropped.inc({ type: String(this.type), where: pl.isOpen ? 'outbound' : 'pending' });
    return ok;
  }

  private linkTo(id: string): PeerLink {
    let pl = this.links.get(id);
    if (!pl) {
      pl = new PeerLink(id, this.peerLinkHost, {
        maxMessages: this.cfg.node.pendingMaxMessages,
        maxBytes: this.cfg.node.pendingMaxBytes,
        maxAgeMs: this.cfg.node.pendingMaxAgeMs,
        dialMinBackoffMs: this.cfg.node.dialMinBackoffMs,
        dialMaxBackoffMs: this.cfg.node.dialMaxBackoffMs,
      });
      this.links.set(id, pl);
    }
    return pl;
  }

  private openLinks(): number {
    let n = 0;
    for (const l of this.links.values()) if (l.isOpen) n++;
    return n;
  }

  private admitPeer(remote: LinkIdentity): XError | null {
    if (this.stopping) return new XError('SHUTTING_DOWN', 'node is stopping');
    if (remote.type === NodeType.MGR) return new XError('WRONG_TARGET', 'mgr does not dial nodes');
    // A listed member's id can only be used by the process holding its key: an impostor with the
    // secret cannot replace that member's link.
    const listed = this.membership.get(remote.id);
    if (listed && listed.publicKey.length > 0 && !sameKey(listed.publicKey, remote.publicKey)) {
      return new XError('FORBIDDEN', `id ${remote.id} belongs to a member with another identity key`);
    }
    // Tools (type 0) may connect for diagnostics; peers go through the duplicate rule.
    return this.links.get(remote.id)?.admitInbound() ?? null;
  }

  /** True when `remote` is a listed member of its claimed type, with the key it registered. */
  /** A listed member, or one that left gracefully and may still send what it had (see `leaving`). */
  private isListedAs(remote: LinkIdentity): boolean {
    const i = this.membership.get(remote.id) ?? this.leaving.get(remote.id)?.info;
    return i !== undefined && i.type === remote.type && (i.publicKey.length === 0 || sameKey(i.publicKey, remote.publicKey));
  }

  private onInbound(link: Link): void {
    this.linkTo(link.remote.id).adoptInbound(link);
  }

  // ================================================================ internals: receiving

  private onPeerFrame(f: Frame, link: Link): void {
    this.peerFramesIn++;
    this.gate.receive(f, link);
  }

  /** A user frame from a listed member (the gate holds and refuses those from anyone else). */
  private onUserFrame(f: Frame, link: Link): void {
    this.count.received++;
    this.invoke(f.cmd, f.body, new LinkContext(this, link, f));
  }

  /** A framework frame the authorization table let through. */
  private onSystemFrame(f: Frame, link: Link): void {
    const h = this.systemHandlers.get(f.cmd);
    if (h) h(f, link);
    else if (f.flags & Flags.REQUEST) link.replyError(f, new XError('UNKNOWN_COMMAND', `system command 0x${f.cmd.toString(16)} not handled here`));
  }

  private invoke(cmd: number, body: Uint8Array, ctx: MessageContext): void {
    const h = this.handlers.get(cmd);
    if (!h) {
      this.count.unhandled++;
      if (ctx.isRequest) ctx.replyError(new XError('NO_HANDLER', `node ${this.name} has no handler for command ${cmd}`));
      else this.log.debug({ cmd, from: ctx.fromId }, 'no handler for command');
      return;
    }
    try {
      const r: HandlerResult = h(body, ctx);
      if (r instanceof Promise) {
        this.handlersRunning++;
        r.then((v) => {
          if (ctx.isRequest) ctx.reply(v ?? undefined);
        })
          .catch((e: unknown) => this.handlerFailed(cmd, e, ctx))
          .finally(() => this.handlersRunning--);
      } else if (ctx.isRequest && r !== undefined) {
        ctx.reply(r);
      }
      // A sync handler that returned nothing may reply later via ctx.reply().
    } catch (e) {
      this.handlerFailed(cmd, e, ctx);
    }
  }

  private handlerFailed(cmd: number, e: unknown, ctx: MessageContext): void {
    const err = e instanceof XError ? e : new XError('HANDLER_ERROR', `handler of command ${cmd} failed: ${(e as Error)?.message ?? String(e)}`);
    if (!(e instanceof XError)) this.log.error({ err: e, cmd }, 'message handler threw');
    ctx.replyError(err);
  }

  private dispatchRelayed(cmd: number, body: Uint8Array, fromId: string, fromType: number): boolean {
    if (!this.handlers.has(cmd)) return false;
    this.invoke(cmd, body, new OneWayContext(this, cmd, fromId, fromType));
    return true;
  }

  private deliverLocal(cmd: number, body: Uint8Array): void {
    this.invoke(cmd, body, new OneWayContext(this, cmd, this.id, this.type));
  }

  private requestLocal(cmd: number, body: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new XError('TIMEOUT', `local request ${cmd} timed out after ${timeoutMs} ms`)), timeoutMs);
      queueMicrotask(() =>
        this.invoke(cmd, body, {
          cmd,
          fromId: this.id,
          fromType: this.type,
          from: this.get(this.id),
          isRequest: true,
          reply: (p) => {
            clearTimeout(t);
            resolve(toBytes(p));
          },
          replyError: (e) => {
            clearTimeout(t);
            reject(e);
          },
        }),
      );
    });
  }

  // ================================================================ internals: membership

  private peerOf(info: NodeInfo): Peer {
    let p = this.peers.get(info.id);
    if (!p) {
      p = new Peer(this.peerHost, info);
      this.peers.set(info.id, p);
    }
    return p;
  }

  private readonly peerHost = {
    infoOf: (id: string) => this.membership.get(id),
    sendById: (id: string, cmd: number, payload: Payload) => this.sendById(id, cmd, payload),
    request: (id: string, cmd: number, payload: Payload, opts?: RequestOptions) => this.request(id, cmd, payload, opts),
  };

  private applySnapshot(s: Snapshot): void {
    this.applyPolicies(s.policies);
    const diff = this.membership.reconcile(s.members, s.provisional);
    for (const i of diff.left) this.dropPeer(i, 'timeout');
    for (const i of diff.joined) if (i.id !== this.id) this.peerJoined(i);
    for (const i of diff.updated) if (i.id !== this.id) this.emit('updated', this.peerOf(i));
    this.m.peers.set(this.membership.size);
  }

  private applyJoined(info: NodeInfo): void {
    const r = this.membership.upsert(info);
    this.m.peers.set(this.membership.size);
    if (info.id === this.id) return;
    if (r === 'added') this.peerJoined(info);
    else if (r === 'updated') this.emit('updated', this.peerOf(info));
  }

  private applyLeft(id: string, reason: LeaveReason): void {
    const info = this.membership.remove(id);
    this.m.peers.set(this.membership.size);
    if (!info) return;
    this.dropPeer(info, reason === LeaveReason.GRACEFUL ? 'graceful' : reason === LeaveReason.TIMEOUT ? 'timeout' : 'lost');
  }

  private peerJoined(info: NodeInfo): void {
    this.gate.memberJoined(info.id);
    const peer = this.peerOf(info);
    this.relay.onPeerJoined(peer);
    this.emit('joined', peer);
  }

  private dropPeer(info: NodeInfo, reason: LeftReason): void {
    const pl = this.links.get(info.id);
    if (pl) {
      this.links.delete(info.id);
      if (reason === 'graceful' && pl.isOpen && !this.stopping) {
        const timer = setTimeout(() => this.closeLeaving(info.id), this.cfg.node.shutdownDrainMs + LEAVE_QUIET_MS);
        timer.unref();
        this.leaving.set(info.id, { pl, info, timer });
      } else {
        pl.close(new XError('NO_TARGET', `node ${info.id} left (${reason})`));
        this.notifyLinkGone(info.id);
      }
      this.m.links.set(this.openLinks());
    } else {
      this.notifyLinkGone(info.id);
    }
    const peer = this.peerOf(info);
    this.peers.delete(info.id);
    this.relay.onPeerLeft(peer);
    if (info.id !== this.id) this.emit('left', peer, reason);
  }

  private applyUpdated(id: string, overload: number[], version: string, draining: boolean): void {
    const info = this.membership.update(id, overload, version, draining);
    if (info && id !== this.id) this.emit('updated', this.peerOf(info));
  }

  private onMgrConnected(lease: LeaseRecord): void {
    if (this.fenceTimer) clearTimeout(this.fenceTimer);
    this.fenceTimer = null;
    if (this.fenced) {
      this.fenced = false;
      this.log.info('registered again after the fence: peers are listed from the new snapshot');
    }
    this.m.mgrConnected.set(1);
    this.resolveRegistered();
    // Changes made while away are in the registration info already.
    this.emit('mgr-connected', { instanceId: lease.instanceId, epoch: lease.epoch, addr: lease.addr, port: lease.port });
  }

  private onMgrLost(reason: string): void {
    this.m.mgrConnected.set(0);
    if (!this.fenceTimer && !this.stopping) this.armFence(this.cfg.node.mgrLostFenceMs);
    this.emit('mgr-lost', reason);
  }

  private armFence(ms: number): void {
    this.fenceTimer = setTimeout(() => void this.checkFence(), ms);
    this.fenceTimer.unref();
  }

  /**
   * node.mgrLostFenceMs without the mgr. If an mgr holds the lease, it is alive and this node is
   * cut off from it: it has been evicted, so fence. With no lease (no mgr runs) or no store, nobody
   * is evicting anyone (a new mgr gives returning members mgr.settleGraceMs): keep the peers, as
   * during a failover, and look again a quarter of the fence time later.
   */
  private async checkFence(): Promise<void> {
    this.fenceTimer = null;
    if (this.stopping || this.mgrClient.connected || this.fenced) return;
    let held = false;
    try {
      held = (await this.leases.readLease()) !== null;
    } catch {
      held = false;
    }
    if (this.stopping || this.mgrClient.connected || this.fenceTimer) return;
    if (held) this.fence();
    else this.armFence(Math.max(50, Math.floor(this.cfg.node.mgrLostFenceMs / 4)));
  }

  /**
   * Without the mgr for node.mgrLostFenceMs while an mgr holds the lease: the mgr has evicted this
   * node by now (its heartbeat timeout is far shorter) and its peers no longer serve it, so it stops
   * acting as a member: every
   * peer leaves (reason lost), links close, sends find no target and inbound frames from peers are
   * refused as unlisted until the mgr's snapshot lists them again after the next registration.
   */
  private fence(): void {
    this.fenced = true;
    this.m.fenced.inc();
    const peers = this.membership.all().filter((i) => i.id !== this.id);
    this.log.warn(
      { peers: peers.length, fenceMs: this.cfg.node.mgrLostFenceMs },
      'no mgr for node.mgrLostFenceMs: this node counts as evicted; dropping every peer until registered again',
    );
    for (const i of peers) {
      this.membership.remove(i.id);
      this.dropPeer(i, 'lost');
    }
    // Links from peers that are not listed any more (inbound ones included) close too.
    for (const [id, pl] of this.links) {
      pl.close(new XError('NO_TARGET', `node ${id} is not listed (fenced)`));
      this.links.delete(id);
    }
    this.m.links.set(this.openLinks());
    this.m.peers.set(this.membership.size);
  }

  /** True between the fence and the next registration (see fence()). */
  get isFenced(): boolean {
    return this.fenced;
  }

  private scheduleUpdate(now = false): void {
    // Keep our own row current for local readers.
    this.membership.update(this.id, [...this.overloads], this.version, this.isDraining);
    if (now && this.updateTimer) {
      clearTimeout(this.updateTimer);
      this.updateTimer = null;
    }
    if (this.updateTimer) return;
    const wait = now ? 0 : Math.max(0, this.lastUpdateAt + this.cfg.node.updateIntervalMs - performance.now());
    this.updateTimer = setTimeout(() => {
      this.updateTimer = null;
      this.lastUpdateAt = performance.now();
      this.mgrClient.sendUpdate([...this.overloads], this.version, this.isDraining);
    }, wait);
    this.updateTimer.unref();
  }

  /** True once drain() was called: the mgr lists this node as draining, selection skips it. */
  get draining(): boolean {
    return this.isDraining;
  }

  /**
   * Stops taking new work: the mgr marks this member draining (every peer sees it as `updated`),
   * login allocation and one()/sendOne() skip it; what is bound to it carries on. The role decides
   * when its bound work is done (see roles.ts); stop() ends it.
   */
  startDraining(): void {
    if (this.isDraining) return;
    this.isDraining = true;
    this.log.info('draining: no new work; bound work continues');
    this.scheduleUpdate(true);
    // With an export hook, bound accounts move to other nodes of the type (handoff.ts).
    this.handoff.startDraining();
  }

  /** The gateway reports its client traffic instead of this node's peer messages. */
  setStatsOverride(fn: StatsOverride): void {
    this.statsOverride = fn;
  }

  private statsFigures(): StatsFigures {
    const linked: string[] = [];
    let open = 0;
    for (const [id, l] of this.links) {
      if (!l.isOpen) continue;
      open++;
      if (linked.length < this.cfg.dashboard.reportLinksMax) linked.push(id);
    }
    // Latency: the client requests this node answered (a gateway reports the round trip instead).
    const own = {
      connections: 0,
      messagesIn: this.count.received,
      messagesOut: this.count.sent,
      latency: this.relay.latency.take(),
      accountsLost: 0,
    };
    return { ...own, ...this.statsOverride?.(), peers: this.membership.size, linked, links: open };
  }

  /** JSON view for /api/self. */
  selfJson(): Record<string, unknown> {
    return { ...infoToJson(this.info()), mgrConnected: this.mgrConnected, mgr: this.mgrClient.mgr };
  }

  /** JSON view for /api/peers: this node's own view of the membership. */
  peersJson(): Record<string, unknown>[] {
    return this.membership.all().map((i) => ({ ...infoToJson(i), linked: this.isLinked(i.id) }));
  }
}

function checkUserCmd(cmd: number): void {
  if (!Number.isInteger(cmd) || cmd < 0 || cmd >= SYSTEM_CMD_BASE) {
    throw new XError('BAD_REQUEST', `command must be an integer in 0..${SYSTEM_CMD_BASE - 1}, got ${cmd}`);
  }
}

function samePolicy(a: RoutingPolicy | undefined, b: RoutingPolicy): boolean {
  return (
    a !== undefined &&
    a.version === b.version &&
    a.basisPoints === b.basisPoints &&
    a.setAt === b.setAt &&
    a.accounts.join('\0') === b.accounts.join('\0')
  );
}

export function nameOfType(types: Record<string, number>, type: number): string {
  for (const [name, t] of Object.entries(types)) if (t === type) return name;
  return ['client', 'mgr', 'login', 'gateway'][type] ?? `type${type}`;
}

/**
 * Context of a message that arrived on a link; `from` and the reply state cost nothing until used.
 * The link, the frame and the runtime are ES private fields: a user handler gets the context,
 * never the link (it could send system commands on it).
 */
class LinkContext implements MessageContext {
  readonly #rt: NodeRuntime;
  readonly #link: Link;
  readonly #frame: Frame;
  #replied = false;

  constructor(rt: NodeRuntime, link: Link, frame: Frame) {
    this.#rt = rt;
    this.#link = link;
    this.#frame = frame;
  }

  get cmd(): number {
    return this.#frame.cmd;
  }

  get fromId(): string {
    return this.#link.remote.id;
  }

  get fromType(): number {
    return this.#link.remote.type;
  }

  get from(): Peer | undefined {
    return this.#rt.get(this.#link.remote.id);
  }

  get isRequest(): boolean {
    return (this.#frame.flags & Flags.REQUEST) !== 0;
  }

  reply(p?: Payload): void {
    if (!this.isRequest || this.#replied) return;
    this.#replied = true;
    this.#link.reply(this.#frame, toBytes(p));
  }

  replyError(e: XError): void {
    if (!this.isRequest || this.#replied) return;
    this.#replied = true;
    this.#link.replyError(this.#frame, e);
  }
}

/** Context of a message nobody awaits a reply to (local delivery, node relay). */
class OneWayContext implements MessageContext {
  readonly isRequest = false;
  readonly #rt: NodeRuntime;

  constructor(
    rt: NodeRuntime,
    readonly cmd: number,
    readonly fromId: string,
    readonly fromType: number,
  ) {
    this.#rt = rt;
  }

  get from(): Peer | undefined {
    return this.#rt.get(this.fromId);
  }

  reply(): void {}

  replyError(): void {}
}
