/**
 * Composition: the one way to build a role's context, start a role and stop a set of roles.
 * The CLI commands (`xserver mgr|node|gateway|login`), `xserver up`, the tests and the benchmarks
 * all start roles through here, so a role starts the same way everywhere.
 *
 *   createRoleContext(opts)        config + store + logger + metrics
 *   startRole(kind, ctx, opts)     mgr | login | gateway | node  ->  Role (ready, stop, admin routes)
 *   stopInOrder(steps, log)        stops one after the other; a failure is logged, the rest still stop
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { defaultConfig, type XConfig } from './config/schema.js';
import type { RoleContext } from './context.js';
import { XError } from './errors.js';
import { Gateway } from './gateway/gateway.js';
import { createLogger, type Logger } from './log.js';
import { LoginServer } from './login/login.js';
import { Metrics } from './metrics.js';
import { DASHBOARD_HTML } from './mgr/dashboard-page.js';
import type { RouteHandler } from './admin/http.js';
import { MgrServer } from './mgr/mgr.js';
import { runtimeOf } from './node/internal.js';
import { ClusterNode } from './node/node.js';
import { infoToJson } from './node/peer.js';
import type { ServiceDefinition } from './service.js';
import { createStore, type ClusterStore } from './store/index.js';

export interface RoleContextOptions {
  /** The settings. Default: `defaultConfig()`. */
  config?: XConfig;
  /** Default: `createStore(config.redisUrl, config.cluster)` (not yet connected: see `store.ready()`). */
  store?: ClusterStore;
  /** Default: a logger at `config.log.level`. */
  logger?: Logger;
  /** Default: a registry labelled with the cluster name. Roles of one process share one. */
  metrics?: Metrics;
}

/** The context every role is started with; share one per process between its roles. */
export function createRoleContext(opts: RoleContextOptions = {}): RoleContext {
  const config = opts.config ?? defaultConfig();
  const logger = opts.logger ?? createLogger({ level: config.log.level, pretty: config.log.pretty, name: 'xserver' });
  const metrics = opts.metrics ?? new Metrics({ defaultLabels: { cluster: config.cluster } });
  const store =
    opts.store ??
    createStore(config.redisUrl, config.cluster, {
      logger,
      metrics,
      opTimeoutMs: config.storeOpTimeoutMs,
      waitReplicasMs: config.storeWaitReplicasMs,
    });
  return { config, store, logger, metrics };
}

/** A started role as the process around it sees it. */
export interface Role {
  /** "mgr", "gateway", "login", or the service's name. */
  readonly name: string;
  /** Admin JSON routes of this role, e.g. { '/api/self': () => ... }. */
  routes?: Record<string, RouteHandler>;
  pages?: Record<string, string>;
  ready(): boolean;
  /**
   * Stops taking new work (the member is listed as draining, selection and login skip it) and
   * says what is still bound to it; `drainRoles` waits for that to reach 0. Absent: nothing to drain.
   */
  drain?(): DrainState;
  /** Calls `fn` when an operator asks this member to drain (`xserver drain`). */
  onDrainRequest?(fn: () => void): void;
  stop(): Promise<void>;
}

/** What a draining role still has bound to it (sessions on a gateway, accounts on a service node). */
export interface DrainState {
  readonly what: string;
  bound(): number;
}

/** How often drainRoles looks at what is still bound. */
const DRAIN_POLL_MS = 100;

/**
 * Drains roles (see Role.drain) and resolves when nothing is bound to any of them or at the
 * deadline, with what the deadline cut (logged, and counted in xserver_drain_cut_total when
 * `metrics` is given). The caller stops the roles afterwards.
 */
