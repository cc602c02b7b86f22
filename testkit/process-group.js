// @ts-check
/**
 * Child processes that each run in their own process group, so that a test or benchmark can kill
 * a child together with anything it started (`kill(-pid)`), and none outlives the parent.
 *
 * A GroupProcess captures stdout and stderr line by line (bounded), parses JSON log lines (pino
 * with XSERVER_LOG_PRETTY=false) into `logs`, and reports every line and its exit on `changes`,
 * so `waitFor(..., { wake: proc.changes })` re-checks a condition the moment output arrives.
 *
 * Teardown: `kill()` SIGKILLs the group and waits (bounded) for the exit. Every group still
 * alive when this process exits is SIGKILLed synchronously by an 'exit' hook installed on first
 * spawn, which also covers a test worker that dies or a benchmark that is interrupted.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { wallMs } from './clock.js';
import { ChangeFeed, waitFor } from './wait.js';

/**
 * @typedef {object} SpawnOptions
 * @property {string} label Name in messages and dumps ("mgr1").
 * @property {string} command Executable (e.g. process.execPath, 'redis-server', 'taskset').
 * @property {string[]} [args]
 * @property {string} [cwd]
 * @property {NodeJS.ProcessEnv} [env] Default: this process's environment.
 * @property {'pipe' | 'ignore'} [stdin] 'pipe' (default) keeps stdin open for `write()`.
 * @property {boolean} [ipc] Adds a Node IPC channel (child.send / 'message'), as fork() does.
 * @property {number} [keepLines] At least this many of the last output lines stay in `lines` (the
 *   oldest go first, in batches). Default 20,000.
 * @property {() => number} [clock] Timestamps of lines and exit. Default wallMs().
 */

/**
 * @typedef {object} OutputLine
 * @property {number} t When the line arrived (clock of the spawner).
 * @property {string} line
 * @property {'stdout' | 'stderr'} stream
 */

/**
 * @typedef {object} LogLine A JSON log line of a child (pino).
 * @property {number} level
 * @property {number} time pino time: wall ms.
 * @property {string} msg
 */

/**
 * @typedef {object} ExitInfo
 * @property {number | null} code
 * @property {NodeJS.Signals | null} signal
 * @property {number} t
 * @property {Error} [error] Set when the process could not be started at all.
 */

/** Enough for every test's diagnostics; a runaway child cannot eat the parent's memory. */
export const DEFAULT_KEEP_LINES = 20_000;
/** Most lines kept beyond `keepLines` before the oldest are dropped in one go. */
const TRIM_BATCH_LINES = 1000;
/** How long kill() waits for the exit of a SIGKILLed group before giving up on it. */
export const KILL_WAIT_MS = 3000;

/** A child exited while something still needed it (start-up, a wait). Not worth retrying. */
export class ProcessExitedError extends Error {
  /**
   * @param {GroupProcess} proc
   * @param {string} during e.g. "before it was up"
   * @param {number} [tailLines] how many of its last output lines to quote
   */
  constructor(proc, during, tailLines = 20) {
    const x = proc.exitInfo;
    const how = x?.error ? `could not start (${x.error.message})` : `exited (code ${x?.code}, signal ${x?.signal})`;
    super(`${proc.label} ${how} ${during}:\n${proc.tail(tailLines)}`);
    this.name = 'ProcessExitedError';
    this.label = proc.label;
  }
}

/** pid -> process, for the synchronous last-resort kill when this process exits. */
const live = new Map();
let exitHookInstalled = false;

export class GroupProcess {
  /** @type {OutputLine[]} */
  lines = [];
  /** @type {(LogLine & Record<string, unknown>)[]} */
  logs = [];
  /** @type {ExitInfo | null} */
  exitInfo = null;
  /** Fires after every output line (once the line listeners ran) and at exit. */
  changes = new ChangeFeed();
  /** @type {Promise<ExitInfo>} */
  exited;
  /** @type {((line: OutputLine) => void)[]} */
  #lineListeners = [];
  #keepLines;
  #clock;

