/**
 * A development cluster in this one process, on the in-memory store: an mgr, the login service
 * (unknown accounts register at first login; the playground at /playground/), one gateway and
 * the given services. What a project
 * made by `xserver init` runs with `npm start` and starts in its tests; nothing persists and every
 * listener is on loopback.
 *
 *   const dev = await startDevCluster({ services: [service], configure: (c) => (c.login.port = 0) });
 *   const lr = await login(dev.loginUrl, 'alice', 'pw');   // then new XClient().connect(lr)
 *   await dev.stop();
 */
import { randomBytes } from 'node:crypto';
import { defaultConfig, type XConfig } from './config/schema.js';
import { XError } from './errors.js';
import { Gateway } from './gateway/gateway.js';
import { silentLogger, type Logger } from './log.js';
import { LoginServer } from './login/login.js';
import { Metrics } from './metrics.js';
import { MgrServer } from './mgr/mgr.js';
import type { ClusterNode } from './node/node.js';
import { createRoleContext, startService, stopInOrder, type StopStep } from './roles.js';
import type { ServiceDefinition } from './service.js';
import { MemoryStore } from './store/index.js';

/** How long startDevCluster() waits for every role to see the others, unless told. */
const DEV_READY_TIMEOUT_MS = 10_000;
const DEV_POLL_MS = 10;

export interface DevClusterOptions {
  /** The services to run, one node each. */
  services: ServiceDefinition[];
  /**
   * Changes to the settings before anything starts. The base is `defaultConfig()` with a random
   * cluster name, `login.autoRegister` and `login.playground` on and `statefulTypes` empty (a service type is stateful
   * only when you list it here); `login.port` stays 7080 unless you set it (0 = any free port).
   */
  configure?: (config: XConfig) => void;
  /** Default: silent. */
  logger?: Logger;
  /** How long to wait for the roles to see each other (default 10 000 ms). */
  readyTimeoutMs?: number;
}

export interface DevCluster {
  readonly config: XConfig;
  /** The login service's base URL, for the SDK's `login(url, account, password)`. */
  readonly loginUrl: string;
  /** The playground page (`${loginUrl}/playground/`), or null when `configure` turned it off. */
  readonly playgroundUrl: string | null;
  readonly gateway: Gateway;
  /** The service nodes, in the order of `services`. */
  readonly nodes: readonly ClusterNode[];
  /** Stops everything, last started first. */
  stop(): Promise<void>;
}

export async function startDevCluster(opts: DevClusterOptions): Promise<DevCluster> {
  const config = defaultConfig();
  config.cluster = `dev-${randomBytes(4).toString('hex')}`;
  config.redisUrl = 'memory://';
  config.login.autoRegister = true;
  config.login.playground = true;
  config.statefulTypes = '';
  for (const def of opts.services) {
    if (def.name !== undefined && typeof def.type === 'number' && config.types[def.name] === undefined) config.types[def.name] = def.type;
  }
  opts.configure?.(config);
  const logger = opts.logger ?? silentLogger();
  const store = new MemoryStore(config.cluster);
  const ctx = createRoleContext({ config, store, logger, metrics: new Metrics({ defaultLabels: { cluster: config.cluster } }) });
  const steps: StopStep[] = [{ name: 'store', stop: () => store.close() }];
  const stop = async (): Promise<void> => {
    await stopInOrder([...steps].reverse(), logger);
    steps.length = 0;
  };
  try {
    const mgr = new MgrServer(ctx);
    await mgr.start();
    steps.push({ name: 'mgr', stop: () => mgr.stop() });
    const login = new LoginServer(ctx);
    await login.start();
    steps.push({ name: 'login', stop: () => login.stop() });
    const gateway = new Gateway(ctx);
    await gateway.start();
    steps.push({ name: 'gateway', stop: () => gateway.stop() });
    const nodes: ClusterNode[] = [];
    for (const def of opts.services) {
      const node = await startService(ctx, def);
      nodes.push(node);
      steps.push({
        name: node.name,
        stop: async () => {
          await def.stop?.(node);
          await node.stop();
        },
      });
    }
    // Usable once login and the gateway list every node (and login the gateway).
    const ids = [gateway.node.id, ...nodes.map((n) => n.id)];
    const timeoutMs = opts.readyTimeoutMs ?? DEV_READY_TIMEOUT_MS;
    const t0 = performance.now();
    while (!(login.ready() && ids.every((id) => login.node.has(id) && gateway.node.has(id)))) {
      if (performance.now() - t0 > timeoutMs) throw new XError('TIMEOUT', `the development cluster was not ready within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, DEV_POLL_MS));
    }
    const scheme = config.login.tls ? 'https' : 'http';
    const loginUrl = `${scheme}://${config.login.host}:${login.port}`;
    return { config, loginUrl, playgroundUrl: config.login.playground ? `${loginUrl}/playground/` : null, gateway, nodes, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
