// Closed-loop load driver shared by every request/response client (references, peers, xserver).
import { performance } from 'node:perf_hooks';
import { Samples } from './stats.js';

/**
 * Keeps `inflight` requests outstanding: each slot issues its next request as soon as the
 * previous one completes. Counts completions and latencies only inside the measurement
 * window [warmupMs, warmupMs + durationMs].
 *
 * request(slot, done) must start one request and call done(err?) exactly once when it completes;
 * `slot` is in [0, inflight) and stays with its chain (use it to pick a connection).
 *
 * Resolves { rate (req/s), count, seconds, p50, p99 (µs), errors }.
 */
export function runWindow({ inflight, warmupMs = 500, durationMs = 2000, drainTimeoutMs = 5000, request }) {
  return new Promise((resolve, reject) => {
    const lat = new Samples();
    let phase = 'warmup';
    let count = 0;
    let errors = 0;
    let firstError;
    let outstanding = 0;
    let t0 = 0;
    let result;
    let drainTimer;

    const finish = () => {
      clearTimeout(drainTimer);
      if (result.count === 0 && firstError) reject(firstError);
      else resolve(result);
    };

    const issue = (slot) => {
      const start = performance.now();
      outstanding++;
      request(slot, (err) => {
        outstanding--;
        if (err) {
          errors++;
          firstError ??= err instanceof Error ? err : new Error(String(err));
        } else if (phase === 'measure') {
          count++;
          lat.add((performance.now() - start) * 1000);
        }
        if (phase !== 'stopped') {
          if (err)
            setTimeout(issue, 1, slot); // never spin on a failing transport
          else issue(slot);
        } else if (outstanding === 0) finish();
      });
    };

    setTimeout(() => {
      phase = 'measure';
      t0 = performance.now();
      count = 0;
      errors = 0;
    }, warmupMs);
    setTimeout(() => {
      const seconds = (performance.now() - t0) / 1000;
      phase = 'stopped';
      const [p50, p99] = lat.percentiles(50, 99);
      result = { rate: count / seconds, count, seconds, p50, p99, errors };
      if (errors > 0 && count === 0) return finish();
      if (outstanding === 0) return finish();
      drainTimer = setTimeout(finish, drainTimeoutMs);
    }, warmupMs + durationMs);

    for (let slot = 0; slot < inflight; slot++) issue(slot);
  });
}

/** FIFO of pending callbacks, for transports that answer in order (one ws connection). */
export class Fifo {
  constructor() {
    this.items = [];
    this.head = 0;
  }

  get size() {
    return this.items.length - this.head;
  }

  push(x) {
    this.items.push(x);
  }

  shift() {
    const x = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return x;
  }
}

/** An ASCII string of `bytes` characters (JSON-based peers carry it as-is). */
export function payloadString(bytes) {
  return 'x'.repeat(bytes);
}

export function payloadBuffer(bytes) {
  return Buffer.alloc(bytes, 0x78);
}
