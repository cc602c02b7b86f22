/**
 * Every setting of xserver, with its default and meaning, in one place (STYLE: every timeout,
 * limit and interval is a named config value). docs/configuration.md is generated from this table
 * by `xserver config docs`, and the XConfig type is derived from it (no second, hand-written copy).
 *
 * Precedence: CLI flags > XSERVER_* env vars > TOML file > these defaults.
 * Env names: `XSERVER_` + the dotted key in SCREAMING_SNAKE, e.g. link.heartbeatTimeoutMs ->
 * XSERVER_LINK_HEARTBEAT_TIMEOUT_MS, redisUrl -> XSERVER_REDIS_URL.
 */

import { XError } from '../errors.js';
import { DEFAULT_HEARTBEAT_MS } from '../protocol/client-messages.js';
import { DEFAULT_CMD_OFFSET, NodeType } from '../protocol/commands.js';
import { DEFAULT_MAX_FRAME } from '../protocol/frame.js';

export type SettingType = 'string' | 'int' | 'bool' | 'enum' | 'map';

export interface Setting {
  key: string;
  type: SettingType;
  default: unknown;
  doc: string;
  min?: number;
  max?: number;
  values?: readonly string[];
}

/**
 * The built-in secret, so a cluster on one machine runs without setup. It is public (it is in
 * these docs), so config validation allows it only while every listener is on loopback.
 */
export const DEV_SECRET = 'xserver-dev-secret';

const MiB = 1024 * 1024;

