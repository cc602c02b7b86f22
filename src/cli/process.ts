/**
 * What every `xserver <role>` process does around its role: load the config, open the store,
 * log, serve admin HTTP, and stop gracefully on SIGTERM/SIGINT.
 */
import { resolveConfig, type LoadOptions, type ResolvedConfig } from '../config/load.js';
import type { XConfig } from '../config/schema.js';
import type { RoleContext } from '../context.js';
import { XError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { Metrics } from '../metrics.js';
import { startAdminServer, type AdminServer } from '../admin/http.js';
import { createRoleContext, drainRoles, stopInOrder, type Role, type StopStep } from '../roles.js';
import { createStore } from '../store/index.js';
import { redactUrl } from '../config/load.js';

/** How long /readyz waits for the store's PING before calling the process not ready. */
const STORE_PROBE_MS = 1000;
/** How often a process forked with an IPC channel looks whether its roles are ready, to say so once. */
const READY_REPORT_POLL_MS = 20;

/** What a process sends its parent over IPC once every role is ready (`xserver up --watch` waits for it). */
const READY_MESSAGE = { xserver: 'ready' } as const;

export function isReadyMessage(m: unknown): boolean {
  return typeof m === 'object' && m !== null && (m as { xserver?: unknown }).xserver === READY_MESSAGE.xserver;
}

export interface ProcessHandle {
  ctx: RoleContext;
  admin: AdminServer | null;
  shutdown(code?: number): Promise<void>;
}

export function loadOrExit(opts: LoadOptions): ResolvedConfig {
  try {
    return resolveConfig(opts);
  } catch (e) {
    if (e instanceof XError) {
      process.stderr.write(`xserver: invalid configuration\n${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
}

export function makeLogger(config: XConfig, name: string): Logger {
  return createLogger({ level: config.log.level, pretty: config.log.pretty, name, base: { cluster: config.cluster, pid: process.pid } });
}

/** Opens the store or exits with a plain explanation. */
export async function openStore(config: XConfig, logger: Logger, metrics?: Metrics) {
  const store = createStore(config.redisUrl, config.cluster, {
    logger,
    metrics,
    opTimeoutMs: config.storeOpTimeoutMs,
    waitReplicasMs: config.storeWaitReplicasMs,
  });
  try {
    await store.ready(config.storeConnectTimeoutMs);
  } catch (e) {
    logger.fatal(
      `cannot reach the store at ${redactUrl(config.redisUrl)}: ${(e as Error).message}. ` +
        'Start Redis (e.g. `redis-server --daemonize yes`) or set XSERVER_REDIS_URL.',
    );
    await store.close().catch(() => {});
    process.exit(3);
  }
  return store;
}

/**
 * Starts roles in this process with one store, logger and metrics registry; installs signal
 * handlers that stop them in reverse order.
 */
export async function runProcess(resolved: ResolvedConfig, name: string, startRoles: (ctx: RoleContext) => Promise<Role[]>): Promise<ProcessHandle> {
  const { config } = resolved;
  const logger = makeLogger(config, name);
  for (const w of resolved.warnings) logger.warn(w);
  const metrics = new Metrics({ defaultMetrics: true, defaultLabels: { cluster: config.cluster, role: name } });
  const store = await openStore(config, logger, metrics);
  const ctx = createRoleContext({ config, store, logger, metrics });
  let roles: Role[] = [];
  let admin: AdminServer | null = null;
  let stopping = false;
  const shutdown = async (code = 0): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down');
    const steps: StopStep[] = [...roles].reverse();
    const adminServer = admin;
    if (adminServer) steps.push({ name: 'admin HTTP', stop: () => adminServer.close() });
    steps.push({ name: 'store', stop: () => store.close() });
    await stopInOrder(steps, logger);
    process.exit(code);
  };
  // SIGTERM / SIGINT: drain first (readyz 503 at once, no new work, bound work finishes) until
  // nothing is bound or drainTimeoutMs; a second signal stops at once.
  let draining = false;
  const onSignal = (): void => {
    if (draining || stopping) return void shutdown(0);
    draining = true;
    logger.info({ drainTimeoutMs: config.drainTimeoutMs }, 'draining before shutdown (a second signal stops at once)');
    void drainRoles(roles, config.drainTimeoutMs, logger, metrics).then(() => shutdown(0));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    roles = await startRoles(ctx);
    for (const r of roles) r.onDrainRequest?.(() => (draining ? undefined : onSignal()));
  } catch (e) {
    logger.fatal({ err: e }, `could not start: ${(e as Error).message}`);
    await shutdown(1);
  }
  if (config.adminPort > 0) {
    admin = await startAdminServer({
      host: config.adminHost,
      port: config.adminPort,
      logger,
      metrics,
      ready: () => !draining && roles.every((r) => r.ready()),
      storeReady: () =>
        store.ready(STORE_PROBE_MS).then(
          () => true,
          () => false,
        ),
      liveStallMs: config.adminLiveStallMs,
    });
    for (const r of roles) {
      for (const [path, fn] of Object.entries(r.routes ?? {})) admin.addRoute(path, fn);
      for (const [path, html] of Object.entries(r.pages ?? {})) admin.addPage(path, html);
    }
    logger.info({ url: `http://${config.adminHost}:${admin.port}/` }, 'admin HTTP listening');
  }
  if (process.send) reportReadyToParent(roles, () => draining || stopping);
  return { ctx, admin, shutdown };
}

/** Tells the parent (over the IPC channel it forked this process with) once, when every role is ready. */
function reportReadyToParent(roles: Role[], gone: () => boolean): void {
  process.channel?.unref(); // the channel alone must not keep this process alive
  const timer = setInterval(() => {
    if (gone()) return clearInterval(timer);
    if (!roles.every((r) => r.ready())) return;
    clearInterval(timer);
    process.send?.(READY_MESSAGE);
  }, READY_REPORT_POLL_MS);
  timer.unref();
}
