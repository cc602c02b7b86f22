/**
 * `ClusterStore` in process memory, for the all-in-one cluster when no Redis is reachable: every
 * role runs in one process and shares one instance.
 *
 * Semantics match `RedisStore`: each method's body runs synchronously, which makes it atomic just
 * like a Lua script; expiries are timestamps checked on access (so they are exact), and an unref'd
 * sweep frees entries nobody reads again (unused tokens, old failure counters). Values are copied
 * in and out, as a network store would, so callers never share mutable state through the store.
 */
import { EventEmitter } from 'node:events';
import { XError } from '../errors.js';
import { chooseAllocation, chooseReallocation } from './allocation.js';
import { generationFrom } from './store.js';
import type { AccountRecord, AllocationCandidate, ClusterStore, LeaseCommandOptions, LeaseRecord, PresenceRecord, TokenRecord } from './store.js';

export interface MemoryStoreOptions {
  logger?: { warn(obj: object, msg?: string): void };
}

/** How often expired entries that nobody reads are dropped. */
const SWEEP_INTERVAL_MS = 5000;

const LEASE_EVENT = 'lease';
/** The lease is the single entry of its TtlMap. */
const LEASE_KEY = 'lease';

/** Same rounding as Redis PX: a positive whole number of milliseconds. */
function expiryFrom(ttlMs: number): number {
  return Date.now() + Math.max(1, Math.ceil(ttlMs));
}

/** A map whose entries may expire; an expired entry is gone for every read. */
class TtlMap<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number | undefined }>();

  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt !== undefined && e.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  /** Stores `value`; without `ttlMs` it never expires (like SET without PX). */
  set(key: string, value: V, ttlMs?: number): void {
    this.entries.set(key, { value, expiresAt: ttlMs === undefined ? undefined : expiryFrom(ttlMs) });
  }

  /** Replaces the value of a live entry, keeping its expiry; false when there is none. */
  replace(key: string, value: V): boolean {
    const e = this.entries.get(key);
    if (e === undefined || this.get(key) === undefined) return false;
    e.value = value;
    return true;
  }

  /** Sets (`ttlMs`) or clears (undefined) the expiry of a live entry; false when there is none. */
  expire(key: string, ttlMs: number | undefined): boolean {
    const value = this.get(key);
    if (value === undefined) return false;
    this.set(key, value, ttlMs);
    return true;
  }

  /** True when a live entry was removed. */
  delete(key: string): boolean {
    const live = this.get(key) !== undefined;
    this.entries.delete(key);
    return live;
  }

  sweep(now: number): void {
    for (const [key, e] of this.entries) {
      if (e.expiresAt !== undefined && e.expiresAt <= now) this.entries.delete(key);
    }
  }

  clear(): void {
    this.entries.clear();
  }
}

export class MemoryStore implements ClusterStore {
  readonly kind = 'memory' as const;
  readonly description: string;

  private readonly logger: MemoryStoreOptions['logger'];
  private readonly announcements = new EventEmitter();
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  private readonly lease = new TtlMap<LeaseRecord>();
  private epoch = 0;
  private readonly mirror = new Map<string, Uint8Array>();
  private readonly policies = new Map<number, Uint8Array>();
  private readonly accounts = new Map<string, AccountRecord>();
  private readonly failures = new TtlMap<number>();
  private readonly tokens = new TtlMap<TokenRecord>();
  /** account -> (type -> node id); the whole entry expires after releaseAllocations. */
  private readonly allocations = new TtlMap<Map<string, string>>();
  private readonly generations = new Map<string, number>();
  private readonly presence = new Map<string, PresenceRecord>();
  private readonly kv = new TtlMap<string>();
  /** account + "\0" + handoff id -> exported state. */
  private readonly handoffs = new TtlMap<Uint8Array>();
  private readonly hashes = new Map<string, Map<string, string>>();