/** The table itself, with literal types: XConfig is derived from it. */
const TABLE = [
  // ---- cluster ----
  {
    key: 'cluster',
    type: 'string',
    default: 'dev',
    doc: 'Cluster name; prefixes every Redis key (xs:{cluster}:... and xs:cluster:...), so clusters can share one Redis.',
  },
  {
    key: 'secret',
    type: 'string',
    default: DEV_SECRET,
    doc: 'Shared secret of the cluster; proves membership in the link handshake (never sent in clear). The built-in default is for loopback only: a process that listens on another address needs its own, of at least 32 random bytes (`xserver secret` prints one).',
  },
  {
    key: 'redisUrl',
    type: 'string',
    default: 'redis://127.0.0.1:6379',
    doc: 'Store URL: redis://[:pass@]host:port[/db], rediss://..., redis-sentinel://host:port[,host:port]/masterName, redis-cluster://host:port[,host:port], or memory:// (one process only).',
  },
  { key: 'storeConnectTimeoutMs', type: 'int', default: 3000, min: 100, doc: 'How long start-up waits for the store to answer before failing.' },
  {
    key: 'storeOpTimeoutMs',
    type: 'int',
    default: 5000,
    min: 100,
    doc: 'Longest one store operation may take, including waiting for a reconnect; beyond it the caller gets STORE_UNAVAILABLE.',
  },
  {
    key: 'storeWaitReplicasMs',
    type: 'int',
    default: 250,
    min: 0,
    doc: 'After creating an account on a Redis master with replicas, wait up to this long for one replica to confirm it (WAIT 1), so a failover cannot lose it. Also makes the mgr lease failover-safe: a refresh counts only once a replica holds it, and a master that just lost its replicas is not trusted with the lease (docs/operations.md). 0 = neither.',
  },
  {
    key: 'bindHost',
    type: 'string',
    default: '127.0.0.1',
    doc: 'Address the intranet listeners bind to. Another than loopback (e.g. 0.0.0.0) needs your own secret.',
  },
  {
    key: 'innerIp',
    type: 'string',
    default: '',
    doc: 'Address other processes of the cluster dial to reach this one (GetIP(inner)); the mgr dials it back on REGISTER. Empty = bindHost when that is one address, or the first non-loopback IPv4 address of the host when bindHost is a wildcard (0.0.0.0, ::). Behind NAT, Docker or Kubernetes set it, e.g. `${POD_IP}`.',
  },
  {
    key: 'outerIp',
    type: 'string',
    default: '',
    doc: 'Address clients use to reach this process (GetIP(outer)). Empty = derived from gateway.host like innerIp from bindHost.',
  },
  { key: 'adminPort', type: 'int', default: 0, min: 0, max: 65535, doc: 'Admin HTTP port (/healthz, /readyz, /metrics, /api/...); 0 disables it.' },
  { key: 'adminHost', type: 'string', default: '127.0.0.1', doc: 'Address the admin HTTP server binds to.' },
  // ---- dashboard (served by every mgr's admin server; members report to it) ----
  {
    key: 'dashboard.statsIntervalMs',
    type: 'int',
    default: 1000,
    min: 0,
    doc: 'How often every member sends the mgr its dashboard figures (StatsReport: connections, message totals, request latency, links); 0 turns the reports off.',
  },
  {
    key: 'dashboard.sampleIntervalMs',
    type: 'int',
    default: 1000,
    min: 100,
    doc: "How often the active mgr takes one sample of the cluster for the dashboard's charts.",
  },
  {
    key: 'dashboard.samples',
    type: 'int',
    default: 600,
    min: 2,
    max: 100000,
    doc: 'Cluster samples the active mgr keeps (a ring: with the default interval, the last 10 minutes).',
  },
  {
    key: 'dashboard.memberSamples',
    type: 'int',
    default: 120,
    min: 2,
    max: 10000,
    doc: 'Samples kept per member for its page (a ring per member, dropped when it leaves): memory grows with mgr.maxMembers times this.',
  },
  {
    key: 'dashboard.events',
    type: 'int',
    default: 500,
    min: 1,
    max: 100000,
    doc: 'Events (joined, left with reason, takeover, drain, lost accounts) the active mgr keeps for the timeline; the oldest go first.',
  },
  {
    key: 'dashboard.overviewMembersMax',
    type: 'int',
    default: 500,
    min: 1,
    doc: "Most members the dashboard's overview lists (by type and name; the count is always exact): bounds what each poll of the page carries, and the standby's relayed view within link.maxFrame. Every member keeps its own page.",
  },
  {
    key: 'dashboard.reportLinksMax',
    type: 'int',
    default: 64,
    min: 0,
    doc: 'Most peer ids a member lists in one report as linked (its page shows them); the count is always exact.',
  },
  {
    key: 'dashboard.relayTimeoutMs',
    type: 'int',
    default: 2000,
    min: 100,
    doc: "How long a standby mgr's dashboard waits for the active mgr's data (asked over the intranet link) before it shows that the active mgr is unreachable.",
  },
  {
    key: 'dashboard.relayIdleMs',
    type: 'int',
    default: 30000,
    min: 100,
    doc: 'A standby mgr closes its link to the active mgr after its dashboard was not viewed for this long.',
  },
  {
    key: 'adminLiveStallMs',
    type: 'int',
    default: 5000,
    min: 10,
    doc: '/livez answers 503 when the event loop was blocked longer than this since the previous /livez (a process that answers but keeps stalling).',
  },
  {
    key: 'drainTimeoutMs',
    type: 'int',
    default: 30000,
    min: 0,
    doc: 'On SIGTERM/SIGINT a process drains first: /readyz answers 503, the member is listed as draining and gets no new work, and it stops once nothing is bound to it (gateway sessions, service accounts) or after this long. A second signal stops at once; 0 stops at once.',
  },

  // ---- rolling restart (`xserver roll`) ----
  {
    key: 'roll.stepTimeoutMs',
    type: 'int',
    default: 60000,
    min: 100,
    doc: '`xserver roll` and `xserver up` (its start, and each `--watch` replacement): how long each wait of one step may take (a process ready, the old process gone). Keep it above drainTimeoutMs: the old process may drain that long. The roll stops with ROLL_FAILED beyond it.',
  },
  {
    key: 'roll.controlSocket',
    type: 'string',
    default: '',
    doc: 'Unix socket on which `xserver up` takes `xserver roll` (it owns the processes it replaces). Empty = xserver-up-<cluster>.sock in the system temp directory.',
  },
  {
    key: 'roll.pollMs',
    type: 'int',
    default: 200,
    min: 10,
    doc: '`xserver roll`: how often it asks the mgr (and the processes) whether a step is done.',
  },

  // ---- TLS (used where link.tls, gateway.tls or login.tls is on) ----
  { key: 'tls.cert', type: 'string', default: '', doc: 'PEM certificate (chain) this process presents; re-read when the file changes.' },
  { key: 'tls.key', type: 'string', default: '', doc: 'PEM private key of tls.cert; re-read when the file changes.' },
  { key: 'tls.ca', type: 'string', default: '', doc: 'PEM CA bundle that peer certificates must chain to (intranet mTLS); empty = the system CAs.' },
  {
    key: 'statefulTypes',
    type: 'string',
    default: 'lobby',
    doc: 'Comma-separated service types (names or numbers) that are stateful per account: login allocates one node of each, the gateway routes the account to it.',
  },
  {
    key: 'types',
    type: 'map',
    default: { lobby: 4, match: 5 },
    doc: 'Service type names -> numbers (>= 4; 0-3 are reserved: client, mgr, login, gateway).',
  },

  // ---- logging ----
  { key: 'log.level', type: 'enum', default: 'info', values: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], doc: 'Log level.' },
  {
    key: 'log.pretty',
    type: 'enum',
    default: 'auto',
    values: ['auto', 'true', 'false'],
    doc: 'Human-readable logs; auto = when stdout is a terminal. Otherwise JSON lines.',
  },

  // ---- links (every intranet TCP link) ----
  {
    key: 'link.maxFrame',
    type: 'int',
    default: DEFAULT_MAX_FRAME,
    min: 1024,
    doc: 'Largest frame body accepted on an intranet link, in bytes; a bigger frame closes that link.',
  },
  { key: 'link.handshakeTimeoutMs', type: 'int', default: 2000, min: 50, doc: 'An unauthenticated connection is closed after this long.' },
  {
    key: 'link.heartbeatIntervalMs',
    type: 'int',
    default: 1000,
    min: 10,
    doc: 'Ping interval on intranet links (at most half of link.heartbeatTimeoutMs).',
  },
  {
    key: 'link.heartbeatTimeoutMs',
    type: 'int',
    default: 3000,
    min: 30,
    doc: 'A link with no traffic for this long is closed as hung (LEFT reason timeout).',
  },
  {
    key: 'link.maxOutboundBytes',
    type: 'int',
    default: 64 * MiB,
    min: 65536,
    doc: 'Bytes a link may hold unsent; beyond it sends return false and are counted as dropped.',
  },
  {
    key: 'link.listenBacklog',
    type: 'int',
    default: 4096,
    min: 1,
    doc: 'Pending connections the intranet listeners (mgr, nodes) queue before the kernel drops SYNs; a whole cluster re-registering at once after a failover needs about its size (capped by net.core.somaxconn).',
  },
  {
    key: 'link.tls',
    type: 'bool',
    default: false,
    doc: 'Intranet links over mutual TLS with tls.cert/tls.key, peers verified against tls.ca (the cluster handshake still runs inside).',
  },

  // ---- mgr ----
  { key: 'mgr.port', type: 'int', default: 0, min: 0, max: 65535, doc: 'mgr listen port (0 = any free port; the lease carries the real one).' },
  {
    key: 'mgr.leaseTtlMs',
    type: 'int',
    default: 3000,
    min: 300,
    doc: 'TTL of the mgr address lease in Redis; a dead mgr is replaced about this long after it dies.',
  },
  {
    key: 'mgr.leaseRefreshMs',
    type: 'int',
    default: 1000,
    min: 50,
    doc: 'How often the active mgr refreshes its lease (at most half of mgr.leaseTtlMs).',
  },
  {
    key: 'mgr.standbyPollMs',
    type: 'int',
    default: 200,
    min: 20,
    doc: 'How often a standby mgr tries to take the lease (less than mgr.leaseTtlMs).',
  },
  {
    key: 'mgr.settleGraceMs',
    type: 'int',
    default: 4000,
    min: 0,
    doc: 'After taking the lease, how long members mirrored by the previous mgr may take to re-register before they are removed.',
  },
  {
    key: 'mgr.updateMinIntervalMs',
    type: 'int',
    default: 200,
    min: 0,
    doc: 'Minimum interval between UPDATED broadcasts for one node (load/version changes are coalesced).',
  },
  {
    key: 'mgr.joinBatchMs',
    type: 'int',
    default: 5,
    min: 0,
    doc: 'Join storms: the first JOINED goes to every member at once; those of the next this-many ms per 100 members (5 ms up to 100 members, 50 ms at 1,000) go out together (one write per member link, not one per JOINED), for as long as joins keep coming. Order with every other membership message is kept. 0 = every JOINED at once.',
  },
  { key: 'mgr.maxMembers', type: 'int', default: 10000, min: 1, doc: 'Most registered nodes one mgr accepts.' },
  {
    key: 'mgr.canaryMaxPolicies',
    type: 'int',
    default: 64,
    min: 1,
    doc: 'Most service types with a canary routing policy at once (`xserver canary set`).',
  },
  {
    key: 'mgr.canaryMaxAccounts',
    type: 'int',
    default: 1000,
    min: 0,
    doc: 'Most accounts one canary policy may list (`--accounts`); larger cohorts are given as a percentage.',
  },
  {
    key: 'mgr.accountCountTimeoutMs',
    type: 'int',
    default: 1000,
    min: 10,
    doc: '`xserver status` asks every gateway how many accounts each service version holds; a gateway that has not answered within this long is left out of the count.',
  },
  {
    key: 'mgr.checkAdvertised',
    type: 'bool',
    default: true,
    doc: "On REGISTER the mgr dials the member's advertised intranet address back (a handshake that proves the member's key, then closes) and refuses it with ADVERTISE_UNREACHABLE when it cannot reach it there.",
  },
  {
    key: 'mgr.advertiseCheckTimeoutMs',
    type: 'int',
    default: 2000,
    min: 50,
    doc: 'How long the dial-back of a registering member may take (connect and handshake, like link.handshakeTimeoutMs); a member that does not answer in time is refused and retries.',
  },

  // ---- node runtime ----
  { key: 'node.port', type: 'int', default: 0, min: 0, max: 65535, doc: 'Intranet port peers dial (0 = any free port).' },
  { key: 'node.version', type: 'string', default: '1.0.0', doc: 'Version string of this node (GetVersion); selection can filter on it.' },
  { key: 'node.discoveryMinBackoffMs', type: 'int', default: 50, min: 1, doc: 'First retry delay when looking for the mgr.' },
  { key: 'node.discoveryMaxBackoffMs', type: 'int', default: 1000, min: 10, doc: 'Largest retry delay when looking for the mgr.' },
  {
    key: 'node.registerTimeoutMs',
    type: 'int',
    default: 3000,
    min: 100,
    doc: 'How long registration with the mgr may take before the attempt is abandoned.',
  },
  { key: 'node.dialMinBackoffMs', type: 'int', default: 50, min: 1, doc: 'First re-dial delay of a direct link to a listed peer.' },
  { key: 'node.dialMaxBackoffMs', type: 'int', default: 2000, min: 10, doc: 'Largest re-dial delay of a direct link.' },
  {
    key: 'node.pendingMaxMessages',
    type: 'int',
    default: 10000,
    min: 1,
    doc: 'Messages a link to a listed peer buffers while (re)connecting; overflow is dropped, counted and reported.',
  },
  { key: 'node.pendingMaxBytes', type: 'int', default: 16 * MiB, min: 1024, doc: 'Bytes a link buffers while (re)connecting.' },
  {
    key: 'node.pendingMaxAgeMs',
    type: 'int',
    default: 10000,
    min: 10,
    doc: 'Longest a message waits in the buffer of a (re)connecting link; older ones are dropped and counted (node_messages_dropped_total, where=expired), a waiting request fails with TIMEOUT.',
  },
  { key: 'node.requestTimeoutMs', type: 'int', default: 5000, min: 1, doc: 'Default timeout of node.request().' },
  {
    key: 'node.maxInflightRequests',
    type: 'int',
    default: 100000,
    min: 1,
    doc: 'Outstanding requests per node; beyond it request() fails with QUEUE_FULL.',
  },
  { key: 'node.updateIntervalMs', type: 'int', default: 1000, min: 10, doc: 'Load/version changes are sent to the mgr at most this often.' },
  {
    key: 'node.selection',
    type: 'enum',
    default: 'random',
    values: ['random', 'round-robin', 'least-loaded'],
    doc: 'Default strategy of one()/sendOne().',
  },
  {
    key: 'node.mgrLostFenceMs',
    type: 'int',
    default: 8000,
    min: 100,
    doc: 'A node that has been without the mgr this long while an mgr holds the lease (it is cut off, and evicted) drops its peer table (every peer left, reason lost) and serves no peer until it is registered again; with no lease (no mgr runs) or no store it keeps its peers. Keep it above mgr.leaseTtlMs + mgr.settleGraceMs, the longest an mgr failover keeps an absent member listed.',
  },
  {
    key: 'node.unlistedHoldMs',
    type: 'int',
    default: 3000,
    min: 10,
    doc: "Framework commands (relay, account events) from a peer this node does not list yet are held this long for the mgr's JOINED of it, then refused with FORBIDDEN.",
  },
  {
    key: 'node.unlistedHoldMax',
    type: 'int',
    default: 1000,
    min: 1,
    doc: 'Framework commands held per link while waiting for its sender to be listed; beyond it the link is refused with FORBIDDEN.',
  },
  {
    key: 'node.relaySeenMax',
    type: 'int',
    default: 100000,
    min: 1,
    doc: 'Accounts whose gateway a relay-enabled node remembers from their messages (oldest forgotten first); allocated accounts are tracked until lost.',
  },
  {
    key: 'node.shutdownDrainMs',
    type: 'int',
    default: 1000,
    min: 0,
    doc: 'On SIGTERM/SIGINT: after LEAVE, how long queued messages may take to flush before links close.',
  },
  {
    key: 'node.handoffMaxBytes',
    type: 'int',
    default: 256 * 1024,
    min: 0,
    doc: 'Largest state one account may hand off when its stateful node drains (onAccountExport); a larger one is refused with STATE_TOO_LARGE (logged) and the account starts fresh on its new node.',
  },
  {
    key: 'node.handoffStateTtlMs',
    type: 'int',
    default: 60_000,
    min: 1000,
    doc: 'How long a handed-off account state stays in the store for its new node to import; state nobody imported expires after this.',
  },
  {
    key: 'node.handoffTimeoutMs',
    type: 'int',
    default: 10_000,
    min: 100,
    doc: 'Bound of each step of an account handoff: the export and import hooks, and each handoff request between node and gateway. A step that runs out leaves the account on the draining node (export) or fresh on the new one (import).',
  },
  {
    key: 'node.handoffConcurrency',
    type: 'int',
    default: 16,
    min: 1,
    doc: 'Accounts a draining stateful node hands off at the same time.',
  },
  {
    key: 'node.maxPublishedContracts',
    type: 'int',
    default: 64,
    min: 0,
    doc: 'Contracts a service lists in its NodeInfo for the login playground (in command order); the rest are served but not listed (the contract hash covers them all).',
  },
  {
    key: 'node.maxContractInfoBytes',
    type: 'int',
    default: 8192,
    min: 0,
    doc: "Encoded size of that list, examples included (every member's info is in every membership snapshot): an example that does not fit is left out first, then the contract.",
  },

  // ---- gateway ----
  { key: 'gateway.tcpPort', type: 'int', default: 0, min: 0, max: 65535, doc: 'Client TCP port (ports[1]; 0 = any free port).' },
  { key: 'gateway.wsPort', type: 'int', default: 0, min: 0, max: 65535, doc: 'Client WebSocket port (ports[2]; 0 = any free port).' },
  {
    key: 'gateway.host',
    type: 'string',
    default: '127.0.0.1',
    doc: 'Address the client listeners bind to (0.0.0.0 to take clients from other hosts; needs your own secret).',
  },
  {
    key: 'gateway.publicUrl',
    type: 'string',
    default: '',
    doc: 'WebSocket URL login hands to clients for this gateway, e.g. `wss://gw-3.example.com/` (a proxy or per-pod Service in front). Empty = ws(s)://outerIp:wsPort/.',
  },
  {
    key: 'gateway.publicTcp',
    type: 'string',
    default: '',
    doc: 'host:port login hands to TCP clients for this gateway. Empty = outerIp:tcpPort.',
  },
  {
    key: 'gateway.cmdOffset',
    type: 'int',
    default: DEFAULT_CMD_OFFSET,
    min: 2,
    doc: 'Client routing: targetType = cmd / cmdOffset, the node sees cmd % cmdOffset, replies come back as senderType * cmdOffset + cmd.',
  },
  {
    key: 'gateway.tls',
    type: 'bool',
    default: false,
    doc: 'Client listeners over TLS with tls.cert/tls.key: TLS over TCP on gateway.tcpPort, wss:// on gateway.wsPort.',
  },
  {
    key: 'gateway.minClientVersion',
    type: 'string',
    default: '',
    doc: 'Oldest client version accepted (dotted, compared numerically: 1.10 > 1.9); an older one, or a client that sends none, is refused with UPDATE_REQUIRED {minVersion}. Empty = any.',
  },
  { key: 'gateway.authTimeoutMs', type: 'int', default: 5000, min: 50, doc: 'A client must authenticate (first frame) within this time.' },
  {
    key: 'gateway.heartbeatMs',
    type: 'int',
    default: DEFAULT_HEARTBEAT_MS,
    min: 100,
    doc: 'Ping interval the gateway asks clients to keep (at most half of gateway.idleTimeoutMs).',
  },
  { key: 'gateway.idleTimeoutMs', type: 'int', default: 30000, min: 200, doc: 'A client silent (no frame, no ping) for this long is disconnected.' },
  {
    key: 'gateway.maxFrame',
    type: 'int',
    default: 65536,
    min: 64,
    doc: 'Largest client frame body, in bytes; a bigger frame closes the connection.',
  },
  {
    key: 'gateway.preAuthMaxFrame',
    type: 'int',
    default: 1024,
    min: 64,
    doc: 'Largest client frame body before AUTH succeeded (AUTH and PING are far smaller); bounds what an unauthenticated connection can make the gateway hold.',
  },
  {
    key: 'gateway.listenBacklog',
    type: 'int',
    default: 4096,
    min: 1,
    doc: 'Pending client connections each client listener queues before the kernel drops SYNs (a reconnect storm after a gateway restart; capped by net.core.somaxconn).',
  },
  {
    key: 'gateway.maxConnections',
    type: 'int',
    default: 50000,
    min: 1,
    doc: 'Most client connections per gateway; further ones are refused with TOO_MANY_CONNECTIONS.',
  },
  {
    key: 'gateway.maxPendingPerAddress',
    type: 'int',
    default: 64,
    min: 1,
    doc: 'Connections from one client address that have not authenticated yet; further ones are refused with TOO_MANY_CONNECTIONS (counted as too_many_pending). Players behind one NAT log in at different moments, so this can stay small.',
  },
  {
    key: 'gateway.acceptRatePerAddress',
    type: 'int',
    default: 50,
    min: 1,
    doc: 'New connections per second from one client address (a token bucket of the same size); beyond it they are refused with RATE_LIMITED (counted as accept_rate).',
  },
  { key: 'gateway.rateLimitPerSec', type: 'int', default: 200, min: 1, doc: 'Sustained client messages per second per connection (token bucket).' },
  { key: 'gateway.rateBurst', type: 'int', default: 400, min: 1, doc: 'Burst size of the per-connection rate limit.' },
  {
    key: 'gateway.floodDisconnectAfter',
    type: 'int',
    default: 1000,
    min: 1,
    doc: 'A client whose over-rate messages (dropped) reach this count is disconnected with RATE_LIMITED.',
  },
  {
    key: 'gateway.maxOutboundBytes',
    type: 'int',
    default: 1048576,
    min: 1024,
    doc: 'Bytes waiting to be written to one client; beyond it the client is disconnected as SLOW_CONSUMER.',
  },
  {
    key: 'gateway.reconnectGraceMs',
    type: 'int',
    default: 10000,
    min: 0,
    doc: 'After a client disconnects, how long its session waits for a reconnect before the allocated nodes get ACCOUNT_LOST. Nodes use it too when a gateway dies.',
  },
  {
    key: 'gateway.resumeBufferMax',
    type: 'int',
    default: 1000,
    min: 0,
    doc: 'Messages kept for a disconnected client during the reconnect grace (oldest dropped beyond it).',
  },
  {
    key: 'gateway.resumeBufferMaxBytes',
    type: 'int',
    default: 262144,
    min: 0,
    doc: 'Bytes kept for a disconnected client during the reconnect grace (oldest dropped beyond it).',
  },
  {
    key: 'gateway.routeQueueMax',
    type: 'int',
    default: 1000,
    min: 1,
    doc: 'Client messages held while the account is being reallocated to a live node (or handed off to another node of its type).',
  },
  {
    key: 'gateway.handoffHoldMs',
    type: 'int',
    default: 15_000,
    min: 100,
    doc: "Longest time the gateway holds an account's messages for a handoff before its node says the state is exported; after it they go to the old node again (or, if it is gone, to a fresh allocation).",
  },
  {
    key: 'gateway.handoffTokenTtlMs',
    type: 'int',
    default: 10000,
    min: 100,
    doc: 'A draining gateway: how long the handoff token of a GOING_AWAY works; a client that has not moved by then stays until the drain deadline.',
  },
  {
    key: 'gateway.handoffTimeoutMs',
    type: 'int',
    default: 5000,
    min: 100,
    doc: 'Session handoff: how long the new gateway waits for the old one to answer a claim, and how long messages of a moved account are forwarded and held for their fences before delivery goes on without them, and how long the new gateway skips, for a moved session, broadcasts it already got at the old one.',
  },
  {
    key: 'gateway.handoffStateMaxBytes',
    type: 'int',
    default: 1048576,
    min: 1024,
    doc: 'Largest session state (undelivered messages and bookkeeping) moved to another gateway; a larger session is not moved and stays until the drain deadline.',
  },
  {
    key: 'gateway.wsBatchBytes',
    type: 'int',
    default: 65536,
    min: 0,
    doc: "WebSocket clients that ask for it in AUTH (the SDK does) get the frames of one event-loop turn in messages of up to this many bytes (or the client's own limit, if lower), and may send theirs the same way: one WebSocket message per batch instead of per frame. 0 = one frame per message for everyone.",
  },
  {
    key: 'gateway.broadcastLogMax',
    type: 'int',
    default: 1024,
    min: 0,
    doc: 'Recent broadcasts kept (references to frames already encoded) so that a session moving here from another gateway gets the ones this gateway delivered before it arrived, each once. Two gateways are apart on a node\'s broadcasts by the intranet lag: a few, not hundreds. A move that needs older ones counts them in gateway_refused_total{reason="broadcast_missed"}.',
  },
  {
    key: 'gateway.broadcastLogBytes',
    type: 'int',
    default: 1048576,
    min: 0,
    doc: 'Bytes of broadcast frames gateway.broadcastLogMax may hold at most (the newest one is always kept).',
  },

  // ---- login ----
  { key: 'login.port', type: 'int', default: 7080, min: 0, max: 65535, doc: 'Login HTTP port (POST /login).' },
  {
    key: 'login.host',
    type: 'string',
    default: '127.0.0.1',
    doc: 'Address the login HTTP server binds to (0.0.0.0 to take logins from other hosts; needs your own secret).',
  },
  { key: 'login.tokenTtlMs', type: 'int', default: 30000, min: 1000, doc: 'Lifetime of a login token (single use, bound to account and gateway).' },
  {
    key: 'login.autoRegister',
    type: 'bool',
    default: false,
    doc: 'Create unknown accounts at first login (development only: refused with a login.host other than loopback).',
  },
  {
    key: 'login.verifier',
    type: 'string',
    default: '',
    doc: 'Module exporting verify(account, password) -> boolean | Promise<boolean>, replacing the Redis account check.',
  },
  {
    key: 'login.maxFailures',
    type: 'int',
    default: 5,
    min: 1,
    doc: 'Failed logins per account (and per client address) within login.failureWindowMs before 429.',
  },
  { key: 'login.failureWindowMs', type: 'int', default: 60000, min: 1000, doc: 'Window of the failed-login throttle.' },
  {
    key: 'login.storeTimeoutMs',
    type: 'int',
    default: 1000,
    min: 50,
    doc: 'Longest one store call of a login may take; beyond it the login is answered 503 STORE_UNAVAILABLE (a stalled Redis costs a client this, not storeOpTimeoutMs).',
  },
  {
    key: 'login.affinityMs',
    type: 'int',
    default: 300000,
    min: 0,
    doc: 'After an account is lost, its allocations stay sticky this long (login affinity).',
  },
  { key: 'login.maxBodyBytes', type: 'int', default: 4096, min: 256, doc: 'Largest accepted login request body.' },
  {
    key: 'login.headersTimeoutMs',
    type: 'int',
    default: 10000,
    min: 100,
    doc: 'A client must send its request headers within this time (a slow client holds a connection no longer).',
  },
  { key: 'login.requestTimeoutMs', type: 'int', default: 15000, min: 100, doc: 'A client must send its whole request within this time.' },
  {
    key: 'login.keepAliveTimeoutMs',
    type: 'int',
    default: 5000,
    min: 0,
    doc: "An idle keep-alive connection is closed after this long (0 = at once). Behind a load balancer, set it above the balancer's idle timeout.",
  },
  { key: 'login.staticDir', type: 'string', default: '', doc: 'Directory served at / by the login HTTP server (the demo chat page); empty = none.' },
  { key: 'login.corsOrigin', type: 'string', default: '*', doc: 'Access-Control-Allow-Origin of the login API; empty = no CORS header.' },
  { key: 'login.tls', type: 'bool', default: false, doc: 'The login HTTP server over HTTPS with tls.cert/tls.key.' },
  {
    key: 'login.playground',
    type: 'bool',
    default: false,
    doc: "Serve the playground at /playground: log in as any account, send the commands of the live services' contracts, see replies and pushes (development only: refused with a login.host other than loopback; `xserver up` turns it on).",
  },
  {
    key: 'login.probeGateways',
    type: 'bool',
    default: true,
    doc: 'Before handing out a gateway, login checks that its public address (gateway.publicTcp / gateway.publicUrl) accepts a TCP connection; an unreachable one is skipped and logged. Results are kept for login.gatewayProbeTtlMs.',
  },
  { key: 'login.gatewayProbeTimeoutMs', type: 'int', default: 500, min: 10, doc: "How long the probe of a gateway's public address may take." },
  {
    key: 'login.gatewayProbeTtlMs',
    type: 'int',
    default: 5000,
    min: 100,
    doc: 'How long a probe result is trusted before the address is probed again.',
  },

  // ---- load generator (`xserver bots`, docs/bots.md) ----
  {
    key: 'bots.rampPerSec',
    type: 'int',
    default: 50,
    min: 1,
    doc: 'New logins per second of `xserver bots`, all workers together (--ramp). The default fits a gateway with the default gateway.acceptRatePerAddress, since every bot dials from the same address.',
  },
  {
    key: 'bots.maxPendingLogins',
    type: 'int',
    default: 32,
    min: 1,
    doc: "Bots logging in or connecting at the same time, all workers together; further logins wait. Below the gateway's gateway.maxPendingPerAddress, so a slow login service does not pile up connections.",
  },
  { key: 'bots.maxClients', type: 'int', default: 100000, min: 1, doc: 'Largest --clients `xserver bots` accepts.' },
  {
    key: 'bots.loginTimeoutMs',
    type: 'int',
    default: 10000,
    min: 100,
    doc: "One bot's HTTP login may take this long; then it counts a TIMEOUT and tries again later.",
  },
  {
    key: 'bots.requestTimeoutMs',
    type: 'int',
    default: 5000,
    min: 10,
    doc: "A bot's request (ctx.request in a script) fails with TIMEOUT after this long.",
  },
  {
    key: 'bots.reportIntervalMs',
    type: 'int',
    default: 1000,
    min: 100,
    doc: 'How often the workers report their counts and the live line is printed.',
  },
  {
    key: 'bots.stopTimeoutMs',
    type: 'int',
    default: 10000,
    min: 100,
    doc: 'At the end of a run, how long the workers get to finish the ticks in flight and then to close their clients before they are killed.',
  },
] as const satisfies readonly Setting[];

