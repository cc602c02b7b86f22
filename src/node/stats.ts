/**
 * StatsReporter: a member's dashboard figures, sent to the mgr as a StatsReport (one-way STATS
 * frame) every `dashboard.statsIntervalMs` while it is registered. Totals, not deltas: a report
 * lost with a dropped mgr link loses no messages from the charts. The reporter knows its host
 * only through two functions (read the figures, send a body), so it is tested with fake timers.
 */
import { StatsReportSchema } from '../gen/xserver/v1/cluster_pb.js';
import { encode } from '../wire/codec.js';

/** What a member reports; see StatsReport in proto/xserver/v1/cluster.proto. */
export interface StatsFigures {
  connections: number;
  messagesIn: number;
  messagesOut: number;
  /** Latency histogram of the window since the previous report (LatencyHistogram.take()). */
  latency: number[];
  accountsLost: number;
  peers: number;
  linked: string[];
  /** Open direct links; `linked` lists at most dashboard.reportLinksMax of them. */
  links: number;
}

/** A role on top of the node (the gateway) reports its client traffic instead of the node's peer traffic. */
export type StatsOverride = () => Pick<StatsFigures, 'connections' | 'messagesIn' | 'messagesOut' | 'latency' | 'accountsLost'>;

export function encodeStats(f: StatsFigures): Uint8Array {
  return encode(StatsReportSchema, {
    connections: f.connections,
    messagesIn: BigInt(Math.max(0, Math.floor(f.messagesIn))),
    messagesOut: BigInt(Math.max(0, Math.floor(f.messagesOut))),
    latency: f.latency,
    accountsLost: BigInt(Math.max(0, Math.floor(f.accountsLost))),
    peers: f.peers,
    linked: f.linked,
    links: f.links,
  });
}

export class StatsReporter {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    /** 0: no reports. */
    private readonly intervalMs: number,
    private readonly read: () => StatsFigures,
    /** Sends one STATS body to the mgr; false when there is no mgr link (the report is skipped). */
    private readonly send: (body: Uint8Array) => boolean,
  ) {}

  start(): void {
    if (this.timer || this.intervalMs <= 0) return;
    this.timer = setInterval(() => this.send(encodeStats(this.read())), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