  constructor(cluster = 'default', opts: MemoryStoreOptions = {}) {
    this.description = `memory (cluster ${cluster})`;
    this.logger = opts.logger;
    // Every component of the process may listen; the default limit of 10 would warn spuriously.
    this.announcements.setMaxListeners(0);
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  private sweep(): void {
    const now = Date.now();
    for (const m of [this.lease, this.failures, this.tokens, this.allocations, this.kv, this.handoffs]) m.sweep(now);
  }

  /** Operations after close() fail as they would on a closed Redis connection. */
  private check(): void {
    if (this.closed) throw new XError('STORE_UNAVAILABLE', `store ${this.description} is closed`);
  }

  async ready(): Promise<void> {
    this.check();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    this.announcements.removeAllListeners();
    for (const m of [this.lease, this.failures, this.tokens, this.allocations, this.kv, this.handoffs]) m.clear();
    for (const m of [this.mirror, this.policies, this.accounts, this.generations, this.presence, this.hashes]) m.clear();
  }

  // ---- mgr lease ----

  async acquireLease(rec: Omit<LeaseRecord, 'epoch'>, ttlMs: number, opts: LeaseCommandOptions = {}): Promise<LeaseRecord | null> {
    this.check();
    this.checkDeadline('acquireLease', opts);
    const held = this.lease.get(LEASE_KEY);
    if (held !== undefined && held.instanceId !== rec.instanceId) return null;
    const stored: LeaseRecord = { ...rec, epoch: ++this.epoch };
    this.lease.set(LEASE_KEY, stored, ttlMs);
    return { ...stored };
  }

  async refreshLease(instanceId: string, ttlMs: number, opts: LeaseCommandOptions = {}): Promise<boolean> {
    this.check();
    this.checkDeadline('refreshLease', opts);
    return this.holdsLease(instanceId) && this.lease.expire(LEASE_KEY, ttlMs);
  }

  private checkDeadline(what: string, opts: LeaseCommandOptions): void {
    const late = opts.notAfter === undefined ? 0 : Date.now() - opts.notAfter;
    if (late > 0)
      throw new XError('STORE_UNAVAILABLE', `store ${this.description}: ${what} ran ${late} ms after its deadline; not applied`, { late });
  }

  async releaseLease(instanceId: string): Promise<void> {
    this.check();
    if (this.holdsLease(instanceId)) this.lease.delete(LEASE_KEY);
  }

  async readLease(): Promise<LeaseRecord | null> {
    this.check();
    const rec = this.lease.get(LEASE_KEY);
    return rec ? { ...rec } : null;
  }

  private holdsLease(instanceId: string): boolean {
    return this.lease.get(LEASE_KEY)?.instanceId === instanceId;
  }

  async announceLease(rec: LeaseRecord): Promise<void> {
    this.check();
    // Delivered on a later turn, as pub/sub would: listeners never run inside the announcer's call.
    const copy = { ...rec };
    setImmediate(() => this.announcements.emit(LEASE_EVENT, copy));
  }

  async onLeaseAnnounced(fn: (rec: LeaseRecord) => void): Promise<() => Promise<void>> {
    this.check();
    // A fresh wrapper per call, so registering the same function twice needs two unsubscribes;
    // it also keeps one throwing listener from starving the others.
    const listener = (rec: LeaseRecord): void => {
      try {
        fn({ ...rec });
      } catch (err) {
        this.logger?.warn({ store: this.description, err: err instanceof Error ? err.message : String(err) }, 'lease announcement listener threw');
      }
    };
    this.announcements.on(LEASE_EVENT, listener);
    return async () => {
      this.announcements.off(LEASE_EVENT, listener);
    };
  }

  // ---- membership mirror ----

  async mirrorPut(instanceId: string, id: string, info: Uint8Array): Promise<boolean> {
    this.check();
    if (!this.holdsLease(instanceId)) return false;
    this.mirror.set(id, info.slice());
    return true;
  }

  async mirrorDelete(instanceId: string, id: string): Promise<boolean> {
    this.check();
    if (!this.holdsLease(instanceId)) return false;
    this.mirror.delete(id);
    return true;
  }

  async mirrorReplace(instanceId: string, members: Map<string, Uint8Array>): Promise<boolean> {
    this.check();
    if (!this.holdsLease(instanceId)) return false;
    this.mirror.clear();
    for (const [id, info] of members) this.mirror.set(id, info.slice());
    return true;
  }

  async mirrorLoad(): Promise<Map<string, Uint8Array>> {
    this.check();
    return new Map([...this.mirror].map(([id, info]) => [id, info.slice()]));
  }

  async policyPut(instanceId: string, type: number, policy: Uint8Array | null): Promise<boolean> {
    this.check();
    if (!this.holdsLease(instanceId)) return false;
    if (policy === null) this.policies.delete(type);
    else this.policies.set(type, policy.slice());
    return true;
  }

  async policyLoad(): Promise<Map<number, Uint8Array>> {
    this.check();
    return new Map([...this.policies].map(([t, p]) => [t, p.slice()]));
  }

  // ---- accounts ----

  async getAccount(account: string): Promise<AccountRecord | null> {
    this.check();
    const rec = this.accounts.get(account);
    return rec ? { ...rec } : null;
  }

  async createAccount(account: string, rec: AccountRecord): Promise<boolean> {
    this.check();
    if (this.accounts.has(account)) return false;
    this.accounts.set(account, { passwordHash: rec.passwordHash, createdAt: rec.createdAt });
    return true;
  }

  async setAccountPassword(account: string, passwordHash: string): Promise<boolean> {
    this.check();
    const rec = this.accounts.get(account);
    if (!rec) return false;
    rec.passwordHash = passwordHash;
    return true;
  }

  async deleteAccount(account: string): Promise<boolean> {
    this.check();
    return this.accounts.delete(account);
  }

  async countFailure(key: string, windowMs: number): Promise<number> {
    this.check();
    const n = this.failures.get(key);
    if (n === undefined) {
      this.failures.set(key, 1, windowMs);
      return 1;
    }
    // Counting within the window keeps its end, like INCR on a key with a TTL.
    this.failures.replace(key, n + 1);
    return n + 1;
  }

  async clearFailures(key: string): Promise<void> {
    this.check();
    this.failures.delete(key);
  }

  // ---- tokens ----

  async putToken(token: string, rec: TokenRecord, ttlMs: number): Promise<void> {
    this.check();
    this.tokens.set(token, structuredClone(rec), ttlMs);
  }

  async takeToken(token: string, gatewayId: string): Promise<TokenRecord | null> {
    this.check();
    const rec = this.tokens.get(token);
    if (rec === undefined) return null;
    if (rec.gatewayId === gatewayId) this.tokens.delete(token);
    return rec;
  }

  // ---- allocations ----

  async allocate(account: string, type: number, candidates: AllocationCandidate[]): Promise<string | null> {
    this.check();
    const byType = this.allocations.get(account) ?? new Map<string, string>();
    const pick = chooseAllocation(byType.get(String(type)), candidates);
    if (pick === null) return null;
    byType.set(String(type), pick);
    // Stored without expiry: an allocation in use must outlive any earlier releaseAllocations.
    this.allocations.set(account, byType);
    return pick;
  }

  async reallocate(account: string, type: number, deadId: string, candidates: AllocationCandidate[]): Promise<string | null> {
    this.check();
    const byType = this.allocations.get(account);
    const { pick, write } = chooseReallocation(byType?.get(String(type)), deadId, candidates);
    if (pick === null || !write) return pick;
    if (byType) byType.set(String(type), pick);
    else this.allocations.set(account, new Map([[String(type), pick]]));
    return pick;
  }

  async getAllocations(account: string): Promise<Record<string, string>> {
    this.check();
    return Object.fromEntries(this.allocations.get(account) ?? []);
  }

  async releaseAllocations(account: string, affinityMs: number): Promise<void> {
    this.check();
    if (affinityMs > 0) this.allocations.expire(account, affinityMs);
    else this.allocations.delete(account);
  }

  // ---- handoff ----

  async putHandoffState(account: string, handoffId: string, state: Uint8Array, ttlMs: number): Promise<void> {
    this.check();
    this.handoffs.set(`${account}\0${handoffId}`, state.slice(), ttlMs);
  }

  async takeHandoffState(account: string, handoffId: string): Promise<Uint8Array | null> {
    this.check();
    const k = `${account}\0${handoffId}`;
    const v = this.handoffs.get(k);
    this.handoffs.delete(k);
    return v ?? null;
  }

  // ---- presence ----

  async nextGeneration(account: string): Promise<number> {
    this.check();
    const next = (this.generations.get(account) ?? 0) + 1;
    this.generations.set(account, next);
    return generationFrom(next);
  }

  async setPresence(account: string, rec: PresenceRecord): Promise<void> {
    this.check();
    const cur = this.presence.get(account);
    if (cur && cur.generation > rec.generation) return; // never overwrite a newer session
    this.presence.set(account, { gatewayId: rec.gatewayId, generation: rec.generation });
  }

  async getPresence(account: string): Promise<PresenceRecord | null> {
    this.check();
    const rec = this.presence.get(account);
    return rec ? { ...rec } : null;
  }

  async clearPresence(account: string, generation: number): Promise<boolean> {
    this.check();
    const cur = this.presence.get(account);
    if (cur === undefined) return true; // nobody newer owns it
    if (cur.generation !== generation) return false;
    return this.presence.delete(account);
  }

  async movePresence(account: string, generation: number, fromGatewayId: string, toGatewayId: string): Promise<boolean> {
    this.check();
    const cur = this.presence.get(account);
    if (!cur || cur.generation !== generation || cur.gatewayId !== fromGatewayId) return false;
    this.presence.set(account, { gatewayId: toGatewayId, generation });
    return true;
  }

  // ---- key-value area ----

  async kvGet(key: string): Promise<string | null> {
    this.check();
    return this.kv.get(key) ?? null;
  }

  async kvSet(key: string, value: string, ttlMs?: number): Promise<void> {
    this.check();
    this.kv.set(key, value, ttlMs);
  }

  async kvSetIfAbsent(key: string, value: string, ttlMs?: number): Promise<boolean> {
    this.check();
    if (this.kv.get(key) !== undefined) return false;
    this.kv.set(key, value, ttlMs);
    return true;
  }

  async kvDelete(key: string): Promise<boolean> {
    this.check();
    return this.kv.delete(key);
  }

  async hashGetAll(key: string): Promise<Record<string, string>> {
    this.check();
    return Object.fromEntries(this.hashes.get(key) ?? []);
  }

  async hashSet(key: string, field: string, value: string): Promise<void> {
    this.check();
    let h = this.hashes.get(key);
    if (!h) this.hashes.set(key, (h = new Map()));
    h.set(field, value);
  }

  async hashDelete(key: string, field: string): Promise<boolean> {
    this.check();
    const h = this.hashes.get(key);
    if (!h?.delete(field)) return false;
    // An empty hash disappears, as in Redis.
    if (h.size === 0) this.hashes.delete(key);
    return true;
  }
}