export const SETTINGS: readonly Setting[] = TABLE;

/** One row of the table, with its literal types. */
type Row = (typeof TABLE)[number];

/** The key of a setting of the table (`link.maxFrame`), and of its integer settings. */
export type SettingKey = Row['key'];
export type IntSettingKey = Extract<Row, { type: 'int' }>['key'];

/** The JS type a setting's value has once loaded. */
type ValueOf<S extends Setting> = S extends { type: 'int' }
  ? number
  : S extends { type: 'bool' }
    ? boolean
    : S extends { type: 'enum'; values: readonly (infer V)[] }
      ? V
      : S extends { type: 'map' }
        ? Record<string, number>
        : string;

/** `link.maxFrame` -> `link`; `cluster` -> `cluster`. */
type HeadOf<K extends string> = K extends `${infer H}.${string}` ? H : K;

/** The rows under section `H`, their keys relative to it (`link.maxFrame` -> `maxFrame`). */
type RowsUnder<R extends Setting, H extends string> = R extends { key: `${H}.${infer Rest}` } ? Omit<R, 'key'> & { key: Rest } : never;

/** Nested config object of a set of rows: a dotted key is a property of its section's object. */
type ConfigOf<R extends Setting> = {
  [H in HeadOf<R['key']>]: [Extract<R, { key: H }>] extends [never] ? Plain<ConfigOf<RowsUnder<R, H>>> : ValueOf<Extract<R, { key: H }>>;
};

