/**
 * `xserver up` (npm start): a whole cluster on this machine.
 *
 * With a reachable Redis every role is its own child process (as in production); without one it
 * says so plainly and runs every role inside this process on the in-memory store, so a newcomer
 * sees it work before installing anything. Ctrl-C stops everything.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveConfig, redactUrl, type LoadOptions } from '../config/load.js';
import { createLogger } from '../log.js';
import { Metrics } from '../metrics.js';
import { createRoleContext, startRole, stopInOrder, type Role, type StopStep } from '../roles.js';
import { MemoryStore, RedisStore, isMemoryUrl } from '../store/index.js';
import { setPath, type XConfig } from '../config/schema.js';
import { startAdminServer, type AdminServer } from '../admin/http.js';
import type { Logger } from '../log.js';
import { XError, isXError } from '../errors.js';
import { isReadyMessage } from './process.js';
import { ServiceWatcher, watchDirs, type WatchedService } from './watch.js';
import type { LeaseWatcher } from '../store/store.js';
import { RollLock, runRoll, serveRollControl } from './roll-control.js';
import type { PlanStep, RollHost, RollProcess } from './roll.js';

/** drainTimeoutMs of the children of `xserver up` unless set: Ctrl-C should not wait long. */
const UP_DRAIN_TIMEOUT_MS = 1000;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin', 'xserver.js');

/**
 * Admin ports of the two mgrs of the demo: fixed, because a person opens their dashboards
 * (`up --admin-port N` moves them to N and N+1).
 */
const DASHBOARD_PORT = 7090;
/** How long `up` tries Redis before it falls back to one process on the in-memory store. */
const REDIS_PROBE_TIMEOUT_MS = 1500;
/** On Ctrl-C, how long the children get to exit after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 5000;
const EXIT_POLL_MS = 50;
/** How long the banner waits for the login service (the children start in parallel). */
const LOGIN_WAIT_MS = 20_000;
const LOGIN_POLL_MS = 200;
/** `up --watch-delay` default: the quiet time after a change (an editor's save is several writes). */
export const DEFAULT_WATCH_DELAY_MS = 200;
/** One admin request of `xserver roll` to a child mgr (it is on this host). */
const MGR_ADMIN_TIMEOUT_MS = 2000;

export type { PlanStep } from './roll.js';

/** The built examples (`npm run build`: examples/*.ts -> dist/examples/, the chat page -> dist/examples/web/). */
const example = (p: string): string => path.join(root, 'dist', 'examples', p);

/**
 * The all-in-one cluster (SPEC §7): mgr + standby, login (serving the chat page), two gateways,
 * two lobbies and a match. Fixed ports are only for the URLs a person opens; everything else
 * finds everything else through the mgr.
 */
export function clusterPlan(dashboardPort = DASHBOARD_PORT): PlanStep[] {
  return [
    { name: 'mgr-1', role: 'mgr', set: { adminPort: dashboardPort } },
    { name: 'mgr-2', role: 'mgr', set: { adminPort: dashboardPort + 1 } },
    { name: 'login', role: 'login', set: { 'login.staticDir': example('web'), 'login.autoRegister': true, 'login.playground': true } },
    { name: 'gateway-1', role: 'gateway' },
    { name: 'gateway-2', role: 'gateway' },
    { name: 'lobby-1', role: 'node', entry: example('lobby/service.js') },
    { name: 'lobby-2', role: 'node', entry: example('lobby/service.js') },
    { name: 'match', role: 'node', entry: example('match/service.js') },
  ];
}

/**
 * `xserver up --service <entry>...`: your services instead of the demo's, behind one mgr, login
 * (unknown accounts register at first login) and one gateway; one process per entry.
 */
export function servicePlan(entries: string[], dashboardPort = DASHBOARD_PORT): PlanStep[] {
  const names = new Set<string>();
  const services = entries.map((entry): PlanStep => {
    const base = path.basename(entry).replace(/\.[cm]?js$/, '');
    let name = base;
    for (let i = 2; names.has(name); i++) name = `${base}-${i}`;
    names.add(name);
    return { name, role: 'node', entry: path.resolve(entry) };
  });
  return [
    { name: 'mgr', role: 'mgr', set: { adminPort: dashboardPort } },
    { name: 'login', role: 'login', set: { 'login.autoRegister': true, 'login.playground': true } },
    { name: 'gateway', role: 'gateway' },
    ...services,
  ];
}

