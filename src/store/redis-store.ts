/**
 * `ClusterStore` on Redis (ioredis): standalone, TLS, Sentinel or Redis Cluster.
 *
 * Every multi-step operation is one Lua script, so concurrent processes never observe or produce a
 * half-done state, and no script touches keys of two Redis Cluster slots. Key layout:
 *
 *   xs:{<cluster>}:lease, :lease:epoch, :mirror, :routing, :kv:<key>, :hash:<key>   one slot per cluster
 *   channel xs:{<cluster>}:lease:announce
 *   xs:<cluster>:acct:{<account>}, :alloc:{..}, :gen:{..}, :presence:{..}  one slot per account
 *   xs:<cluster>:handoff:{<account>}:<handoff id>                           (the account's slot)
 *   xs:<cluster>:fail:{<counter>}, xs:<cluster>:token:{<token>}           one slot per key
 *
 * The cluster-wide keys share the hash tag `{<cluster>}` because the lease scripts and the mirror
 * scripts touch the lease and a second key together. Everything kept per account (and the failure
 * counters and tokens) is tagged by its own id, so on Redis Cluster logins spread over the shards
 * and only the mgr's lease and mirror traffic stays on the cluster's slot. Inside a tag, `%`, `{`
 * and `}` are percent-encoded (account names cannot contain them anyway), so an id can never end
 * the tag early. Every per-account script takes exactly one key.
 *
 * Accounts written by versions before this layout (`xs:{<cluster>}:acct:<account>`) are read
 * through: the first read of such an account copies it to its new key (the old key is only ever
 * read, and deleted with the account).
 *
 * Availability: connections reconnect forever (Redis may restart under a running cluster), and
 * every operation is bounded by `opTimeoutMs`, so a caller gets STORE_UNAVAILABLE instead of
 * waiting on a dead server. Pub/sub runs on its own connection, which ioredis re-subscribes after
 * a reconnect (`autoResubscribe`).
 *
 * A connection ioredis gives up on (status `end`: under Sentinel, a failover detection that
 * interrupts a reconnect leaves it there for good) is replaced while the store is open: logged,
 * counted (`connectionsReplaced`, the xserver_store_connections_replaced_total metric), opened
 * again after a bounded backoff, and the subscriber's channel subscribed again.
 *
 *   open --ready--> ready --lost--> reconnecting --ready--> ready     (ioredis)
 *                                        \--end--> [replace after backoff] --> open   (here)
 *
 * Lease commands are never queued while disconnected and carry a deadline the acquire and refresh
 * scripts check against the server's clock (LeaseCommandOptions): a command the mgr gave up on
 * cannot install or extend a lease when a stalled Redis resumes.
 */
import { Cluster, Redis, ReplyError, type ClusterOptions, type RedisOptions } from 'ioredis';
import { XError } from '../errors.js';
import { LogThrottle } from '../log.js';
import type { Metrics } from '../metrics.js';
import { Backoff } from '../protocol/backoff.js';
import type { AccountRecord, AllocationCandidate, ClusterStore, LeaseCommandOptions, LeaseRecord, PresenceRecord, TokenRecord } from './store.js';
import { chooseAllocation, chooseReallocation, type Reallocation } from './allocation.js';
import { generationFrom } from './store.js';

export interface RedisStoreOptions {
  logger?: { warn(obj: object, msg?: string): void };
  /** Upper bound of one store operation, including time spent waiting for a reconnect. */
  opTimeoutMs?: number;
  /** Where xserver_store_connections_replaced_total is counted (by connection: data, subscriber). */
  metrics?: Metrics;
  /**
   * After creating an account on a master that has replicas, wait up to this long (WAIT 1 <ms>)
   * for one replica to acknowledge it, so an acknowledged account survives a failover. 0 = never wait.
   */
  waitReplicasMs?: number;
}

/** opTimeoutMs when none is given (the default of the storeOpTimeoutMs setting too). */
const DEFAULT_OP_TIMEOUT_MS = 5000;
/** waitReplicasMs when none is given (the default of the storeWaitReplicasMs setting too). */
const DEFAULT_WAIT_REPLICAS_MS = 250;
/** At most one "no replica acknowledged" warning per this interval. */
const WAIT_WARN_INTERVAL_MS = 60_000;
/**
 * A lease master seen with a replica this recently and with none now is not trusted with the lease
 * (a Sentinel failover in progress); longer than a Sentinel takes to demote the old master, short
 * enough that a replica that died for good costs one takeover.
 */
const REPLICA_LOSS_WINDOW_MS = 5000;
/** Bounds QUIT on close(): a server that stopped answering must not hold up shutdown. */
const QUIT_TIMEOUT_MS = 1000;
/** Pause between PINGs while ready() waits for the server. */
const READY_POLL_MS = 100;
/**
 * Reconnect delay grows by RECONNECT_STEP_MS per attempt up to RECONNECT_MAX_MS: a restarted Redis
 * is found again within about 2 s, and a long outage costs one attempt per 2 s per connection.
 */
const RECONNECT_STEP_MS = 200;
const RECONNECT_MAX_MS = 2000;
/**
 * Replacing a connection that ended waits REPLACE_MIN_MS (jittered) at first, doubling per
 * replacement that ends again before it was ever ready, up to REPLACE_MAX_MS: a failover is
 * followed within ~0.1 s, and a connection that keeps ending cannot spin.
 */
const REPLACE_MIN_MS = 100;
const REPLACE_MAX_MS = 5000;
/** One TCP connect attempt; start-up as a whole is bounded by the storeConnectTimeoutMs setting. */
const CONNECT_TIMEOUT_MS = 3000;
/**
 * Compare-and-set rounds of one allocate/reallocate. A round fails only when another writer changed
 * the same account's allocation of the same type between our read and write, and the next round
 * then usually keeps the winner's node (sticky); running out means a storm of concurrent writers.
 */
