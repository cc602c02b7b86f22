// Shared pieces of the xserver plug-ins (files starting with '_' are not rows; see bench/README.md).
// Everything here runs in the child processes only; importing it has no side effects beyond loading dist/.
import v8 from 'node:v8';
import vm from 'node:vm';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { encodeFrame as protocolEncodeFrame } from '../../dist/protocol/frame.js';
import { defaultConfig } from '../../dist/config/schema.js';
import { createStore } from '../../dist/store/index.js';
import { createLogger, silentLogger } from '../../dist/log.js';
import { Metrics } from '../../dist/metrics.js';
import { MgrServer } from '../../dist/mgr/mgr.js';
import { createRoleContext } from '../../dist/roles.js';
import { sleep, waitFor as waitForCondition } from '../../testkit/index.js';

export { ClusterNode } from '../../dist/node/node.js';
export { runtimeOf } from '../../dist/node/internal.js';
export { MgrServer } from '../../dist/mgr/mgr.js';
export { Gateway } from '../../dist/gateway/gateway.js';

/** Service types used by the plug-ins (>= 4; 0-3 are reserved). */
export const T_ECHO = 4;
export const T_CALLER = 5;
export const T_IDLE = 6;

/** User commands on node links (all < 0xFFFF0000). */
export const CMD = { ECHO: 1, DATA: 2, MARK: 3, END: 4, ACK: 5, SEQ: 6 };

/** Client-side constants, from the protocol module (docs/protocol.md §1, §6). */
export { Flags, Cmd as SYS, HEADER_SIZE as HEADER, encodeAuth } from '../../dist/protocol/index.js';

// One store and one metrics registry per process: several roles (mgr, gateway, hundreds of nodes)
// share them, like `xserver up` does. The RedisStore multiplexes commands on one connection and
// keeps one subscriber for lease announcements however many nodes listen.
const stores = new Map();
let metrics;

/**
 * A RoleContext for the bench: cluster = opts.namespace (contains the harness token, so the harness
 * deletes its keys afterwards), Redis store, loopback only, logs off (BENCH_XS_LOG=info to see them).
 * `patch(config)` adjusts settings before the context is built.
 */
export function roleContext(opts, patch) {
  const config = defaultConfig();
  config.cluster = opts.cluster ?? opts.namespace;
  config.redisUrl = opts.redisUrl ?? 'redis://127.0.0.1:6379';
  config.bindHost = '127.0.0.1';
  config.innerIp = '127.0.0.1';
  config.outerIp = '127.0.0.1';
  config.mgr.port = 0;
  config.node.port = 0;
  config.adminPort = 0;
  config.statefulTypes = '';
  config.types = { echo: T_ECHO, caller: T_CALLER, idle: T_IDLE };
  config.log.level = process.env.BENCH_XS_LOG ?? 'silent';
  config.log.pretty = 'false';
  if (opts.heartbeatIntervalMs) config.link.heartbeatIntervalMs = opts.heartbeatIntervalMs;
  if (opts.heartbeatTimeoutMs) config.link.heartbeatTimeoutMs = opts.heartbeatTimeoutMs;
  if (process.env.BENCH_JOIN_BATCH_MS !== undefined) config.mgr.joinBatchMs = Number(process.env.BENCH_JOIN_BATCH_MS);
  patch?.(config);
  const key = `${config.redisUrl} ${config.cluster}`;
  let store = stores.get(key);
  if (!store) {
    store = createStore(config.redisUrl, config.cluster);
    stores.set(key, store);
  }
  metrics ??= new Metrics();
  const logger = config.log.level === 'silent' ? silentLogger() : createLogger({ level: config.log.level, pretty: 'false', name: 'bench' });
  return createRoleContext({ config, store, logger, metrics });
}

/** The test kit's waitFor in the plug-ins' short form: resolves when pred() is truthy (checked every `everyMs`). */
export function waitFor(pred, timeoutMs, what, everyMs = 5) {
  return waitForCondition(() => pred() || undefined, { timeoutMs, what, pollMs: everyMs });
}

export { sleep };
export const tick = () => new Promise((r) => setImmediate(r));

/** Starts an mgr; with `waitActive`, resolves once it holds the lease. */
export async function startMgr(ctx, { waitActive = true } = {}) {
  await ctx.store.ready(5000);
  const mgr = new MgrServer(ctx);
  await mgr.start();
  if (waitActive) await waitFor(() => mgr.isActive, 15_000, 'mgr active');
  return mgr;
}

/** Members registered with this mgr (MgrServer keeps them in a private map; status() is the public, slower path). */
export function mgrMemberCount(mgr) {
  return mgr.sessions instanceof Map ? mgr.sessions.size : mgr.status().members.length;
}

/** Forces a full GC when possible (flag set at runtime), then returns process.memoryUsage(). */
export async function gcMemory() {
  const gc = getGc();
  for (let i = 0; i < 3; i++) {
    gc?.();
    await sleep(50);
  }
  return process.memoryUsage();
}

let gcFn;
function getGc() {
  if (gcFn !== undefined) return gcFn;
  try {
    v8.setFlagsFromString('--expose-gc');
    gcFn = vm.runInNewContext('gc');
  } catch {
    gcFn = null;
  }
  return gcFn;
}

/** Soft RLIMIT_NOFILE of this process (from /proc; undefined elsewhere). */
export function fdLimit() {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    return Number.isFinite(soft) ? soft : undefined;
  } catch {
    return undefined;
  }
}

/** A frame (docs/protocol.md §1), with the argument order the bench rows use. */
export function encodeFrame(cmd, flags, rid, body) {
  return protocolEncodeFrame(cmd, body, flags, rid);
}

/** Writes a login token for `account` on `gatewayId` straight into the store (what the login service does). */
export async function issueToken(store, account, gatewayId, ttlMs = 120_000) {
  const token = randomBytes(18).toString('base64url');
  await store.putToken(token, { account, gatewayId, generation: 1, allocations: {}, expiresAt: Date.now() + ttlMs }, ttlMs);
  return token;
}
