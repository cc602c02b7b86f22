// Roles for the `failover` scenario (scenarios/7-failover.js): mgr processes (active + standby),
// member processes (A sends requests to B at a fixed rate, C idles), and join-latency processes
// that each run several ClusterNodes. Every role reports through ctx.emit() with the child's clock.
import { roleContext, startMgr, waitFor, sleep, ClusterNode, CMD } from './_common.js';

const OPENER = 0xffffffff; // sequence number of the request that opens A's link to B

let node; // 'member' role: this process's node
let traffic; // 'startTraffic' state
let received; // 'member' B: distinct sequence numbers seen
const group = []; // 'members' role: [{ node, startAt, regAt, seen: [[peerId, t]] }]

function leaseConfig(opts) {
  return (c) => {
    if (opts.leaseTtlMs) c.mgr.leaseTtlMs = opts.leaseTtlMs;
  };
}

/** Emits an event when `mgr` becomes active (and again after any stand-down and takeover). */
function watchActive(mgr, ctx, tag) {
  let was = mgr.isActive;
  if (was) ctx.emit({ type: 'active', tag, epoch: mgr.currentEpoch });
  setInterval(() => {
    const is = mgr.isActive;
    if (is && !was) ctx.emit({ type: 'active', tag, epoch: mgr.currentEpoch });
    was = is;
  }, 1);
}

class SeqSet {
  constructor() {
    this.bits = new Uint8Array(1 << 20); // 8M sequence numbers
    this.distinct = 0;
    this.duplicates = 0;
  }

  add(n) {
    const i = n >>> 3;
    if (i >= this.bits.length) {
      const bigger = new Uint8Array(Math.max(this.bits.length * 2, i + 1));
      bigger.set(this.bits);
      this.bits = bigger;
    }
    const m = 1 << (n & 7);
    if (this.bits[i] & m) this.duplicates++;
    else {
      this.bits[i] |= m;
      this.distinct++;
    }
  }
}

export default {
  name: 'xserver',
  scenario: 'failover',
  needs: ['redis'],

  /** An mgr; the first one started becomes active, the next stays standby. */
  async mgr(opts, ctx) {
    const rctx = roleContext(opts, leaseConfig(opts));
    const mgr = await startMgr(rctx, { waitActive: !opts.standby });
    watchActive(mgr, ctx, opts.tag);
    return { instanceId: mgr.instanceId, active: mgr.isActive };
  },

  /** One member node; reports mgr-connected / mgr-lost / joined / left. B (opts.echo) answers SEQ requests. */
  async member(opts, ctx) {
    const rctx = roleContext(opts, leaseConfig(opts));
    await rctx.store.ready(5000);
    node = new ClusterNode(rctx, { type: opts.type, name: opts.who });
    node.on('mgr-connected', (m) => ctx.emit({ type: 'mgr-connected', epoch: m.epoch }));
    node.on('mgr-lost', (reason) => ctx.emit({ type: 'mgr-lost', reason }));
    node.on('joined', (p) => ctx.emit({ type: 'joined', peer: p.name }));
    node.on('left', (p, reason) => ctx.emit({ type: 'left', peer: p.name, reason }));
    if (opts.echo) {
      received = new SeqSet();
      node.handle(CMD.SEQ, (body) => {
        const seq = Buffer.from(body.buffer, body.byteOffset, body.byteLength).readUInt32BE(0);
        if (seq !== OPENER) received.add(seq);
        return body;
      });
    }
    await node.start();
    await node.ready();
    return { id: node.id };
  },

  /** On A: requests to opts.target at opts.rate per second, each with a sequence number, until stopTraffic. */
  async startTraffic(opts) {
    await waitFor(() => node.has(opts.target), 10_000, 'target listed');
    const opener = Buffer.alloc(4);
    opener.writeUInt32BE(OPENER, 0);
    await node.request(opts.target, CMD.SEQ, opener); // opens the link (not counted)
    const t = { sent: 0, ok: 0, failed: 0, codes: {}, maxMs: 0, firstFailAt: 0, lastFailAt: 0 };
    const t0 = performance.now();
    t.timer = setInterval(() => {
      const due = Math.floor(((performance.now() - t0) * opts.rate) / 1000) - t.sent;
      for (let i = 0; i < due; i++) {
        const body = Buffer.allocUnsafe(4);
        body.writeUInt32BE(t.sent++, 0);
        const sentAt = performance.now();
        node.request(opts.target, CMD.SEQ, body, { timeoutMs: opts.requestTimeoutMs ?? 5000 }).then(
          () => {
            t.ok++;
            t.maxMs = Math.max(t.maxMs, performance.now() - sentAt);
          },
          (e) => {
            t.failed++;
            t.codes[e.code ?? e.message] = (t.codes[e.code ?? e.message] ?? 0) + 1;
          },
        );
      }
    }, 1);
    traffic = t;
    return { started: true };
  },

  async stopTraffic() {
    const t = traffic;
    clearInterval(t.timer);
    await waitFor(() => t.ok + t.failed >= t.sent, 10_000, 'outstanding requests settled').catch(() => {}); // what never settled is reported as `unsettled`
    return { sent: t.sent, ok: t.ok, failed: t.failed, unsettled: t.sent - t.ok - t.failed, codes: t.codes, maxMs: t.maxMs };
  },

  /** On B: what arrived. */
  async stats() {
    return { distinct: received?.distinct ?? 0, duplicates: received?.duplicates ?? 0 };
  },

  /**
   * Join latency: opts.count ClusterNodes in this process, the k-th started at opts.offsetMs + k * opts.staggerMs.
   * Each records when it started, when it registered, and when it saw every other node join.
   * Resolves when all are registered.
   */
  async members(opts, ctx) {
    const rctx = roleContext(opts);
    await rctx.store.ready(5000);
    const started = [];
    for (let k = 0; k < opts.count; k++) {
      const wait = opts.offsetMs + k * opts.staggerMs;
      started.push(
        sleep(wait).then(async () => {
          const n = new ClusterNode(rctx, { type: opts.type ?? 4, name: `m${opts.index}-${k}` });
          const rec = { node: n, startAt: 0, regAt: 0, seen: [] };
          group.push(rec);
          n.on('joined', (p) => rec.seen.push([p.id, ctx.now()]));
          n.once('mgr-connected', () => (rec.regAt = ctx.now()));
          rec.startAt = ctx.now();
          await n.start();
          await n.ready();
        }),
      );
    }
    await Promise.all(started);
    return { count: group.length };
  },

  async report() {
    return { nodes: group.map((r) => ({ id: r.node.id, startAt: r.startAt, regAt: r.regAt, seen: r.seen })) };
  },
};
