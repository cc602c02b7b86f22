/**
 * MgrServer: the discovery hub (SPEC §3). One process is active (holds the lease), others are
 * hot standbys that refuse registrations with NOT_ACTIVE until they take the lease over.
 *
 * Membership rules:
 * - REGISTER gets one SNAPSHOT; everyone else gets one JOINED.
 * - A re-registration with the same id replaces the old session; a session that closes late
 *   only removes itself, never its successor.
 * - LEFT carries graceful / lost / timeout.
 * - The membership is mirrored in the store. A new active mgr loads the mirror and, for
 *   `settleGraceMs`, treats those members as present (no JOINED when they come back, snapshots
 *   marked provisional); members that did not come back are then removed with LEFT(timeout) and
 *   every node that saw a provisional snapshot gets a settled one.
 * - The canary routing policies (one per service type, `xserver canary`) are kept in the store
 *   beside the mirror, written before they are applied; a new active mgr loads them with the
 *   mirror, so a takeover serves the same policies. Members get them in every SNAPSHOT and, after
 *   a change, in ROUTING_POLICIES (the whole table).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { create, toBinary, fromBinary } from '@bufbuild/protobuf';
import {
  LeaveReason,
  LeftSchema,
  NodeInfoSchema,
  RegisterSchema,
  StatusReplySchema,
  UpdatedSchema,
  type MgrInfo,
  type NodeInfo,
  DrainReplySchema,
  DrainRequestSchema,
  CanaryTypeRequestSchema,
  RoutingPoliciesSchema,
  RoutingPolicySchema,
  VersionCountsSchema,
  type RoutingPolicy,
  type VersionCount,
  DashboardReplySchema,
  DashboardRequestSchema,
  StatsReportSchema,
  type StatusReply,
} from '../gen/xserver/v1/cluster_pb.js';
import { describePolicy, policyProblem } from '../protocol/routing-policy.js';
import { XError } from '../errors.js';
import { type Link, LinkListener } from '../link/link.js';
import { linkOptions, NodeType, type RoleContext } from '../context.js';
import { decode, encode } from '../wire/codec.js';
import { Cmd } from '../protocol/commands.js';
import type { Frame } from '../protocol/frame.js';
import type { LeaseRecord, LeaseStore, MirrorStore } from '../store/store.js';
import { encodeJoined, encodeJoinedBatch, encodeSnapshot } from './snapshot.js';
import { MgrLease } from './lease.js';
import { sameKey } from '../link/identity.js';
import { AddressChecker } from './address-check.js';
import { advertisedAddresses } from '../config/addresses.js';
import { ClusterHistory } from './history.js';
import { DashboardViews, dashboardJson } from './dashboard.js';

interface Session {
  info: NodeInfo;
  link: Link;
  /** Saw a provisional snapshot and needs the settled one. */
  provisional: boolean;
  lastUpdateAt: number;
  updateTimer: NodeJS.Timeout | null;
  /** Registration order: the JOINED of members registered after it are news to it (see pendingJoins). */
  seq: number;
  /** `info` encoded, for snapshots and the mirror; dropped when the info changes. */
  infoBytes?: Uint8Array;
  /** Its REGISTER said it reads JOINED_BATCH. */
  batches: boolean;
}

/** mgr.joinBatchMs is the batch window per this many members. */
const JOIN_BATCH_MEMBERS = 100;

/** A JOINED waiting in the batch: for the sessions registered before `seq`, except the member itself. */
interface PendingJoin {
  id: string;
  seq: number;
  /** Joined {info}: also one entry of a JoinedBatch (the same field 1). */
  body: Uint8Array;
}

/** A JOINED_BATCH frame carries at most this many bytes of members (far below link.maxFrame's floor). */
const JOINED_BATCH_BYTES = 256 * 1024;

/** activating: holds the lease, still loading the previous membership (refuses registrations). */
export type MgrState = 'standby' | 'activating' | 'active' | 'stopped';

