/**
 * The login service (SPEC §6, docs/protocol.md §6.1). A LoginServer is a cluster node of type 2,
 * so its membership lists the gateways (type 3) and the stateful service nodes, and it serves
 * plain HTTP:
 *
 *   POST /login      {account, password} -> token bound to an account, a gateway and one node of
 *                    each stateful type (allocated atomically and sticky in the store; a canary
 *                    policy of the type picks the version by the account's cohort)
 *   GET  /config.json {loginUrl} for browser pages
 *   GET  /sdk/...    the browser client SDK (dist/client/)
 *   GET  /protocol/... the wire protocol module the SDK imports (dist/protocol/)
 *   GET  /playground/ the playground page (playground/), with login.playground only (development)
 *   GET  /playground/contracts.json  the contracts the live services publish (playground.ts)
 *   GET  /...        files of login.staticDir (the demo page), when set
 *
 * Failed logins are throttled per account and per client address (login.maxFailures within
 * login.failureWindowMs). Every error is JSON `{"error": {"code", "message"}}`. HTTP plumbing
 * (errors, bodies, static files) is in http.ts.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { statefulTypeNumbers } from '../config/schema.js';
import { NodeType, type RoleContext } from '../context.js';
import { XError } from '../errors.js';
import { ClusterNode } from '../node/node.js';
import { runtimeOf } from '../node/internal.js';
import type { Peer } from '../node/peer.js';
import type { AccountStore, AllocationCandidate, KvStore, SessionStore, TokenRecord } from '../store/store.js';
import { createVerifier, type Verifier } from './accounts.js';
import { HttpError, readBody, sendJson, serveFile } from './http.js';
import { validateAccountName, validatePassword } from './password.js';
import { withCallDeadline } from './store-deadline.js';
import { tlsMaterialFor } from '../tls.js';
import { clientEndpoints } from '../node/endpoints.js';
import { GatewayProbe } from './gateway-probe.js';
import { playgroundListing } from './playground.js';
import { hostPort } from '../config/addresses.js';

/** On stop(), open requests may finish for this long before their connections are cut. */
const STOP_GRACE_MS = 2_000;
/** The store keeps a token this much longer than its lifetime, so the gateway can say "expired". */
const TOKEN_STORE_EXTRA_MS = 60_000;
/** 256 random bits per token: unguessable for its short life. */
const TOKEN_BYTES = 32;
/** Access-Control-Max-Age of the preflight answer, in seconds. */
const CORS_MAX_AGE_S = 600;
/** Key prefix (in the store's kv area) of a throttle lock: set when a failure counter reaches the limit. */
const LOCK_PREFIX = 'login:lock:';

export type LoginResult = 'ok' | 'bad_credentials' | 'rate_limited' | 'no_gateway' | 'bad_request' | 'error';
const RESULTS: readonly LoginResult[] = ['ok', 'bad_credentials', 'rate_limited', 'no_gateway', 'bad_request', 'error'];

export interface LoginResponse {
  token: string;
  account: string;
  generation: number;
  expiresInMs: number;
  gateway: { id: string; host: string; tcpPort: number; wsUrl: string; tls: boolean };
  /** Stateful type -> allocated node id. */
  allocations: Record<string, string>;
  /** Stateful types without a live node at login; the gateway allocates them later. */
  missing: number[];
}

export interface LoginServerOptions {
  /** Replaces the verifier chosen by the config (login.verifier / store with login.autoRegister). */
  verifier?: Verifier;
  /**
   * Take the client address (for the per-address throttle) from the last X-Forwarded-For entry,
   * i.e. the address the reverse proxy in front of this server saw. Only behind such a proxy.
   */
  trustProxy?: boolean;
}

/** Runs tasks one at a time per key (a task waits for every key it names); entries vanish when idle. */
class KeyedSerializer {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
    const before = keys.map((k) => this.tails.get(k) ?? Promise.resolve());
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    for (const k of keys) this.tails.set(k, mine);
    await Promise.all(before);
    try {
      return await fn();
    } finally {
      release();
      for (const k of keys) if (this.tails.get(k) === mine) this.tails.delete(k);
    }
  }
}

