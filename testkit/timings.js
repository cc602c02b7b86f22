// @ts-check
/**
 * The short timings every test harness runs xserver with, in one table keyed by setting
 * (src/config/schema.ts). The defaults are sized for production (a dead mgr is replaced in about
 * 3 s, a client may be away 10 s); tests that are not about the defaults use these, so a
 * failover or a lost client takes about a second. A test about one of these behaviours reads the
 * value from here rather than repeating the number.
 *
 * The process harnesses pass them as XSERVER_* environment variables (`timingsEnv()`), the
 * in-process harness writes them into its config object (`applyTimings()`).
 *
 * Benchmarks do not use them: they measure the defaults (or the spec's numbers) on purpose.
 */

/** @typedef {Readonly<Record<string, number>>} Timings */

/** @type {Timings} */
export const FAST_TIMINGS = Object.freeze({
  // Links: a hung peer is noticed within a second.
  'link.heartbeatIntervalMs': 300,
  'link.heartbeatTimeoutMs': 1000,
  // mgr lease: a killed mgr is replaced about 1.2 s later (refresh 4× per TTL, as by default 3/TTL).
  'mgr.leaseTtlMs': 1200,
  'mgr.leaseRefreshMs': 300,
  'mgr.standbyPollMs': 100,
  // After a takeover, members mirrored by the dead mgr get 1.5 s to re-register: a whole lease
  // TTL plus a re-dial, on a machine whose two cores run several test processes.
  'mgr.settleGraceMs': 1500,
  'mgr.updateMinIntervalMs': 20,
  'node.updateIntervalMs': 50,
  'node.discoveryMaxBackoffMs': 300,
  'node.dialMaxBackoffMs': 300,
  'node.shutdownDrainMs': 200,
  // SIGTERM drains at most this long (production: 30 s), so stopping a test process stays quick.
  drainTimeoutMs: 300,
  // Clients: a dropped client's session waits 1.5 s for a reconnect; clients ping every second.
  'gateway.reconnectGraceMs': 1500,
  'gateway.heartbeatMs': 1000,
});

/**
 * The XSERVER_* environment variable of a setting key (same rule as src/config/schema.ts envName:
 * `link.heartbeatTimeoutMs` -> `XSERVER_LINK_HEARTBEAT_TIMEOUT_MS`).
 * @param {string} key
 */
export function settingEnvName(key) {
  return (
    'XSERVER_' +
    key
      .split('.')
      .map((part) => part.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase())
      .join('_')
  );
}

/**
 * The timings as environment variables for a child process.
 * @param {Timings} [timings]
 * @returns {Readonly<Record<string, string>>}
 */
export function timingsEnv(timings = FAST_TIMINGS) {
  return Object.freeze(Object.fromEntries(Object.entries(timings).map(([key, value]) => [settingEnvName(key), String(value)])));
}

/**
 * Writes the timings into a config object (an XConfig) in place and returns it.
 * @template {object} C
 * @param {C} config
 * @param {Timings} [timings]
 * @returns {C}
 */
export function applyTimings(config, timings = FAST_TIMINGS) {
  for (const [key, value] of Object.entries(timings)) {
    const parts = key.split('.');
    /** @type {Record<string, unknown>} */
    let at = /** @type {Record<string, unknown>} */ (config);
    for (const p of parts.slice(0, -1)) {
      const next = at[p];
      if (typeof next !== 'object' || next === null) throw new Error(`config has no section '${p}' for timing ${key}`);
      at = /** @type {Record<string, unknown>} */ (next);
    }
    const leaf = /** @type {string} */ (parts[parts.length - 1]);
    if (!(leaf in at)) throw new Error(`config has no setting ${key}`);
    at[leaf] = value;
  }
  return config;
}
