/**
 * Login service against real Redis: an in-process cluster (mgr, a fake gateway — a ClusterNode
 * of type 3 advertising client ports —, lobby nodes of type 4) and LoginServer on port 0.
 * Redis keys live under a random cluster name per file and are deleted afterwards (SCAN + DEL).
 *
 * Throttling is per account and per client address; every request here comes from 127.0.0.1, so
 * the servers trust X-Forwarded-For and each test uses its own addresses.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig, type XConfig } from '../src/config/schema.js';
import type { RoleContext } from '../src/context.js';
import { isXError } from '../src/errors.js';
import { silentLogger } from '../src/log.js';
import { addAccount, loadVerifier } from '../src/login/accounts.js';
import { LoginServer, type LoginResponse } from '../src/login/login.js';
import { hashPassword, parsePasswordHash, validateAccountName, validatePassword, verifyPassword } from '../src/login/password.js';
import { Metrics } from '../src/metrics.js';
import { MgrServer } from '../src/mgr/mgr.js';
import { ClusterNode } from '../src/node/node.js';
import { RedisStore } from '../src/store/index.js';
import { clusterKeyPatterns, deleteKeys as deleteMatching, waitFor } from '../testkit/index.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const CLUSTER = `login-test-${randomBytes(4).toString('hex')}`;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'xserver.js');
const GW_TCP = 41001;
const GW_WS = 41002;
const MAX_FAILURES = 3;
const TOKEN_TTL = 20_000;

const stores: RedisStore[] = [];
const stoppers: (() => Promise<void>)[] = [];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xserver-login-'));

function testConfig(cluster = CLUSTER, patch: (c: XConfig) => void = () => {}): XConfig {
  const c = defaultConfig();
  c.cluster = cluster;
  c.redisUrl = REDIS_URL;
  c.bindHost = '127.0.0.1';
  c.mgr.port = 0;
  c.mgr.settleGraceMs = 100;
  c.mgr.leaseTtlMs = 1000;
  c.mgr.leaseRefreshMs = 200;
  c.mgr.updateMinIntervalMs = 0;
  c.node.updateIntervalMs = 20;
  c.node.shutdownDrainMs = 0;
  c.login.port = 0;
  c.login.host = '127.0.0.1';
  c.login.tokenTtlMs = TOKEN_TTL;
  c.login.maxFailures = MAX_FAILURES;
  c.login.failureWindowMs = 60_000;
  // The gateways here are bare nodes advertising client ports nobody listens on ('gateway
  // public address' below checks the probe with a listening one).
  c.login.probeGateways = false;
  patch(c);
  return c;
}

function makeCtx(config: XConfig): RoleContext {
  const store = new RedisStore(REDIS_URL, config.cluster);
  stores.push(store);
  return { config, store, logger: silentLogger(), metrics: new Metrics() };
}

async function eventually<T>(what: string, probe: () => T | Promise<T>, timeoutMs = 5000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function startMgr(config: XConfig): Promise<MgrServer> {
  const mgr = new MgrServer(makeCtx(config));
  await mgr.start();
  stoppers.push(() => mgr.stop());
  await eventually('mgr active', () => mgr.isActive);
  return mgr;
}

async function startNode(config: XConfig, type: number, opts: { extraPorts?: number[]; overload?: number[] } = {}): Promise<ClusterNode> {
  const node = new ClusterNode(makeCtx(config), { type, ...opts });
  await node.start();
  stoppers.push(() => node.stop());
  await node.ready(5000);
  return node;
}

async function startLogin(config: XConfig): Promise<{ login: LoginServer; base: string; ctx: RoleContext }> {
  const ctx = makeCtx(config);
  const login = new LoginServer(ctx, { trustProxy: true });
  await login.start();
  stoppers.push(() => login.stop());
  await login.whenRegistered(5000);
  return { login, base: `http://127.0.0.1:${login.port}`, ctx };
}

let ipSeq = 0;
/** A fresh client address (X-Forwarded-For) so that tests do not share the per-address throttle. */
const freshIp = (): string => `10.0.${Math.floor(++ipSeq / 250)}.${(ipSeq % 250) + 1}`;

