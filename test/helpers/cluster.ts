/**
 * Harness for the real-process cluster tests (test/cluster/*.test.ts).
 *
 * Spawns `node bin/xserver.js mgr` and `node bin/xserver.js node --entry test/fixtures/probe-service.js`
 * (and, for one test, a private redis-server) as process groups of the test kit (testkit/: output
 * capture, JSON log parsing, group kill, the machine lock, the fast timings) and adds what is
 * particular to these tests: probe events, cluster-wide waits with a timeline, Redis helpers.
 *
 * - Probe children print `PROBE {...}` lines (see the fixture); they become `proc.events`.
 * - mgr and node children log JSON lines (pino, XSERVER_LOG_PRETTY=false); they become `proc.logs`.
 * - `cluster.waitFor(what, predicate, timeoutMs)` re-evaluates the predicate on every line and exit
 *   of every child; it resolves with the predicate's first non-false/undefined/null value.
 * - `clusterSuite()` registers the hooks: a cross-file lock (cluster files run one at a time, so
 *   their timing measurements do not fight over the two cores), and after each test SIGKILL of
 *   every process group it started and deletion of its Redis keys (SCAN MATCH xs:{<cluster>}:*),
 *   whether the test passed or not. On failure the children's output is written to
 *   $TMPDIR/xserver-cluster-logs/<cluster>/ and a merged timeline is printed.
 *
 * Each test gets its own cluster name `t-<file random>-<n>` (env XSERVER_CLUSTER).
 *
 * Also here: a private redis-server child (`startRedis`), an in-process TCP latency proxy for a slow
 * store path (`startLatencyProxy`), `xserver status --json` (`status`), and a check that the mgr's
 * membership mirror in Redis is complete (`mirrorHas`) before a test kills the mgr.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { expect } from 'vitest';
import {
  ChangeFeed,
  GroupProcess,
  ProcessExitedError,
  REPO_ROOT,
  clusterKeyPatterns,
  deleteKeys,
  freePort,
  killGroups,
  timingsEnv,
  waitFor,
  wallMs,
  xserverEnv,
  xserverSpawnOptions,
  xserverCommand,
  xserverStatus,
} from '../../testkit/index.js';
import type { SpawnOptions } from '../../testkit/process-group.js';
import { processSuite } from '../../testkit/suite.js';

export { commandExists, freePort } from '../../testkit/index.js';

export const ROOT = REPO_ROOT;
export const PROBE_ENTRY = path.join(ROOT, 'test/fixtures/probe-service.js');
export const SHARED_REDIS_URL = 'redis://127.0.0.1:6379';

/** Wall clock in ms with a sub-ms fraction; same clock as the probes' `t`. */
export const wall = wallMs;

/** The kit's fast timings (testkit/timings.js) as XSERVER_* env, for tests not about the defaults. */
export const FAST: Readonly<Record<string, string>> = timingsEnv();

export interface ProbeEvent {
  ev: string;
  /** Wall time in the probe when it happened. */
  t: number;
  [k: string]: unknown;
}

export interface LogLine {
  level: number;
  /** pino time: wall ms. */
  time: number;
  msg: string;
  [k: string]: unknown;
}

export type Signal = 'SIGKILL' | 'SIGSTOP' | 'SIGCONT' | 'SIGTERM';

// ------------------------------------------------------------------------------------- children

/** A child of the cluster: a process group (testkit) plus the probe's `PROBE {...}` events. */
export class Proc extends GroupProcess {
  readonly events: ProbeEvent[] = [];

  constructor(
    readonly kind: 'mgr' | 'probe' | 'redis' | 'role',
    opts: SpawnOptions,
  ) {
    super(opts);
    this.onLine(({ line }) => {
      if (!line.startsWith('PROBE ')) return;
      try {
        this.events.push(JSON.parse(line.slice(6)) as ProbeEvent);
      } catch {
        /* a torn line would be a fixture bug; it stays in lines */
      }
    });
  }

  eventsOf(ev: string, since = 0): ProbeEvent[] {
    return this.events.filter((e) => e.ev === ev && e.t >= since);
  }

