/**
 * The dashboard's bounded data, as pure logic with fake timers: the sample ring, the timeline, the
 * per-member rings (src/mgr/history.ts), the latency histogram the gateways report
 * (src/protocol/latency.ts) and the member's report timer (src/node/stats.ts).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fromBinary } from '@bufbuild/protobuf';
import { StatsReportSchema } from '../src/gen/xserver/v1/cluster_pb.js';
import { ClusterHistory, Ring, type MemberFigures, type MemberRef } from '../src/mgr/history.js';
import { LATENCY_BUCKETS, LatencyHistogram, bucketBoundMs, bucketOf } from '../src/protocol/latency.js';
import { StatsReporter, type StatsFigures } from '../src/node/stats.js';
import { NodeType } from '../src/protocol/commands.js';

const GW = { id: 'gw-1', type: NodeType.GATEWAY, name: 'gateway' };
const GW2 = { id: 'gw-2', type: NodeType.GATEWAY, name: 'gateway' };
const LOBBY = { id: 'lobby-1', type: 4, name: 'lobby' };

function figures(over: Partial<MemberFigures> = {}): MemberFigures {
  return { connections: 0, messagesIn: 0, messagesOut: 0, latency: [], accountsLost: 0, peers: 0, linked: [], links: 0, ...over };
}

/** A latency window holding `n` requests of `ms` each. */
function window(...entries: [ms: number, n: number][]): number[] {
  const h = new LatencyHistogram();
  for (const [ms, n] of entries) for (let i = 0; i < n; i++) h.record(ms);
  return h.take();
}

describe('Ring', () => {
  it('keeps the newest `capacity` items, oldest first', () => {
    const r = new Ring<number>(3);
    for (let i = 1; i <= 7; i++) r.push(i);
    expect(r.size).toBe(3);
    expect(r.toArray()).toEqual([5, 6, 7]);
    r.clear();
    expect(r.toArray()).toEqual([]);
  });

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => new Ring(0)).toThrow(RangeError);
    expect(() => new Ring(1.5)).toThrow(RangeError);
  });
});