interface Answer<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

async function post<T = LoginResponse>(
  base: string,
  body: unknown,
  opts: { ip?: string; contentType?: string; raw?: string } = {},
): Promise<Answer<T>> {
  const res = await fetch(`${base}/login`, {
    method: 'POST',
    headers: { 'content-type': opts.contentType ?? 'application/json', 'x-forwarded-for': opts.ip ?? freshIp() },
    body: opts.raw ?? JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as T, headers: res.headers };
}

type ErrorBody = { error: { code: string; message: string } };

async function expectError(p: Promise<Answer<unknown>>, status: number, code: string): Promise<ErrorBody['error']> {
  const a = await p;
  expect(a.status, JSON.stringify(a.body)).toBe(status);
  expect(a.headers.get('content-type')).toMatch(/^application\/json/);
  const err = (a.body as ErrorBody).error;
  expect(err.code).toBe(code);
  expect(typeof err.message).toBe('string');
  return err;
}

/** GET with a raw (unnormalised) request path; fetch would resolve "..". */
function rawGet(port: number, reqPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: reqPath, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function deleteKeys(cluster: string): Promise<void> {
  await deleteMatching(REDIS_URL, clusterKeyPatterns(cluster));
}

// ---- the cluster shared by most tests ----

const staticDir = path.join(tmp, 'www');
let config: XConfig;
let gateway: ClusterNode;
let lobby: ClusterNode;
let login: LoginServer;
let loginCtx: RoleContext;
let base: string;
let store: RedisStore;

beforeAll(async () => {
  fs.mkdirSync(path.join(staticDir, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(staticDir, 'index.html'), '<!doctype html><title>chat</title>');
  fs.writeFileSync(path.join(staticDir, 'app.js'), 'export const x = 1;\n');
  fs.writeFileSync(path.join(staticDir, 'style.css'), 'body{}');
  fs.writeFileSync(path.join(staticDir, 'logo.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  fs.writeFileSync(path.join(staticDir, 'sub', 'index.html'), '<p>sub</p>');
  fs.writeFileSync(path.join(tmp, 'secret.txt'), 'TOP-SECRET');
  fs.symlinkSync(path.join(tmp, 'secret.txt'), path.join(staticDir, 'link.txt'));

  config = testConfig(CLUSTER, (c) => (c.login.staticDir = staticDir));
  store = new RedisStore(REDIS_URL, CLUSTER);
  stores.push(store);
  await startMgr(config);
  gateway = await startNode(config, 3, { extraPorts: [GW_TCP, GW_WS] });
  lobby = await startNode(config, 4);
  ({ login, base, ctx: loginCtx } = await startLogin(config));
  await eventually('login sees gateway and lobby', () => login.node.has(gateway.id) && login.node.has(lobby.id));
});

afterAll(async () => {
  // Best-effort teardown: a role that fails to stop must not keep the others (and the keys) around.
  for (const stop of stoppers.reverse()) await stop().catch(() => {});
  await Promise.all(stores.map((s) => s.close().catch(() => {})));
  await deleteKeys(CLUSTER);
  await deleteKeys(`${CLUSTER}-nogw`);
  await deleteKeys(`${CLUSTER}-probe`);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('passwords', () => {
  it('hashes with scrypt in the documented format and verifies', async () => {
    const h = await hashPassword('hunter2');
    expect(h).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(parsePasswordHash(h)!.salt.length).toBe(16);
    expect(await verifyPassword('hunter2', h)).toBe(true);
    expect(await verifyPassword('hunter3', h)).toBe(false);
    expect(await hashPassword('hunter2')).not.toBe(h); // random salt
    expect(await verifyPassword('x', 'garbage')).toBe(false);
    expect(await verifyPassword('x', 'scrypt$1099511627776$8$1$AAAA$AAAAAAAAAAAAAAAAAAAAAA==')).toBe(false);
  });

  it('validates account names and passwords', () => {
    expect(validateAccountName('a.b-c_d@e9')).toBe('a.b-c_d@e9');
    for (const bad of ['', 'x'.repeat(65), 'a b', 'ü', 'a/b', 42]) {
      expect(() => validateAccountName(bad)).toThrow();
    }
    expect(validateAccountName('x'.repeat(64))).toHaveLength(64);
    expect(validatePassword('p'.repeat(128))).toHaveLength(128);
    for (const bad of ['', 'p'.repeat(129), null]) expect(() => validatePassword(bad)).toThrow();
  });
});

describe('POST /login', () => {
  it('returns a token bound to the account, the gateway and the allocations', async () => {
    await addAccount(store, 'alice', 'pw-alice');
    const before = Date.now();
    const a = await post(base, { account: 'alice', password: 'pw-alice' });
    expect(a.status, JSON.stringify(a.body)).toBe(200);
    expect(a.headers.get('access-control-allow-origin')).toBe('*');
    const r = a.body;
    expect(r.account).toBe('alice');
    expect(r.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(r.expiresInMs).toBe(TOKEN_TTL);
    expect(r.generation).toBeGreaterThanOrEqual(1);
    expect(r.gateway).toEqual({ id: gateway.id, host: '127.0.0.1', tcpPort: GW_TCP, wsUrl: `ws://127.0.0.1:${GW_WS}/`, tls: false });
    expect(r.allocations).toEqual({ '4': lobby.id });
    expect(r.missing).toEqual([]);

    const rec = await store.takeToken(r.token, gateway.id);
    expect(rec).toMatchObject({ account: 'alice', gatewayId: gateway.id, generation: r.generation, allocations: { '4': lobby.id } });
    expect(rec!.expiresAt).toBeGreaterThanOrEqual(before + TOKEN_TTL);
    expect(rec!.expiresAt).toBeLessThanOrEqual(Date.now() + TOKEN_TTL);
    expect(await store.getAllocations('alice')).toEqual({ '3': gateway.id, '4': lobby.id });

    // Every login issues a new generation.
    const b = await post(base, { account: 'alice', password: 'pw-alice' });
    expect(b.body.generation).toBeGreaterThan(r.generation);
    expect(b.body.token).not.toBe(r.token);
  });

  it('answers 401 with the same message for a wrong password and an unknown account', async () => {
    await addAccount(store, 'bob', 'pw-bob');
    const wrong = await expectError(post(base, { account: 'bob', password: 'nope' }), 401, 'BAD_CREDENTIALS');
    const unknown = await expectError(post(base, { account: 'nobody-here', password: 'nope' }), 401, 'BAD_CREDENTIALS');
    expect(unknown.message).toBe(wrong.message);
    expect(await store.getAccount('nobody-here')).toBeNull(); // no auto-registration by default
  });

  it('throttles an account after login.maxFailures failures, before checking the password', async () => {
    await addAccount(store, 'carol', 'pw-carol');
    for (let i = 0; i < MAX_FAILURES; i++) await expectError(post(base, { account: 'carol', password: 'bad' }), 401, 'BAD_CREDENTIALS');
    // Even the right password, from a new address, is refused now.
    const a = await post(base, { account: 'carol', password: 'pw-carol' });
    expect(a.status).toBe(429);
    expect((a.body as unknown as ErrorBody).error.code).toBe('RATE_LIMITED');
    expect(Number(a.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('throttles parallel guesses too: no more than login.maxFailures wrong passwords are checked', async () => {
    await addAccount(store, 'carl', 'pw-carl');
    const replies = await Promise.all(Array.from({ length: 20 }, () => post(base, { account: 'carl', password: 'bad' }, { ip: freshIp() })));
    const statuses = replies.map((r) => r.status);
    expect(statuses.filter((s) => s === 401).length).toBe(MAX_FAILURES);
    expect(statuses.filter((s) => s === 429).length).toBe(20 - MAX_FAILURES);
  });

  it('throttles a client address across accounts', async () => {
    await addAccount(store, 'dave', 'pw-dave');
    const ip = freshIp();
    for (let i = 0; i < MAX_FAILURES; i++) await expectError(post(base, { account: `ghost${i}`, password: 'x' }, { ip }), 401, 'BAD_CREDENTIALS');
    await expectError(post(base, { account: 'dave', password: 'pw-dave' }, { ip }), 429, 'RATE_LIMITED');
    expect((await post(base, { account: 'dave', password: 'pw-dave' })).status).toBe(200); // another address
  });

  it('clears the account counter on success', async () => {
    await addAccount(store, 'erin', 'pw-erin');
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < MAX_FAILURES - 1; i++) await expectError(post(base, { account: 'erin', password: 'bad' }), 401, 'BAD_CREDENTIALS');
      expect((await post(base, { account: 'erin', password: 'pw-erin' })).status).toBe(200);
    }
  });

  it('refuses malformed requests with 400 / 413 / 405 / 404', async () => {
    await expectError(post(base, null, { raw: '{"account": "alice", ' }), 400, 'BAD_REQUEST');
    await expectError(post(base, null, { raw: '[1,2]' }), 400, 'BAD_REQUEST');
    await expectError(post(base, { password: 'x' }), 400, 'BAD_REQUEST');
    await expectError(post(base, { account: 'alice' }), 400, 'BAD_REQUEST');
    await expectError(post(base, { account: 42, password: 'x' }), 400, 'BAD_REQUEST');
    await expectError(post(base, { account: 'has space', password: 'x' }), 400, 'BAD_REQUEST');
    await expectError(post(base, { account: 'alice', password: '' }), 400, 'BAD_REQUEST');
    await expectError(post(base, { account: 'alice', password: 'p'.repeat(129) }), 400, 'BAD_REQUEST');
    await expectError(post(base, { account: 'alice', password: 'pw-alice' }, { contentType: 'text/plain' }), 400, 'BAD_REQUEST');
    const big = JSON.stringify({ account: 'alice', password: 'pw-alice', pad: 'x'.repeat(config.login.maxBodyBytes) });
    await expectError(post(base, null, { raw: big }), 413, 'BAD_REQUEST');

    // A chunked body (no Content-Length) that grows too large is cut off as well.
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: login.port, path: '/login', method: 'POST', headers: { 'content-type': 'application/json' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.write('{"account":"alice","password":"');
      req.end('y'.repeat(config.login.maxBodyBytes) + '"}');
    });
    expect(chunked).toBe(413);

    const get = await fetch(`${base}/login`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toContain('POST');
    expect(((await get.json()) as ErrorBody).error.code).toBe('METHOD_NOT_ALLOWED');
    // Nothing was counted as a failure for alice: she can still log in.
    expect((await post(base, { account: 'alice', password: 'pw-alice' })).status).toBe(200);
  });

  it('answers CORS preflight', async () => {
    const res = await fetch(`${base}/login`, {
      method: 'OPTIONS',
      headers: { origin: 'http://example.test', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    expect(res.headers.get('access-control-allow-headers')).toContain('content-type');
  });

  it('keeps login affinity while the nodes live and moves a lost lobby', async () => {
    const lobby2 = await startNode(config, 4);
    await eventually('login sees the second lobby', () => login.node.has(lobby2.id));
    await addAccount(store, 'frank', 'pw-frank');
    const first = await post(base, { account: 'frank', password: 'pw-frank' });
    expect(first.status).toBe(200);
    const mine = first.body.allocations['4']!;
    expect([lobby.id, lobby2.id]).toContain(mine);
    for (let i = 0; i < 3; i++) {
      const again = await post(base, { account: 'frank', password: 'pw-frank' });
      expect(again.body.gateway.id).toBe(first.body.gateway.id);
      expect(again.body.allocations).toEqual(first.body.allocations);
    }
    // Stop frank's lobby; once the login node has seen it leave, he gets the other one.
    const [gone, other] = mine === lobby.id ? [lobby, lobby2] : [lobby2, lobby];
    await gone.stop();
    await eventually('login sees the lobby leave', () => !login.node.has(gone.id));
    const moved = await post(base, { account: 'frank', password: 'pw-frank' });
    expect(moved.status).toBe(200);
    expect(moved.body.allocations).toEqual({ '4': other.id });
    expect(moved.body.gateway.id).toBe(gateway.id);
    lobby = other;
  });

  it('gives two concurrent logins of one account the same allocations', async () => {
    const gw2 = await startNode(config, 3, { extraPorts: [GW_TCP + 10, GW_WS + 10] });
    const lobby3 = await startNode(config, 4);
    await eventually('login sees the new nodes', () => login.node.has(gw2.id) && login.node.has(lobby3.id));
    for (let n = 0; n < 5; n++) {
      const account = `conc${n}`;
      await addAccount(store, account, 'pw');
      const answers = await Promise.all([0, 1, 2, 3].map(() => post(base, { account, password: 'pw' })));
      for (const a of answers) expect(a.status).toBe(200);
      const [a0] = answers;
      for (const a of answers) {
        expect(a.body.gateway.id).toBe(a0!.body.gateway.id);
        expect(a.body.allocations).toEqual(a0!.body.allocations);
      }
      expect(new Set(answers.map((a) => a.body.generation)).size).toBe(answers.length);
    }
    await gw2.stop();
    await lobby3.stop();
    await eventually('login sees them leave', () => !login.node.has(gw2.id) && !login.node.has(lobby3.id));
  });

  it('sends a new account to the gateway with the fewest connections', async () => {
    const busy = await startNode(config, 3, { extraPorts: [GW_TCP + 20, GW_WS + 20], overload: [500] });
    const idle = await startNode(config, 3, { extraPorts: [GW_TCP + 30, GW_WS + 30], overload: [0] });
    gateway.setOverload(0, 100);
    await eventually(
      'login sees the loads',
      () => login.node.get(gateway.id)?.overload(0) === 100 && login.node.has(busy.id) && login.node.has(idle.id),
    );
    await addAccount(store, 'gina', 'pw');
    const a = await post(base, { account: 'gina', password: 'pw' });
    expect(a.body.gateway).toMatchObject({ id: idle.id, tcpPort: GW_TCP + 30 });
    await busy.stop();
    await idle.stop();
    gateway.setOverload(0, 0);
    await eventually('login sees them leave', () => !login.node.has(busy.id) && !login.node.has(idle.id));
  });

  it('reports a stateful type without a live node as missing', async () => {
    const c = testConfig(CLUSTER, (x) => (x.statefulTypes = 'lobby,match'));
    const { login: l2, base: b2 } = await startLogin(c);
    await eventually('second login sees the cluster', () => l2.node.has(gateway.id) && l2.node.has(lobby.id));
    await addAccount(store, 'hank', 'pw');
    const a = await post(b2, { account: 'hank', password: 'pw' });
    expect(a.status).toBe(200);
    expect(a.body.allocations).toEqual({ '4': lobby.id });
    expect(a.body.missing).toEqual([5]);
    await l2.stop();
  });

  it('a body the client abandons half-way is its error (bad_request), not a server error', async () => {
    const before = (login.routes['/api/login']!() as { results: Record<string, number> }).results;
    // The server has the request (its handler is reading the body) before the client goes.
    const server = (login as unknown as { server: http.Server }).server;
    const requested = new Promise<void>((r) => server.once('request', () => r()));
    const sock = net.connect(login.port, '127.0.0.1');
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write('POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"account":');
    await requested;
    sock.destroy();
    await waitFor(() => (login.routes['/api/login']!() as { results: Record<string, number> }).results.bad_request! > before.bad_request!, {
      timeoutMs: 3000,
      what: 'the aborted login counted',
    });
    expect((login.routes['/api/login']!() as { results: Record<string, number> }).results.error).toBe(before.error);
  });

  it('counts logins in metrics and /api/login', async () => {
    const text = await loginCtx.metrics.text();
    expect(text).toMatch(/xserver_logins_total\{result="ok"\} [1-9]/);
    expect(text).toMatch(/xserver_logins_total\{result="bad_credentials"\} [1-9]/);
    expect(text).toMatch(/xserver_logins_total\{result="rate_limited"\} [1-9]/);
    expect(text).toMatch(/xserver_logins_total\{result="bad_request"\} [1-9]/);
    expect(text).toContain('xserver_login_duration_seconds_bucket');
    const stats = login.routes['/api/login']!() as { port: number; gateways: { id: string }[]; results: Record<string, number> };
    expect(stats.port).toBe(login.port);
    expect(stats.gateways.map((g) => g.id)).toContain(gateway.id);
    expect(stats.results.ok).toBeGreaterThan(0);
    expect(login.ready()).toBe(true);
  });
});

describe('no gateway', () => {
  it('answers 503 NO_GATEWAY when no gateway is listed', async () => {
    const c = testConfig(`${CLUSTER}-nogw`);
    await startMgr(c);
    await startNode(c, 4);
    const { base: b } = await startLogin(c);
    const s = new RedisStore(REDIS_URL, c.cluster);
    stores.push(s);
    await addAccount(s, 'ivy', 'pw');
    const a = await post(b, { account: 'ivy', password: 'pw' });
    expect(a.status).toBe(503);
    expect((a.body as unknown as ErrorBody).error.code).toBe('NO_GATEWAY');
    expect(await s.getAllocations('ivy')).toEqual({});
  });
});

describe('gateway public address', () => {
  it('is probed before it is handed out: a gateway whose address does not answer gets no logins', async () => {
    const c = testConfig(`${CLUSTER}-probe`, (x) => (x.login.probeGateways = true));
    await startMgr(c);
    // One gateway with a TCP listener on its advertised client port; one whose public address
    // (gateway.publicTcp) nothing listens on: port 1 of a loopback address no test uses.
    const listening = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => listening.listen(0, '127.0.0.1', r));
    stoppers.push(() => new Promise<void>((r) => listening.close(() => r())));
    const openPort = (listening.address() as net.AddressInfo).port;
    // The unreachable one would win on load.
    const up = await startNode(c, 3, { extraPorts: [openPort, 0], overload: [100] });
    const down = await startNode({ ...c, gateway: { ...c.gateway, publicTcp: '127.0.0.9:1' } }, 3, { extraPorts: [openPort, 0], overload: [0] });
    const { login: l, base: b } = await startLogin(c);
    await eventually('login sees both gateways', () => l.node.has(up.id) && l.node.has(down.id));
    const s = new RedisStore(REDIS_URL, c.cluster);
    stores.push(s);
    for (const name of ['pa', 'pb', 'pc']) {
      await addAccount(s, name, 'pw');
      const r = await post(b, { account: name, password: 'pw' });
      expect(r.status).toBe(200);
      expect(r.body.gateway).toMatchObject({ id: up.id, host: '127.0.0.1', tcpPort: openPort });
    }
  });
});

describe('verifiers', () => {
  it('auto-registers unknown accounts only when login.autoRegister is on', async () => {
    await expectError(post(base, { account: 'newbie', password: 'first' }), 401, 'BAD_CREDENTIALS');
    expect(await store.getAccount('newbie')).toBeNull();

    const { login: l2, base: b2 } = await startLogin(testConfig(CLUSTER, (c) => (c.login.autoRegister = true)));
    await eventually('auto-register login sees the gateway', () => l2.node.has(gateway.id));
    expect((await post(b2, { account: 'newbie', password: 'first' })).status).toBe(200);
    expect(await store.getAccount('newbie')).not.toBeNull();
    // Registered now: the password must match from here on, on either server.
    await expectError(post(b2, { account: 'newbie', password: 'other' }), 401, 'BAD_CREDENTIALS');
    expect((await post(base, { account: 'newbie', password: 'first' })).status).toBe(200);
    await l2.stop();
  });

  it('uses a custom verifier module instead of the store', async () => {
    const file = path.join(tmp, 'verifier.mjs');
    fs.writeFileSync(file, 'export default async (account, password) => password === "open-" + account;\n');
    const { login: l2, base: b2 } = await startLogin(testConfig(CLUSTER, (c) => (c.login.verifier = file)));
    await eventually('verifier login sees the gateway', () => l2.node.has(gateway.id));
    const a = await post(b2, { account: 'outsider', password: 'open-outsider' });
    expect(a.status).toBe(200);
    expect(a.body.gateway.id).toBe(gateway.id);
    expect(await store.getAccount('outsider')).toBeNull();
    // The store's accounts do not count any more.
    await expectError(post(b2, { account: 'alice', password: 'pw-alice' }), 401, 'BAD_CREDENTIALS');
    await l2.stop();

    const named = path.join(tmp, 'named.mjs');
    fs.writeFileSync(named, 'export function verify(a, p) { return p === "x"; }\n');
    const v = await loadVerifier(named);
    expect(await v('any', 'x')).toBe(true);
    expect(await v('any', 'y')).toBe(false);
    const bad = path.join(tmp, 'bad.mjs');
    fs.writeFileSync(bad, 'export const verify = 42;\n');
    await expect(loadVerifier(bad)).rejects.toSatisfy((e) => isXError(e, 'CONFIG'));
    await expect(loadVerifier(path.join(tmp, 'missing.mjs'))).rejects.toSatisfy((e) => isXError(e, 'CONFIG'));
  });
});

describe('static files', () => {
  it('serves login.staticDir with content types and index.html', async () => {
    const index = await fetch(`${base}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await index.text()).toContain('<title>chat</title>');
    const types: Record<string, string> = { '/app.js': 'text/javascript', '/style.css': 'text/css', '/logo.svg': 'image/svg+xml' };
    for (const [p, t] of Object.entries(types)) {
      const res = await fetch(`${base}${p}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain(t);
      await res.arrayBuffer();
    }
    const redirect = await fetch(`${base}/sub`, { redirect: 'manual' });
    expect(redirect.status).toBe(301);
    expect(redirect.headers.get('location')).toBe('/sub/');
    expect(await (await fetch(`${base}/sub/`)).text()).toBe('<p>sub</p>');
    const cfg = await fetch(`${base}/config.json`);
    expect(await cfg.json()).toEqual({ loginUrl: '/login' });
    const head = await fetch(`${base}/app.js`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('20');

    const missing = await fetch(`${base}/nope.html`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as ErrorBody).error.code).toBe('NOT_FOUND');
    const posted = await fetch(`${base}/app.js`, { method: 'POST' });
    expect(posted.status).toBe(405);
  });

  it('refuses directory traversal', async () => {
    for (const p of [
      '/../secret.txt',
      '/sub/../../secret.txt',
      '/..%2fsecret.txt',
      '/%2e%2e%2fsecret.txt',
      '/..\\secret.txt',
      '/sdk/..%2f..%2fpackage.json',
      '/sdk/../../package.json',
      '//etc/passwd',
      '/sdk//etc/passwd',
      '/%2fetc%2fpasswd',
    ]) {
      const r = await rawGet(login.port, p);
      expect([400, 404], p).toContain(r.status);
      expect(r.body).not.toContain('TOP-SECRET');
      expect(r.body).not.toContain('"name": "xserver"');
      expect(r.body).not.toContain('root:');
    }
    // A symlink out of the directory is not followed.
    expect((await rawGet(login.port, '/link.txt')).status).toBe(404);
    expect((await rawGet(login.port, '/%00')).status).toBe(400);
    expect((await rawGet(login.port, '/%E0%A4%A')).status).toBe(400);
  });

  it('serves the client SDK under /sdk/', async () => {
    const sdkDir = fileURLToPath(new URL('../src/client/', import.meta.url));
    const files = fs.existsSync(sdkDir) ? fs.readdirSync(sdkDir).filter((f) => fs.statSync(path.join(sdkDir, f)).isFile()) : [];
    expect((await fetch(`${base}/sdk/no-such-module.js`)).status).toBe(404);
    if (files.length) {
      const res = await fetch(`${base}/sdk/${files[0]}`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(fs.readFileSync(path.join(sdkDir, files[0]!), 'utf8'));
    }
  });
});

describe('xserver account', () => {
  const run = (
    args: string[],
    opts: { env?: Record<string, string>; input?: string } = {},
  ): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const child = execFile(
        process.execPath,
        [BIN, ...args],
        {
          cwd: ROOT,
          env: { ...process.env, XSERVER_CLUSTER: CLUSTER, XSERVER_REDIS_URL: REDIS_URL, XSERVER_LOG_PRETTY: 'false', ...opts.env },
          timeout: 20_000,
        },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
      child.stdin!.end(opts.input ?? '');
    });

  beforeAll(() => {
    // `npm test` builds first; build here when run alone.
    if (!fs.existsSync(path.join(ROOT, 'dist', 'login', 'cli.js'))) execFileSync('npm', ['run', '-s', 'build'], { cwd: ROOT, stdio: 'inherit' });
  }, 120_000);

  it('adds, changes and deletes accounts that can then log in', async () => {
    const add = await run(['account', 'add', 'cli-user', '--password', 'cli-pw']);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toContain('created');
    expect((await post(base, { account: 'cli-user', password: 'cli-pw' })).status).toBe(200);

    const dup = await run(['account', 'add', 'cli-user', '--password', 'x']);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain('already exists');

    const pw = await run(['account', 'passwd', 'cli-user'], { input: 'from-stdin\n' });
    expect(pw.code, pw.stderr).toBe(0);
    expect((await post(base, { account: 'cli-user', password: 'from-stdin' })).status).toBe(200);

    const envAdd = await run(['account', 'add', 'cli-env'], { env: { XSERVER_ACCOUNT_PASSWORD: 'env-pw' } });
    expect(envAdd.code, envAdd.stderr).toBe(0);
    expect(envAdd.stderr).not.toContain('matches no setting');
    expect((await post(base, { account: 'cli-env', password: 'env-pw' })).status).toBe(200);

    const del = await run(['account', 'del', 'cli-user']);
    expect(del.code, del.stderr).toBe(0);
    await expectError(post(base, { account: 'cli-user', password: 'from-stdin' }), 401, 'BAD_CREDENTIALS');
    const delAgain = await run(['account', 'del', 'cli-user']);
    expect(delAgain.code).toBe(1);
    expect(delAgain.stderr).toContain('does not exist');
    const missing = await run(['account', 'passwd', 'ghost'], { input: 'x\n' });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('does not exist');
    const badName = await run(['account', 'add', 'bad name', '--password', 'x']);
    expect(badName.code).toBe(1);
    const noPw = await run(['account', 'add', 'cli-nopw']);
    expect(noPw.code).toBe(1);
    expect(noPw.stderr).toContain('no password');
  });
});