export class MgrServer {
  readonly instanceId = randomUUID();
  private readonly log: Logger;
  private readonly listener: LinkListener;
  private lease!: MgrLease;
  private state: MgrState = 'standby';
  private port = 0;
  private epoch = 0;
  private readonly sessions = new Map<string, Session>();
  /** Members mirrored by the previous mgr that have not re-registered yet (settling only). */
  private readonly pendingMembers = new Map<string, NodeInfo>();
  private settleTimer: NodeJS.Timeout | null = null;
  /** Registrations so far (Session.seq). */
  private registrations = 0;
  /**
   * JOINED fan-out in a join storm: the first JOINED goes out at once and opens a window of
   * mgr.joinBatchMs per 100 members; those of the window go out together at its end (one write per member link
   * instead of one per JOINED), and every other broadcast first sends what is waiting, so order
   * is kept.
   */
  private pendingJoins: PendingJoin[] = [];
  private joinTimer: NodeJS.Timeout | null = null;
  private settling = false;
  /** Tool links (xserver status) that are not members. */
  private readonly tools = new Set<Link>();
  /** Dial-backs of advertised addresses: their results, and the registrations waiting on one. */
  private readonly addresses: AddressChecker;
  private readonly checking = new Set<string>();
  /** Where members dial this mgr (innerIp, or derived from bindHost); the lease carries it. */
  private readonly addr: string;
  /** The mgr uses the store for its lease, the membership mirror and the routing policies only. */
  private readonly store: LeaseStore & MirrorStore;
  /** Canary routing policy per service type; loaded from the store at takeover, written there first. */
  private readonly policies = new Map<number, RoutingPolicy>();
  private readonly m;
  /** The dashboard's samples and timeline (kept while active). */
  readonly history: ClusterHistory;
  /** The dashboard's data: this mgr's when active, the active mgr's (asked over a link) when not. */
  readonly dashboard: DashboardViews;

  constructor(private readonly ctx: RoleContext) {
    this.store = ctx.store;
    this.log = ctx.logger.child({ role: 'mgr' });
    this.addr = advertisedAddresses(ctx.config).inner;
    const linkOpts = linkOptions(ctx.config, this.log);
    this.listener = new LinkListener(
      { type: NodeType.MGR, id: this.instanceId },
      linkOpts,
      (remote) => this.admit(remote),
      (link) => this.onLink(link),
    );
    this.addresses = new AddressChecker({
      enabled: ctx.config.mgr.checkAdvertised,
      timeoutMs: ctx.config.mgr.advertiseCheckTimeoutMs,
      self: { type: NodeType.MGR, id: this.instanceId },
      link: linkOpts,
    });
    this.m = {
      members: ctx.metrics.gauge('mgr_members', 'Registered nodes known to this mgr'),
      active: ctx.metrics.gauge('mgr_active', '1 while this mgr holds the lease'),
      events: ctx.metrics.counter('mgr_membership_events_total', 'JOINED/LEFT/UPDATED broadcasts', ['event', 'reason']),
      takeovers: ctx.metrics.counter('mgr_takeovers_total', 'Times this process became the active mgr'),
    };
    const d = ctx.config.dashboard;
    this.history = new ClusterHistory(
      { sampleIntervalMs: d.sampleIntervalMs, samples: d.samples, memberSamples: d.memberSamples, events: d.events },
      () => this.memberInfos().map((i) => ({ id: i.id, type: i.type, load: i.overload[0] ?? 0 })),
    );
    this.dashboard = new DashboardViews(
      {
        instanceId: this.instanceId,
        state: () => this.state,
        adminPort: ctx.config.adminPort,
        statusReply: () => this.statusReply(),
        history: this.history,
      },
      ctx.store,
      linkOpts,
      { timeoutMs: d.relayTimeoutMs, idleMs: d.relayIdleMs, sampleIntervalMs: d.sampleIntervalMs, membersMax: d.overviewMembersMax },
      this.log,
    );
  }

  get isActive(): boolean {
    return this.state === 'active';
  }

  /** A standby watching the lease, ready to take over. */
  get isStandby(): boolean {
    return this.state === 'standby';
  }

  get listenPort(): number {
    return this.port;
  }

  get currentEpoch(): number {
    return this.epoch;
  }

  get isSettling(): boolean {
    return this.settling;
  }

  async start(): Promise<void> {
    const cfg = this.ctx.config;
    this.port = await this.listener.listen(cfg.mgr.port, cfg.bindHost);
    this.lease = new MgrLease(
      this.store,
      { instanceId: this.instanceId, addr: this.addr, port: this.port, adminPort: cfg.adminPort || undefined },
      { ttlMs: cfg.mgr.leaseTtlMs, refreshMs: cfg.mgr.leaseRefreshMs, standbyPollMs: cfg.mgr.standbyPollMs },
      { onActive: (rec) => void this.becomeActive(rec), onLost: (why) => this.stepDown(why) },
      this.log,
    );
    this.lease.start();
    this.log.info({ port: this.port, instanceId: this.instanceId }, 'mgr started (standby until it holds the lease)');
  }

  /** Graceful stop: release the lease so a standby takes over at once; nodes re-register there. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.history.stop();
    this.dashboard.close();
    await this.lease?.stop();
    this.clearSettle();
    this.clearJoins();
    for (const s of this.sessions.values()) {
      if (s.updateTimer) clearTimeout(s.updateTimer);
      s.link.close(new XError('SHUTTING_DOWN', 'mgr is stopping'));
    }
    this.sessions.clear();
    for (const t of this.tools) t.close();
    await this.listener.close();
    this.m.active.set(0);
    this.log.info('mgr stopped');
  }

  /** The cluster as this mgr sees it (status command, admin API). */
  status(): { mgr: MgrInfo & { state: MgrState; settling: boolean }; members: NodeInfo[] } {
    return {
      mgr: { ...this.mgrInfo(), state: this.state, settling: this.settling },
      members: this.memberInfos(),
    };
  }