/** The first mgr's admin port: `up --admin-port`, else 7090 (the second mgr's is the next one). */
function dashboardPortOf(config: XConfig): number {
  return config.adminPort > 0 ? config.adminPort : DASHBOARD_PORT;
}

function banner(config: XConfig, mode: string, redis: boolean, activeAdminPort: number | null): string {
  const loginPort = config.login.port;
  const url = (port: number): string => `http://${config.adminHost}:${port}/dashboard`;
  // The active mgr's dashboard first; either mgr serves it (a standby shows the active one's view).
  const ports = [dashboardPortOf(config), dashboardPortOf(config) + 1];
  const [first, other] = activeAdminPort === ports[1] ? [ports[1], ports[0]] : [ports[0], ports[1]];
  const which = activeAdminPort === null ? 'the active mgr is not known yet' : 'active mgr';
  return [
    '',
    `  xserver cluster "${config.cluster}" is up (${mode})`,
    `  chat demo:  http://127.0.0.1:${loginPort}/    (open it in two tabs; any account/password registers)`,
    `  playground: http://127.0.0.1:${loginPort}/playground/   (send any service's commands as any account)`,
    `  login API:  POST http://127.0.0.1:${loginPort}/login`,
    `  dashboard:  ${url(first)}   (${which}; the standby's, showing the same: ${url(other)})`,
    redis ? `  status:     npx xserver status --cluster ${config.cluster}` : '  status:     the dashboard (xserver status needs Redis)',
    '  Ctrl-C stops everything.',
    '',
  ].join('\n');
}

/** How long the banner waits for an mgr to hold the lease (it names the active mgr's dashboard). */
const LEASE_WAIT_MS = 10_000;
const LEASE_POLL_MS = 100;

/** The admin port of the mgr holding the lease; null when none does within `timeoutMs`. */
async function activeMgrAdminPort(store: LeaseWatcher, timeoutMs: number): Promise<number | null> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const lease = await store.readLease().catch(() => null);
    if (lease?.adminPort) return lease.adminPort;
    await new Promise((r) => setTimeout(r, LEASE_POLL_MS));
  }
  return null;
}

async function redisReachable(url: string, cluster: string): Promise<boolean> {
  if (isMemoryUrl(url)) return false;
  const s = new RedisStore(url, cluster);
  try {
    await s.ready(REDIS_PROBE_TIMEOUT_MS);
    return true;
  } catch {
    return false;
  } finally {
    await s.close().catch(() => {});
  }
}

export interface UpOptions {
  memory: boolean;
  /** Service entry modules to run instead of the demo's lobby and match (one process each). */
  services?: string[];
  /** Replace a service's processes when its files change (process-per-role mode only). */
  watch?: boolean;
  /** Watch these directories instead of the services' entry directories. */
  watchPaths?: string[];
  /** A shell command run before each watch restart (e.g. `npm run -s build`). */
  build?: string;
  /** Quiet time after a file change before the restart. */
  watchDelayMs?: number;
}