  lastOf(ev: string): ProbeEvent | undefined {
    for (let i = this.events.length - 1; i >= 0; i--) if (this.events[i]!.ev === ev) return this.events[i];
    return undefined;
  }
}

export class MgrProc extends Proc {
  /** From its first log line ("mgr started"). */
  get instanceId(): string | undefined {
    return this.logs.find((l) => typeof l.instanceId === 'string')?.instanceId as string | undefined;
  }

  /** The log line of its (last) takeover, if any. */
  get activeLog(): LogLine | undefined {
    const all = this.logsMatching(/^mgr is ACTIVE/);
    return all[all.length - 1];
  }

  get epoch(): number | undefined {
    return this.activeLog?.epoch as number | undefined;
  }
}

export interface LoadResult {
  rid: string;
  sent: number;
  ok: number;
  failed: number;
  errors: Record<string, number>;
  samples: { t: number; code: string; message: string }[];
  maxLatencyMs: number;
  durationMs: number;
}

export class LoadHandle {
  constructor(
    readonly rid: string,
    private readonly probe: ProbeProc,
    private readonly cluster: Cluster,
  ) {}

  /** The latest progress report (sent/ok/failed/inflight), if any. */
  progress(): { sent: number; ok: number; failed: number; inflight: number } | undefined {
    const all = this.probe.events.filter((e) => e.ev === 'load-progress' && e.rid === this.rid);
    return all[all.length - 1] as never;
  }

  /** Waits until `n` more requests than now have succeeded (traffic is really flowing). */
  async okAtLeast(n: number, timeoutMs: number): Promise<void> {
    await this.cluster.waitFor(`${this.probe.label} load ${this.rid}: ${n} ok`, () => (this.progress()?.ok ?? 0) >= n, timeoutMs);
  }

  async stop(timeoutMs = 10_000): Promise<LoadResult> {
    this.probe.send({ op: 'stop', rid: this.rid });
    return this.done(timeoutMs);
  }

  done(timeoutMs: number): Promise<LoadResult> {
    return this.cluster.waitFor(
      `${this.probe.label} load ${this.rid} done`,
      () => this.probe.events.find((e) => e.ev === 'load-done' && e.rid === this.rid) as LoadResult | undefined,
      timeoutMs,
    );
  }
}

export class ProbeProc extends Proc {
  id = '';
  port = 0;
  private nextRid = 1;
  cluster!: Cluster;

  send(cmd: Record<string, unknown>): void {
    this.write(JSON.stringify(cmd) + '\n');
  }

  /** Sends `op` and waits for the reply event `replyEv` with the same rid. */
  async call<T = ProbeEvent>(op: string, fields: Record<string, unknown>, replyEv: string, timeoutMs = 5000): Promise<T> {
    const rid = `${this.label}-${this.nextRid++}`;
    this.send({ op, rid, ...fields });
    return this.cluster.waitFor(
      `${this.label}: reply ${replyEv} to ${op} ${rid}`,
      () => this.events.find((e) => e.ev === replyEv && e.rid === rid) as T | undefined,
      timeoutMs,
    );
  }

  /** This node's own view: ids of every member it lists (itself included). */
  async view(timeoutMs = 5000): Promise<{ self: string; ids: string[]; mgrConnected: boolean }> {
    return this.call('view', {}, 'view', timeoutMs);
  }

  async request(target: string, body: string, timeoutMs = 2000): Promise<{ ok: boolean; body?: string; code?: string; message?: string }> {
    return this.call('request', { target, body, timeoutMs }, 'reply', timeoutMs + 5000);
  }

  /** Sends `count` fire-and-forget messages `<body>:<i>` to `target` (at `rate`/s); resolves once all were handed to the node. */
  async sendMessages(
    target: string,
    body: string,
    opts: { count?: number; rate?: number } = {},
    timeoutMs = 30_000,
  ): Promise<{ accepted: number; refused: number }> {
    const r = await this.call<{ accepted: number; refused: number }>('send', { target, body, ...opts }, 'sent', timeoutMs);
    return { accepted: r.accepted, refused: r.refused };
  }