describe('ClusterHistory', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(1_000_000);
  });
  afterEach(() => vi.useRealTimers());

  const opts = { sampleIntervalMs: 1000, samples: 5, memberSamples: 3, events: 4 };
  const listOf =
    (...refs: MemberRef[]) =>
    () =>
      refs;

  it('samples once per interval and keeps only the last `samples`', () => {
    const h = new ClusterHistory(opts, listOf({ id: GW.id, type: GW.type, load: 0 }));
    h.start();
    vi.advanceTimersByTime(12_000);
    const s = h.clusterSamples();
    expect(s).toHaveLength(5);
    expect(s.map((x) => x.at)).toEqual([1_008_000, 1_009_000, 1_010_000, 1_011_000, 1_012_000]);
    h.stop();
    vi.advanceTimersByTime(5000);
    expect(h.clusterSamples().at(-1)!.at).toBe(1_012_000);
  });

  it('turns reported totals into rates: the first report is a baseline, not a burst', () => {
    const h = new ClusterHistory(opts, listOf({ id: GW.id, type: GW.type, load: 7 }));
    h.start();
    h.report(GW, figures({ messagesIn: 10_000, messagesOut: 5000, connections: 3 }));
    vi.advanceTimersByTime(1000);
    expect(h.clusterSamples()[0]).toMatchObject({ members: 1, connections: 3, msgsInPerSec: 0, msgsOutPerSec: 0, p50Ms: null });
    h.report(GW, figures({ messagesIn: 10_200, messagesOut: 5100, connections: 4 }));
    vi.advanceTimersByTime(1000);
    expect(h.clusterSamples()[1]).toMatchObject({ connections: 4, msgsInPerSec: 200, msgsOutPerSec: 100 });
    // Two intervals without a new report: no traffic in the second one.
    vi.advanceTimersByTime(1000);
    expect(h.clusterSamples()[2]).toMatchObject({ msgsInPerSec: 0, msgsOutPerSec: 0 });
    expect(h.memberSamples(GW.id).map((x) => x.load)).toEqual([7, 7, 7]);
  });

  it("charts the gateways' client traffic for the cluster, every member's own traffic on its page", () => {
    const h = new ClusterHistory(opts, listOf({ id: GW.id, type: GW.type, load: 0 }, { id: LOBBY.id, type: LOBBY.type, load: 0 }));
    h.start();
    h.report(GW, figures());
    h.report(LOBBY, figures());
    vi.advanceTimersByTime(1000);
    h.report(GW, figures({ messagesIn: 50 }));
    h.report(LOBBY, figures({ messagesIn: 900, messagesOut: 900 }));
    vi.advanceTimersByTime(1000);
    expect(h.clusterSamples()[1]).toMatchObject({ members: 2, msgsInPerSec: 50, msgsOutPerSec: 0 });
    expect(h.memberSamples(LOBBY.id)[1]).toMatchObject({ msgsInPerSec: 900, msgsOutPerSec: 900 });
  });

  it("merges the gateways' latency histograms before reading p50 and p99", () => {
    const h = new ClusterHistory(opts, listOf({ id: GW.id, type: GW.type, load: 0 }, { id: GW2.id, type: GW2.type, load: 0 }));
    h.start();
    // 98 fast requests on one gateway, 2 slow ones on the other: p50 fast, p99 slow.
    h.report(GW, figures({ latency: window([1, 98]) }));
    h.report(GW2, figures({ latency: window([200, 2]) }));
    vi.advanceTimersByTime(1000);
    const s = h.clusterSamples()[0]!;
    expect(s.p50Ms).toBeGreaterThanOrEqual(1);
    expect(s.p50Ms).toBeLessThan(1.2);
    expect(s.p99Ms).toBeGreaterThanOrEqual(200);
    expect(s.p99Ms).toBeLessThan(240);
    // The window was consumed: the next sample has no requests.
    vi.advanceTimersByTime(1000);
    expect(h.clusterSamples()[1]!.p99Ms).toBeNull();
  });

  it('keeps `memberSamples` per member and drops them when the member leaves', () => {
    const h = new ClusterHistory(opts, listOf({ id: GW.id, type: GW.type, load: 0 }));
    h.start();
    h.report(GW, figures());
    vi.advanceTimersByTime(10_000);
    expect(h.memberSamples(GW.id)).toHaveLength(3);
    h.forget(GW.id);
    expect(h.memberSamples(GW.id)).toEqual([]);
    expect(h.latest(GW.id)).toBeNull();
  });

  it('keeps the last `events` timeline events, oldest first, and filters them by member', () => {
    const h = new ClusterHistory(opts, listOf());
    h.event({ kind: 'takeover', detail: 'epoch 1' });
    for (let i = 0; i < 5; i++) {
      vi.advanceTimersByTime(10);
      h.event({ kind: 'joined', id: `m${i}`, name: 'lobby', type: 4 });
    }
    h.event({ kind: 'left', id: 'm4', name: 'lobby', type: 4, reason: 'lost' });
    const all = h.timeline();
    expect(all).toHaveLength(4);
    expect(all.map((e) => e.id)).toEqual(['m2', 'm3', 'm4', 'm4']);
    expect(h.timeline('m4').map((e) => e.kind)).toEqual(['joined', 'left']);
    expect(all[0]!.at).toBe(1_000_030);
  });

  it("puts a rise of a gateway's lost-accounts total on the timeline", () => {
    const h = new ClusterHistory(opts, listOf());
    h.report(GW, figures({ accountsLost: 5 })); // already lost before this mgr: not news
    h.report(GW, figures({ accountsLost: 5 }));
    h.report(GW, figures({ accountsLost: 8 }));
    expect(h.timeline()).toEqual([{ at: 1_000_000, kind: 'accounts-lost', id: GW.id, name: 'gateway', type: GW.type, detail: '3 account(s) lost' }]);
  });

  it('stop() forgets the reports (another mgr receives them now) but keeps samples and events', () => {
    const h = new ClusterHistory(opts, listOf({ id: GW.id, type: GW.type, load: 0 }));
    h.start();
    h.report(GW, figures({ connections: 2 }));
    h.event({ kind: 'takeover' });
    vi.advanceTimersByTime(1000);
    h.stop();
    expect(h.latest(GW.id)).toBeNull();
    expect(h.clusterSamples()).toHaveLength(1);
    expect(h.timeline()).toHaveLength(1);
  });
});

