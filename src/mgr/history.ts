/**
 * ClusterHistory: what the active mgr remembers for its dashboard, all of it bounded.
 *
 * - a ring of cluster samples (`dashboard.samples`, one per `dashboard.sampleIntervalMs`): members,
 *   client connections, client messages/s in and out, client request latency p50/p99;
 * - a ring of samples per member (`dashboard.memberSamples`), dropped when the member leaves;
 * - a ring of timeline events (`dashboard.events`): joined, left with its reason, takeovers,
 *   drains, accounts lost.
 *
 * Members feed it with their StatsReports (totals since their start, plus a latency histogram of
 * the window since their previous report); a sample turns the totals into rates. Cluster message
 * rates and latency are the gateways' (client traffic), which is what an operator watches; every
 * member's page shows its own figures. Pure apart from its sampling timer: tested with fake timers.
 */
import { NodeType } from '../protocol/commands.js';
import { LatencyHistogram } from '../protocol/latency.js';

/** A fixed-capacity ring: push drops the oldest once full. */
export class Ring<T> {
  private readonly items: T[] = [];
  private start = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`ring capacity must be a positive integer, got ${capacity}`);
  }

  get size(): number {
    return this.items.length;
  }

  push(item: T): void {
    if (this.items.length < this.capacity) {
      this.items.push(item);
      return;
    }
    this.items[this.start] = item;
    this.start = (this.start + 1) % this.capacity;
  }

  /** Oldest first. */
  toArray(): T[] {
    return [...this.items.slice(this.start), ...this.items.slice(0, this.start)];
  }

  clear(): void {
    this.items.length = 0;
    this.start = 0;
  }
}

/** One StatsReport as the history uses it. */
export interface MemberFigures {
  connections: number;
  messagesIn: number;
  messagesOut: number;
  /** Latency histogram counts of the report's window (src/protocol/latency.ts buckets). */
  latency: readonly number[];
  accountsLost: number;
  peers: number;
  linked: readonly string[];
  links: number;
}

export interface ClusterSample {
  /** Unix ms. */
  at: number;
  members: number;
  connections: number;
  msgsInPerSec: number;
  msgsOutPerSec: number;
  /** null: no client request was answered during the sample. */
  p50Ms: number | null;
  p99Ms: number | null;
}

export interface MemberSample {
  at: number;
  connections: number;
  msgsInPerSec: number;
  msgsOutPerSec: number;
  p50Ms: number | null;
  p99Ms: number | null;
  /** overload[0] from its UPDATED. */
  load: number;
}

export type TimelineKind = 'joined' | 'left' | 'takeover' | 'draining' | 'drain-requested' | 'accounts-lost';

export interface TimelineEvent {
  at: number;
  kind: TimelineKind;
  /** The member concerned (absent for a takeover). */
  id?: string;
  name?: string;
  type?: number;
  /** left: graceful, lost or timeout. */
  reason?: string;
  /** Free text: the epoch of a takeover, how many accounts were lost. */
  detail?: string;
}

/** What a sample needs to know about a member besides its reports. */
export interface MemberRef {
  id: string;
  type: number;
  load: number;
}

export interface HistoryOptions {
  sampleIntervalMs: number;
  samples: number;
  memberSamples: number;
  events: number;
}

interface MemberState {
  type: number;
  latest: MemberFigures | null;
  /** Totals at the previous sample (null until the first report). */
  sampledIn: number | null;
  sampledOut: number;
  window: LatencyHistogram;
  samples: Ring<MemberSample>;
}

export class ClusterHistory {
  private readonly samples: Ring<ClusterSample>;
  private readonly events: Ring<TimelineEvent>;
  private readonly members = new Map<string, MemberState>();
  private timer: NodeJS.Timeout | null = null;
  private lastSampleAt = 0;