export class LoginServer {
  /** The cluster node of type 2 whose membership lists the gateways and services. */
  readonly node: ClusterNode;
  private readonly log: Logger;
  private readonly attempts = new KeyedSerializer();
  private readonly probe: GatewayProbe;
  private readonly cfg: RoleContext['config'];
  private readonly statefulTypes: number[];
  private readonly sdkRoot = fileURLToPath(new URL('../client/', import.meta.url));
  /** The SDK imports ../protocol/*.js; from /sdk/ that is /protocol/. */
  private readonly protocolRoot = fileURLToPath(new URL('../protocol/', import.meta.url));
  /** The playground page: playground/ at the package root (from dist/login/ and src/login/ alike). */
  private readonly playgroundRoot = fileURLToPath(new URL('../../playground/', import.meta.url));
  private staticRoot: string | null = null;
  private verifier: Verifier | null;
  private server: Server | null = null;
  private stopTls: () => void = () => {};
  private boundPort = 0;
  private listening = false;
  private stopping = false;
  private readonly results = new Map<LoginResult, number>(RESULTS.map((r) => [r, 0]));
  /** Accounts, the session it issues (allocations, generation, token) and throttle locks in the kv area. */
  private readonly store: AccountStore & SessionStore & KvStore;
  private readonly m;

