// Child-process management: every benchmark role runs in its own process group (the test kit's
// spawner, testkit/process-group.js), optionally pinned to a CPU with taskset, and is killed (by
// process group id) when done, on error, or on exit.
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { killAllGroupsNow, liveGroupPids, spawnGroup } from '../../testkit/index.js';

const CHILD_ENTRY = fileURLToPath(new URL('./child.js', import.meta.url));
const TAIL_LINES = 40;

export const SERVER_CPU = 0;
export const CLIENT_CPU = 1;

let pinning = detectPinning();

function detectPinning() {
  if (os.availableParallelism() < 2) return false;
  return spawnSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' }).status === 0;
}

export function pinningEnabled() {
  return pinning;
}

export function disablePinning() {
  pinning = false;
}

let verbose = false;
export function setVerbose(v) {
  verbose = v;
}

export class Child {
  #readyResolve;
  #readyReject;

  /**
   * @param {{module: string, impl: string, label: string, cpu?: number}} spec
   *   module: absolute path of the implementation module; impl: its name; cpu: pin target.
   */
  constructor({ module, impl, label, cpu }) {
    this.label = label;
    this.pending = new Map();
    this.nextId = 1;
    this.eventHandlers = [];
    this.exitInfo = null;
    this.roles = [];

    // What fork() runs, with an IPC channel: `node <execArgv> child.js ...`, or pinned
    // `taskset -c <cpu> node <execArgv> child.js ...` (taskset execs node in place, so the pid and
    // the IPC channel are node's own).
    const pin = pinning && cpu !== undefined;
    const nodeArgs = [...process.execArgv, CHILD_ENTRY, module, impl];
    this.group = spawnGroup({
      label,
      command: pin ? 'taskset' : process.execPath,
      args: pin ? ['-c', String(cpu), process.execPath, ...nodeArgs] : nodeArgs,
      stdin: 'ignore',
      ipc: true,
      keepLines: TAIL_LINES,
    });
    this.proc = this.group.child;
    this.pid = this.group.pid;
    if (verbose) this.group.onLine(({ line }) => process.stderr.write(`  [${label}] ${line}\n`));

    this.ready = new Promise((resolve, reject) => {
      this.#readyResolve = resolve;
      this.#readyReject = reject;
    });
    this.ready.catch(() => {}); // observed through call()

    this.proc.on('message', (msg) => this.#onMessage(msg));
    this.proc.on('error', (err) => this.#readyReject(err)); // e.g. the IPC channel failed
    this.exited = this.group.exited.then((info) => {
      this.exitInfo = info.error ? { error: info.error } : { code: info.code, signal: info.signal };
      const err = info.error ?? new Error(`${label} exited (${info.signal ?? `code ${info.code}`})${this.#tailText()}`);
      this.#readyReject(err);
      for (const { reject } of this.pending.values()) reject(err);
      this.pending.clear();
      return this.exitInfo;
    });
  }

  /** The last lines the child printed (stdout and stderr). */
  get tail() {
    return this.group.lines.map((l) => l.line);
  }

  #tailText() {
    const tail = this.tail;
    return tail.length ? `; last output:\n    ${tail.slice(-8).join('\n    ')}` : '';
  }

  #onMessage(msg) {
    if (msg.type === 'hello') {
      this.roles = msg.roles;
      return this.#readyResolve();
    }
    if (msg.type === 'fatal') return this.#readyReject(new Error(msg.message));
    if (msg.type === 'event') {
      for (const fn of this.eventHandlers) fn(msg.event, msg.t);
      return;
    }
    const call = this.pending.get(msg.id);
    if (!call) return;
    this.pending.delete(msg.id);
    clearTimeout(call.timer);
    if (msg.type === 'return') call.resolve(msg.value);
    else call.reject(Object.assign(new Error(msg.message), { childStack: msg.stack }));
  }

  /** Runs impl[role](opts) in the child; rejects on error, child exit or timeout. */
  async call(role, opts, timeoutMs) {
    await this.ready;
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.label}: ${role}() timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.proc.send({ type: 'call', id, role, opts });
    });
  }

  /** Subscribes to ctx.emit() events; handler(event, timestampMs). */
  onEvent(handler) {
    this.eventHandlers.push(handler);
  }

  /** Sends a signal to the child's whole process group. */
  signal(sig) {
    this.group.signal(sig);
  }

  /** SIGKILLs the process group and waits for the exit. */
  async kill() {
    if (this.pid === undefined) return;
    this.group.signal('SIGKILL');
    await this.exited;
  }
}

/** Spawns a child and waits until its module is loaded. */
export async function startChild(spec) {
  const child = new Child(spec);
  try {
    await child.ready;
  } catch (err) {
    await child.kill();
    throw err;
  }
  return child;
}

export async function killChildren(children) {
  await Promise.all(children.filter(Boolean).map((c) => c.kill()));
}

/** Synchronous last resort: SIGKILL every child group still alive. */
export function killAllNow() {
  killAllGroupsNow();
}

export function liveChildren() {
  return liveGroupPids();
}

let installed = false;
/**
 * Makes sure no child outlives this process, whatever the way it ends. On a signal, the children
 * are killed first, then `onSignal` (async, e.g. Redis cleanup) gets up to 3 s before the exit.
 */
export function installCleanup(onSignal = async () => {}) {
  if (installed) return;
  installed = true;
  process.on('exit', killAllNow);
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ]) {
    process.once(sig, () => {
      killAllNow();
      const timeout = new Promise((resolve) => setTimeout(resolve, 3000).unref());
      // The race cannot reject (onSignal's failure is reported here), and the process exits either way.
      const cleanup = onSignal().catch((err) => console.error(`cleanup after ${sig} failed:`, err));
      void Promise.race([cleanup, timeout]).finally(() => process.exit(code));
    });
  }
}
