// Helpers for scenarios that orchestrate several processes per row themselves (scenario.measure, see
// runner.js): spawning role processes of the row's module, collecting their ctx.emit() events with
// timestamps, waiting for conditions, and "target" rows that carry the spec's numbers as values.
import { startChild, killChildren } from './proc.js';
import { EventLog } from './events.js';
import { now } from './impl.js';
import { sleep } from '../../testkit/index.js';

export { SERVER_CPU, CLIENT_CPU } from './proc.js';
export { now };

/** The processes of one row's measurement. Every ctx.emit() event lands in `events` as { ...event, from, t }. */
export class Orchestra {
  constructor(row) {
    this.row = row;
    this.children = [];
    this.log = new EventLog();
  }

  get events() {
    return this.log.events;
  }

  /** Starts a child running the row's module; `name` tags its events and labels its output. */
  async spawn(name, cpu) {
    const child = await startChild({ module: this.row.module, impl: this.row.impl, label: `${this.row.label} ${name}`, cpu });
    this.children.push(child);
    child.name = name;
    child.onEvent((event, t) => this.log.push({ ...event, from: name, t }));
    return child;
  }

  /** Resolves with the first event (already seen or future) matching pred. */
  wait(pred, timeoutMs, what) {
    return this.log.wait(pred, timeoutMs, what);
  }

  /** Kills one child (SIGKILL to its process group) and forgets it. */
  async kill(child) {
    await child.kill();
    this.children = this.children.filter((c) => c !== child);
  }

  async close() {
    if (process.env.BENCH_GRACEFUL_EXIT) await gracefulExit(this.children);
    await killChildren(this.children);
    this.children = [];
  }
}

/**
 * BENCH_GRACEFUL_EXIT=1: before the SIGKILL, close the children's IPC channels so that they exit by
 * themselves (lib/child.js exits on 'disconnect'), which lets `node --cpu-prof bench/run.js ...`
 * (children inherit the flag) write their profiles. Children get up to 10 s.
 */
async function gracefulExit(children) {
  for (const c of children) if (!c.exitInfo) c.proc.disconnect?.();
  await Promise.race([Promise.all(children.map((c) => c.exited)), sleep(10_000)]);
}

/**
 * A row whose values are the spec's targets (no processes). Use it as the scenario's baseline so the
 * ÷base columns read "measured ÷ target".
 */
export function targetRow(label, values) {
  return { label, kind: 'target', module: 'lib/orchestra.js', impl: 'target', options: { values } };
}

/** measure() for a target row. */
export function targetValues(row) {
  return { values: { ...row.options.values }, errors: [] };
}

/** Percentile p in [0, 100] of an array of numbers (nearest rank); undefined when empty. */
export function percentile(values, p) {
  const xs = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (xs.length === 0) return undefined;
  return xs[Math.min(xs.length - 1, Math.max(0, Math.ceil((p / 100) * xs.length) - 1))];
}

export { sleep };

/** One-line error text for notes (like the runner's). */
export function noteOf(prefix, err) {
  const msg = String(err?.message ?? err)
    .split('\n')[0]
    .replace(/^n\/a:\s*/, '');
  return `n/a${prefix ? ` (${prefix})` : ''}: ${msg.length > 160 ? `${msg.slice(0, 157)}...` : msg}`;
}
