/**
 * Every use of shared state goes through this interface (SPEC §8): the mgr lease, takeover
 * announcements, the membership mirror, accounts, tokens, allocations, presence and a small
 * key-value area for services. `RedisStore` is the production backend; `MemoryStore` lets the
 * all-in-one cluster run every role in one process when no Redis is reachable.
 *
 * On Redis, the cluster-wide keys (lease, mirror, key-value area) live under `xs:{<cluster>}:`,
 * one Redis Cluster slot, so the scripts that touch several of them stay valid there; the keys of
 * one account (and failure counters, tokens) are tagged by their own id and spread over the
 * shards. The layout is described in redis-store.ts.
 */

/** The active mgr's address, published as a lease. */
export interface LeaseRecord {
  instanceId: string;
  addr: string;
  port: number;
  /** Monotonic per cluster: incremented by every successful acquisition. */
  epoch: number;
  /** Optional admin HTTP port of the mgr, for `xserver status`. */
  adminPort?: number;
}

export interface AccountRecord {
  /** scrypt hash, "scrypt$N$r$p$saltB64$hashB64" */
  passwordHash: string;
  createdAt: number;
}

export interface TokenRecord {
  account: string;
  gatewayId: string;
  generation: number;
  /** type -> node id allocated at login */
  allocations: Record<string, string>;
  /** Unix ms after which the gateway refuses the token as expired (the store keeps it a little longer so the refusal can say so). */
  expiresAt?: number;
}

export interface PresenceRecord {
  gatewayId: string;
  generation: number;
}

/** A live node the allocator may choose, lighter first is not required: the store picks the minimum load. */
export interface AllocationCandidate {
  id: string;
  load: number;
}

/**
 * The store's contract, one interface per concern; each consumer takes only the ones it uses
 * (the mgr lease and mirror, a node's lease watcher and presence lookups, the gateway's sessions,
 * login's accounts and sessions, services' key-value area). ClusterStore is all of them.
 */
export interface StoreLifecycle {
  /** Human description for logs, e.g. "redis://127.0.0.1:6379 (cluster dev)" or "memory". */
  readonly description: string;
  readonly kind: 'redis' | 'memory';