  /** Messages (MSG) this probe received from `from` since `since`, as their bodies. */
  messagesFrom(from: string, since = 0): string[] {
    return this.eventsOf('message', since)
      .filter((e) => e.from === from)
      .map((e) => String(e.body));
  }

  /** Starts ECHO traffic to `target` at `rate`/s (until stopped, or `count` requests). */
  async startLoad(target: string, rate: number, opts: { count?: number; timeoutMs?: number } = {}): Promise<LoadHandle> {
    const rid = `${this.label}-load-${this.nextRid++}`;
    this.send({ op: 'load', rid, target, rate, ...opts });
    await this.cluster.waitFor(`${this.label}: load-started ${rid}`, () => this.events.some((e) => e.ev === 'load-started' && e.rid === rid), 5000);
    return new LoadHandle(rid, this, this.cluster);
  }

  /** Membership events about `peer` (joined/left/updated) since `since`. */
  about(peer: string, since = 0): ProbeEvent[] {
    return this.events.filter((e) => e.peer === peer && e.t >= since);
  }
}

export class RedisProc extends Proc {
  port = 0;
  host = '127.0.0.1';
  get url(): string {
    return `redis://${this.host}:${this.port}`;
  }
}

/** Spawn options run through `prefix` (e.g. `ip netns exec <ns>`); unchanged without one. */
function prefixed(prefix: string[] | undefined, o: SpawnOptions): SpawnOptions {
  if (!prefix || prefix.length === 0) return o;
  return { ...o, command: prefix[0]!, args: [...prefix.slice(1), o.command, ...(o.args ?? [])] };
}

// ------------------------------------------------------------------------------------- cluster

export interface ClusterOptions {
  /** XSERVER_* (and other) env for every process of the cluster, e.g. FAST. */
  env?: Record<string, string>;
  redisUrl?: string;
}

export class Cluster {
  readonly name: string;
  redisUrl: string;
  readonly env: Record<string, string>;
  readonly procs: Proc[] = [];
  /** Fires on every line and exit of every child: what `waitFor` re-checks on. */
  private readonly changes = new ChangeFeed();
  private readonly counters: Record<string, number> = {};
  private destroyed = false;

  constructor(name: string, opts: ClusterOptions = {}) {
    this.name = name;
    this.redisUrl = opts.redisUrl ?? SHARED_REDIS_URL;
    this.env = { ...(opts.env ?? {}) };
  }

  get mgrs(): MgrProc[] {
    return this.procs.filter((p): p is MgrProc => p instanceof MgrProc);
  }

  get probes(): ProbeProc[] {
    return this.procs.filter((p): p is ProbeProc => p instanceof ProbeProc);
  }

  private nextLabel(kind: string): string {
    this.counters[kind] = (this.counters[kind] ?? 0) + 1;
    return `${kind}${this.counters[kind]}`;
  }