  constructor(
    private readonly opts: HistoryOptions,
    /** The current members, read at each sample. */
    private readonly listMembers: () => MemberRef[],
    private readonly now: () => number = Date.now,
  ) {
    this.samples = new Ring(opts.samples);
    this.events = new Ring(opts.events);
  }

  /** Samples every sampleIntervalMs until stop() (the active mgr only). */
  start(): void {
    if (this.timer) return;
    this.lastSampleAt = this.now();
    this.timer = setInterval(() => this.sample(), this.opts.sampleIntervalMs);
    this.timer.unref();
  }

  /** Stops sampling and forgets the members' reports (another mgr has them now); samples and events stay. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.members.clear();
  }

  event(e: Omit<TimelineEvent, 'at'>): void {
    this.events.push({ at: this.now(), ...e });
  }

  /** A member's StatsReport. A rise of its lost-accounts total goes on the timeline. */
  report(ref: { id: string; type: number; name: string }, f: MemberFigures): void {
    let m = this.members.get(ref.id);
    if (!m) {
      m = {
        type: ref.type,
        latest: null,
        sampledIn: null,
        sampledOut: 0,
        window: new LatencyHistogram(),
        samples: new Ring(this.opts.memberSamples),
      };
      this.members.set(ref.id, m);
    }
    const lost = m.latest ? f.accountsLost - m.latest.accountsLost : 0;
    if (lost > 0) this.event({ kind: 'accounts-lost', id: ref.id, name: ref.name, type: ref.type, detail: `${lost} account(s) lost` });
    m.latest = f;
    m.window.merge(f.latency);
  }

  /** The member left: its reports and samples go (its events stay on the timeline). */
  forget(id: string): void {
    this.members.delete(id);
  }

  latest(id: string): MemberFigures | null {
    return this.members.get(id)?.latest ?? null;
  }

  /** One sample of the cluster and of every member that reported. */
  sample(): ClusterSample {
    const at = this.now();
    const secs = Math.max(0.001, (at - this.lastSampleAt) / 1000);
    this.lastSampleAt = at;
    const refs = this.listMembers();
    const clientLatency = new LatencyHistogram();
    let connections = 0;
    let msgsIn = 0;
    let msgsOut = 0;
    for (const ref of refs) {
      const m = this.members.get(ref.id);
      const f = m?.latest;
      if (!m || !f) continue;
      // A member's first sample sets the baseline: its totals since start are not a rate.
      const inRate = m.sampledIn === null ? 0 : Math.max(0, f.messagesIn - m.sampledIn) / secs;
      const outRate = m.sampledIn === null ? 0 : Math.max(0, f.messagesOut - m.sampledOut) / secs;
      m.sampledIn = f.messagesIn;
      m.sampledOut = f.messagesOut;
      const counts = m.window.take();
      const own = new LatencyHistogram();
      own.merge(counts);
      m.samples.push({
        at,
        connections: f.connections,
        msgsInPerSec: inRate,
        msgsOutPerSec: outRate,
        p50Ms: own.quantile(0.5),
        p99Ms: own.quantile(0.99),
        load: ref.load,
      });
      if (ref.type === NodeType.GATEWAY) {
        connections += f.connections;
        msgsIn += inRate;
        msgsOut += outRate;
        clientLatency.merge(counts);
      }
    }
    const s: ClusterSample = {
      at,
      members: refs.length,
      connections,
      msgsInPerSec: msgsIn,
      msgsOutPerSec: msgsOut,
      p50Ms: clientLatency.quantile(0.5),
      p99Ms: clientLatency.quantile(0.99),
    };
    this.samples.push(s);
    return s;
  }

  clusterSamples(): ClusterSample[] {
    return this.samples.toArray();
  }

  memberSamples(id: string): MemberSample[] {
    return this.members.get(id)?.samples.toArray() ?? [];
  }

  /** Oldest first; `id` keeps only that member's. */
  timeline(id?: string): TimelineEvent[] {
    const all = this.events.toArray();
    return id === undefined ? all : all.filter((e) => e.id === id);
  }
}