const ALLOCATION_CAS_ATTEMPTS = 8;

/**
 * Runs of one operation whose write met READONLY (a demoted master still reachable at its old
 * address): reconnectOnError has begun a reconnect, which under Sentinel (or a DNS name that moved)
 * reaches the current master, so the operation runs once more there.
 */
const READONLY_ATTEMPTS = 2;

/** Redis replies that mean "the server cannot serve right now", as opposed to a bug or bad data. */
const UNAVAILABLE_REPLY = /^(LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|NOAUTH|WRONGPASS|BUSY|MISCONF|NOREPLICAS)\b/;

/** Options shared by every connection (data, subscriber, cluster nodes). */
const CONNECTION_OPTIONS: RedisOptions = {
  // Never give up reconnecting; back off linearly up to RECONNECT_MAX_MS between attempts.
  retryStrategy: (times) => Math.min(times * RECONNECT_STEP_MS, RECONNECT_MAX_MS),
  // Commands queued while disconnected fail after one failed reconnect instead of twenty, so
  // callers hear about an outage within about a second (opTimeoutMs bounds the rest).
  maxRetriesPerRequest: 1,
  connectTimeout: CONNECT_TIMEOUT_MS,
  // A master demoted under us (failover, REPLICAOF) answers writes with READONLY: reconnect, which
  // under Sentinel asks the sentinels for the current master. The failed command is not resent
  // here (a server that stays a replica would loop); run() runs the operation once more.
  reconnectOnError: (err) => isReadonly(err),
};

// ---- Lua scripts ----

/** True when the lease (KEYS[1]) is held by ARGV[1]; used to fence mirror writes. */
const HOLDS_LEASE = `
local function holdsLease()
  local v = redis.call('GET', KEYS[1])
  return v ~= false and cjson.decode(v).instanceId == ARGV[1]
end
`;

/**
 * Refuses a lease command that runs after its deadline (ARGV[3], wall ms; '0' = none), by the
 * server's clock: a late command returns {'late', ms past the deadline} and changes nothing.
 */
const LEASE_DEADLINE = `
if ARGV[3] ~= '0' then
  local t = redis.call('TIME')
  local late = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[3])
  if late > 0 then return {'late', late} end
end
`;

const SCRIPTS = {
  // KEYS: lease, epoch. ARGV: record JSON without epoch, ttl, notAfter. Returns the stored JSON,
  // nil when another instance holds the lease, or {'late', ms}. A lease held under the caller's
  // own instanceId counts as free (it gave up on an acquisition that landed).
  xsAcquireLease: {
    keys: 2,
    lua: `${LEASE_DEADLINE}
local held = redis.call('GET', KEYS[1])
if held and cjson.decode(held).instanceId ~= cjson.decode(ARGV[1]).instanceId then return false end
local rec = cjson.decode(ARGV[1])
rec.epoch = redis.call('INCR', KEYS[2])
local json = cjson.encode(rec)
redis.call('SET', KEYS[1], json, 'PX', ARGV[2])
return json`,
  },
  // KEYS: lease. ARGV: instanceId, ttl, notAfter. Returns 1, 0 (not held) or {'late', ms}.
  xsRefreshLease: {
    keys: 1,
    lua: `${HOLDS_LEASE}${LEASE_DEADLINE}
if holdsLease() then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`,
  },
  // KEYS: lease. ARGV: instanceId.
  xsReleaseLease: {
    keys: 1,
    lua: `${HOLDS_LEASE}
if holdsLease() then return redis.call('DEL', KEYS[1]) end
return 0`,
  },
  // KEYS: lease, mirror. ARGV: instanceId, id, info.
  xsMirrorPut: {
    keys: 2,
    lua: `${HOLDS_LEASE}
if not holdsLease() then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1`,
  },
  // KEYS: lease, mirror. ARGV: instanceId, id.
  xsMirrorDelete: {
    keys: 2,
    lua: `${HOLDS_LEASE}
if not holdsLease() then return 0 end
redis.call('HDEL', KEYS[2], ARGV[2])
return 1`,
  },
  // KEYS: lease, mirror. ARGV: instanceId, then id, info pairs.
  xsMirrorReplace: {
    keys: 2,
    lua: `${HOLDS_LEASE}
if not holdsLease() then return 0 end
redis.call('DEL', KEYS[2])
for i = 2, #ARGV - 1, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1`,
  },
  // KEYS: account. ARGV: passwordHash, createdAt.
  xsCreateAccount: {
    keys: 1,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'passwordHash', ARGV[1], 'createdAt', ARGV[2])
return 1`,
  },
  // KEYS: account. ARGV: passwordHash.
  xsSetPassword: {
    keys: 1,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'passwordHash', ARGV[1])
return 1`,
  },
  // KEYS: counter. ARGV: window. A counter without expiry (never expected) would count forever,
  // so the TTL is set whenever it is missing, not only on the first increment.
  xsCountFailure: {
    keys: 1,
    lua: `
local n = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`,
  },
  // KEYS: token. ARGV: gateway id. Deleted only when issued for that gateway (a token presented
  // at the wrong gateway stays usable at the right one).
  xsTakeToken: {
    keys: 1,
    lua: `
local v = redis.call('GET', KEYS[1])
if v and cjson.decode(v).gatewayId == ARGV[1] then redis.call('DEL', KEYS[1]) end
return v`,
  },
  // KEYS: allocations. ARGV: type, expected ('' = unset), pick ('' = write nothing), persist ('1' = clear the expiry).
  // The compare-and-set under allocate/reallocate; the choice itself is made in allocation.ts.
  xsAllocationCas: {
    keys: 1,
    lua: `
local cur = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if cur ~= ARGV[2] then return {0, cur} end
if ARGV[3] ~= '' and ARGV[3] ~= cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
if ARGV[4] == '1' then redis.call('PERSIST', KEYS[1]) end
return {1, ARGV[3]}`,
  },
  // KEYS: presence. ARGV: generation.
  xsClearPresence: {
    keys: 1,
    lua: `
local g = redis.call('HGET', KEYS[1], 'generation')
if g == false then return 1 end
if g ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1`,
  },
  // Never let an older session's presence overwrite a newer one.
  xsSetPresence: {
    keys: 1,
    lua: `
local g = redis.call('HGET', KEYS[1], 'generation')
if g ~= false and tonumber(g) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'gatewayId', ARGV[1], 'generation', ARGV[2])
return 1`,
  },
  // KEYS: presence. ARGV: generation, from gateway, to gateway. A session handoff's switch.
  xsMovePresence: {
    keys: 1,
    lua: `
local h = redis.call('HMGET', KEYS[1], 'gatewayId', 'generation')
if h[1] ~= ARGV[2] or h[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'gatewayId', ARGV[3])
return 1`,
  },
} as const;