  private childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return xserverEnv({
      XSERVER_CLUSTER: this.name,
      XSERVER_REDIS_URL: this.redisUrl,
      XSERVER_LOG_LEVEL: 'info',
      ...this.env,
      ...extra,
    });
  }

  /** Adds a child to the cluster: its output wakes the cluster's waiters. */
  private adopt<P extends Proc>(p: P): P {
    if (this.destroyed) {
      void p.kill();
      throw new Error('cluster already destroyed');
    }
    p.changes.subscribe(() => this.changes.changed());
    this.procs.push(p);
    return p;
  }

  /**
   * Starts an mgr and waits until it listens (it may still be a standby). `prefix` runs it through
   * another command, e.g. `ip netns exec <ns>` (test/helpers/netns.ts).
   */
  async startMgr(opts: { env?: Record<string, string>; label?: string; prefix?: string[] } = {}): Promise<MgrProc> {
    const label = opts.label ?? this.nextLabel('mgr');
    const p = this.adopt(new MgrProc('mgr', prefixed(opts.prefix, xserverSpawnOptions({ label, args: ['mgr'], env: this.childEnv(opts.env) }))));
    await this.waitFor(`${label} started`, () => p.instanceId !== undefined || this.exitedEarly(p), 15_000);
    return p;
  }

  /** Waits until `mgr` holds the lease. */
  async mgrActive(mgr: MgrProc, timeoutMs = 10_000): Promise<LogLine> {
    return this.waitFor(`${mgr.label} ACTIVE`, () => mgr.activeLog ?? this.exitedEarly(mgr), timeoutMs);
  }

  /**
   * Starts any other role (`xserver <args>`: login, gateway, a node with another entry) and waits
   * for its log line matching `ready` (e.g. /^login listening/).
   */
  async startRole(opts: { label: string; args: string[]; ready: RegExp; env?: Record<string, string>; prefix?: string[] }): Promise<Proc> {
    const p = this.adopt(
      new Proc(
        'role',
        prefixed(opts.prefix, { ...xserverSpawnOptions({ label: opts.label, args: opts.args, env: this.childEnv(opts.env) }), stdin: 'ignore' }),
      ),
    );
    await this.waitFor(`${opts.label}: ${String(opts.ready)}`, () => p.logsMatching(opts.ready).length > 0 || this.exitedEarly(p), 15_000);
    return p;
  }

  /** Starts a probe node and waits until it listens (not until it registers). */
  async startProbe(opts: { env?: Record<string, string>; label?: string; type?: number; prefix?: string[] } = {}): Promise<ProbeProc> {
    const label = opts.label ?? this.nextLabel('probe');
    const env = this.childEnv({ ...(opts.type !== undefined ? { PROBE_TYPE: String(opts.type) } : {}), ...(opts.env ?? {}) });
    const p = new ProbeProc('probe', prefixed(opts.prefix, xserverSpawnOptions({ label, args: ['node', '--entry', PROBE_ENTRY], env })));
    p.cluster = this;
    this.adopt(p);
    await this.waitFor(`${label} listening`, () => (p.lastOf('listening') && p.lastOf('ready')) || this.exitedEarly(p), 15_000);
    p.id = p.lastOf('ready')!.id as string;
    p.port = p.lastOf('listening')!.port as number;
    return p;
  }

  /** Starts several probes in parallel. */
  startProbes(n: number, opts: { env?: Record<string, string>; type?: number } = {}): Promise<ProbeProc[]> {
    return Promise.all(Array.from({ length: n }, () => this.startProbe(opts)));
  }

  /**
   * Starts a private redis-server (no persistence) on `port` (default: a free one) and waits until
   * it accepts connections. `bind` (default 127.0.0.1) is the address it listens on.
   */
  async startRedis(port?: number, bind = '127.0.0.1'): Promise<RedisProc> {
    const p0 = port ?? (await freePort());
    const label = this.nextLabel('redis');
    const args = ['--port', String(p0), '--bind', bind, '--save', '', '--appendonly', 'no', '--daemonize', 'no'];
    // Beyond loopback without a password Redis refuses clients unless protected mode is off.
    if (bind !== '127.0.0.1') args.push('--protected-mode', 'no');
    const p = this.adopt(new RedisProc('redis', { label, command: 'redis-server', args, cwd: ROOT }));
    p.port = p0;
    p.host = bind;
    await this.waitFor(`${label} ready on ${p0}`, () => p.hasLine(/Ready to accept connections/) || this.exitedEarly(p), 10_000);
    return p;
  }

  private exitedEarly(p: Proc): undefined {
    if (p.exitInfo) throw new ProcessExitedError(p, 'before it was up');
    return undefined;
  }

  /**
   * A TCP proxy in this process that forwards to `targetPort` on 127.0.0.1 (or `at.targetHost`)
   * and delays every chunk by `delayMs` in each direction (order kept): a slow network path.
   * `at.listenHost`/`at.listenPort` place it (default: any free port on 127.0.0.1).
   */
  async startLatencyProxy(targetPort: number, delayMs: number, at: LatencyProxyPlace = {}): Promise<LatencyProxy> {
    const proxy = await LatencyProxy.start(targetPort, delayMs, at);
    this.proxies.push(proxy);
    return proxy;
  }

  private proxies: LatencyProxy[] = [];

  /** Sends `sig` to the process (its group); returns the wall time just before. */
  kill(p: Proc, sig: Signal): number {
    const t = wall();
    p.signal(sig);
    return t;
  }

  /**
   * Resolves with the first value of `predicate` that is not undefined/null/false, re-checking on
   * every line and exit of every child; rejects after `timeoutMs` (or when the predicate throws).
   */
  waitFor<T>(what: string, predicate: () => T | undefined | null | false, timeoutMs: number): Promise<T> {
    return waitFor(predicate, {
      timeoutMs,
      what,
      wake: this.changes,
      pollMs: Infinity,
      context: () => `--- recent events ---\n${this.timeline(40)}`,
    });
  }

  /**
   * Waits until every probe is registered (mgr-connected) and lists every other probe (a joined
   * event for each, from a snapshot or a JOINED).
   */
  async allListed(probes: ProbeProc[], timeoutMs = 15_000): Promise<void> {
    await this.waitFor(
      'every probe registered and listing every other one',
      () =>
        probes.every(
          (p) => p.lastOf('mgr-connected') !== undefined && probes.every((q) => q === p || p.eventsOf('joined').some((e) => e.peer === q.id)),
        ),
      timeoutMs,
    );
  }

  /**
   * Waits until the mgr's membership mirror in Redis lists every probe. The mgr writes it after it
   * acknowledged a registration, so a test that kills the mgr right after the last registration
   * would otherwise race that write.
   */
  async mirrorHas(probes: ProbeProc[], timeoutMs = 5000): Promise<void> {
    const r = this.redis();
    const want = probes.map((p) => p.id);
    await this.pollUntil(
      'the membership mirror lists every probe',
      async () => {
        const ids = new Set(await r.hkeys(this.key('mirror')));
        return want.every((id) => ids.has(id));
      },
      timeoutMs,
      20,
    );
  }

  /** Asks each of `probes` for its own view and expects exactly the ids of `want`. */
  async expectViews(probes: ProbeProc[], want: ProbeProc[]): Promise<void> {
    const ids = want.map((p) => p.id).sort();
    for (const p of probes) expect((await p.view()).ids, `${p.label}'s own view`).toEqual(ids);
  }

  /** Polls an async condition (for things that print nothing, e.g. `xserver status`). */
  pollUntil<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs: number, everyMs = 100): Promise<T> {
    return waitFor(fn, { timeoutMs, what, pollMs: everyMs, retryErrors: true });
  }

  /** `xserver status --json` against this cluster. */
  status(timeoutMs = 10_000): Promise<{ mgr: Record<string, unknown>; members: Record<string, unknown>[]; checks: Record<string, unknown>[] }> {
    return xserverStatus(this.childEnv(), timeoutMs);
  }

  /** Runs `xserver <args>` against this cluster; resolves with its exit code and output. */
  cli(args: string[], timeoutMs = 10_000): Promise<{ code: number; stdout: string; stderr: string }> {
    return xserverCommand(args, this.childEnv(), timeoutMs);
  }

  /** A Redis client on this cluster's store (closed by destroy()). */
  private redisClients: Redis[] = [];
  redis(): Redis {
    const r = new Redis(this.redisUrl, { lazyConnect: false, maxRetriesPerRequest: 1 });
    r.on('error', () => {});
    this.redisClients.push(r);
    return r;
  }

  key(suffix: string): string {
    return `xs:{${this.name}}:${suffix}`;
  }

  /** Merged, time-ordered probe events and mgr/node log lines, for diagnostics. */
  timeline(last = Infinity): string {
    const rows: { t: number; s: string }[] = [];
    for (const p of this.procs) {
      for (const e of p.events) {
        if (e.ev === 'load-progress') continue;
        const { ev, t, ...rest } = e;
        rows.push({ t, s: `${p.label.padEnd(7)} ${ev} ${JSON.stringify(rest)}` });
      }
      for (const l of p.logs)
        if (l.level >= 30)
          rows.push({
            t: l.time,
            s: `${p.label.padEnd(7)} [log ${l.level}] ${l.msg}${l.code ? ' ' + String(l.code) : ''}${l.reason ? ' ' + String(l.reason) : ''}`,
          });
      if (p.exitInfo) rows.push({ t: p.exitInfo.t, s: `${p.label.padEnd(7)} EXIT code=${p.exitInfo.code} signal=${p.exitInfo.signal}` });
    }
    rows.sort((a, b) => a.t - b.t);
    const t0 = rows[0]?.t ?? 0;
    return rows
      .slice(Number.isFinite(last) ? -last : 0)
      .map((r) => `+${((r.t - t0) / 1000).toFixed(3)}s ${r.s}`)
      .join('\n');
  }

  /** Writes every child's output and the timeline under $TMPDIR/xserver-cluster-logs/<cluster>/. */
  dumpLogs(): string {
    const dir = path.join(os.tmpdir(), 'xserver-cluster-logs', this.name);
    fs.mkdirSync(dir, { recursive: true });
    for (const p of this.procs) fs.writeFileSync(path.join(dir, `${p.label}.log`), p.tail(p.lines.length) + '\n');
    fs.writeFileSync(path.join(dir, 'timeline.txt'), this.timeline() + '\n');
    return dir;
  }

  /** SIGKILLs every process group it started (also stopped ones), then deletes the cluster's keys. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await killGroups(this.procs);
    for (const p of this.proxies) p.close();
    for (const r of this.redisClients) r.disconnect();
    this.redisClients = [];
    await deleteKeys(SHARED_REDIS_URL, clusterKeyPatterns(this.name));
  }
}

// ------------------------------------------------------------------------------------- helpers

export interface LatencyProxyPlace {
  targetHost?: string;
  listenHost?: string;
  listenPort?: number;
}

export class LatencyProxy {
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static start(targetPort: number, delayMs: number, at: LatencyProxyPlace = {}): Promise<LatencyProxy> {
    return new Promise((resolve, reject) => {
      let proxy: LatencyProxy;
      const server = net.createServer((client) => {
        const upstream = net.connect({ host: at.targetHost ?? '127.0.0.1', port: targetPort });
        proxy.sockets.add(client);
        proxy.sockets.add(upstream);
        // Timers of one duration fire in creation order, so chunks keep their order.
        const pipe = (from: net.Socket, to: net.Socket): void => {
          from.on('data', (chunk) => void setTimeout(() => !to.destroyed && to.write(chunk), delayMs));
          from.on('end', () => void setTimeout(() => to.end(), delayMs));
          from.on('close', () => void setTimeout(() => to.destroy(), delayMs));
          from.on('error', () => {});
        };
        pipe(client, upstream);
        pipe(upstream, client);
      });
      server.once('error', reject);
      server.listen(at.listenPort ?? 0, at.listenHost ?? '127.0.0.1', () => {
        proxy = new LatencyProxy(server, (server.address() as net.AddressInfo).port);
        resolve(proxy);
      });
    });
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }
}

// ------------------------------------------------------------------------------------- suite hooks

/**
 * Registers the hooks of a cluster test file and returns `newCluster`, which each test calls to
 * get a fresh cluster (own name, own processes), destroyed after the test whatever happened.
 */
export function clusterSuite(): { newCluster(opts?: ClusterOptions): Cluster; fileTag: string } {
  const fileTag = randomBytes(4).toString('hex');
  let n = 0;
  // Anything a crashed test left behind under this file's clusters.
  const suite = processSuite({ afterAll: () => deleteKeys(SHARED_REDIS_URL, clusterKeyPatterns(`t-${fileTag}-*`)).then(() => {}) });
  return {
    fileTag,
    newCluster(opts?: ClusterOptions): Cluster {
      const c = new Cluster(`t-${fileTag}-${++n}`, opts);
      return suite.track(c, () => {
        const dir = c.dumpLogs();
        console.error(`[cluster ${c.name}] test failed; child output in ${dir}\n--- timeline (last 80) ---\n${c.timeline(80)}`);
      });
    },
  };
}