  constructor(
    ctx: RoleContext,
    private readonly opts: LoginServerOptions = {},
  ) {
    this.cfg = ctx.config;
    // Every login-path store call is bounded by login.storeTimeoutMs (503 beyond it).
    this.store = withCallDeadline<AccountStore & SessionStore & KvStore>(ctx.store, ctx.config.login.storeTimeoutMs);
    this.log = ctx.logger.child({ role: 'login' });
    // Fails fast on a statefulTypes entry missing from the types map or naming a reserved type.
    this.statefulTypes = statefulTypeNumbers(ctx.config);
    this.verifier = opts.verifier ?? null;
    const lc = ctx.config.login;
    this.probe = new GatewayProbe({ enabled: lc.probeGateways, timeoutMs: lc.gatewayProbeTimeoutMs, ttlMs: lc.gatewayProbeTtlMs }, this.log);
    this.node = new ClusterNode(ctx, { type: NodeType.LOGIN, name: 'login' });
    const logins = ctx.metrics.counter('logins_total', 'Login requests by result', ['result']);
    for (const r of RESULTS) logins.inc({ result: r }, 0); // export every series from the start
    this.m = {
      logins,
      latency: ctx.metrics.histogram(
        'login_duration_seconds',
        'Time to answer POST /login',
        ['result'],
        [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      ),
    };
  }

  // ================================================================ lifecycle

  /** Loads the verifier, joins the cluster and listens on login.host:login.port. */
  async start(): Promise<void> {
    if (this.server) return;
    const lc = this.cfg.login;
    this.verifier ??= await createVerifier(this.store, lc, (account) => this.log.info({ account }, 'account auto-registered'));
    if (lc.staticDir.trim() !== '') {
      this.staticRoot = path.resolve(lc.staticDir.trim());
      const st = await fsp.stat(this.staticRoot).catch(() => null);
      if (!st?.isDirectory()) throw new XError('CONFIG', `login.staticDir: ${this.staticRoot} is not a directory`);
    }
    const handler = (req: IncomingMessage, res: ServerResponse): void => void this.handle(req, res);
    let server: Server;
    if (lc.tls) {
      const material = tlsMaterialFor(this.cfg.tls, this.log);
      const secure = createHttpsServer({ ...material.options, handshakeTimeout: lc.headersTimeoutMs }, handler);
      this.stopTls = material.onReload((o) => secure.setSecureContext({ ...o }));
      server = secure;
    } else {
      server = createServer(handler);
    }
    server.headersTimeout = lc.headersTimeoutMs;
    server.requestTimeout = lc.requestTimeoutMs;
    server.keepAliveTimeout = lc.keepAliveTimeoutMs;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(lc.port, lc.host, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch(async (e: Error) => {
      this.server = null;
      throw new XError('CONFIG', `login: cannot listen on ${lc.host}:${lc.port}: ${e.message}`);
    });
    // ports[1] is the HTTP port, so tools and tests find the login URL through the membership.
    const port = (server.address() as AddressInfo).port;
    runtimeOf(this.node).setExtraPorts([port]);
    runtimeOf(this.node).addListener('login', hostPort(lc.host, port), '');
    await this.node.start();
    server.on('error', (e) => this.log.error({ err: e }, 'login HTTP server error'));
    this.boundPort = (server.address() as AddressInfo).port;
    this.listening = true;
    this.log.info(
      {
        url: `${lc.tls ? 'https' : 'http'}://${lc.host}:${this.boundPort}/login`,
        statefulTypes: this.statefulTypes,
        static: this.staticRoot ?? undefined,
        playground: lc.playground ? `${lc.tls ? 'https' : 'http'}://${lc.host}:${this.boundPort}/playground/` : undefined,
      },
      'login listening',
    );
  }

  /** The bound HTTP port (the real one when login.port is 0). */
  get port(): number {
    return this.boundPort;
  }

  /** Serving HTTP and registered with an mgr. */
  ready(): boolean {
    return this.listening && !this.stopping && this.node.mgrConnected;
  }

  /** Resolves once registered with an mgr (rejects after `timeoutMs`). */
  whenRegistered(timeoutMs?: number): Promise<void> {
    return this.node.ready(timeoutMs);
  }

  /** Stops accepting requests, lets open ones finish (briefly), then leaves the cluster. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.stopTls();
    const server = this.server;
    if (server) {
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), STOP_GRACE_MS);
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
      this.listening = false;
    }
    await this.node.stop();
    this.log.info('login stopped');
  }

  /** Admin JSON routes. */
  get routes(): Record<string, () => unknown> {
    return {
      '/api/login': () => this.stats(),
      '/api/self': () => runtimeOf(this.node).selfJson(),
      '/api/peers': () => runtimeOf(this.node).peersJson(),
    };
  }

  /** What /api/login shows: the gateways and stateful nodes this server allocates from, and results. */
  stats(): Record<string, unknown> {
    const stateful: Record<string, number> = {};
    for (const t of this.statefulTypes) stateful[String(t)] = this.node.list(t).length;
    return {
      port: this.boundPort,
      nodeId: this.node.id,
      mgrConnected: this.node.mgrConnected,
      gateways: this.gatewayCandidates().map((g) => ({ id: g.id, ...clientEndpoints(g.info), connections: g.overload(0) })),
      statefulTypes: stateful,
      results: Object.fromEntries(this.results),
    };
  }

  // ================================================================ HTTP

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      this.setCors(res);
      // The raw path, not new URL(): no host parsing of "//x", and ".." stays visible to the static check.
      const pathname = (req.url ?? '/').split('?')[0]!;
      const method = req.method ?? 'GET';
      if (!pathname.startsWith('/')) throw new HttpError(400, 'BAD_REQUEST', 'request target must be a path');
      if (method === 'OPTIONS') return this.preflight(req, res);
      if (pathname === '/login') {
        if (method !== 'POST')
          throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${method} not allowed on /login; use POST`, { allow: 'POST, OPTIONS' });
        return await this.handleLogin(req, res);
      }
      if (method !== 'GET' && method !== 'HEAD') {
        throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${method} not allowed on ${pathname}; use GET`, { allow: 'GET, HEAD, OPTIONS' });
      }
      if (pathname === '/config.json') return sendJson(res, 200, { loginUrl: '/login' }, req.method === 'HEAD');
      if (pathname === '/sdk' || pathname.startsWith('/sdk/'))
        return await serveFile(req, res, this.sdkRoot, pathname.slice('/sdk'.length), '/sdk', this.log);
      if (pathname.startsWith('/protocol/'))
        return await serveFile(req, res, this.protocolRoot, pathname.slice('/protocol'.length), '/protocol', this.log);
      if (pathname === '/playground' || pathname.startsWith('/playground/')) {
        if (this.cfg.login.playground) return await this.servePlayground(req, res, pathname);
        if (!this.staticRoot) {
          throw new HttpError(404, 'NOT_FOUND', `nothing at ${pathname}: the playground is off (login.playground; \`xserver up\` turns it on)`);
        }
      }
      if (this.staticRoot) return await serveFile(req, res, this.staticRoot, pathname, '', this.log);
      throw new HttpError(404, 'NOT_FOUND', `nothing at ${pathname}; POST /login to log in`);
    } catch (e) {
      this.sendError(req, res, e);
    }
  }

  /** The page, or the contracts of the live services (read from the membership at each request). */
  private async servePlayground(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
    if (pathname === '/playground/contracts.json') {
      const infos = this.node.all().map((p) => p.info);
      res.setHeader('cache-control', 'no-store');
      return sendJson(res, 200, playgroundListing(infos, this.cfg.gateway.cmdOffset, this.cfg.node.maxPublishedContracts), req.method === 'HEAD');
    }
    return serveFile(req, res, this.playgroundRoot, pathname.slice('/playground'.length), '/playground', this.log);
  }

  private setCors(res: ServerResponse): void {
    const origin = this.cfg.login.corsOrigin;
    if (!origin) return;
    res.setHeader('access-control-allow-origin', origin);
    if (origin !== '*') res.setHeader('vary', 'Origin');
  }

  private preflight(req: IncomingMessage, res: ServerResponse): void {
    if (this.cfg.login.corsOrigin) {
      res.setHeader('access-control-allow-methods', 'POST, GET, HEAD, OPTIONS');
      const asked = req.headers['access-control-request-headers'];
      res.setHeader('access-control-allow-headers', typeof asked === 'string' && asked ? asked : 'content-type');
      res.setHeader('access-control-max-age', String(CORS_MAX_AGE_S));
    }
    res.setHeader('allow', 'POST, GET, HEAD, OPTIONS');
    res.writeHead(204).end();
    req.resume();
  }

  private sendError(req: IncomingMessage, res: ServerResponse, e: unknown): void {
    const err = e instanceof HttpError ? e : e instanceof XError ? fromXError(e) : new HttpError(500, 'INTERNAL', 'internal error');
    if (err.code === 'INTERNAL' || err.code === 'STORE_UNAVAILABLE') this.log.error({ err: e, url: req.url }, 'login request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
    // Unread request body (e.g. too large): do not keep the connection for the rest of it.
    if (!req.complete) res.setHeader('connection', 'close');
    sendJson(res, err.status, { error: { code: err.code, message: err.message } }, req.method === 'HEAD');
    req.resume();
  }

  // ================================================================ POST /login

  private async handleLogin(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t0 = performance.now();
    let result: LoginResult = 'error';
    try {
      const response = await this.login(req);
      result = 'ok';
      res.setHeader('cache-control', 'no-store');
      sendJson(res, 200, response);
    } catch (e) {
      result = resultOf(e);
      this.sendError(req, res, e);
    } finally {
      this.results.set(result, (this.results.get(result) ?? 0) + 1);
      this.m.logins.inc({ result });
      this.m.latency.observe({ result }, (performance.now() - t0) / 1000);
    }
  }

  private async login(req: IncomingMessage): Promise<LoginResponse> {
    const lc = this.cfg.login;
    const store = this.store;
    const ctype = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (ctype !== 'application/json' && !/^application\/[a-z0-9.+-]*\+json$/.test(ctype)) {
      throw new XError('BAD_REQUEST', 'Content-Type must be application/json');
    }
    const raw = await readBody(req, lc.maxBodyBytes);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new XError('BAD_REQUEST', 'body is not valid JSON');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new XError('BAD_REQUEST', 'body must be a JSON object {"account": "...", "password": "..."}');
    }
    const b = body as Record<string, unknown>;
    if (b.account === undefined) throw new XError('BAD_REQUEST', 'missing "account"');
    if (b.password === undefined) throw new XError('BAD_REQUEST', 'missing "password"');
    const account = validateAccountName(b.account);
    const password = validatePassword(b.password);
    const addr = this.clientAddress(req);

    // Attempts for one account or one address run one at a time, so parallel guesses cannot all
    // pass the throttle check before the first failure is counted.
    const acctKey = `acct:${account}`;
    const ipKey = `ip:${addr}`;
    await this.attempts.run([acctKey, ipKey], () => this.checkCredentials(account, password, acctKey, ipKey, addr));

    // Gateway: sticky while it lives, else the one with the fewest connections; only one
    // whose public address answers.
    const gateways = await this.probe.reachable(this.gatewayCandidates());
    const gatewayId = gateways.length ? await store.allocate(account, NodeType.GATEWAY, candidatesOf(gateways)) : null;
    const gateway = gatewayId ? (this.node.get(gatewayId) ?? gateways.find((g) => g.id === gatewayId)) : undefined;
    if (!gatewayId || !gateway) {
      throw new HttpError(503, 'NO_GATEWAY', 'no gateway is available; try again shortly', { 'retry-after': '1' });
    }

    // One node of each stateful type; a type without a live node is left to the gateway.
    const allocations: Record<string, string> = {};
    const missing: number[] = [];
    await Promise.all(
      this.statefulTypes.map(async (type) => {
        // A draining node takes no new logins (its allocations move at the next login). A canary
        // policy narrows the rest to the account's version; the store keeps the allocation while
        // its node is still among them (sticky), so a new login of the account lands where it was.
        const rt = runtimeOf(this.node);
        const open = this.node.list(type).filter((n) => !n.info.draining);
        const nodes = rt.routed(type, rt.routingDecision(type, account), open, (n) => n.info.version);
        const id = nodes.length ? await store.allocate(account, type, candidatesOf(nodes)) : null;
        if (id) allocations[String(type)] = id;
        else missing.push(type);
      }),
    );
    missing.sort((a, b) => a - b);

    const generation = await store.nextGeneration(account);
    const token = randomBytes(TOKEN_BYTES).toString('base64url');
    const rec: TokenRecord = { account, gatewayId, generation, allocations, expiresAt: Date.now() + lc.tokenTtlMs };
    await store.putToken(token, rec, lc.tokenTtlMs + TOKEN_STORE_EXTRA_MS);

    const { host, tcpPort, wsUrl, tls } = clientEndpoints(gateway.info);
    this.log.debug({ account, gateway: gatewayId, generation, allocations, missing }, 'login ok');
    return {
      token,
      account,
      generation,
      expiresInMs: lc.tokenTtlMs,
      gateway: {
        id: gatewayId,
        host,
        tcpPort,
        wsUrl,
        tls,
      },
      allocations,
      missing,
    };
  }

  /** Throttle, then verify: a locked account or address is not even checked. */
  private async checkCredentials(account: string, password: string, acctKey: string, ipKey: string, addr: string): Promise<void> {
    const store = this.store;
    const locks = await Promise.all([store.kvGet(LOCK_PREFIX + acctKey), store.kvGet(LOCK_PREFIX + ipKey)]);
    const lockedUntil = Math.max(...locks.map((v) => Number(v ?? 0) || 0));
    if (locks.some((v) => v !== null)) {
      this.log.info({ account, addr }, 'login refused: too many failed attempts');
      const retryS = Math.max(1, Math.ceil((lockedUntil - Date.now()) / 1000));
      throw new HttpError(429, 'RATE_LIMITED', `too many failed logins; try again in ${retryS} s`, { 'retry-after': String(retryS) });
    }

    const ok = await this.verifier!(account, password);
    if (!ok) {
      await this.countFailure(acctKey, ipKey);
      this.log.debug({ account, addr }, 'login refused: bad credentials');
      throw new XError('BAD_CREDENTIALS', 'wrong account or password');
    }
    await store.clearFailures(acctKey);
  }

  /** Counts a failure for the account and the address; a counter reaching the limit locks its key for a window. */
  private async countFailure(...keys: string[]): Promise<void> {
    const { maxFailures, failureWindowMs } = this.cfg.login;
    const store = this.store;
    await Promise.all(
      keys.map(async (key) => {
        const n = await store.countFailure(key, failureWindowMs);
        if (n >= maxFailures) await store.kvSet(LOCK_PREFIX + key, String(Date.now() + failureWindowMs), failureWindowMs);
      }),
    );
  }

  /** Listed gateways that advertise a client port. */
  private gatewayCandidates(): Peer[] {
    return this.node.list(NodeType.GATEWAY).filter((g) => (g.port(1) > 0 || g.port(2) > 0) && !g.info.draining);
  }

  private clientAddress(req: IncomingMessage): string {
    let addr = req.socket.remoteAddress ?? 'unknown';
    if (this.opts.trustProxy) {
      const fwd = req.headers['x-forwarded-for'];
      const last = (Array.isArray(fwd) ? fwd.join(',') : (fwd ?? ''))
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
        .pop();
      if (last) addr = last;
    }
    return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  }

  // ================================================================ static files

  /**
   * Serves `urlPath` (still percent-encoded) from `root`. Paths with ".." segments, NUL or a
   * resolved location (symlinks followed) outside `root` are refused.
   */
}

