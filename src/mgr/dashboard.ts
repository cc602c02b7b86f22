/**
 * The mgr's dashboard data (SPEC §13): the JSON its page polls (/dashboard/api/overview and
 * /dashboard/api/member?id=...), built from the ClusterHistory and the membership.
 *
 * Every mgr serves the dashboard. The active one answers from its own history; a standby asks
 * the active one over the intranet (an authenticated tool link, DASHBOARD request: it reaches the
 * active mgr wherever members do, whatever its admin server binds to) and shows that view,
 * marked as relayed. When it cannot, it says why and links to the active mgr's admin address
 * from the lease.
 */
import { describePolicy } from '../protocol/routing-policy.js';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AddressCheck, RoutingPolicy, StatusReply } from '../gen/xserver/v1/cluster_pb.js';
import { DashboardReplySchema, DashboardRequestSchema } from '../gen/xserver/v1/cluster_pb.js';
import { XError } from '../errors.js';
import { Link, type LinkOptions } from '../link/link.js';
import { infoToJson } from '../node/peer.js';
import { Cmd, NodeType } from '../protocol/commands.js';
import type { LeaseRecord, LeaseWatcher } from '../store/store.js';
import { decode, encode } from '../wire/codec.js';
import type { ClusterHistory, ClusterSample, MemberFigures, MemberSample, TimelineEvent } from './history.js';

/** The mgr whose admin server answered (a standby relays the active mgr's view). */
export interface ServedBy {
  instanceId: string;
  state: string;
  /** true: the data is the active mgr's, fetched over the intranet by this standby. */
  relayed: boolean;
}

export interface MgrJson {
  instanceId: string;
  epoch: number;
  addr: string;
  port: number;
  settling: boolean;
}

export interface MemberRowJson extends Record<string, unknown> {
  /** Latest report; null until the member's first StatsReport. */
  figures: MemberFigures | null;
  last: MemberSample | null;
}

export interface OverviewJson {
  servedBy: ServedBy;
  mgr: MgrJson;
  sampleIntervalMs: number;
  samples: ClusterSample[];
  events: TimelineEvent[];
  /** At most dashboard.overviewMembersMax of them, by type and name. */
  members: MemberRowJson[];
  /** How many members there are (members may list fewer). */
  membersTotal: number;
  /**
   * StatusReply fields the dashboard does not know itself (the canary policy, once the mgr has
   * one): rendered as they are in the policy panel. null when there are none.
   */
  policy: Record<string, unknown> | null;
}

export interface MemberJson {
  servedBy: ServedBy;
  mgr: MgrJson;
  sampleIntervalMs: number;
  member: Record<string, unknown>;
  figures: MemberFigures | null;
  samples: MemberSample[];
  events: TimelineEvent[];
  check: Record<string, unknown> | null;
  /** The peers it reported as linked, with their names where the mgr lists them. */
  linked: { id: string; name: string; type: number | null }[];
}

/** A standby that cannot show the active view says why, and where the active mgr's dashboard is. */
export interface UnavailableJson {
  servedBy: ServedBy;
  unavailable: string;
  /** http://addr:adminPort/dashboard from the lease; null when the active mgr has no admin port. */
  activeDashboard: string | null;
}

export type DashboardJson = OverviewJson | MemberJson | UnavailableJson;

export interface DashboardHost {
  readonly instanceId: string;
  state(): string;
  /** This mgr's admin port (0 when it has none). */
  readonly adminPort: number;
  statusReply(): Omit<StatusReply, '$typeName' | 'accounts' | 'gatewaysCounted'>;
  readonly history: ClusterHistory;
}

export interface DashboardViewOptions {
  /** dashboard.relayTimeoutMs */
  timeoutMs: number;
  /** dashboard.relayIdleMs */
  idleMs: number;
  sampleIntervalMs: number;
  /** dashboard.overviewMembersMax */
  membersMax: number;
}

/** The StatusReply fields the dashboard renders itself; any other is shown in the policy panel. */
const KNOWN_STATUS_FIELDS = new Set(['$typeName', 'mgr', 'members', 'settling', 'checks']);

