/**
 * BotPool: simulated clients spread over worker processes (./worker.ts, one fork() each), so the
 * load generator is not the bottleneck of its own measurement. The parent only hands out targets
 * and adds up the workers' running totals (histograms merged bucket by bucket).
 *
 *   const pool = await BotPool.start(options);
 *   pool.setClients(1000);            // grows; the workers log their share in at the ramp
 *   const t = pool.totals();          // cumulative; a window is totals() minus an earlier one
 *   const final = await pool.quiesce(); // no new ticks, in-flight ones done, clients still connected
 *   await pool.close();
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { LatencyHistogram } from './histogram.js';
import type { FromWorker, ToWorker, WorkerOptions, WorkerStats } from './messages.js';

const WORKER_ENTRY = fileURLToPath(new URL('./worker.js', import.meta.url));
/** How long a worker may take to load (node start-up and the script module). */
const WORKER_START_TIMEOUT_MS = 30_000;

export type PoolOptions = Omit<WorkerOptions, 'worker' | 'workers' | 'rampPerSec' | 'maxPendingLogins'> & {
  workers: number;
  /** All workers together; each gets its share. */
  rampPerSec: number;
  maxPendingLogins: number;
};

/** The workers' totals added up: a WorkerStats summed over the workers, histograms merged. */
export interface PoolTotals extends Omit<WorkerStats, 'latency' | 'login'> {
  /** Most bots connected at once, as seen at the workers' reports. */
  peakConnected: number;
  latency: LatencyHistogram;
  login: LatencyHistogram;
  /** performance.now() of the newest report in these totals. */
  at: number;
}

interface Worker {
  proc: ChildProcess;
  stats: WorkerStats | null;
  exited: Promise<void>;
  on: (t: FromWorker['t'], fn: (m: FromWorker) => void) => void;
}

export class BotPool {
  private peak = 0;
  /** Workers that exited before close(): their bots are gone (counted as worker:EXITED). */
  private lost = 0;
  private last = performance.now();
  private closed = false;

  private constructor(
    private readonly workers: Worker[],
    private readonly opts: PoolOptions,
  ) {}

  static async start(opts: PoolOptions): Promise<BotPool> {
    const n = Math.max(1, opts.workers);
    const workers: Worker[] = [];
    const pool = new BotPool(workers, opts);
    try {
      for (let i = 0; i < n; i++) workers.push(pool.spawn(i, n));
      await Promise.all(
        workers.map(
          (w) =>
            new Promise<void>((resolve, reject) => {
              const timer = setTimeout(
                () => reject(new Error(`a bot worker did not start within ${WORKER_START_TIMEOUT_MS} ms`)),
                WORKER_START_TIMEOUT_MS,
              );
              w.on('ready', () => {
                clearTimeout(timer);
                resolve();
              });
              w.on('fatal', (m) => {
                clearTimeout(timer);
                reject(new Error((m as { message: string }).message));
              });
              void w.exited.then(() => {
                clearTimeout(timer);
                reject(new Error(`a bot worker exited while starting (pid ${w.proc.pid})`));
              });
            }),
        ),
      );
    } catch (e) {
      pool.kill();
      throw e;
    }
    return pool;
  }

