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
import type { RoleContext } from '../context.js';
import { createLogger } from '../log.js';
import { Metrics } from '../metrics.js';
import { MgrServer } from '../mgr/mgr.js';
import { MemoryStore, RedisStore, isMemoryUrl } from '../store/index.js';
import { mgrRole, nodeRole, loadService, startService } from './main.js';
import type { Role } from './process.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin', 'xserver.js');

/** The processes of the all-in-one cluster: name and xserver arguments. */
export function clusterPlan(): { name: string; args: string[] }[] {
  const echo = path.join(root, 'examples', 'echo', 'service.js');
  return [
    { name: 'mgr-1', args: ['mgr'] },
    { name: 'mgr-2', args: ['mgr'] },
    { name: 'echo-1', args: ['node', '--entry', echo] },
    { name: 'echo-2', args: ['node', '--entry', echo] },
  ];
}

async function redisReachable(url: string, cluster: string): Promise<boolean> {
  if (isMemoryUrl(url)) return false;
  const s = new RedisStore(url, cluster);
  try {
    await s.ready(1500);
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
    await runInProcess(resolved.config, log);
    return;
  }
  log.info({ store: redactUrl(config.redisUrl), cluster: config.cluster }, 'starting the cluster, one process per role');
  const children: { name: string; proc: ChildProcess }[] = [];
  let stopping = false;
  const stopAll = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info('stopping the cluster');
    for (const c of [...children].reverse()) c.proc.kill('SIGTERM');
    const deadline = Date.now() + 5000;
    while (children.some((c) => c.proc.exitCode === null && c.proc.signalCode === null) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    process.exit(0);
  };
  process.once('SIGINT', () => void stopAll());
  process.once('SIGTERM', () => void stopAll());
  const passArgs = forwardedArgs(loadOpts);
  for (const step of clusterPlan()) {
    const proc = spawn(process.execPath, [bin, ...step.args, ...passArgs], {
      cwd: process.cwd(),
      env: { ...process.env, XSERVER_LOG_PRETTY: process.env.XSERVER_LOG_PRETTY ?? (process.stdout.isTTY ? 'true' : 'false') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    prefixLines(proc, step.name);
    proc.on('exit', (code, signal) => {
      if (!stopping) log.warn({ role: step.name, code, signal }, 'a cluster process exited');
    });
    children.push({ name: step.name, proc });
  }
  log.info(`cluster running: ${children.map((c) => `${c.name} (pid ${c.proc.pid})`).join(', ')}. Try \`npx xserver status\`; Ctrl-C stops everything.`);
}

async function runInProcess(config: ReturnType<typeof resolveConfig>['config'], log: ReturnType<typeof createLogger>): Promise<void> {
  const store = new MemoryStore(config.cluster);
  const ctx: RoleContext = { config, store, logger: log, metrics: new Metrics({ defaultLabels: { cluster: config.cluster } }) };
  const roles: Role[] = [];
  for (let i = 0; i < 2; i++) {
    const mgr = new MgrServer(ctx);
    await mgr.start();
    roles.push(mgrRole(mgr));
  }
  const echo = await loadService(path.join(root, 'examples', 'echo', 'service.js'));
  for (let i = 0; i < 2; i++) roles.push(nodeRole(await startService(ctx, echo), echo));
  const stop = async (): Promise<void> => {
    for (const r of roles.reverse()) await r.stop().catch(() => {});
    await store.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  log.info('cluster running in one process on the in-memory store; Ctrl-C stops it');
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