  /** Resolves once the backend answers (PING); rejects with STORE_UNAVAILABLE after `timeoutMs`. */
  ready(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * A lease command's deadline. A caller that stopped waiting for an acquisition or a refresh must
 * be able to rely on it never taking effect later (a Redis that stalls runs what it had already
 * received when it resumes): past `notAfter` the store refuses it with STORE_UNAVAILABLE and
 * changes nothing. Lease commands are also never queued while the store is disconnected, so
 * the time a caller starts one is the time it was sent.
 */
export interface LeaseCommandOptions {
  /** Wall-clock ms (Date.now()) after which the command must not be applied. */
  notAfter?: number;
}

/** The mgr lease as its holder and the standbys use it (SPEC §3.1–3.3). */
export interface LeaseStore {
  /**
   * Takes the lease if nobody else holds it: atomically bumps the epoch and stores the record with a
   * TTL. Returns the stored record (with its new epoch) or null when someone else holds it. A lease
   * still held under the caller's own instanceId counts as free: a caller that gave up on an earlier
   * acquisition that did land takes it over at its next attempt instead of waiting a TTL.
   */
  acquireLease(rec: Omit<LeaseRecord, 'epoch'>, ttlMs: number, opts?: LeaseCommandOptions): Promise<LeaseRecord | null>;
  /** Extends the lease if `instanceId` still holds it; false means it was lost (step down). */
  refreshLease(instanceId: string, ttlMs: number, opts?: LeaseCommandOptions): Promise<boolean>;
  /** Deletes the lease if `instanceId` holds it (graceful mgr stop). */
  releaseLease(instanceId: string): Promise<void>;
  /** Announces a new active mgr (pub/sub), so nodes re-discover at once. */
  announceLease(rec: LeaseRecord): Promise<void>;
}

/** The mgr lease as everyone else reads it: nodes finding the mgr, `xserver status`. */
export interface LeaseWatcher {
  readLease(): Promise<LeaseRecord | null>;
  /** Calls `fn` for each announcement; returns an unsubscribe function. */
  onLeaseAnnounced(fn: (rec: LeaseRecord) => void): Promise<() => Promise<void>>;
}

/** The membership mirror (SPEC §3.8): written only by the lease holder. */
export interface MirrorStore {
  /** Stores/replaces one member (an encoded NodeInfo). No-op, returning false, if `instanceId` no longer holds the lease. */
  mirrorPut(instanceId: string, id: string, info: Uint8Array): Promise<boolean>;
  mirrorDelete(instanceId: string, id: string): Promise<boolean>;
  /** Replaces the whole mirror (used when a new mgr settles). */
  mirrorReplace(instanceId: string, members: Map<string, Uint8Array>): Promise<boolean>;
  mirrorLoad(): Promise<Map<string, Uint8Array>>;
  /**
   * The canary routing policies (an encoded RoutingPolicy per service type), kept beside the
   * mirror so a new active mgr serves them. Put with `policy` null deletes. Fenced like the mirror.
   */
  policyPut(instanceId: string, type: number, policy: Uint8Array | null): Promise<boolean>;
  policyLoad(): Promise<Map<number, Uint8Array>>;
}

/** Login accounts and the failed-attempt counters that throttle guessing. */
export interface AccountStore {
  getAccount(account: string): Promise<AccountRecord | null>;
  /** Creates the account only if absent; false when it exists. */
  createAccount(account: string, rec: AccountRecord): Promise<boolean>;
  /** Replaces the password of an existing account; false when absent. */
  setAccountPassword(account: string, passwordHash: string): Promise<boolean>;
  deleteAccount(account: string): Promise<boolean>;

  /** Counts a failed attempt for `key` in a window; returns the count in the current window. */
  countFailure(key: string, windowMs: number): Promise<number>;
  clearFailures(key: string): Promise<void>;
}

/** A client session across login, gateway and nodes: tokens, allocations, generations, presence. */
export interface SessionStore {
  // ---- tokens: random, short TTL, single use ----

  putToken(token: string, rec: TokenRecord, ttlMs: number): Promise<void>;
  /**
   * Returns the token's record (null if absent or expired) and deletes it atomically (single use)
   * when it was issued for `gatewayId`. A token presented at another gateway is left in place, so
   * it still works at the right one.
   */
  takeToken(token: string, gatewayId: string): Promise<TokenRecord | null>;

  // ---- allocations: account -> node per stateful type, atomic, sticky (policy: allocation.ts) ----

  /**
   * Returns the account's node of `type`. Keeps the current allocation when it is among
   * `candidates` (sticky); otherwise atomically picks the least-loaded candidate and stores it.
   * Null when there are no candidates. Clears any expiry set by `releaseAllocations`.
   */
  allocate(account: string, type: number, candidates: AllocationCandidate[]): Promise<string | null>;
  /**
   * Compare-and-set: if the account's node of `type` is still `deadId` (or unset), move it to the
   * least-loaded candidate. Returns the allocation in force afterwards (another caller may have won).
   */
  reallocate(account: string, type: number, deadId: string, candidates: AllocationCandidate[]): Promise<string | null>;
  getAllocations(account: string): Promise<Record<string, string>>;
  /** After logout: keep the allocations for `affinityMs` (login affinity window), then forget them. */
  releaseAllocations(account: string, affinityMs: number): Promise<void>;

  // ---- handoff: an account's state between a draining stateful node and its successor ----

  /** Stores an account's exported state under `handoffId` for `ttlMs` (a draining node's onAccountExport). */
  putHandoffState(account: string, handoffId: string, state: Uint8Array, ttlMs: number): Promise<void>;
  /** Returns the state stored under `handoffId` and deletes it atomically (one importer wins); null when absent or expired. */
  takeHandoffState(account: string, handoffId: string): Promise<Uint8Array | null>;

  // ---- presence: which gateway holds the account's session ----

  /** Issues the next session generation of an account (monotonic). */
  nextGeneration(account: string): Promise<number>;
  /** Records the account's gateway, unless a newer generation is already recorded. */
  setPresence(account: string, rec: PresenceRecord): Promise<void>;
  getPresence(account: string): Promise<PresenceRecord | null>;
  /**
   * Clears presence only if it still belongs to `generation` (a late loss never evicts a newer login).
   * True also when there is none (e.g. Redis restarted empty): no newer login owns the account.
   */
  clearPresence(account: string, generation: number): Promise<boolean>;
  /**
   * A live session handoff (docs/protocol.md, "Session handoff"): compare-and-set the account's
   * presence from `fromGatewayId` to `toGatewayId`, same generation. False (nothing changed) when the
   * presence is not `{fromGatewayId, generation}` any more: a newer login owns the account.
   */
  movePresence(account: string, generation: number, fromGatewayId: string, toGatewayId: string): Promise<boolean>;
}

/** A small key-value area for services (the examples keep role names in it). */
export interface KvStore {
  kvGet(key: string): Promise<string | null>;
  kvSet(key: string, value: string, ttlMs?: number): Promise<void>;
  /** Sets only if absent; true when set. */
  kvSetIfAbsent(key: string, value: string, ttlMs?: number): Promise<boolean>;
  kvDelete(key: string): Promise<boolean>;
  hashGetAll(key: string): Promise<Record<string, string>>;
  hashSet(key: string, field: string, value: string): Promise<void>;
  hashDelete(key: string, field: string): Promise<boolean>;
}

/** Every concern at once: what a backend implements and what a process opens. */
export interface ClusterStore extends StoreLifecycle, LeaseStore, LeaseWatcher, MirrorStore, AccountStore, SessionStore, KvStore {}

/**
 * Session generations must keep growing even if Redis restarts empty (nothing is persisted):
 * the clock gives the high part, the per-account counter orders logins within a millisecond.
 */
export function generationFrom(counter: number): number {
  return Date.now() * 1000 + (counter % 1000);
}