  /** @param {SpawnOptions} opts */
  constructor(opts) {
    const { label, command, args = [], cwd, env = process.env, stdin = 'pipe', ipc = false, keepLines = DEFAULT_KEEP_LINES, clock = wallMs } = opts;
    this.label = label;
    this.#keepLines = keepLines;
    this.#clock = clock;
    this.startedAt = clock();
    /** @type {import('node:child_process').StdioOptions} */
    const stdio = ipc ? [stdin, 'pipe', 'pipe', 'ipc'] : [stdin, 'pipe', 'pipe'];
    // detached: the child leads a new process group, so kill(-pid) reaches its descendants too.
    this.child = spawn(command, args, { cwd, env, stdio, detached: true });
    this.pid = this.child.pid;
    if (this.pid !== undefined) {
      live.set(this.pid, this);
      installExitHook();
    }
    const out = /** @type {import('node:stream').Readable} */ (this.child.stdout);
    const err = /** @type {import('node:stream').Readable} */ (this.child.stderr);
    createInterface({ input: out }).on('line', (line) => this.#onLine(line, 'stdout'));
    createInterface({ input: err }).on('line', (line) => this.#onLine(line, 'stderr'));
    this.child.stdin?.on('error', () => {}); // EPIPE after the child died: its exit says why
    this.exited = new Promise((resolve) => {
      const done = (/** @type {ExitInfo} */ info) => {
        if (this.exitInfo) return;
        if (this.pid !== undefined) live.delete(this.pid);
        this.exitInfo = info;
        resolve(info);
        this.changes.changed();
      };
      this.child.once('exit', (code, signal) => done({ code, signal, t: this.#clock() }));
      // Only a failed spawn has no exit to wait for; other errors (a failed kill) come with one.
      this.child.on('error', (error) => {
        if (this.pid === undefined) done({ code: null, signal: null, t: this.#clock(), error });
      });
    });
  }

  get alive() {
    return this.exitInfo === null;
  }

  /**
   * Runs `fn` for every output line, before `changes` fires (domain parsers hook in here).
   * @param {(line: OutputLine) => void} fn
   */
  onLine(fn) {
    this.#lineListeners.push(fn);
  }

  /**
   * @param {string} line
   * @param {'stdout' | 'stderr'} stream
   */
  #onLine(line, stream) {
    const entry = { t: this.#clock(), line, stream };
    this.lines.push(entry);
    // Trim in batches (one splice per `keepLines` lines, at most per thousand), not once per line.
    if (this.lines.length > this.#keepLines + Math.min(this.#keepLines, TRIM_BATCH_LINES)) this.lines.splice(0, this.lines.length - this.#keepLines);
    if (line.startsWith('{')) {
      try {
        const o = JSON.parse(line);
        if (o !== null && typeof o === 'object' && typeof o.msg === 'string') this.logs.push(o);
      } catch {
        // Not JSON after all (or a torn line): it stays in `lines`.
      }
    }
    for (const fn of this.#lineListeners) fn(entry);
    this.changes.changed();
  }

  /**
   * The first log line whose msg equals or starts with `match` (a string) or matches it (a RegExp).
   * @param {string | RegExp} match
   */
  log(match) {
    return this.logs.find((l) => (typeof match === 'string' ? l.msg === match || l.msg.startsWith(match) : match.test(l.msg)));
  }

  /**
   * Log lines whose msg matches `re`.
   * @param {RegExp} re
   */
  logsMatching(re) {
    return this.logs.filter((l) => re.test(l.msg));
  }

  /** @param {RegExp} re */
  hasLine(re) {
    return this.lines.some((l) => re.test(l.line));
  }

  /**
   * Waits for a log line (see `log()`); fails at once if the process exits first.
   * @param {string | RegExp} match
   * @param {{ timeoutMs: number }} opts
   */
  waitForLog(match, { timeoutMs }) {
    return waitFor(
      () => {
        const l = this.log(match);
        if (l) return l;
        if (!this.alive) throw new ProcessExitedError(this, `before logging ${String(match)}`);
        return undefined;
      },
      { timeoutMs, what: `${this.label} logs ${String(match)}`, wake: this.changes, pollMs: Infinity },
    );
  }

  /** Its last `n` output lines, stderr marked, for error messages. */
  tail(n = 20) {
    return this.lines
      .slice(-n)
      .map((l) => (l.stream === 'stderr' ? `[stderr] ${l.line}` : l.line))
      .join('\n');
  }

  /**
   * Writes to its stdin (spawned with stdin 'pipe').
   * @param {string} text
   */
  write(text) {
    this.child.stdin?.write(text);
  }

  /**
   * Sends `sig` to the whole process group; a group that is already gone is not an error.
   * @param {NodeJS.Signals} sig
   */
  signal(sig) {
    if (this.pid === undefined || !this.alive) return;
    try {
      process.kill(-this.pid, sig);
    } catch (err) {
      if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'ESRCH') throw err;
    }
  }

  /**
   * SIGKILLs the process group and waits for the exit (at most `waitMs`).
   * @param {number} [waitMs]
   */
  async kill(waitMs = KILL_WAIT_MS) {
    if (this.pid === undefined || !this.alive) return;
    killGroupNow(this.pid);
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    await Promise.race([this.exited, new Promise((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
  }
}

/**
 * Spawns `opts.command` in its own process group.
 * @param {SpawnOptions} opts
 */
export function spawnGroup(opts) {
  return new GroupProcess(opts);
}

/**
 * SIGKILLs every group in `procs` and waits for their exits (each at most `waitMs`).
 * @param {Iterable<GroupProcess | undefined | null>} procs
 * @param {number} [waitMs]
 */
export async function killGroups(procs, waitMs = KILL_WAIT_MS) {
  // kill() returns a promise; JSDoc types it loosely for the JS checker
  // eslint-disable-next-line @typescript-eslint/await-thenable
  await Promise.all([...procs].map((p) => p?.kill(waitMs)));
}

/** @param {number} pid */
function killGroupNow(pid) {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Not a group leader any more (or gone): the process itself, if it is still there.
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/** Synchronous last resort: SIGKILL every group still alive. */
export function killAllGroupsNow() {
  for (const pid of live.keys()) killGroupNow(pid);
  live.clear();
}

/** The pids (= group ids) of every child still alive. */
export function liveGroupPids() {
  return [...live.keys()];
}

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', killAllGroupsNow);
}

/**
 * Whether `cmd` is an executable on PATH (to skip a test that needs, say, redis-server).
 * @param {string} cmd
 */
export function commandExists(cmd) {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => {
    try {
      fs.accessSync(path.join(dir, cmd), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