  private spawn(i: number, n: number): Worker {
    const o = this.opts;
    // --max-old-space-size, --cpu-prof etc. of this process apply to the workers too.
    const proc = fork(WORKER_ENTRY, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    const handlers = new Map<string, ((m: FromWorker) => void)[]>();
    const w: Worker = {
      proc,
      stats: null,
      exited: new Promise((resolve) => proc.once('exit', () => resolve())),
      on: (t, fn) => handlers.set(t, [...(handlers.get(t) ?? []), fn]),
    };
    proc.on('message', (m: FromWorker) => {
      if (m.t === 'stats' || m.t === 'quiesced') {
        w.stats = m.stats;
        this.notePeak();
      }
      for (const fn of handlers.get(m.t) ?? []) fn(m);
    });
    proc.on('error', () => {}); // an IPC failure shows as the exit
    proc.once('exit', () => {
      if (!this.closed) this.lost++;
    });
    const share = (total: number): number => Math.max(1, Math.floor(total / n) + (i < total % n ? 1 : 0));
    const { workers: _count, ...rest } = o;
    const options: WorkerOptions = { ...rest, worker: i, workers: n, rampPerSec: o.rampPerSec / n, maxPendingLogins: share(o.maxPendingLogins) };
    this.post(w, { t: 'init', options });
    return w;
  }

  private post(w: Worker, msg: ToWorker): void {
    if (w.proc.connected) w.proc.send(msg);
  }

  private notePeak(): void {
    let c = 0;
    for (const w of this.workers) c += w.stats?.connected ?? 0;
    this.peak = Math.max(this.peak, c);
    this.last = performance.now();
  }

  /** Number of workers. */
  get size(): number {
    return this.workers.length;
  }

  /** Pids of the workers (for their CPU and memory). */
  get pids(): number[] {
    return this.workers.map((w) => w.proc.pid ?? 0);
  }

  /** Grows the pool to `clients` bots in total (it never shrinks). */
  setClients(clients: number): void {
    const n = this.workers.length;
    this.workers.forEach((w, i) => this.post(w, { t: 'target', clients: Math.floor(clients / n) + (i < clients % n ? 1 : 0) }));
  }

  totals(): PoolTotals {
    const t: PoolTotals = {
      connected: 0,
      peakConnected: this.peak,
      firstOpenAt: null,
      bots: 0,
      loginsOk: 0,
      loginsFailed: 0,
      messages: 0,
      ok: 0,
      ticks: 0,
      skipped: 0,
      errors: {},
      latency: new LatencyHistogram(),
      login: new LatencyHistogram(),
      at: this.last,
    };
    for (const w of this.workers) {
      const s = w.stats;
      if (!s) continue;
      t.connected += s.connected;
      t.bots += s.bots;
      if (s.firstOpenAt !== null) t.firstOpenAt = Math.min(t.firstOpenAt ?? Infinity, s.firstOpenAt);
      t.loginsOk += s.loginsOk;
      t.loginsFailed += s.loginsFailed;
      t.messages += s.messages;
      t.ok += s.ok;
      t.ticks += s.ticks;
      t.skipped += s.skipped;
      for (const [k, v] of Object.entries(s.errors)) t.errors[k] = (t.errors[k] ?? 0) + v;
      t.latency.add(s.latency);
      t.login.add(s.login);
    }
    if (this.lost > 0) t.errors['worker:EXITED'] = this.lost;
    return t;
  }

  /** Stops ticks and logins and waits for the ticks in flight; the clients stay connected. Final totals. */
  async quiesce(): Promise<PoolTotals> {
    const waits = this.workers.map((w) => this.reply(w, { t: 'quiesce' }, 'quiesced', this.opts.stopTimeoutMs * 2));
    await Promise.all(waits);
    return this.totals();
  }

  /** Closes every client and waits for the workers to exit (killing those that take too long). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.workers.map((w) => this.reply(w, { t: 'close' }, 'closed', this.opts.stopTimeoutMs * 2)));
    const deadline = new Promise<void>((r) => setTimeout(r, this.opts.stopTimeoutMs).unref());
    await Promise.race([Promise.all(this.workers.map((w) => w.exited)), deadline]);
    this.kill();
  }

  /** SIGKILL to every worker still running. */
  kill(): void {
    this.closed = true;
    for (const w of this.workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
  }

  /** Sends `msg` and resolves at the worker's `answer`, its exit, or after `timeoutMs`. */
  private reply(w: Worker, msg: ToWorker, answer: FromWorker['t'], timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      w.on(answer, done);
      void w.exited.then(done);
      this.post(w, msg);
    });
  }
}