  private mgrInfo(): MgrInfo {
    return {
      $typeName: 'xserver.v1.MgrInfo',
      instanceId: this.instanceId,
      epoch: BigInt(this.epoch),
      addr: this.addr,
      port: this.port,
    };
  }

  private memberInfos(): NodeInfo[] {
    const out: NodeInfo[] = [];
    for (const s of this.sessions.values()) out.push(s.info);
    for (const p of this.pendingMembers.values()) out.push(p);
    return out;
  }

  // ------------------------------------------------------------ lease transitions

  private async becomeActive(rec: LeaseRecord): Promise<void> {
    if (this.state === 'stopped') return;
    // Registrations wait (NOT_ACTIVE, nodes retry) until the previous membership is loaded:
    // otherwise an early registrant would get a settled snapshot missing live members.
    this.state = 'activating';
    this.epoch = rec.epoch;
    // Members of the previous mgr get a grace period to re-register.
    let mirror = new Map<string, Uint8Array>();
    try {
      mirror = await this.store.mirrorLoad();
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'could not load the membership mirror; starting empty');
    }
    this.policies.clear();
    try {
      for (const [type, bytes] of await this.store.policyLoad()) this.policies.set(type, fromBinary(RoutingPolicySchema, bytes));
    } catch (e) {
      // Serving none ends every canary (the cohorts go to the other versions): say so loudly.
      this.log.error({ err: (e as Error).message }, 'could not load the canary routing policies; serving none until `xserver canary set`');
    }
    this.pendingMembers.clear();
    for (const [id, bytes] of mirror) {
      if (this.sessions.has(id)) continue;
      try {
        this.pendingMembers.set(id, fromBinary(NodeInfoSchema, bytes));
      } catch {
        this.log.warn({ id }, 'skipping an unreadable mirror entry');
      }
    }
    if (this.state !== 'activating') return; // lost the lease (or stopped) while loading
    this.state = 'active';
    this.m.active.set(1);
    this.m.takeovers.inc();
    this.history.event({ kind: 'takeover', detail: `epoch ${rec.epoch}, ${this.pendingMembers.size} member(s) mirrored` });
    this.history.start();
    this.settling = true;
    this.settleTimer = setTimeout(() => this.settle(), this.ctx.config.mgr.settleGraceMs);
    this.settleTimer.unref();
    await this.store.announceLease(rec).catch((e: Error) => this.log.warn({ err: e.message }, 'could not announce the takeover'));
    this.log.info({ epoch: rec.epoch, port: this.port, mirrored: this.pendingMembers.size, policies: this.policies.size }, 'mgr is ACTIVE');
  }

  private stepDown(reason: string): void {
    if (this.state !== 'active' && this.state !== 'activating') return;
    this.state = 'standby';
    this.m.active.set(0);
    this.history.stop();
    this.clearSettle();
    this.pendingMembers.clear();
    this.policies.clear();
    this.log.warn({ reason }, 'mgr lost the lease: stepping down to standby');
    const sessions = [...this.sessions.values()];
    this.clearJoins();
    this.sessions.clear();
    this.addresses.clear();
    this.m.members.set(0);
    for (const s of sessions) {
      if (s.updateTimer) clearTimeout(s.updateTimer);
      s.link.close(new XError('NOT_ACTIVE', `mgr stepped down: ${reason}`));
    }
  }

  private clearSettle(): void {
    if (this.settleTimer) clearTimeout(this.settleTimer);
    this.settleTimer = null;
    this.settling = false;
  }

  private settle(): void {
    this.settleTimer = null;
    if (this.state !== 'active') return;
    this.settling = false;
    const gone = [...this.pendingMembers.values()];
    this.pendingMembers.clear();
    for (const info of gone) {
      this.broadcastLeft(info.id, LeaveReason.TIMEOUT);
      this.noteLeft(info, LeaveReason.TIMEOUT);
    }
    this.flushJoins();
    const snapshot = this.snapshotBytes(false);
    for (const s of this.sessions.values()) {
      if (s.provisional) {
        s.provisional = false;
        s.link.send(Cmd.SNAPSHOT, snapshot);
      }
    }
    const members = new Map<string, Uint8Array>();
    for (const s of this.sessions.values()) members.set(s.info.id, this.infoBytesOf(s));
    void this.store.mirrorReplace(this.instanceId, members).catch((e: Error) => this.log.warn({ err: e.message }, 'mirror write failed'));
    this.log.info({ members: this.sessions.size, removed: gone.length }, 'mgr settled');
  }

  // ------------------------------------------------------------ links

  private admit(remote: { type: number; id: string }): XError | null {
    if (this.state !== 'active' || !this.lease.isValid()) return new XError('NOT_ACTIVE', 'this mgr is a standby');
    if (remote.type === NodeType.MGR) return new XError('WRONG_TARGET', 'an mgr cannot register with an mgr');
    return null;
  }

  private onLink(link: Link): void {
    // Members must REGISTER; tools (type 0) may only ask for STATUS.
    link.onFrame = (f) => this.onFrame(link, f);
    link.onClose = (err) => this.onLinkClosed(link, err);
    if (link.remote.type === NodeType.CLIENT) this.tools.add(link);
  }

  private onFrame(link: Link, f: Frame): void {
    try {
      switch (f.cmd) {
        case Cmd.REGISTER:
          return this.onRegister(link, f);
        case Cmd.UPDATED:
          return this.onUpdated(link, f);
        case Cmd.LEAVE:
          return this.onLeave(link, f);
        case Cmd.DRAIN:
          return this.onDrain(link, f);
        case Cmd.STATUS:
          return this.answer(link, f, () => this.statusReplyWithCounts());
        case Cmd.CANARY_SET:
          return this.answer(link, f, () => this.onCanarySet(link, f));
        case Cmd.CANARY_ROLLBACK:
          return this.answer(link, f, () => this.onCanaryRollback(link, f));
        case Cmd.CANARY_CLEAR:
          return this.answer(link, f, () => this.onCanaryClear(link, f));
        case Cmd.STATS:
          return this.onStats(link, f);
        case Cmd.DASHBOARD:
          return this.onDashboard(link, f);
        default:
          throw new XError('UNKNOWN_COMMAND', `mgr does not handle command 0x${f.cmd.toString(16)}`);
      }
    } catch (e) {
      const err = e instanceof XError ? e : new XError('INTERNAL', String(e));
      this.log.warn({ code: err.code, peer: link.describe() }, err.message);
      if (f.rid) link.replyError(f, err);
    }
  }

  /** Runs an async request handler; its failure is answered as an error like a synchronous one. */
  private answer(link: Link, f: Frame, run: () => Promise<Uint8Array>): void {
    run().then(
      (body) => link.reply(f, body),
      (e: unknown) => {
        const err = e instanceof XError ? e : new XError('INTERNAL', String(e));
        this.log.warn({ code: err.code, peer: link.describe() }, err.message);
        link.replyError(f, err);
      },
    );
  }

  /** STATUS: what the dashboard shows, plus the accounts per version counted by the gateways. */
  private async statusReplyWithCounts(): Promise<Uint8Array> {
    const { counts, gateways } = await this.countAccounts();
    return encode(StatusReplySchema, { ...this.statusReply(), accounts: counts, gatewaysCounted: gateways });
  }

  /**
   * Accounts per service type and version, summed over what each gateway's sessions are allocated
   * to (VERSION_COUNTS). One request per gateway per `xserver status`, nothing kept between
   * calls; a gateway that does not answer within mgr.accountCountTimeoutMs is left out.
   */
  private async countAccounts(): Promise<{ counts: VersionCount[]; gateways: number }> {
    const gateways = [...this.sessions.values()].filter((s) => s.info.type === NodeType.GATEWAY);
    const timeoutMs = this.ctx.config.mgr.accountCountTimeoutMs;
    const answers = await Promise.allSettled(
      gateways.map(async (g) => decode(VersionCountsSchema, (await g.link.request(Cmd.VERSION_COUNTS, new Uint8Array(0), timeoutMs)).body)),
    );
    const sum = new Map<string, VersionCount>();
    let answered = 0;
    for (const a of answers) {
      if (a.status !== 'fulfilled') continue;
      answered++;
      for (const c of a.value.counts) {
        const k = `${c.type}\0${c.version}`;
        const had = sum.get(k);
        if (had) had.accounts += c.accounts;
        else sum.set(k, { ...c });
      }
    }
    const counts = [...sum.values()].sort((a, b) => a.type - b.type || a.version.localeCompare(b.version));
    return { counts, gateways: answered };
  }

  private policyList(): RoutingPolicy[] {
    return [...this.policies.values()].sort((a, b) => a.type - b.type);
  }

  /** Only tools (type 0, `xserver canary`) change the routing policies. */
  private checkTool(link: Link): void {
    if (!this.tools.has(link)) throw new XError('FORBIDDEN', 'only a tool link (xserver canary) may change routing policies');
    if (this.state !== 'active' || !this.lease.isValid()) throw new XError('NOT_ACTIVE', 'this mgr is a standby');
  }

  /** `xserver canary set`: validates, stores (fenced by the lease), then tells every member. */
  private async onCanarySet(link: Link, f: Frame): Promise<Uint8Array> {
    this.checkTool(link);
    const p = decode(RoutingPolicySchema, f.body);
    checkServiceType(p.type);
    const problem = policyProblem(p, { maxAccounts: this.ctx.config.mgr.canaryMaxAccounts }, NodeType.FIRST_SERVICE);
    if (problem) throw new XError('BAD_POLICY', problem);
    const max = this.ctx.config.mgr.canaryMaxPolicies;
    if (!this.policies.has(p.type) && this.policies.size >= max) {
      throw new XError('BAD_POLICY', `${max} types have a policy already (mgr.canaryMaxPolicies); clear one first (xserver canary clear)`);
    }
    const policy = create(RoutingPolicySchema, {
      type: p.type,
      version: p.version,
      basisPoints: p.basisPoints,
      accounts: [...new Set(p.accounts)],
      setAt: BigInt(Date.now()),
    });
    await this.storePolicy(p.type, policy);
    this.policies.set(p.type, policy);
    this.broadcastPolicies();
    this.log.info(
      { type: p.type, version: p.version, basisPoints: p.basisPoints, listed: policy.accounts.length },
      `canary policy set: type ${p.type} ${describePolicy(policy)}`,
    );
    return encode(RoutingPoliciesSchema, { policies: this.policyList() });
  }

  /**
   * `xserver canary rollback`: the type's canary version gets no new sessions (the cohort becomes
   * empty; the policy stays, so accounts whose allocation is on that version move off it at their
   * next login). Running sessions keep their nodes.
   */
  private async onCanaryRollback(link: Link, f: Frame): Promise<Uint8Array> {
    const old = this.policyOf(link, f);
    const policy = create(RoutingPolicySchema, { type: old.type, version: old.version, basisPoints: 0, accounts: [], setAt: BigInt(Date.now()) });
    await this.storePolicy(old.type, policy);
    this.policies.set(old.type, policy);
    this.broadcastPolicies();
    this.log.info({ type: old.type, version: old.version }, `canary of type ${old.type} rolled back: version ${old.version} gets no new sessions`);
    return encode(RoutingPoliciesSchema, { policies: this.policyList() });
  }

  /** `xserver canary clear`: removes the type's policy; new sessions go to any version again. */
  private async onCanaryClear(link: Link, f: Frame): Promise<Uint8Array> {
    const { type } = this.policyOf(link, f);
    await this.storePolicy(type, null);
    this.policies.delete(type);
    this.broadcastPolicies();
    this.log.info({ type }, `canary policy of type ${type} cleared`);
    return encode(RoutingPoliciesSchema, { policies: this.policyList() });
  }

  /** The policy a CANARY_ROLLBACK / CANARY_CLEAR names. */
  private policyOf(link: Link, f: Frame): RoutingPolicy {
    this.checkTool(link);
    const { type } = decode(CanaryTypeRequestSchema, f.body);
    checkServiceType(type);
    const p = this.policies.get(type);
    if (!p) {
      const have = [...this.policies.keys()];
      throw new XError('NO_POLICY', `type ${type} has no canary policy (policies: ${have.length ? have.join(', ') : 'none'})`);
    }
    return p;
  }

  private async storePolicy(type: number, policy: RoutingPolicy | null): Promise<void> {
    let ok: boolean;
    try {
      ok = await this.store.policyPut(this.instanceId, type, policy && toBinary(RoutingPolicySchema, policy));
    } catch (e) {
      throw new XError('STORE_UNAVAILABLE', `could not store the routing policy (${(e as Error).message}); nothing changed, try again`);
    }
    if (!ok) throw new XError('NOT_ACTIVE', 'this mgr no longer holds the lease; nothing changed, try again at the new active mgr');
  }

  private broadcastPolicies(): void {
    const body = encode(RoutingPoliciesSchema, { policies: this.policyList() });
    for (const s of this.sessions.values()) s.link.send(Cmd.ROUTING_POLICIES, body);
  }

  /** What STATUS answers (without the account counts); the dashboard shows it too. */
  private statusReply(): Omit<StatusReply, '$typeName' | 'accounts' | 'gatewaysCounted'> {
    return { mgr: this.mgrInfo(), members: this.memberInfos(), settling: this.settling, checks: this.addresses.all(), policies: this.policyList() };
  }

  /** A member's dashboard figures (StatsReport): into the history. */
  private onStats(link: Link, f: Frame): void {
    const s = this.sessionOf(link);
    if (!s || this.state !== 'active') return;
    const r = decode(StatsReportSchema, f.body);
    this.history.report(s.info, {
      connections: r.connections,
      messagesIn: Number(r.messagesIn),
      messagesOut: Number(r.messagesOut),
      latency: r.latency,
      accountsLost: Number(r.accountsLost),
      peers: r.peers,
      linked: r.linked,
      links: r.links,
    });
  }

  /** A standby mgr's dashboard asks for this (active) mgr's data. */
  private onDashboard(link: Link, f: Frame): void {
    if (this.state !== 'active') throw new XError('NOT_ACTIVE', 'this mgr is a standby; ask the one holding the lease');
    const { memberId } = decode(DashboardRequestSchema, f.body);
    link.reply(f, encode(DashboardReplySchema, { json: dashboardJson(this.dashboard.local(memberId)) }));
  }

  /** A member left (or did not come back after a takeover): on the dashboard's timeline. */
  private noteLeft(info: NodeInfo, reason: LeaveReason): void {
    this.history.forget(info.id);
    this.history.event({ kind: 'left', id: info.id, name: info.name, type: info.type, reason: leaveReasonName(reason) });
  }

  /** `xserver drain <id|name>`: tells each matching member to drain; answers with their ids. */
  private onDrain(link: Link, f: Frame): void {
    const { target } = decode(DrainRequestSchema, f.body);
    const ids: string[] = [];
    for (const s of this.sessions.values()) {
      if (s.info.id !== target && s.info.name !== target) continue;
      s.link.send(Cmd.DRAIN, new Uint8Array(0));
      ids.push(s.info.id);
      this.history.event({ kind: 'drain-requested', id: s.info.id, name: s.info.name, type: s.info.type });
    }
    if (ids.length === 0) throw new XError('NO_TARGET', `no member with id or name "${target}"`);
    this.log.info({ target, ids }, 'drain requested');
    link.reply(f, encode(DrainReplySchema, { ids }));
  }

  private onRegister(link: Link, f: Frame): void {
    if (this.state !== 'active') throw new XError('NOT_ACTIVE', 'this mgr is a standby');
    const { info, joinedBatches } = decode(RegisterSchema, f.body);
    if (!info) throw new XError('BAD_REQUEST', 'REGISTER without info');
    if (info.id !== link.remote.id || info.type !== link.remote.type) {
      throw new XError('BAD_REQUEST', `REGISTER for ${info.type}/${info.id} on a link authenticated as ${link.remote.type}/${link.remote.id}`);
    }
    if (info.type <= NodeType.MGR) throw new XError('BAD_REQUEST', `type ${info.type} cannot register as a member`);
    info.publicKey = link.remote.publicKey ?? new Uint8Array(0);
    // Peers will dial what it advertises: the mgr dials it first. A member the previous mgr
    // admitted (mirrored) at this address, or one re-registering at an address already reached,
    // needs no new dial: a takeover does not wait on a dial per member.
    const mirrored = this.pendingMembers.get(info.id);
    if (this.addresses.known(info) || (mirrored && mirrored.innerIp === info.innerIp && mirrored.ports[0] === info.ports[0])) {
      this.addresses.skip(info, link.remoteAddress);
      return this.admitMember(link, f, info, joinedBatches);
    }
    if (this.checking.has(info.id)) throw new XError('DUPLICATE_LINK', `a registration of ${info.id} is being checked already`);
    this.checking.add(info.id);
    void this.addresses.check(info, link.remoteAddress).then((r) => {
      this.checking.delete(info.id);
      if (!link.isOpen || this.state !== 'active') return;
      try {
        if (!r.reached) throw AddressChecker.refusal(r);
        this.admitMember(link, f, info, joinedBatches);
      } catch (e) {
        const err = e instanceof XError ? e : new XError('INTERNAL', String(e));
        this.log.warn({ code: err.code, id: info.id, type: info.type, peer: link.describe() }, `registration refused: ${err.message}`);
        link.replyError(f, err);
      }
    });
  }

  /** Admits a member whose address checked out: binds its id to its key, lists it, tells the others. */
  private admitMember(link: Link, f: Frame, info: NodeInfo, batches: boolean): void {
    // The id is bound to the key the link proved, not to what the REGISTER claims; a live (or
    // mirrored) member's id can only be registered again by the process holding its key.
    const holder = this.sessions.get(info.id)?.info ?? this.pendingMembers.get(info.id);
    if (holder && holder.publicKey.length > 0 && !sameKey(holder.publicKey, info.publicKey)) {
      throw new XError('FORBIDDEN', `id ${info.id} is registered by another process (another identity key)`);
    }
    const old = this.sessions.get(info.id);
    if (!old && this.sessions.size >= this.ctx.config.mgr.maxMembers) {
      throw new XError('QUEUE_FULL', `mgr.maxMembers (${this.ctx.config.mgr.maxMembers}) reached`);
    }
    const known = old !== undefined || this.pendingMembers.has(info.id);
    this.pendingMembers.delete(info.id);
    if (old) {
      // Same process re-registered on a new link: the old session goes quietly.
      if (old.updateTimer) clearTimeout(old.updateTimer);
      if (old.link !== link) {
        // Its close must not be taken for the node leaving: the node is right here.
        old.link.onClose = () => this.tools.delete(old.link);
        old.link.close(new XError('DUPLICATE_LINK', 'replaced by a newer registration'));
      }
    }
    const session: Session = { info, link, provisional: this.settling, lastUpdateAt: 0, updateTimer: null, seq: ++this.registrations, batches };
    this.sessions.set(info.id, session);
    this.m.members.set(this.sessions.size);
    link.reply(f, this.snapshotBytes(this.settling));
    if (known) {
      // A returning member: peers already list it; pass on any change of its info.
      if (old && !sameInfo(old.info, info)) this.broadcastJoined(session);
    } else {
      this.broadcastJoined(session);
      this.m.events.inc({ event: 'joined', reason: '' });
      this.history.event({
        kind: 'joined',
        id: info.id,
        name: info.name,
        type: info.type,
        detail: `${info.innerIp}:${info.ports[0]} ${info.version}`,
      });
      this.log.info({ id: info.id, type: info.type, name: info.name, addr: `${info.innerIp}:${info.ports[0]}` }, 'node joined');
    }
    void this.store
      .mirrorPut(this.instanceId, info.id, this.infoBytesOf(session))
      .catch((e: Error) => this.log.warn({ err: e.message }, 'mirror write failed'));
  }

  private onUpdated(link: Link, f: Frame): void {
    const s = this.sessionOf(link);
    if (!s) return;
    const u = decode(UpdatedSchema, f.body);
    s.info.overload = u.overload;
    s.info.version = u.version;
    s.infoBytes = undefined;
    // Draining is news for selection: passed on at once, not coalesced.
    const drainingChanged = s.info.draining !== u.draining;
    s.info.draining = u.draining;
    s.infoBytes = undefined;
    if (drainingChanged) {
      if (u.draining) this.history.event({ kind: 'draining', id: s.info.id, name: s.info.name, type: s.info.type });
      if (s.updateTimer) clearTimeout(s.updateTimer);
      return this.flushUpdate(s);
    }
    // Rate-limit per node: coalesce changes into one broadcast per interval.
    const wait = s.lastUpdateAt + this.ctx.config.mgr.updateMinIntervalMs - performance.now();
    if (wait <= 0) this.flushUpdate(s);
    else if (!s.updateTimer) s.updateTimer = setTimeout(() => this.flushUpdate(s), wait);
  }

  private flushUpdate(s: Session): void {
    s.updateTimer = null;
    if (this.sessions.get(s.info.id) !== s) return;
    s.lastUpdateAt = performance.now();
    this.broadcastExcept(
      s.info.id,
      Cmd.UPDATED,
      encode(UpdatedSchema, { id: s.info.id, overload: s.info.overload, version: s.info.version, draining: s.info.draining }),
    );
    this.m.events.inc({ event: 'updated', reason: '' });
    void this.store
      .mirrorPut(this.instanceId, s.info.id, this.infoBytesOf(s))
      .catch((e: Error) => this.log.warn({ err: e.message }, 'mirror write failed'));
  }

  private onLeave(link: Link, f: Frame): void {
    const s = this.sessionOf(link);
    if (f.rid) link.reply(f);
    if (!s) return;
    this.removeSession(s, LeaveReason.GRACEFUL);
  }

  private onLinkClosed(link: Link, err: XError | undefined): void {
    this.tools.delete(link);
    const s = this.sessionOf(link);
    if (!s) return; // replaced, or left already: a late close never removes a successor
    this.removeSession(s, err?.code === 'HEARTBEAT_TIMEOUT' ? LeaveReason.TIMEOUT : LeaveReason.LOST);
  }

  private sessionOf(link: Link): Session | undefined {
    const s = this.sessions.get(link.remote.id);
    return s && s.link === link ? s : undefined;
  }

  private removeSession(s: Session, reason: LeaveReason): void {
    if (this.sessions.get(s.info.id) !== s) return;
    this.sessions.delete(s.info.id);
    this.addresses.forget(s.info.id);
    if (s.updateTimer) clearTimeout(s.updateTimer);
    this.m.members.set(this.sessions.size);
    if (this.state !== 'active') return;
    this.broadcastLeft(s.info.id, reason);
    this.noteLeft(s.info, reason);
    this.log.info({ id: s.info.id, type: s.info.type, name: s.info.name, reason: LeaveReason[reason] }, 'node left');
  }

  private broadcastLeft(id: string, reason: LeaveReason): void {
    this.broadcastExcept(id, Cmd.LEFT, encode(LeftSchema, { id, reason }));
    this.m.events.inc({ event: 'left', reason: LeaveReason[reason] ?? String(reason) });
    void this.store.mirrorDelete(this.instanceId, id).catch((e: Error) => this.log.warn({ err: e.message }, 'mirror write failed'));
  }

  private broadcastExcept(exceptId: string, cmd: number, body: Uint8Array): void {
    this.flushJoins(); // a member's JOINED before anything else about it
    for (const s of this.sessions.values()) if (s.info.id !== exceptId) s.link.send(cmd, body);
  }

  /** A member's JOINED to every member registered before it: at once, or in the open batch window (see pendingJoins). */
  private broadcastJoined(joiner: Session): void {
    const j: PendingJoin = { id: joiner.info.id, seq: joiner.seq, body: encodeJoined(this.infoBytesOf(joiner)) };
    // A flush costs one write per member link: the window grows with the membership, so a storm
    // costs about the same writes per second at 50 members as at 5,000.
    const windowMs = this.ctx.config.mgr.joinBatchMs * Math.max(1, Math.ceil(this.sessions.size / JOIN_BATCH_MEMBERS));
    if (windowMs > 0 && this.joinTimer !== null) {
      this.pendingJoins.push(j);
      return;
    }
    this.sendJoins([j]);
    if (windowMs > 0) this.armJoins(windowMs);
  }

  private armJoins(windowMs: number): void {
    this.joinTimer = setTimeout(() => {
      this.joinTimer = null;
      // Still a storm: keep batching for another window.
      if (this.pendingJoins.length > 0 && this.flushJoins()) this.armJoins(windowMs);
    }, windowMs);
    this.joinTimer.unref();
  }

  /** Sends the JOINED waiting in the batch; false when none was. */
  private flushJoins(): boolean {
    if (this.pendingJoins.length === 0) return false;
    const batch = this.pendingJoins;
    this.pendingJoins = [];
    this.sendJoins(batch);
    return true;
  }

  /**
   * Each JOINED of `batch` (in registration order) to the sessions registered before it, except
   * its member: what a session needs is a suffix of the batch (the joins after its own). Sessions
   * that read JOINED_BATCH get that suffix as slices of one body built once per flush; the others
   * one JOINED frame per member.
   */
  private sendJoins(batch: readonly PendingJoin[]): void {
    const body = batch.length > 1 ? encodeJoinedBatch(batch.map((j) => j.body)) : null;
    for (const s of this.sessions.values()) {
      let from = 0;
      while (from < batch.length && batch[from]!.seq <= s.seq) from++;
      if (from === batch.length) continue;
      if (!body || !s.batches || batch.length - from === 1) {
        for (let k = from; k < batch.length; k++) if (batch[k]!.id !== s.info.id) s.link.send(Cmd.JOINED, batch[k]!.body);
        continue;
      }
      // A frame per JOINED_BATCH_BYTES of members: [from, end) of the batch in each.
      for (let k = from; k < batch.length;) {
        let end = k + 1;
        while (end < batch.length && body.offsets[end + 1]! - body.offsets[k]! <= JOINED_BATCH_BYTES) end++;
        s.link.send(Cmd.JOINED_BATCH, body.bytes.subarray(body.offsets[k], body.offsets[end]));
        k = end;
      }
    }
  }

  private clearJoins(): void {
    if (this.joinTimer) clearTimeout(this.joinTimer);
    this.joinTimer = null;
    this.pendingJoins = [];
  }

  private snapshotBytes(provisional: boolean): Uint8Array {
    const members: Uint8Array[] = [];
    for (const s of this.sessions.values()) members.push(this.infoBytesOf(s));
    for (const p of this.pendingMembers.values()) members.push(toBinary(NodeInfoSchema, p));
    return encodeSnapshot(members, { mgr: this.mgrInfo(), provisional, policies: this.policyList() });
  }

  private infoBytesOf(s: Session): Uint8Array {
    return (s.infoBytes ??= toBinary(NodeInfoSchema, s.info));
  }
}

/** Policies are for service types only: 0-3 are the client, the mgr, login and the gateways. */
function checkServiceType(type: number): void {
  if (type < NodeType.FIRST_SERVICE) {
    throw new XError(
      'UNKNOWN_TYPE',
      `type ${type} is not a service type (expected a number >= ${NodeType.FIRST_SERVICE}; 0-3 are client, mgr, login, gateway)`,
    );
  }
}

function leaveReasonName(r: LeaveReason): string {
  return (LeaveReason[r] ?? String(r)).toLowerCase();
}

function sameInfo(a: NodeInfo, b: NodeInfo): boolean {
  return a.innerIp === b.innerIp && a.version === b.version && a.ports.join() === b.ports.join() && a.overload.join() === b.overload.join();
}
