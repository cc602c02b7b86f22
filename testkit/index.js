// @ts-check
/**
 * Test kit shared by the tests (test/) and the benchmarks (bench/): plain Node ESM with JSDoc
 * types, so the benchmarks load it without a build step and the TypeScript tests import the same
 * copy (type-checked by `tsc -p testkit`).
 *
 * - waitFor(cond, { timeoutMs, what }): the one wait for a condition (wait.js)
 * - spawnGroup(): a child in its own process group, output captured, killed with its group (process-group.js)
 * - freePort(), waitForPort() (ports.js)
 * - FAST_TIMINGS: the short timings of every test harness (timings.js)
 * - deleteKeys(), clusterKeyPatterns(): Redis cleanup by pattern (redis-keys.js)
 * - acquireMachineLock(): one process-cluster test file at a time on the machine (machine-lock.js)
 * - spawnXserver(), xserverEnv(), xserverStatus(), xserverCommand(): xserver itself as a child (xserver.js)
 * - ACCEPT_VERIFIER: a login verifier for load tests, password "bot" (accept-verifier.js)
 *
 * Vitest hooks for process-cluster files are in ./suite.js (not re-exported: it imports vitest).
 */
export { wallMs } from './clock.js';
export { ChangeFeed, DEFAULT_POLL_MS, WaitTimeoutError, sleep, waitFor } from './wait.js';
export {
  DEFAULT_KEEP_LINES,
  GroupProcess,
  KILL_WAIT_MS,
  ProcessExitedError,
  commandExists,
  killAllGroupsNow,
  killGroups,
  liveGroupPids,
  spawnGroup,
} from './process-group.js';
export { acceptsConnections, freePort, freePortPair, waitForPort } from './ports.js';
export { FAST_TIMINGS, applyTimings, settingEnvName, timingsEnv } from './timings.js';
export { clusterKeyPatterns, deleteKeys } from './redis-keys.js';
export { LOCK_FILE, acquireMachineLock, releaseMachineLock } from './machine-lock.js';
export { REPO_ROOT, XSERVER_BIN, spawnXserver, xserverCommand, xserverEnv, xserverSpawnOptions, xserverStatus } from './xserver.js';
export { ACCEPT_VERIFIER } from './accept-verifier.js';