type ScriptName = keyof typeof SCRIPTS;
type ScriptArg = string | number | Buffer;

// ---- URL handling ----

type Connection = Redis | Cluster;
type ConnectionRole = 'data' | 'subscriber';

interface Target {
  /** The URL with its password replaced, safe for logs. */
  redacted: string;
  connect(): Connection;
}

const MULTI_HOST_URL = /^(redis-sentinel|redis-cluster):\/\/(?:([^@/]*)@)?([^/?#]+)(?:\/([^?#]*))?$/;

function configError(url: string, why: string): XError {
  return new XError('CONFIG', `bad store URL ${redactLoosely(url)}: ${why}`);
}

/** Masks whatever sits between "://" and "@" when the URL cannot be parsed properly. */
function redactLoosely(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

function parseHostPort(s: string, defaultPort: number, url: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d+))?$/.exec(s);
  if (!m) throw configError(url, `bad address "${s}"`);
  return { host: m[1] ?? m[2], port: m[3] ? Number(m[3]) : defaultPort };
}

function parseTarget(url: string): Target {
  if (url.startsWith('redis://') || url.startsWith('rediss://')) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw configError(url, 'not a URL');
    }
    if (parsed.password) parsed.password = '***';
    // ioredis parses user, password, db and (for rediss:) TLS from the URL itself.
    return { redacted: parsed.toString(), connect: () => new Redis(url, CONNECTION_OPTIONS) };
  }
  const m = MULTI_HOST_URL.exec(url);
  if (!m) throw configError(url, 'expected redis://, rediss://, redis-sentinel://, redis-cluster:// or memory://');
  const [, scheme, userInfo, hostList, path = ''] = m;
  const [rawUser, rawPassword] = userInfo === undefined ? [] : userInfo.split(/:(.*)/s);
  const username = rawUser ? decodeURIComponent(rawUser) : undefined;
  const password = rawPassword ? decodeURIComponent(rawPassword) : undefined;
  const auth = userInfo === undefined ? '' : `${rawUser ?? ''}${password ? ':***' : ''}@`;
  const redacted = `${scheme}://${auth}${hostList}${path ? `/${path}` : ''}`;

  if (scheme === 'redis-sentinel') {
    if (!path) throw configError(url, 'missing master name (redis-sentinel://host:port[,host:port]/masterName)');
    const sentinels = hostList.split(',').map((h) => parseHostPort(h, 26379, url));
    return {
      redacted,
      connect: () =>
        new Redis({
          ...CONNECTION_OPTIONS,
          sentinels,
          name: decodeURIComponent(path),
          username,
          password,
          // Reconnect as soon as a sentinel reports a switch of master, not on the next error.
          failoverDetector: true,
        }),
    };
  }
  const nodes = hostList.split(',').map((h) => parseHostPort(h, 6379, url));
  const clusterOptions: ClusterOptions = {
    clusterRetryStrategy: CONNECTION_OPTIONS.retryStrategy,
    redisOptions: { ...CONNECTION_OPTIONS, username, password },
  };
  return { redacted, connect: () => new Cluster(nodes, clusterOptions) };
}

// ---- helpers ----

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function isReadonly(e: unknown): boolean {
  return e instanceof Error && e.message.startsWith('READONLY');
}

/**
 * A hash tag's content for an id: `%`, `{` and `}` percent-encoded, so the tag always ends where
 * the key says (and two ids never map to one key).
 */