export async function runUp(loadOpts: LoadOptions, opts: UpOptions): Promise<void> {
  const resolved = resolveConfig(loadOpts);
  const { config } = resolved;
  const log = createLogger({ level: config.log.level, pretty: config.log.pretty, name: 'up' });
  const dashboardPort = dashboardPortOf(config);
  const plan = opts.services && opts.services.length > 0 ? servicePlan(opts.services, dashboardPort) : clusterPlan(dashboardPort);
  if (opts.watch && opts.memory) throw new XError('CONFIG', WATCH_NEEDS_REDIS + ' (drop --memory)');
  const useRedis = !opts.memory && (await redisReachable(config.redisUrl, config.cluster));
  if (!useRedis) {
    if (opts.watch)
      throw new XError(
        'CONFIG',
        `${WATCH_NEEDS_REDIS}: Redis is not reachable at ${redactUrl(config.redisUrl)} (start it, e.g. \`redis-server --daemonize yes\`, or set XSERVER_REDIS_URL)`,
      );
    if (!opts.memory) {
      log.warn(
        `Redis is not reachable at ${redactUrl(config.redisUrl)}: running every role in this one process on the in-memory store. ` +
          'For one process per role (as in production) start Redis, e.g. `redis-server --daemonize yes`, or set XSERVER_REDIS_URL.',
      );
    }
    await runInProcess(config, plan, log);
    return;
  }
  log.info({ store: redactUrl(config.redisUrl), cluster: config.cluster }, 'starting the cluster, one process per role');
  const children: UpChild[] = [];
  let stopping = false;
  let control: { close(): Promise<void> } | null = null;
  let stopWatching = (): void => {};
  const stopAll = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    stopWatching();
    log.info('stopping the cluster');
    await control?.close().catch(() => {});
    for (const c of [...children].reverse()) c.proc.kill('SIGTERM');
    const deadline = Date.now() + STOP_GRACE_MS;
    while (children.some((c) => c.alive) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, EXIT_POLL_MS));
    }
    for (const c of children) if (c.alive) c.proc.kill('SIGKILL');
    process.exit(0);
  };
  process.once('SIGINT', () => void stopAll());
  process.once('SIGTERM', () => void stopAll());
  const passArgs = forwardedArgs(loadOpts);
  const spawnStep = (step: PlanStep): UpChild => {
    const args = [step.role, ...(step.entry ? ['--entry', step.entry] : []), ...passArgs];
    for (const [k, v] of Object.entries(step.set ?? {})) args.push('--set', `${k}=${String(v)}`);
    const proc = spawn(process.execPath, [bin, ...args], {
      cwd: process.cwd(),
      env: {
        ...process.env,
        XSERVER_LOG_PRETTY: process.env.XSERVER_LOG_PRETTY ?? (process.stdout.isTTY ? 'true' : 'false'),
        // Ctrl-C on a development cluster: a short drain, not the production 30 s.
        XSERVER_DRAIN_TIMEOUT_MS: process.env.XSERVER_DRAIN_TIMEOUT_MS ?? String(UP_DRAIN_TIMEOUT_MS),
      },
      // The IPC channel carries the child's "ready" (up waits for every child's before its banner).
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const child = new UpChild(step, proc, config.roll.stepTimeoutMs);
    prefixLines(proc, step.name);
    proc.on('exit', (code, signal) => {
      if (stopping) return;
      // Code 0: it drained and stopped (`xserver drain`, `xserver roll`); anything else is a crash.
      if (code === 0) log.info({ role: step.name, pid: proc.pid }, 'a cluster process drained and exited');
      else log.warn({ role: step.name, code, signal }, 'a cluster process exited');
    });
    proc.once('exit', () => {
      // Replaced (watch, roll) or gone: the list holds the live processes and those still exiting.
      const i = children.indexOf(child);
      if (i >= 0 && !stopping) children.splice(i, 1);
    });
    children.push(child);
    return child;
  };
  for (const step of plan) spawnStep(step);
  log.info(`started: ${children.map((c) => `${c.step.name} (pid ${c.pid})`).join(', ')}`);
  const host = upRollHost(
    children,
    (step) => {
      if (stopping) throw new XError('ROLL_FAILED', 'the cluster is stopping');
      return spawnStep(step);
    },
    STOP_GRACE_MS + config.drainTimeoutMs,
  );
  const rollLock = new RollLock();
  control = await serveRollControl(config, host, log, rollLock).catch((e: unknown) => {
    log.warn(`\`xserver roll\` is not available for this cluster: ${(e as Error).message}`);
    return null;
  });
  // Every process registered (or, for a standby mgr, waiting for the lease) before the banner.
  const notReady = await Promise.all(
    children.map((c) =>
      c.ready.then(
        () => null,
        (e: Error) => `${c.step.name}: ${e.message}`,
      ),
    ),
  );
  for (const m of notReady) if (m) log.warn(`a cluster process did not report ready (${m})`);
  await waitForLogin(config.login.port, LOGIN_WAIT_MS);
  if (opts.watch) {
    // A change replaces the service's processes with the roll's surge step: the new process
    // first, ready, then the old one drained through the mgr (its accounts re-bind to the new one).
    const replace = async (name: string): Promise<void> => {
      if (stopping || !children.some((c) => c.step.name === name && c.alive)) return;
      try {
        // Checked again once its turn comes: a roll before it may have run into a Ctrl-C.
        const [r] = await rollLock.run(async () => (stopping ? [] : runRoll(config, host, log, { only: (step) => step.name === name })));
        if (!r) return;
        log.info(`${name} restarted (pid ${r?.newPid})`);
      } catch (e) {
        const state = isXError(e) ? e.details?.state : undefined;
        if (state === 'starting' || state === 'awaiting-ready')
          log.error(`${name}: the new process did not start; the old one keeps serving (${(e as Error).message})`);
        else log.error(`${name}: the restart did not finish (${(e as Error).message})`);
      }
    };
    const services = watchedServices(plan);
    const watcher = new ServiceWatcher(
      { services, delayMs: opts.watchDelayMs ?? DEFAULT_WATCH_DELAY_MS, build: opts.build !== undefined },
      { replace, build: () => runBuild(opts.build ?? '', log), log: (m) => log.info(m) },
    );
    const dirs =
      opts.watchPaths && opts.watchPaths.length > 0 ? opts.watchPaths.map((p) => path.resolve(p)) : [...new Set(services.map((s) => s.dir))];
    const unwatch = watchDirs(dirs, (f) => watcher.changed(f));
    stopWatching = () => {
      watcher.stop();
      unwatch();
    };
    log.info(`watching ${dirs.join(', ')}: a change restarts the service it belongs to, clients stay connected`);
  }
  const leases = new RedisStore(config.redisUrl, config.cluster);
  const active = await activeMgrAdminPort(leases, LEASE_WAIT_MS).finally(() => void leases.close().catch(() => {}));
  process.stdout.write(banner(config, 'one process per role, Redis store', true, active) + '\n');
}

const WATCH_NEEDS_REDIS = '--watch replaces service processes, so it needs one process per role, on Redis';

/** Resolves when the child reports ready over IPC (src/cli/process.ts); rejects if it exits or times out first. */
function whenReady(proc: ChildProcess, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      clearTimeout(timer);
      proc.off('message', onMessage);
      proc.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    };
    const onMessage = (m: unknown): void => {
      if (isReadyMessage(m)) done();
    };
    const onExit = (code: number | null, signal: string | null): void => done(new Error(`it exited (${signal ?? `code ${code}`})`));
    const timer = setTimeout(() => done(new Error(`not ready within ${timeoutMs} ms`)), timeoutMs);
    proc.on('message', onMessage);
    proc.on('exit', onExit);
  });
}

