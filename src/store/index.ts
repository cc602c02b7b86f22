/**
 * Store selection: `memory://` (or `memory`) keeps all shared state in this process, any other URL
 * is a Redis deployment (see RedisStore for the accepted forms).
 */
import { MemoryStore, type MemoryStoreOptions } from './memory-store.js';
import { RedisStore, type RedisStoreOptions } from './redis-store.js';
import type { ClusterStore } from './store.js';

export * from './store.js';
export { MemoryStore, type MemoryStoreOptions } from './memory-store.js';
export { RedisStore, type RedisStoreOptions } from './redis-store.js';

export type StoreOptions = RedisStoreOptions & MemoryStoreOptions;

export function isMemoryUrl(url: string): boolean {
  return url === 'memory' || url.startsWith('memory://');
}

export function createStore(url: string, cluster: string, opts: StoreOptions = {}): ClusterStore {
  return isMemoryUrl(url) ? new MemoryStore(cluster, opts) : new RedisStore(url, cluster, opts);
}