function tagOf(id: string): string {
  return id.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Rejects with `onTimeout()` unless `p` settles within `ms`; the timer never outlives the race. */
async function withDeadline<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The scripts' deadline argument: wall ms, '0' for none. */
/** The number of replicas in a ROLE reply of a master (0 for a replica or no reply). */
function replicasOf(role: unknown): number {
  return Array.isArray(role) && role[0] === 'master' && Array.isArray(role[2]) ? role[2].length : 0;
}

function notAfterArg(opts: LeaseCommandOptions): string {
  return opts.notAfter === undefined ? '0' : String(Math.floor(opts.notAfter));
}

/** Redis PX/PEXPIRE need a positive integer. */
function px(ms: number): number {
  return Math.max(1, Math.ceil(ms));
}

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function accountFrom(h: Record<string, string>): AccountRecord | null {
  return h.passwordHash === undefined ? null : { passwordHash: h.passwordHash, createdAt: Number(h.createdAt) };
}

/** Validates a lease read from Redis or a channel: other processes (or versions) wrote it. */
function parseLease(json: string): LeaseRecord | null {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const r = v as Record<string, unknown>;
  if (typeof r.instanceId !== 'string' || typeof r.addr !== 'string') return null;
  if (typeof r.port !== 'number' || typeof r.epoch !== 'number') return null;
  const rec: LeaseRecord = { instanceId: r.instanceId, addr: r.addr, port: r.port, epoch: r.epoch };
  if (typeof r.adminPort === 'number') rec.adminPort = r.adminPort;
  return rec;
}

export class RedisStore implements ClusterStore {
  readonly kind = 'redis' as const;
  readonly description: string;

  private readonly target: Target;
  /** The command connection; replaced when it ends while the store is open. */
  private client: Connection;
  private readonly logger: RedisStoreOptions['logger'];
  private readonly opTimeoutMs: number;
  private readonly waitReplicasMs: number;
  /** When this store last saw the lease's master with a replica (see leaseReplicated). */
  private replicasSeenAt = -Infinity;
  /** Cluster-wide keys: `xs:{<cluster>}:` (the cluster's slot). */
  private readonly prefix: string;
  /** Per-account keys: `xs:<cluster>:<kind>:{<id>}` (the id's slot). */
  private readonly entityPrefix: string;
  /** Keys of accounts created before the per-account layout. */
  private readonly legacyAccountPrefix: string;
  private readonly waitWarnings = new LogThrottle(WAIT_WARN_INTERVAL_MS, 1);
  private readonly leaseChannel: string;

  /** Pub/sub needs a connection of its own (a subscribed connection accepts no other commands). */
  private subscriber: Connection | undefined;
  /** The channel subscription, made once and kept until close(); reset when it fails. */
  private subscribed: Promise<void> | undefined;
  private readonly leaseListeners = new Set<(rec: LeaseRecord) => void>();
  private closed = false;
  private readonly replaced: Record<ConnectionRole, number> = { data: 0, subscriber: 0 };
  private readonly replaceBackoff: Record<ConnectionRole, Backoff> = {
    data: new Backoff(REPLACE_MIN_MS, REPLACE_MAX_MS),
    subscriber: new Backoff(REPLACE_MIN_MS, REPLACE_MAX_MS),
  };
  private readonly replaceTimers = new Set<NodeJS.Timeout>();
  private readonly retireMetric: (() => void)[] = [];

  constructor(url: string, cluster: string, opts: RedisStoreOptions = {}) {
    // The cluster name becomes the hash tag; braces inside it would end the tag early.
    if (!cluster || /[{}]/.test(cluster)) throw new XError('CONFIG', `bad cluster name "${cluster}"`);
    this.target = parseTarget(url);
    this.description = `${this.target.redacted} (cluster ${cluster})`;
    this.logger = opts.logger;
    this.opTimeoutMs = opts.opTimeoutMs ?? DEFAULT_OP_TIMEOUT_MS;
    this.waitReplicasMs = opts.waitReplicasMs ?? DEFAULT_WAIT_REPLICAS_MS;
    this.prefix = `xs:{${cluster}}:`;
    this.entityPrefix = `xs:${cluster}:`;
    this.legacyAccountPrefix = `${this.prefix}acct:`;
    this.leaseChannel = `${this.prefix}lease:announce`;
    this.client = this.openData();
    if (opts.metrics) {
      const counter = opts.metrics.polledCounter<'connection'>(
        'store_connections_replaced_total',
        'Store connections that ended for good (ioredis status end) and were replaced',
        ['connection'],
      );
      for (const role of ['data', 'subscriber'] as const) this.retireMetric.push(counter.add({ connection: role }, () => this.replaced[role]));
    }
  }

  // ---- connection management ----

  /** How many connections ended while the store was open and were replaced, by role. */
  get connectionsReplaced(): Readonly<Record<ConnectionRole, number>> {
    return { ...this.replaced };
  }

  private openData(): Connection {
    const conn = this.open('data');
    for (const [name, def] of Object.entries(SCRIPTS)) {
      conn.defineCommand(name, { numberOfKeys: def.keys, lua: def.lua });
    }
    return conn;
  }

  private openSubscriber(): Connection {
    const conn = this.open('subscriber');
    conn.on('message', (channel: string, message: string) => {
      if (channel === this.leaseChannel) this.dispatchLease(message);
    });
    return conn;
  }

  private open(role: ConnectionRole): Connection {
    const conn = this.target.connect();
    // ioredis emits an error on every failed reconnect; one warning per outage is enough.
    let warned = false;
    conn.on('error', (err: Error) => {
      if (warned || this.closed) return;
      warned = true;
      this.logger?.warn({ store: this.description, connection: role, err: err.message }, 'store connection error; reconnecting');
    });
    conn.on('ready', () => {
      warned = false;
      this.replaceBackoff[role].reset();
    });
    conn.once('end', () => this.ended(role, conn));
    return conn;
  }

  /** ioredis will never reconnect `conn` again: open a new one in its place unless we are closing. */
  private ended(role: ConnectionRole, conn: Connection): void {
    if (this.closed || conn !== (role === 'data' ? this.client : this.subscriber)) return;
    this.replaced[role]++;
    const delayMs = this.replaceBackoff[role].next();
    this.logger?.warn(
      { store: this.description, connection: role, replaced: this.replaced[role], delayMs },
      'store connection ended for good; replacing it',
    );
    const timer = setTimeout(() => {
      this.replaceTimers.delete(timer);
      if (this.closed) return;
      if (role === 'data') {
        this.client = this.openData();
        return;
      }
      const next = this.openSubscriber();
      this.subscriber = next;
      if (this.subscribed) void this.resubscribe(next);
    }, delayMs);
    this.replaceTimers.add(timer);
  }

  /** Subscribes a replacement subscriber to the lease channel, retrying until it works or it is replaced too. */
  private async resubscribe(conn: Connection): Promise<void> {
    const backoff = new Backoff(REPLACE_MIN_MS, REPLACE_MAX_MS);
    while (!this.closed && conn === this.subscriber && conn.status !== 'end') {
      try {
        await conn.subscribe(this.leaseChannel);
        return;
      } catch (e) {
        this.logger?.warn({ store: this.description, err: errorMessage(e) }, 'could not subscribe the replaced store connection; retrying');
      }
      await new Promise((r) => setTimeout(r, backoff.next()).unref());
    }
  }

  async ready(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastError = 'no answer';
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0 || this.closed) break;
      try {
        await withDeadline(this.client.ping(), left, () => new Error('no answer'));
        return;
      } catch (e) {
        lastError = errorMessage(e);
      }
      await new Promise((r) => setTimeout(r, Math.max(0, Math.min(READY_POLL_MS, deadline - Date.now()))));
    }
    throw new XError('STORE_UNAVAILABLE', `store ${this.description} did not answer within ${timeoutMs} ms (${lastError})`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.leaseListeners.clear();
    for (const t of this.replaceTimers) clearTimeout(t);
    this.replaceTimers.clear();
    for (const retire of this.retireMetric.splice(0)) retire();
    const conns = this.subscriber ? [this.client, this.subscriber] : [this.client];
    await Promise.all(conns.map((c) => shut(c)));
  }

  /**
   * Runs one store operation: bounded by opTimeoutMs, with failures mapped to XError —
   * STORE_UNAVAILABLE for anything that says the server cannot be reached or cannot serve,
   * INTERNAL for a reply that points at a bug or foreign data (e.g. WRONGTYPE, a script error).
   */
  private async run<T>(what: string, op: () => Promise<T>, timeoutMs = this.opTimeoutMs, attempts = READONLY_ATTEMPTS): Promise<T> {
    if (this.closed) throw new XError('STORE_UNAVAILABLE', `store ${this.description} is closed`);
    const once = async (): Promise<T> => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await op();
        } catch (e) {
          if (attempt >= attempts || !isReadonly(e) || this.closed) throw e;
        }
      }
    };
    try {
      return await withDeadline(
        once(),
        timeoutMs,
        () => new XError('STORE_UNAVAILABLE', `store ${this.description}: ${what} timed out after ${timeoutMs} ms`),
      );
    } catch (e) {
      if (e instanceof XError) throw e;
      const message = errorMessage(e);
      const code = e instanceof ReplyError && !UNAVAILABLE_REPLY.test(message) ? 'INTERNAL' : 'STORE_UNAVAILABLE';
      throw new XError(code, `store ${this.description}: ${what} failed: ${message}`);
    }
  }

  /** Calls a script registered by defineCommand (ioredis adds it as a method; EVALSHA with EVAL fallback). */
  private script(name: ScriptName, keys: string[], args: ScriptArg[]): Promise<unknown> {
    const fn = (this.client as unknown as Record<ScriptName, (...a: ScriptArg[]) => Promise<unknown>>)[name];
    return fn.call(this.client, ...keys, ...args);
  }

  /** A cluster-wide key (the cluster's slot). */
  private key(...parts: string[]): string {
    return this.prefix + parts.join(':');
  }

  /** A key of one account, counter or token (the slot of `id`). */
  private keyOf(kind: 'acct' | 'alloc' | 'gen' | 'presence' | 'fail' | 'token' | 'handoff', id: string): string {
    return `${this.entityPrefix}${kind}:{${tagOf(id)}}`;
  }

  // ---- mgr lease ----

  acquireLease(rec: Omit<LeaseRecord, 'epoch'>, ttlMs: number, opts: LeaseCommandOptions = {}): Promise<LeaseRecord | null> {
    return this.runLease('acquireLease', opts, async () => {
      const body: Omit<LeaseRecord, 'epoch'> = { instanceId: rec.instanceId, addr: rec.addr, port: rec.port };
      if (rec.adminPort !== undefined) body.adminPort = rec.adminPort;
      const keys = [this.key('lease'), this.key('lease', 'epoch')];
      const { result: stored, replicas } = await this.leaseScript('xsAcquireLease', keys, [JSON.stringify(body), px(ttlMs), notAfterArg(opts)]);
      this.refuseLate('acquireLease', stored);
      if (typeof stored !== 'string') return null;
      if (!this.leaseMasterTrusted(replicas)) {
        // Installed on a master that just lost its replicas (see leaseReplicated): give it back.
        await this.script('xsReleaseLease', [keys[0]!], [rec.instanceId]);
        return null;
      }
      return parseLease(stored);
    });
  }

  refreshLease(instanceId: string, ttlMs: number, opts: LeaseCommandOptions = {}): Promise<boolean> {
    return this.runLease('refreshLease', opts, async () => {
      const { result: v, replicas } = await this.leaseScript('xsRefreshLease', [this.key('lease')], [instanceId, px(ttlMs), notAfterArg(opts)]);
      this.refuseLate('refreshLease', v);
      return v === 1 && (await this.leaseReplicated(replicas, opts));
    });
  }

  /**
   * Whether the refresh just made will survive a failover: with replicas, one must hold it (WAIT 1).
   * A master seen with replicas less than REPLICA_LOSS_WINDOW_MS ago and with none now may be one a
   * Sentinel just replaced (its replica promoted, the old master still writable for a moment): a
   * refresh there is not counted, so the holder's watchdog steps it down before the copy on the
   * new master expires and a standby takes it. storeWaitReplicasMs 0 turns this off.
   */
  private async leaseReplicated(replicas: number, opts: LeaseCommandOptions): Promise<boolean> {
    if (!this.leaseMasterTrusted(replicas)) return false;
    if (replicas === 0 || this.waitReplicasMs <= 0) return true; // nothing to wait for
    const left = opts.notAfter === undefined ? this.waitReplicasMs : Math.min(this.waitReplicasMs, opts.notAfter - Date.now());
    if (left <= 0) return false;
    const waited = await this.client.pipeline().exists(this.key('lease')).call('WAIT', 1, left).exec();
    const [err, acked] = waited?.[1] ?? [new Error('no reply')];
    return !err && Number(acked) >= 1;
  }

  /** False when the lease's master has no replica but had one within REPLICA_LOSS_WINDOW_MS (see leaseReplicated). */
  private leaseMasterTrusted(replicas: number): boolean {
    if (this.waitReplicasMs <= 0) return true;
    const now = performance.now();
    if (replicas > 0) this.replicasSeenAt = now;
    return replicas > 0 || now - this.replicasSeenAt >= REPLICA_LOSS_WINDOW_MS;
  }

  /** A lease script and ROLE in one round trip (one pipeline, so Redis Cluster runs both on the lease's node). */
  private async leaseScript(name: ScriptName, keys: string[], args: ScriptArg[]): Promise<{ result: unknown; replicas: number }> {
    const pipeline = this.client.pipeline() as unknown as Record<ScriptName, (...a: ScriptArg[]) => unknown> & ReturnType<Connection['pipeline']>;
    pipeline[name](...keys, ...args);
    const replies = await pipeline.role().exec();
    const [err, result] = replies?.[0] ?? [new Error('no reply'), null];
    if (err) throw err;
    return { result, replicas: replicasOf(replies?.[1]?.[1]) };
  }

  /** Replicas of the master that owns `key` (pipelined with a command on `key` so Redis Cluster asks that node). */
  private async replicaCount(key: string): Promise<number> {
    const replies = await this.client.pipeline().exists(key).role().exec();
    return replicasOf(replies?.[1]?.[1]);
  }

  /**
   * A lease command: sent only on a ready connection (never parked in the offline queue, where it
   * would run whenever Redis comes back), and bounded by its deadline as well as opTimeoutMs.
   */
  private runLease<T>(what: string, opts: LeaseCommandOptions, op: () => Promise<T>): Promise<T> {
    const left = opts.notAfter === undefined ? Infinity : opts.notAfter - Date.now();
    if (left <= 0) return Promise.reject(new XError('STORE_UNAVAILABLE', `store ${this.description}: ${what} is past its deadline; not sent`));
    if (this.client.status !== 'ready') {
      return Promise.reject(new XError('STORE_UNAVAILABLE', `store ${this.description}: ${what} not sent: not connected (${this.client.status})`));
    }
    // No second run after READONLY: it would wait in the offline queue for the reconnect.
    return this.run(what, op, Math.min(this.opTimeoutMs, left), 1);
  }

  /** Turns a script's {'late', ms} reply into the error LeaseCommandOptions promises. */
  private refuseLate(what: string, reply: unknown): void {
    if (!Array.isArray(reply) || reply[0] !== 'late') return;
    const late = Number(reply[1]);
    throw new XError('STORE_UNAVAILABLE', `store ${this.description}: ${what} reached Redis ${late} ms after its deadline; not applied`, { late });
  }

  releaseLease(instanceId: string): Promise<void> {
    return this.run('releaseLease', async () => {
      await this.script('xsReleaseLease', [this.key('lease')], [instanceId]);
    });
  }

  readLease(): Promise<LeaseRecord | null> {
    return this.run('readLease', async () => {
      const v = await this.client.get(this.key('lease'));
      return v === null ? null : parseLease(v);
    });
  }

  announceLease(rec: LeaseRecord): Promise<void> {
    return this.run('announceLease', async () => {
      await this.client.publish(this.leaseChannel, JSON.stringify(rec));
    });
  }

  async onLeaseAnnounced(fn: (rec: LeaseRecord) => void): Promise<() => Promise<void>> {
    await this.run('subscribe', () => (this.subscribed ??= this.subscribe()));
    // A fresh wrapper per call, so registering the same function twice needs two unsubscribes.
    const listener = (rec: LeaseRecord): void => fn(rec);
    this.leaseListeners.add(listener);
    return async () => {
      this.leaseListeners.delete(listener);
    };
  }

  private async subscribe(): Promise<void> {
    this.subscriber ??= this.openSubscriber();
    try {
      await this.subscriber.subscribe(this.leaseChannel);
    } catch (e) {
      this.subscribed = undefined;
      throw e;
    }
  }

  private dispatchLease(message: string): void {
    const rec = parseLease(message);
    if (!rec) {
      this.logger?.warn({ store: this.description }, 'ignoring malformed lease announcement');
      return;
    }
    for (const listener of [...this.leaseListeners]) {
      try {
        listener({ ...rec });
      } catch (err) {
        this.logger?.warn({ store: this.description, err: errorMessage(err) }, 'lease announcement listener threw');
      }
    }
  }

  // ---- membership mirror ----

  mirrorPut(instanceId: string, id: string, info: Uint8Array): Promise<boolean> {
    return this.run(
      'mirrorPut',
      async () => (await this.script('xsMirrorPut', [this.key('lease'), this.key('mirror')], [instanceId, id, toBuffer(info)])) === 1,
    );
  }

  mirrorDelete(instanceId: string, id: string): Promise<boolean> {
    return this.run(
      'mirrorDelete',
      async () => (await this.script('xsMirrorDelete', [this.key('lease'), this.key('mirror')], [instanceId, id])) === 1,
    );
  }

  mirrorReplace(instanceId: string, members: Map<string, Uint8Array>): Promise<boolean> {
    return this.run('mirrorReplace', async () => {
      const pairs = [...members].flatMap(([id, info]) => [id, toBuffer(info)]);
      return (await this.script('xsMirrorReplace', [this.key('lease'), this.key('mirror')], [instanceId, ...pairs])) === 1;
    });
  }

  mirrorLoad(): Promise<Map<string, Uint8Array>> {
    return this.run('mirrorLoad', async () => new Map(Object.entries(await this.client.hgetallBuffer(this.key('mirror')))));
  }

  // ---- canary routing policies: a hash beside the mirror, written with the mirror's fenced scripts ----

  policyPut(instanceId: string, type: number, policy: Uint8Array | null): Promise<boolean> {
    return this.run('policyPut', async () => {
      const keys = [this.key('lease'), this.key('routing')];
      const r =
        policy === null
          ? this.script('xsMirrorDelete', keys, [instanceId, String(type)])
          : this.script('xsMirrorPut', keys, [instanceId, String(type), toBuffer(policy)]);
      return (await r) === 1;
    });
  }

  policyLoad(): Promise<Map<number, Uint8Array>> {
    return this.run('policyLoad', async () => {
      const all = await this.client.hgetallBuffer(this.key('routing'));
      return new Map(Object.entries(all).map(([t, v]) => [Number(t), new Uint8Array(v)]));
    });
  }

  // ---- accounts ----

  getAccount(account: string): Promise<AccountRecord | null> {
    return this.run('getAccount', async () => {
      const rec = accountFrom(await this.client.hgetall(this.keyOf('acct', account)));
      return rec ?? (await this.migrateLegacyAccount(account));
    });
  }

  createAccount(account: string, rec: AccountRecord): Promise<boolean> {
    return this.run('createAccount', async () => {
      // Legacy keys are never written any more, so checking one first cannot race a creation.
      if (await this.migrateLegacyAccount(account)) return false;
      const k = this.keyOf('acct', account);
      const created = (await this.script('xsCreateAccount', [k], [rec.passwordHash, rec.createdAt])) === 1;
      if (created) await this.waitForReplica(k, account);
      return created;
    });
  }

  setAccountPassword(account: string, passwordHash: string): Promise<boolean> {
    return this.run('setAccountPassword', async () => {
      await this.migrateLegacyAccount(account);
      return (await this.script('xsSetPassword', [this.keyOf('acct', account)], [passwordHash])) === 1;
    });
  }

  deleteAccount(account: string): Promise<boolean> {
    return this.run('deleteAccount', async () => {
      const [current, legacy] = await Promise.all([
        this.client.del(this.keyOf('acct', account)),
        this.client.del(this.legacyAccountPrefix + account),
      ]);
      return current + legacy > 0;
    });
  }

  /**
   * An account stored under the layout before per-account slots: copied to its current key (unless
   * one appeared meanwhile, which then wins) and returned; null when there is none.
   */
  private async migrateLegacyAccount(account: string): Promise<AccountRecord | null> {
    const legacy = accountFrom(await this.client.hgetall(this.legacyAccountPrefix + account));
    if (!legacy) return null;
    const k = this.keyOf('acct', account);
    await this.script('xsCreateAccount', [k], [legacy.passwordHash, legacy.createdAt]);
    return accountFrom(await this.client.hgetall(k));
  }

  /**
   * WAIT 1 on the master that owns `key`, when it has replicas: returns once one replica holds the
   * write, or after waitReplicasMs (logged, at most once a minute; the caller is not failed).
   * In a pipeline with a command on `key`, so Redis Cluster runs both on the key's node (and WAIT
   * counts the writes of that connection, the one the write went over).
   */
  private async waitForReplica(key: string, account: string): Promise<void> {
    if (this.waitReplicasMs <= 0) return;
    const replicas = await this.replicaCount(key);
    if (replicas === 0) return;
    const waited = await this.client.pipeline().exists(key).call('WAIT', 1, this.waitReplicasMs).exec();
    const [err, acked] = waited?.[1] ?? [new Error('no reply')];
    if (err || Number(acked) < 1) {
      this.waitWarnings.run('wait', (suppressed) =>
        this.logger?.warn(
          { store: this.description, account, replicas, waitMs: this.waitReplicasMs, err: err ? errorMessage(err) : undefined, suppressed },
          'no replica acknowledged a new account in time; a failover now could lose it',
        ),
      );
    }
  }

  countFailure(key: string, windowMs: number): Promise<number> {
    return this.run('countFailure', async () => Number(await this.script('xsCountFailure', [this.keyOf('fail', key)], [px(windowMs)])));
  }

  clearFailures(key: string): Promise<void> {
    return this.run('clearFailures', async () => {
      await this.client.del(this.keyOf('fail', key));
    });
  }

  // ---- tokens ----

  putToken(token: string, rec: TokenRecord, ttlMs: number): Promise<void> {
    return this.run('putToken', async () => {
      await this.client.set(this.keyOf('token', token), JSON.stringify(rec), 'PX', px(ttlMs));
    });
  }

  takeToken(token: string, gatewayId: string): Promise<TokenRecord | null> {
    return this.run('takeToken', async () => {
      const v = await this.script('xsTakeToken', [this.keyOf('token', token)], [gatewayId]);
      return typeof v === 'string' ? (JSON.parse(v) as TokenRecord) : null;
    });
  }

  // ---- allocations ----

  allocate(account: string, type: number, candidates: AllocationCandidate[]): Promise<string | null> {
    return this.run('allocate', () =>
      this.allocationCas(
        account,
        type,
        (cur) => {
          const pick = chooseAllocation(cur, candidates);
          return { pick, write: pick !== null };
        },
        true,
      ),
    );
  }

  reallocate(account: string, type: number, deadId: string, candidates: AllocationCandidate[]): Promise<string | null> {
    return this.run('reallocate', () => this.allocationCas(account, type, (cur) => chooseReallocation(cur, deadId, candidates), false));
  }

  /**
   * Reads the account's node of `type`, lets `choose` decide, and stores the decision only if the
   * allocation is still what was read; otherwise decides again from the value that won.
   */
  private async allocationCas(
    account: string,
    type: number,
    choose: (cur: string | undefined) => Reallocation,
    persist: boolean,
  ): Promise<string | null> {
    const k = this.keyOf('alloc', account);
    let cur = (await this.client.hget(k, String(type))) ?? undefined;
    for (let attempt = 0; attempt < ALLOCATION_CAS_ATTEMPTS; attempt++) {
      const { pick, write } = choose(cur);
      if (pick === null) return null;
      if (!write && !persist) return pick;
      const v = await this.script('xsAllocationCas', [k], [String(type), cur ?? '', write ? pick : '', persist ? '1' : '0']);
      const [ok, now] = v as [number, string];
      if (ok === 1) return pick;
      cur = now === '' ? undefined : now;
    }
    throw new XError(
      'STORE_UNAVAILABLE',
      `store ${this.description}: the allocation of type ${type} for "${account}" kept changing (${ALLOCATION_CAS_ATTEMPTS} attempts); try again`,
    );
  }

  getAllocations(account: string): Promise<Record<string, string>> {
    return this.run('getAllocations', () => this.client.hgetall(this.keyOf('alloc', account)));
  }

  releaseAllocations(account: string, affinityMs: number): Promise<void> {
    return this.run('releaseAllocations', async () => {
      const k = this.keyOf('alloc', account);
      await (affinityMs > 0 ? this.client.pexpire(k, px(affinityMs)) : this.client.del(k));
    });
  }

  // ---- handoff ----

  putHandoffState(account: string, handoffId: string, state: Uint8Array, ttlMs: number): Promise<void> {
    return this.run('putHandoffState', async () => {
      await this.client.set(`${this.keyOf('handoff', account)}:${handoffId}`, toBuffer(state), 'PX', px(ttlMs));
    });
  }

  takeHandoffState(account: string, handoffId: string): Promise<Uint8Array | null> {
    return this.run('takeHandoffState', async () => {
      const v = await this.client.getdelBuffer(`${this.keyOf('handoff', account)}:${handoffId}`);
      return v === null ? null : new Uint8Array(v);
    });
  }

  // ---- presence ----

  nextGeneration(account: string): Promise<number> {
    return this.run('nextGeneration', async () => generationFrom(await this.client.incr(this.keyOf('gen', account))));
  }

  setPresence(account: string, rec: PresenceRecord): Promise<void> {
    return this.run('setPresence', async () => {
      await this.script('xsSetPresence', [this.keyOf('presence', account)], [rec.gatewayId, String(rec.generation)]);
    });
  }

  getPresence(account: string): Promise<PresenceRecord | null> {
    return this.run('getPresence', async () => {
      const h = await this.client.hgetall(this.keyOf('presence', account));
      if (h.gatewayId === undefined) return null;
      return { gatewayId: h.gatewayId, generation: Number(h.generation) };
    });
  }

  clearPresence(account: string, generation: number): Promise<boolean> {
    return this.run(
      'clearPresence',
      async () => (await this.script('xsClearPresence', [this.keyOf('presence', account)], [String(generation)])) === 1,
    );
  }

  movePresence(account: string, generation: number, fromGatewayId: string, toGatewayId: string): Promise<boolean> {
    return this.run(
      'movePresence',
      async () => (await this.script('xsMovePresence', [this.keyOf('presence', account)], [String(generation), fromGatewayId, toGatewayId])) === 1,
    );
  }

  // ---- key-value area ----

  kvGet(key: string): Promise<string | null> {
    return this.run('kvGet', () => this.client.get(this.key('kv', key)));
  }

  kvSet(key: string, value: string, ttlMs?: number): Promise<void> {
    return this.run('kvSet', async () => {
      const k = this.key('kv', key);
      await (ttlMs === undefined ? this.client.set(k, value) : this.client.set(k, value, 'PX', px(ttlMs)));
    });
  }

  kvSetIfAbsent(key: string, value: string, ttlMs?: number): Promise<boolean> {
    return this.run('kvSetIfAbsent', async () => {
      const k = this.key('kv', key);
      const r = ttlMs === undefined ? await this.client.set(k, value, 'NX') : await this.client.set(k, value, 'PX', px(ttlMs), 'NX');
      return r === 'OK';
    });
  }

  kvDelete(key: string): Promise<boolean> {
    return this.run('kvDelete', async () => (await this.client.del(this.key('kv', key))) > 0);
  }

  hashGetAll(key: string): Promise<Record<string, string>> {
    return this.run('hashGetAll', () => this.client.hgetall(this.key('hash', key)));
  }

  hashSet(key: string, field: string, value: string): Promise<void> {
    return this.run('hashSet', async () => {
      await this.client.hset(this.key('hash', key), field, value);
    });
  }

  hashDelete(key: string, field: string): Promise<boolean> {
    return this.run('hashDelete', async () => (await this.client.hdel(this.key('hash', key), field)) > 0);
  }
}

/**
 * Closes one connection: QUIT when connected (replies to commands already sent still arrive),
 * then disconnect(), which also stops reconnecting and rejects whatever is still queued.
 */
async function shut(conn: Connection): Promise<void> {
  if (conn.status === 'ready') {
    await withDeadline(conn.quit(), QUIT_TIMEOUT_MS, () => new Error('QUIT timed out')).catch(() => undefined);
  }
  conn.disconnect();
}