/** The services of a plan and their entry directories. */
function watchedServices(plan: PlanStep[]): WatchedService[] {
  const byEntry = new Map<string, WatchedService>();
  for (const s of plan) {
    if (s.role !== 'node' || !s.entry) continue;
    const entry = path.resolve(s.entry);
    const w = byEntry.get(entry) ?? { processes: [], dir: path.dirname(entry) };
    w.processes.push(s.name);
    byEntry.set(entry, w);
  }
  return [...byEntry.values()];
}

function runBuild(command: string, log: Logger): Promise<boolean> {
  return new Promise((resolve) => {
    const p = spawn(command, { shell: true, stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('error', (e) => {
      log.error(`build "${command}": ${e.message}`);
      resolve(false);
    });
    p.on('exit', (code) => {
      if (code !== 0) log.error(`build "${command}" exited with ${code}`);
      resolve(code === 0);
    });
  });
}

/** A child of `xserver up`: its plan step and process. */
class UpChild implements RollProcess {
  /** Settles when the child reports ready over IPC, or fails when it exits or times out first. */
  readonly ready: Promise<void>;
  /** Sent SIGTERM by a roll step: on its way out. */
  terminated = false;
  constructor(
    readonly step: PlanStep,
    readonly proc: ChildProcess,
    readyTimeoutMs: number,
  ) {
    this.ready = whenReady(proc, readyTimeoutMs);
    this.ready.catch(() => {}); // awaited where it matters; a child that never starts is logged there
  }
  get pid(): number | undefined {
    return this.proc.pid;
  }
  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }
}

/** How `xserver roll` reaches a child mgr: its admin port (every mgr step of the plan has one). */
async function mgrAdmin(c: UpChild, route: string): Promise<Response | undefined> {
  const port = Number(c.step.set?.adminPort ?? 0);
  if (port === 0) return undefined;
  try {
    return await fetch(`http://127.0.0.1:${port}${route}`, { signal: AbortSignal.timeout(MGR_ADMIN_TIMEOUT_MS) });
  } catch {
    return undefined; // not listening yet, or gone
  }
}

/** The RollHost of `xserver up`: replacements are new children of the same step. */
function upRollHost(children: UpChild[], spawnStep: (step: PlanStep) => UpChild, killAfterMs: number): RollHost<UpChild> {
  return {
    // A process told to stop is not rolled again, and does not count as a standby.
    processes: () => children.filter((c) => c.alive && !c.terminated),
    start: async (old) => spawnStep(old.step),
    terminate: (c) => {
      c.terminated = true;
      c.proc.kill('SIGTERM');
      // One that hangs (a replacement stuck in its start) does not outlive its drain.
      setTimeout(() => c.alive && c.proc.kill('SIGKILL'), killAfterMs).unref();
    },
    mgrInstanceId: async (c) => {
      const r = await mgrAdmin(c, '/api/cluster');
      if (!r?.ok) return undefined;
      return ((await r.json()) as { mgr?: { instanceId?: string } }).mgr?.instanceId;
    },
    mgrReady: async (c) => (await mgrAdmin(c, '/readyz'))?.ok === true,
  };
}

/** Waits until the login service answers, so the printed URLs work when they appear. */
async function waitForLogin(port: number, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/config.json`);
      if (r.ok) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, LOGIN_POLL_MS));
  }
}

async function runInProcess(base: XConfig, plan: PlanStep[], log: Logger): Promise<void> {
  const store = new MemoryStore(base.cluster);
  const metrics = new Metrics({ defaultLabels: { cluster: base.cluster } });
  const roles: Role[] = [];
  const admins: AdminServer[] = [];
  const stop = async (): Promise<void> => {
    const steps: StopStep[] = [...roles].reverse();
    for (const [i, a] of admins.entries()) steps.push({ name: `admin HTTP ${i + 1}`, stop: () => a.close() });
    steps.push({ name: 'store', stop: () => store.close() });
    await stopInOrder(steps, log);
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  for (const step of plan) {
    const config = structuredClone(base);
    for (const [k, v] of Object.entries(step.set ?? {})) setPath(config as unknown as Record<string, unknown>, k, v);
    const ctx = createRoleContext({ config, store, logger: log.child({ proc: step.name }), metrics });
    const role = await startRole(step.role, ctx, { entry: step.entry });
    roles.push(role);
    if (config.adminPort > 0) {
      const admin = await startAdminServer({
        host: config.adminHost,
        port: config.adminPort,
        logger: ctx.logger,
        metrics,
        ready: () => role.ready(),
      });
      for (const [p, fn] of Object.entries(role.routes ?? {})) admin.addRoute(p, fn);
      for (const [p, html] of Object.entries(role.pages ?? {})) admin.addPage(p, html);
      admins.push(admin);
    }
  }
  const active = await activeMgrAdminPort(store, LEASE_WAIT_MS);
  process.stdout.write(banner(base, 'every role in this process, in-memory store', false, active) + '\n');
}

/** Flags of `up` that every child must see too. */
function forwardedArgs(o: LoadOptions): string[] {
  const out: string[] = [];
  if (o.file) out.push('--config', o.file);
  for (const [k, v] of Object.entries(o.overrides ?? {})) {
    if (v !== undefined && k !== 'adminPort') out.push('--set', `${k}=${String(v)}`);
  }
  return out;
}

function prefixLines(proc: ChildProcess, name: string): void {
  for (const [stream, out] of [
    [proc.stdout, process.stdout],
    [proc.stderr, process.stderr],
  ] as const) {
    let rest = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      for (const l of lines) out.write(`[${name}] ${l}\n`);
    });
  }
}