// ================================================================ helpers

function candidatesOf(peers: readonly Peer[]): AllocationCandidate[] {
  return peers.map((p) => ({ id: p.id, load: p.overload(0) }));
}

function fromXError(e: XError): HttpError {
  switch (e.code) {
    case 'BAD_REQUEST':
      return new HttpError(400, 'BAD_REQUEST', e.message);
    case 'BAD_CREDENTIALS':
      return new HttpError(401, 'BAD_CREDENTIALS', e.message);
    case 'RATE_LIMITED':
      return new HttpError(429, 'RATE_LIMITED', e.message);
    case 'NO_GATEWAY':
      return new HttpError(503, 'NO_GATEWAY', e.message, { 'retry-after': '1' });
    case 'STORE_UNAVAILABLE':
      return new HttpError(503, 'STORE_UNAVAILABLE', 'the cluster store is unavailable; try again shortly', { 'retry-after': '1' });
    default:
      return new HttpError(500, 'INTERNAL', 'internal error');
  }
}

function resultOf(e: unknown): LoginResult {
  const code = e instanceof HttpError ? e.code : e instanceof XError ? e.code : 'INTERNAL';
  switch (code) {
    case 'BAD_REQUEST':
      return 'bad_request';
    case 'BAD_CREDENTIALS':
      return 'bad_credentials';
    case 'RATE_LIMITED':
      return 'rate_limited';
    case 'NO_GATEWAY':
      return 'no_gateway';
    default:
      return 'error';
  }
}