/** Spells a section out as its properties in editor hovers and errors, not as ConfigOf<...>. */
type Plain<T> = T extends infer O ? { [K in keyof O]: O[K] } : never;

/**
 * The loaded configuration, derived from SETTINGS: a misspelt section or key does not compile.
 * Settings a role adds at run time (LoadOptions.extraSettings) are not part of the type.
 */
export type XConfig = ConfigOf<Row>;

/** The key of a row whose default does not have the type the row declares, else never. */
type BadDefault<R extends Setting> = R extends Setting ? (R['default'] extends ValueOf<R> ? never : R['key']) : never;
/** Fails to compile, naming the key, if a default does not match its row's type. */
const defaultsMatchTypes: [BadDefault<Row>] extends [never] ? true : BadDefault<Row> = true;
void defaultsMatchTypes;

/** The defaults as a config object. */
export function defaultConfig(): XConfig {
  const out: Record<string, unknown> = {};
  for (const s of SETTINGS) setPath(out, s.key, structuredClone(s.default));
  return out as XConfig;
}

export function setPath(obj: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let cur = obj;
  for (let i = 0; i < parts.length - 1; i++) {
    const p = parts[i]!;
    if (typeof cur[p] !== 'object' || cur[p] === null) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]!] = value;
}

export function getPath(obj: Record<string, unknown>, key: string): unknown {
  let cur: unknown = obj;
  for (const p of key.split('.')) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

/** link.heartbeatTimeoutMs -> XSERVER_LINK_HEARTBEAT_TIMEOUT_MS */
export function envName(key: string): string {
  return (
    'XSERVER_' +
    key
      .split('.')
      .map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase())
      .join('_')
  );
}