describe('LatencyHistogram', () => {
  it('puts each latency in the first bucket whose bound holds it', () => {
    for (const ms of [0, 0.01, 0.05, 0.051, 0.3, 1, 7.5, 100, 2000]) {
      const i = bucketOf(ms);
      expect(bucketBoundMs(i)).toBeGreaterThanOrEqual(ms);
      if (i > 0) expect(bucketBoundMs(i - 1)).toBeLessThan(ms);
    }
    expect(bucketOf(60_000)).toBe(LATENCY_BUCKETS - 1);
  });

  it('reads a percentile within 19% above the true value', () => {
    const h = new LatencyHistogram();
    for (let i = 1; i <= 1000; i++) h.record(i / 10); // 0.1 .. 100 ms
    for (const [q, truth] of [
      [0.5, 50],
      [0.99, 99],
    ] as const) {
      const v = h.quantile(q)!;
      expect(v).toBeGreaterThanOrEqual(truth);
      expect(v).toBeLessThanOrEqual(truth * 1.19);
    }
  });

  it('take() hands over the window without trailing empty buckets and starts a new one', () => {
    const h = new LatencyHistogram();
    expect(h.quantile(0.5)).toBeNull();
    h.record(1);
    h.record(1);
    const counts = h.take();
    expect(counts).toHaveLength(bucketOf(1) + 1);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(2);
    expect(h.count).toBe(0);
    expect(h.take()).toEqual([]);
  });

  it('reports requests slower than the last bound as that bound', () => {
    const h = new LatencyHistogram();
    h.record(60_000);
    expect(h.quantile(0.99)).toBe(bucketBoundMs(LATENCY_BUCKETS - 2));
  });

  it('ignores counts beyond its buckets in a merged window', () => {
    const h = new LatencyHistogram();
    h.merge(new Array<number>(LATENCY_BUCKETS + 5).fill(1));
    expect(h.count).toBe(LATENCY_BUCKETS);
  });
});

describe('StatsReporter', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  const f: StatsFigures = { connections: 2, messagesIn: 10, messagesOut: 4, latency: [0, 3], accountsLost: 1, peers: 5, linked: ['a'], links: 1 };

  it('sends a StatsReport every interval until stopped', () => {
    const sent: Uint8Array[] = [];
    const r = new StatsReporter(
      500,
      () => f,
      (b) => sent.push(b) > 0,
    );
    r.start();
    vi.advanceTimersByTime(1600);
    expect(sent).toHaveLength(3);
    const report = fromBinary(StatsReportSchema, sent[0]!);
    expect(report).toMatchObject({
      connections: 2,
      messagesIn: 10n,
      messagesOut: 4n,
      latency: [0, 3],
      accountsLost: 1n,
      peers: 5,
      linked: ['a'],
      links: 1,
    });
    r.stop();
    vi.advanceTimersByTime(5000);
    expect(sent).toHaveLength(3);
  });

  it('sends nothing with an interval of 0', () => {
    const send = vi.fn(() => true);
    const r = new StatsReporter(0, () => f, send);
    r.start();
    vi.advanceTimersByTime(10_000);
    expect(send).not.toHaveBeenCalled();
  });
});
