/**
 * The login path's view of the store: every call answers within `login.storeTimeoutMs` or fails
 * with STORE_UNAVAILABLE (HTTP 503), so a Redis that stalls costs a client that bound, not the
 * store's own `storeOpTimeoutMs` per call. The call itself is not cancelled: its reply (or the
 * store's own timeout) still settles it, and nothing waits for it any more.
 */
import { XError } from '../errors.js';

export function withCallDeadline<T extends object>(store: T, timeoutMs: number): T {
  return new Proxy(store, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop, target);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]): unknown => {
        const r: unknown = (v as (...a: unknown[]) => unknown).apply(target, args);
        return r instanceof Promise ? bounded(r, timeoutMs, String(prop)) : r;
      };
    },
  });
}

async function bounded<R>(p: Promise<R>, ms: number, what: string): Promise<R> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new XError('STORE_UNAVAILABLE', `store did not answer ${what} within ${ms} ms (login.storeTimeoutMs)`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}
