// Shared pieces of the broadcast scenario (scenarios/10-broadcast.js): the message (a send timestamp
// and a sequence number, padded), the fixed-rate sender, and the receivers' tally (deliveries and
// end-to-end latency within a measurement window given in wall-clock time, so every process counts
// the same interval).
import { now } from './impl.js';
import { Samples } from './stats.js';

/** The message body: f64 LE wall-clock send time (now(): timeOrigin + performance.now()), u32 LE seq, padding. */
export const MIN_BODY_BYTES = 12;
/** Timer tick of the sender: at `rate` msg/s it sends what is due every tick, so the rate holds under a busy loop. */
const TICK_MS = 10;
/** Latency quantiles each receiver process reports (merged by the parent). */
const QUANTILES = 1000;

export function messageBody(bytes, seq) {
  const b = Buffer.alloc(Math.max(MIN_BODY_BYTES, bytes));
  b.writeDoubleLE(now(), 0);
  b.writeUInt32LE(seq >>> 0, 8);
  return b;
}

/** Calls send(seq) `rate` times per second until stop(); returns { stop(): number sent }. */
export function startSender(rate, send) {
  const t0 = now();
  let sent = 0;
  const timer = setInterval(() => {
    const due = Math.floor(((now() - t0) * rate) / 1000);
    while (sent < due) send(sent++);
  }, TICK_MS);
  return {
    stop() {
      clearInterval(timer);
      return sent;
    },
  };
}

/** Counts, for one client process, the deliveries received within [from, to] and their latency. */
export class Tally {
  constructor() {
    this.window({ from: Infinity, to: -Infinity });
  }

  /** Starts a new window: earlier counts are dropped. */
  window({ from, to }) {
    this.from = from;
    this.to = to;
    this.deliveries = 0;
    this.latency = new Samples();
  }

  /** One message body received (the frame body, after the 13-byte header). */
  received(body) {
    const t = now();
    if (t < this.from || t > this.to) return;
    this.deliveries++;
    this.latency.add(t - body.readDoubleLE(0));
  }

  /** What the parent merges: the count and evenly spaced latency quantiles. */
  result() {
    const ps = Array.from({ length: QUANTILES }, (_, i) => ((i + 0.5) * 100) / QUANTILES);
    return { deliveries: this.deliveries, quantiles: this.deliveries ? this.latency.percentiles(...ps) : [] };
  }
}
