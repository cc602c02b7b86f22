/**
 * The allocation policy, in one place: which node of a stateful type an account is allocated to.
 * Both backends apply these pure choices; MemoryStore directly, RedisStore by reading the current
 * allocation and writing the choice with a compare-and-set script (retried when another writer
 * got in between), so the Redis path stays atomic without a second copy of the policy in Lua.
 *
 *   allocate:    keep the current node while it is a candidate (sticky), else the least loaded
 *   reallocate:  move away from `deadId` only if the allocation is still `deadId` (or unset)
 */
import type { AllocationCandidate } from './store.js';

/** First candidate of minimum load (ties keep candidate order); non-finite loads rank last; `exclude` is skipped. */
export function leastLoaded(candidates: readonly AllocationCandidate[], exclude?: string): string | null {
  let best: string | null = null;
  let bestLoad = 0;
  for (const c of candidates) {
    if (c.id === exclude) continue;
    const load = Number.isFinite(c.load) ? c.load : Number.MAX_VALUE;
    if (best === null || load < bestLoad) {
      best = c.id;
      bestLoad = load;
    }
  }
  return best;
}

/** allocate(): the node to store (and return) given the current one; null when there is no candidate. */
export function chooseAllocation(current: string | undefined, candidates: readonly AllocationCandidate[]): string | null {
  if (current !== undefined && candidates.some((c) => c.id === current)) return current;
  return leastLoaded(candidates);
}

export interface Reallocation {
  /** The allocation in force afterwards (null: none, the dead one is kept for when it comes back). */
  pick: string | null;
  /** Whether `pick` must be stored (false: someone already moved it, or there is nowhere to go). */
  write: boolean;
}

/** reallocate(): compare-and-set away from `deadId`. With no candidate the dead allocation is kept. */
export function chooseReallocation(current: string | undefined, deadId: string, candidates: readonly AllocationCandidate[]): Reallocation {
  if (current !== undefined && current !== deadId) return { pick: current, write: false };
  const pick = leastLoaded(candidates, deadId);
  return { pick, write: pick !== null };
}
