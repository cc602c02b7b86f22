// Redis helpers for the parent: reachability check and cleanup of the keys a run created.
// Keys are only ever deleted by pattern on the run's unique token; never FLUSHALL.
import { deleteKeys } from '../../testkit/index.js';

export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function withRedis(fn) {
  const { Redis } = await import('ioredis');
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  redis.on('error', () => {}); // surfaced through the failing command
  try {
    await redis.connect();
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

let reachable; // memoized { ok, reason }

export async function checkRedis() {
  if (reachable) return reachable;
  try {
    await withRedis((r) => r.ping());
    reachable = { ok: true };
  } catch (err) {
    reachable = { ok: false, reason: `redis unreachable at ${REDIS_URL} (${err.message})` };
  }
  return reachable;
}

/** Deletes every key containing `token`; returns how many were removed. */
export async function deleteKeysContaining(token) {
  if (!(await checkRedis()).ok) return 0;
  return deleteKeys(REDIS_URL, `*${token}*`);
}
