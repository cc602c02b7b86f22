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
import { serveRollControl } from './roll-control.js';
import type { RollHost, RollProcess } from './roll.js';

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
/** One admin request of `xserver roll` to a child mgr (it is on this host). */
const MGR_ADMIN_TIMEOUT_MS = 2000;

export interface PlanStep {
  name: string;
  role: 'mgr' | 'login' | 'gateway' | 'node';
  entry?: string;
  /** Extra config for this process only. */
  set?: Record<string, string | number | boolean>;
}

const example = (p: string): string => path.join(root, 'examples', p);

/**
 * The all-in-one cluster (SPEC §7): mgr + standby, login (serving the chat page), two gateways,
 * two lobbies and a match. Fixed ports are only for the URLs a person opens; everything else
 * finds everything else through the mgr.
 */
export function clusterPlan(dashboardPort = DASHBOARD_PORT): PlanStep[] {
  return [
    { name: 'mgr-1', role: 'mgr', set: { adminPort: dashboardPort } },
    { name: 'mgr-2', role: 'mgr', set: { adminPort: dashboardPort + 1 } },
    { name: 'login', role: 'login', set: { 'login.staticDir': example('chat'), 'login.autoRegister': true } },
    { name: 'gateway-1', role: 'gateway' },
    { name: 'gateway-2', role: 'gateway' },
    { name: 'lobby-1', role: 'node', entry: example('lobby/service.js') },
    { name: 'lobby-2', role: 'node', entry: example('lobby/service.js') },
    { name: 'match', role: 'node', entry: example('match/service.js') },
  ];
}

/** The first mgr's admin port: `up --admin-port`, else 7090. */
function dashboardPortOf(config: XConfig): number {
  return config.adminPort > 0 ? config.adminPort : DASHBOARD_PORT;
}

function banner(config: XConfig, mode: string, redis: boolean): string {
  const loginPort = config.login.port;
  const dashboard = dashboardPortOf(config);
  return [
    '',
    `  xserver cluster "${config.cluster}" is up (${mode})`,
    `  chat demo:  http://127.0.0.1:${loginPort}/    (open it in two tabs; any account/password registers)`,
    `  login API:  POST http://127.0.0.1:${loginPort}/login`,
    `  dashboard:  http://127.0.0.1:${dashboard}/dashboard   (standby mgr: http://127.0.0.1:${dashboard + 1}/dashboard)`,
    redis ? `  status:     npx xserver status --cluster ${config.cluster}` : '  status:     the dashboard (xserver status needs Redis)',
    '  Ctrl-C stops everything.',
    '',
  ].join('\n');
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

export async function runUp(loadOpts: LoadOptions, opts: { memory: boolean }): Promise<void> {
  const resolved = resolveConfig(loadOpts);
  const { config } = resolved;
  const log = createLogger({ level: config.log.level, pretty: config.log.pretty, name: 'up' });
  const useRedis = !opts.memory && (await redisReachable(config.redisUrl, config.cluster));
  if (!useRedis) {
    if (!opts.memory) {
      log.warn(
        `Redis is not reachable at ${redactUrl(config.redisUrl)}: running every role in this one process on the in-memory store. ` +
          'For one process per role (as in production) start Redis, e.g. `redis-server --daemonize yes`, or set XSERVER_REDIS_URL.',
      );
    }
    await runInProcess(config, log);
    return;
  }
  log.info({ store: redactUrl(config.redisUrl), cluster: config.cluster }, 'starting the cluster, one process per role');
  const children: UpChild[] = [];
  let stopping = false;
  let control: { close(): Promise<void> } | null = null;
  const stopAll = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
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
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const child = new UpChild(step, proc);
    prefixLines(proc, step.name);
    proc.on('exit', (code, signal) => {
      if (stopping) return;
      // Code 0: it drained and stopped (`xserver drain`, `xserver roll`); anything else is a crash.
      if (code === 0) log.info({ role: step.name, pid: proc.pid }, 'a cluster process drained and exited');
      else log.warn({ role: step.name, code, signal }, 'a cluster process exited');
    });
    children.push(child);
    return child;
  };
  for (const step of clusterPlan(dashboardPortOf(config))) spawnStep(step);
  log.info(`started: ${children.map((c) => `${c.step.name} (pid ${c.pid})`).join(', ')}`);
  control = await serveRollControl(config, upRollHost(children, spawnStep), log).catch((e: unknown) => {
    log.warn(`\`xserver roll\` is not available for this cluster: ${(e as Error).message}`);
    return null;
  });
  await waitForLogin(config.login.port, LOGIN_WAIT_MS);
  process.stdout.write(banner(config, 'one process per role, Redis store', true) + '\n');
}

/** A child of `xserver up`: its plan step and process. */
class UpChild implements RollProcess {
  constructor(
    readonly step: PlanStep,
    readonly proc: ChildProcess,
  ) {}
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
function upRollHost(children: UpChild[], spawnStep: (step: PlanStep) => UpChild): RollHost<UpChild> {
  return {
    processes: () => children.filter((c) => c.alive),
    start: async (old) => spawnStep(old.step),
    terminate: (c) => void c.proc.kill('SIGTERM'),
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

async function runInProcess(base: XConfig, log: Logger): Promise<void> {
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
  for (const step of clusterPlan(dashboardPortOf(base))) {
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
  process.stdout.write(banner(base, 'every role in this process, in-memory store', false) + '\n');
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