export async function drainRoles(
  roles: readonly Role[],
  timeoutMs: number,
  log: Logger,
  metrics?: Metrics,
): Promise<{ cut: Record<string, number> }> {
  const states = roles.flatMap((r) => {
    const st = r.drain?.();
    return st ? [{ role: r.name, st }] : [];
  });
  const deadline = performance.now() + timeoutMs;
  const left = () => states.filter(({ st }) => st.bound() > 0);
  while (left().length > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
  const cut = Object.fromEntries(left().map(({ role, st }) => [`${role} ${st.what}`, st.bound()]));
  const counter = metrics?.counter('drain_cut_total', 'Work still bound when the drain deadline cut it (sessions, accounts)', ['role', 'what']);
  for (const { role, st } of left()) counter?.inc({ role, what: st.what }, st.bound());
  if (Object.keys(cut).length > 0) log.warn({ cut, drainTimeoutMs: timeoutMs }, 'drain deadline reached; stopping with work still bound');
  else if (states.length > 0) log.info('drained: nothing bound any more');
  return { cut };
}

export type RoleKind = 'mgr' | 'login' | 'gateway' | 'node';

export interface StartRoleOptions {
  /** kind 'node': the service, or the module exporting it (`xserver node --entry`). */
  service?: ServiceDefinition;
  entry?: string;
}

/** Starts one role in this process on `ctx`; resolves once it listens (not once it is registered). */
export async function startRole(kind: RoleKind, ctx: RoleContext, opts: StartRoleOptions = {}): Promise<Role> {
  switch (kind) {
    case 'mgr': {
      const mgr = new MgrServer(ctx);
      await mgr.start();
      return mgrRole(mgr);
    }
    case 'login': {
      const login = new LoginServer(ctx);
      await login.start();
      return loginRole(login);
    }
    case 'gateway': {
      const gw = new Gateway(ctx);
      await gw.start();
      return gatewayRole(gw);
    }
    case 'node': {
      const def = opts.service ?? (opts.entry !== undefined ? await loadService(opts.entry) : undefined);
      if (!def) throw new XError('CONFIG', 'a node role needs a service definition or an entry module');
      return nodeRole(await startService(ctx, def), def);
    }
    default:
      throw new XError('CONFIG', `unknown role "${String(kind)}" (mgr, login, gateway or node)`);
  }
}

export function mgrRole(mgr: MgrServer): Role {
  return {
    name: 'mgr',
    // Ready when it serves as active or stands by to take over; not while taking over or stopped.
    ready: () => mgr.isActive || mgr.isStandby,
    stop: () => mgr.stop(),
    pages: { '/dashboard': DASHBOARD_HTML, '/': DASHBOARD_HTML },
    routes: {
      '/api/cluster': () => {
        const s = mgr.status();
        const { instanceId, epoch, addr, port, state, settling } = s.mgr;
        return { mgr: { instanceId, epoch: Number(epoch), addr, port, state, settling }, members: s.members.map(infoToJson) };
      },
      // A standby answers with the active mgr's view (see src/mgr/dashboard.ts).
      '/dashboard/api/overview': () => mgr.dashboard.view(''),
      '/dashboard/api/member': (req) => {
        const id = req.query.get('id');
        if (!id) throw new XError('BAD_REQUEST', 'give the member as ?id=<member id>');
        return mgr.dashboard.view(id);
      },
    },
  };
}

export function loginRole(login: LoginServer): Role {
  const rt = runtimeOf(login.node);
  return {
    name: 'login',
    ready: () => login.ready() && !rt.draining,
    // A login holds nothing between requests: draining lists it as draining (readyz 503, a load
    // balancer stops sending) and it stops at once; `xserver drain login` and `xserver roll` use it.
    drain: () => {
      rt.startDraining();
      return { what: 'requests', bound: () => 0 };
    },
    onDrainRequest: (fn) => void login.node.on('drain-requested', fn),
    stop: () => login.stop(),
    routes: login.routes,
  };
}

export function gatewayRole(gw: Gateway): Role {
  const rt = runtimeOf(gw.node);
  return {
    name: 'gateway',
    ready: () => gw.node.mgrConnected && !rt.draining,
    drain: () => gw.drain(),
    onDrainRequest: (fn) => void gw.node.on('drain-requested', fn),
    stop: () => gw.stop(),
    routes: { '/api/self': () => rt.selfJson(), '/api/peers': () => rt.peersJson(), '/api/gateway': () => gw.statusJson() },
  };
}

export function nodeRole(node: ClusterNode, service?: ServiceDefinition): Role {
  const rt = runtimeOf(node);
  return {
    name: node.name,
    ready: () => node.mgrConnected && !rt.draining,
    drain: () => {
      rt.startDraining();
      return { what: 'accounts', bound: () => node.accounts().length };
    },
    onDrainRequest: (fn) => void node.on('drain-requested', fn),
    stop: async () => {
      await service?.stop?.(node);
      await node.stop();
    },
    routes: { '/api/self': () => rt.selfJson(), '/api/peers': () => rt.peersJson() },
  };
}

/** Imports a service module: its default export, or its `service` export. */
export async function loadService(entry: string): Promise<ServiceDefinition> {
  const url = entry.startsWith('file:') ? entry : pathToFileURL(path.resolve(entry)).href;
  const mod = (await import(url)) as { default?: ServiceDefinition; service?: ServiceDefinition };
  const def = mod.default ?? mod.service;
  if (!def || typeof def.start !== 'function' || def.type === undefined) {
    throw new XError('CONFIG', `${entry} must export (default or "service") an object with { type, start(node) }`);
  }
  return def;
}

/** The service's type number: its own, or its name looked up in the `types` config map. */
export function resolveType(def: ServiceDefinition, types: Record<string, number>): number {
  if (typeof def.type === 'number') return def.type;
  const t = types[def.type];
  if (t === undefined) throw new XError('CONFIG', `service type "${def.type}" is not in the types map (${Object.keys(types).join(', ')})`);
  return t;
}

/** Creates the service's node, lets the service register its handlers, then starts the node. */
export async function startService(ctx: RoleContext, def: ServiceDefinition): Promise<ClusterNode> {
  const type = resolveType(def, ctx.config.types);
  const node = new ClusterNode(ctx, { type, name: def.name, version: def.version });
  if (def.contracts) node.useContracts(def.contracts);
  await def.start(node, ctx);
  await node.start();
  return node;
}

/** One step of a shutdown: a role, an admin server, the store. */
export interface StopStep {
  readonly name: string;
  stop(): Promise<unknown>;
}

/**
 * The one shutdown path: stops `steps` one after the other, in the order given (callers list
 * roles last-started first, then what they ran on). A step that fails is logged with its name
 * and the next still runs. Resolves to the number of steps that failed.
 */
export async function stopInOrder(steps: readonly StopStep[], log: Logger): Promise<number> {
  let failed = 0;
  for (const step of steps) {
    try {
      await step.stop();
    } catch (e) {
      failed++;
      log.error({ err: e, step: step.name }, `stopping ${step.name} failed: ${(e as Error)?.message ?? String(e)}`);
    }
  }
  return failed;
}