/** JSON text of a view: protobuf uint64 values are bigints, which JSON.stringify rejects. */
export function dashboardJson(view: unknown): string {
  return JSON.stringify(view, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

export class DashboardViews {
  /** A standby's link to the active mgr, kept while its dashboard is viewed. */
  private relay: { link: Link; instanceId: string } | null = null;
  private dialing: Promise<Link> | null = null;
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly host: DashboardHost,
    private readonly leases: Pick<LeaseWatcher, 'readLease'>,
    private readonly linkOpts: LinkOptions,
    private readonly opts: DashboardViewOptions,
    private readonly log: Logger,
  ) {}

  /** The view a dashboard shows: this mgr's own when it is active, else the active mgr's. */
  async view(memberId: string): Promise<DashboardJson> {
    if (this.host.state() === 'active') return this.local(memberId);
    const servedBy: ServedBy = { instanceId: this.host.instanceId, state: this.host.state(), relayed: true };
    let lease: LeaseRecord | null = null;
    try {
      lease = await this.leases.readLease();
      if (!lease) throw new XError('NOT_ACTIVE', 'no mgr holds the lease: none is active (is one starting?)');
      if (lease.instanceId === this.host.instanceId)
        throw new XError('NOT_ACTIVE', 'this mgr holds the lease and is taking over; try again in a moment');
      const link = await this.linkTo(lease);
      const reply = await link.request(Cmd.DASHBOARD, encode(DashboardRequestSchema, { memberId }), this.opts.timeoutMs);
      const view = JSON.parse(decode(DashboardReplySchema, reply.body).json) as OverviewJson | MemberJson;
      return { ...view, servedBy };
    } catch (e) {
      // A member that is not listed is the caller's mistake, not the relay's: passed on as it came.
      if (e instanceof XError && e.code === 'BAD_REQUEST') throw e;
      return {
        servedBy,
        unavailable: `cannot show the active mgr's dashboard from this standby: ${(e as Error).message}`,
        activeDashboard: lease?.adminPort ? `http://${lease.addr}:${lease.adminPort}/dashboard` : null,
      };
    }
  }

  /** The active mgr's own view: the overview (`memberId` "") or one member's page. */
  local(memberId: string): OverviewJson | MemberJson {
    const st = this.host.statusReply();
    const h = this.host.history;
    const m = st.mgr;
    const servedBy: ServedBy = { instanceId: this.host.instanceId, state: this.host.state(), relayed: false };
    const mgr: MgrJson = {
      instanceId: m?.instanceId ?? '',
      epoch: Number(m?.epoch ?? 0),
      addr: m?.addr ?? '',
      port: m?.port ?? 0,
      settling: st.settling,
    };
    const base = { servedBy, mgr, sampleIntervalMs: this.opts.sampleIntervalMs };
    if (memberId === '') {
      const members = st.members
        .slice()
        .sort((a, b) => a.type - b.type || a.name.localeCompare(b.name) || a.id.localeCompare(b.id))
        .slice(0, this.opts.membersMax)
        .map((i): MemberRowJson => {
          const s = h.memberSamples(i.id);
          return { ...infoToJson(i), figures: h.latest(i.id), last: s[s.length - 1] ?? null };
        });
      // The canary policies as one line per type; other fields as they are; empty lists left out.
      const extra = Object.entries(st)
        .filter(([k, v]) => !KNOWN_STATUS_FIELDS.has(k) && !(Array.isArray(v) && v.length === 0))
        .map(([k, v]): [string, unknown] =>
          k === 'policies'
            ? ['canary', (v as RoutingPolicy[]).map((p) => ({ type: p.type, version: p.version, policy: describePolicy(p) }))]
            : [k, v],
        );
      return {
        ...base,
        samples: h.clusterSamples(),
        events: h.timeline(),
        members,
        membersTotal: st.members.length,
        policy: extra.length > 0 ? Object.fromEntries(extra) : null,
      };
    }
    const info = st.members.find((i) => i.id === memberId);
    if (!info) throw new XError('BAD_REQUEST', `no member ${memberId} is listed by the active mgr (it may have left; see the timeline)`);
    const figures = h.latest(memberId);
    const names = new Map(st.members.map((i) => [i.id, i]));
    return {
      ...base,
      member: infoToJson(info),
      figures,
      samples: h.memberSamples(memberId),
      events: h.timeline(memberId),
      check: checkJson(st.checks.find((c) => c.id === memberId)),
      linked: (figures?.linked ?? []).map((id) => ({ id, name: names.get(id)?.name ?? '(not listed)', type: names.get(id)?.type ?? null })),
    };
  }

  close(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    this.relay?.link.close();
    this.relay = null;
  }

  /** The open link to the active mgr of `lease`, dialled when there is none (or the lease moved). */
  private async linkTo(lease: LeaseRecord): Promise<Link> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.close(), this.opts.idleMs);
    this.idleTimer.unref();
    const r = this.relay;
    if (r && r.instanceId === lease.instanceId && r.link.isOpen) return r.link;
    if (r) {
      r.link.close();
      this.relay = null;
    }
    if (!this.dialing) {
      this.dialing = Link.dial(
        lease.addr,
        lease.port,
        { type: NodeType.CLIENT, id: `dashboard-${randomUUID()}` },
        { type: NodeType.MGR, id: lease.instanceId },
        this.linkOpts,
      )
        .then((link) => {
          link.start();
          this.relay = { link, instanceId: lease.instanceId };
          this.log.debug({ mgr: `${lease.addr}:${lease.port}` }, 'dashboard: linked to the active mgr for its view');
          return link;
        })
        .finally(() => (this.dialing = null));
    }
    return this.dialing;
  }
}

function checkJson(c: AddressCheck | undefined): Record<string, unknown> | null {
  if (!c) return null;
  return { advertised: c.advertised, seenFrom: c.seenFrom, reached: c.reached, skipped: c.skipped, rttMs: c.rttMs, error: c.error };
}
