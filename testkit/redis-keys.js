// @ts-check
/**
 * Deletes the keys a test or benchmark created, by pattern (SCAN MATCH + DEL; never FLUSHALL:
 * the Redis is shared by everybody on the machine).
 */

/**
 * The SCAN MATCH patterns of every key of an xserver cluster (or of clusters, with `*` in the
 * name): its cluster-wide keys `xs:{<cluster>}:...` and its per-account keys `xs:<cluster>:...`.
 * @param {string} cluster
 * @returns {string[]}
 */
export function clusterKeyPatterns(cluster) {
  return [`xs:{${cluster}}:*`, `xs:${cluster}:*`];
}

/**
 * @param {string} url Redis URL
 * @param {string | string[]} patterns SCAN MATCH pattern(s), e.g. `xs:{t-1a2b}:*` or clusterKeyPatterns('t-1a2b')
 * @returns {Promise<number>} how many keys were deleted
 */
export async function deleteKeys(url, patterns) {
  // Loaded on first use: a harness that never touches Redis does not need the client.
  const { Redis } = await import('ioredis');
  // No reconnects: an unreachable Redis fails the cleanup at once, with its own error.
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2000, retryStrategy: () => null });
  redis.on('error', () => {}); // surfaced by the failing command
  let deleted = 0;
  try {
    await redis.connect();
    for (const pattern of typeof patterns === 'string' ? [patterns] : patterns) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) deleted += await redis.del(...keys);
      } while (cursor !== '0');
    }
  } finally {
    redis.disconnect();
  }
  return deleted;
}
