// @ts-check
/**
 * One way to wait for a condition: `waitFor(cond, { timeoutMs, what })`.
 *
 * The condition (sync or async) is checked at once, then every `pollMs`, and also whenever the
 * optional `wake` feed reports a change (a new output line of a child, say), so a waiter on
 * events reacts at once instead of at the next poll. It resolves with the first value that is
 * not undefined, null or false. On timeout it rejects with a WaitTimeoutError that names what
 * was awaited, the last value (or error) seen and, if given, `context()` (e.g. a timeline).
 */

/** @typedef {undefined | null | false} NotYet */

/**
 * @template T
 * @typedef {object} WaitOptions
 * @property {number} timeoutMs How long to wait before failing.
 * @property {string} what What is awaited, for the timeout message ("mgr active").
 * @property {number} [pollMs] Re-check interval; Infinity = only when `wake` reports a change. Default 10.
 * @property {ChangeFeed} [wake] Re-checks whenever this feed reports a change.
 * @property {boolean | ((err: unknown) => boolean)} [retryErrors] Whether a throwing condition
 *   means "not yet" (true, or a predicate on the error) rather than failure (default: failure).
 * @property {() => string} [context] Extra text for the timeout message, computed at timeout.
 */

/** Default re-check interval: short next to every timeout in the tests, cheap for the cores. */
export const DEFAULT_POLL_MS = 10;

export class WaitTimeoutError extends Error {
  /**
   * @param {string} what
   * @param {number} timeoutMs
   * @param {unknown} last
   * @param {string} context
   */
  constructor(what, timeoutMs, last, context) {
    const lastText = last === undefined ? '' : ` (last: ${last instanceof Error ? last.message : String(last)})`;
    super(`timed out after ${timeoutMs} ms waiting for: ${what}${lastText}${context ? `\n${context}` : ''}`);
    this.name = 'WaitTimeoutError';
    this.what = what;
    this.timeoutMs = timeoutMs;
    this.last = last;
  }
}

/**
 * "Something changed": the thing a condition depends on calls `changed()`, waiters subscribe.
 */
export class ChangeFeed {
  /** @type {Set<() => void>} */
  #subscribers = new Set();

  changed() {
    for (const fn of [...this.#subscribers]) fn();
  }

  /**
   * @param {() => void} fn
   * @returns {() => void} unsubscribe
   */
  subscribe(fn) {
    this.#subscribers.add(fn);
    return () => void this.#subscribers.delete(fn);
  }
}

/**
 * @template T
 * @param {() => T | NotYet | Promise<T | NotYet>} cond
 * @param {WaitOptions<T>} opts
 * @returns {Promise<T>}
 */
export function waitFor(cond, opts) {
  const { timeoutMs, what, pollMs = DEFAULT_POLL_MS, wake, retryErrors = false, context } = opts;
  const retry = typeof retryErrors === 'function' ? retryErrors : () => retryErrors;
  return new Promise((resolve, reject) => {
    let settled = false;
    let running = false;
    let again = false;
    /** @type {unknown} */
    let last;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let pollTimer;

    const finish = (/** @type {(() => void)} */ settle) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(pollTimer);
      unsubscribe?.();
      settle();
    };

    const check = async () => {
      if (settled) return;
      if (running) {
        // An async check is in flight: run once more when it is done.
        again = true;
        return;
      }
      running = true;
      clearTimeout(pollTimer);
      try {
        do {
          again = false;
          /** @type {T | NotYet} */
          let v;
          try {
            v = await cond();
          } catch (err) {
            if (!retry(err)) return finish(() => reject(err));
            last = err;
            continue;
          }
          if (v !== undefined && v !== null && v !== false) {
            const value = v;
            return finish(() => resolve(value));
          }
          last = v;
        } while (again && !settled);
      } finally {
        running = false;
      }
      // check() handles its own errors (it settles the wait); the timer only re-runs it
      // eslint-disable-next-line @typescript-eslint/no-misused-promises
      if (!settled && Number.isFinite(pollMs)) pollTimer = setTimeout(check, pollMs);
    };

    const deadline = setTimeout(() => finish(() => reject(new WaitTimeoutError(what, timeoutMs, last, context?.() ?? ''))), timeoutMs);
    const unsubscribe = wake?.subscribe(() => void check());
    void check();
  });
}

/** @param {number} ms */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