/** Type numbers below this are the fixed roles: client, mgr, login, gateway. */
export const FIRST_SERVICE_TYPE = NodeType.FIRST_SERVICE;
/** Type numbers travel as uint32 on the wire. */
export const MAX_TYPE_NUMBER = 0xffffffff;

/**
 * Parses `statefulTypes` ("lobby,7") into type numbers using the types map: every name must be in
 * `types`, every number a service type (>= 4), and no type may be listed twice. Empty entries are
 * skipped, so a trailing comma does no harm. Returns the numbers, or one message per bad entry.
 */
export function parseStatefulTypes(
  cfg: Pick<XConfig, 'statefulTypes' | 'types'>,
): { numbers: number[]; errors?: undefined } | { numbers?: undefined; errors: string[] } {
  const numbers: number[] = [];
  const errors: string[] = [];
  const seen = new Map<number, string>();
  for (const part of cfg.statefulTypes
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const n = /^\d+$/.test(part) ? Number(part) : Object.hasOwn(cfg.types, part) ? cfg.types[part] : undefined;
    if (n === undefined) {
      const known = Object.keys(cfg.types);
      errors.push(`unknown type "${part}" (types: ${known.length ? known.join(', ') : 'none'})`);
    } else if (n < FIRST_SERVICE_TYPE || n > MAX_TYPE_NUMBER) {
      errors.push(`"${part}" is not a service type (expected a number >= ${FIRST_SERVICE_TYPE} and <= ${MAX_TYPE_NUMBER}; 0-3 are reserved)`);
    } else if (seen.has(n)) {
      errors.push(`"${part}" names type ${n} again (already listed as "${seen.get(n)}")`);
    } else {
      seen.set(n, part);
      numbers.push(n);
    }
  }
  return errors.length ? { errors } : { numbers };
}

/** Resolves `statefulTypes` ("lobby,7") to type numbers; throws on an entry parseStatefulTypes rejects. */
export function statefulTypeNumbers(cfg: Pick<XConfig, 'statefulTypes' | 'types'>): number[] {
  const r = parseStatefulTypes(cfg);
  if (r.errors) throw new XError('CONFIG', `statefulTypes: ${r.errors.join('; ')}`);
  return r.numbers;
}
