/**
 * Logins while the store does not answer: each store call on the login path is bounded by
 * login.storeTimeoutMs, so with Redis frozen (SIGSTOP of a redis-server of our own, never the
 * shared one) a login is answered 503 STORE_UNAVAILABLE within that bound instead of waiting
 * storeOpTimeoutMs per call, and logins work again once Redis resumes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gateway } from '../src/gateway/gateway.js';
import { addAccount } from '../src/login/accounts.js';
import { LoginServer } from '../src/login/login.js';
import { ClusterNode } from '../src/node/node.js';
import { waitFor } from '../testkit/index.js';
import { startCluster } from './helpers/inproc.js';
import { HAVE_REDIS_SERVER, RedisServers, type RedisServer } from './helpers/redis-servers.js';

if (!HAVE_REDIS_SERVER) console.log('[skip] login store outage test: redis-server is not on PATH');

const STORE_TIMEOUT_MS = 300;
/** Far above STORE_TIMEOUT_MS: what a login would wait per store call without the bound. */
const STORE_OP_TIMEOUT_MS = 5000;
/** A refused login's answer may take the bound plus this (scheduling on a shared machine, HTTP). */
const SLACK_MS = 400;

const servers = new RedisServers();
let redis: RedisServer;
let cluster: Awaited<ReturnType<typeof startCluster>> | undefined;
let base = '';

beforeAll(async () => {
  if (!HAVE_REDIS_SERVER) return;
  redis = await servers.server('redis-login-outage');
  cluster = await startCluster((c) => {
    c.redisUrl = redis.url;
    c.storeOpTimeoutMs = STORE_OP_TIMEOUT_MS;
    c.login.storeTimeoutMs = STORE_TIMEOUT_MS;
    // The mgr keeps its lease through the short freeze, so the login keeps its gateway list.
    c.mgr.leaseTtlMs = 15_000;
    c.mgr.leaseRefreshMs = 1000;
  });
  const gateway = cluster.own(new Gateway(cluster.ctx));
  const lobby = cluster.own(new ClusterNode(cluster.ctx, { type: 4, name: 'lobby' }));
  const login = cluster.own(new LoginServer(cluster.ctx, { trustProxy: true }));
  await Promise.all([gateway.start(), lobby.start()]);
  await Promise.all([gateway.node.ready(5000), lobby.ready(5000)]);
  await login.start();
  await login.whenRegistered(5000);
  await waitFor(() => login.node.has(gateway.node.id) && login.node.has(lobby.id), { timeoutMs: 5000, what: 'login sees gateway and lobby' });
  base = `http://127.0.0.1:${login.port}`;
  await addAccount(cluster.store, 'stall', 'pw-stall');
}, 30_000);

afterAll(async () => {
  if (redis?.proc.exitInfo === null) redis.resume();
  await cluster?.cleanup();
  await servers.stop();
});

let ip = 0;
async function post(): Promise<{ status: number; code?: string; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(`${base}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': `10.7.0.${++ip}` },
    body: JSON.stringify({ account: 'stall', password: 'pw-stall' }),
    signal: AbortSignal.timeout(STORE_OP_TIMEOUT_MS * 3),
  });
  const body = (await res.json()) as { error?: { code: string } };
  return { status: res.status, code: body.error?.code, ms: performance.now() - t0 };
}

describe.skipIf(!HAVE_REDIS_SERVER)('login with the store frozen', () => {
  it('answers 503 STORE_UNAVAILABLE within login.storeTimeoutMs while Redis is frozen, and logs in again after it resumes', async () => {
    expect((await post()).status).toBe(200);

    redis.pause();
    const refused: Awaited<ReturnType<typeof post>>[] = [];
    try {
      for (let i = 0; i < 3; i++) refused.push(await post());
    } finally {
      redis.resume();
    }
    console.log(
      `[measure] login with Redis frozen: answered ${refused.map((r) => `${r.status} ${r.code} in ${Math.round(r.ms)} ms`).join(', ')} ` +
        `(login.storeTimeoutMs ${STORE_TIMEOUT_MS}, storeOpTimeoutMs ${STORE_OP_TIMEOUT_MS})`,
    );
    for (const r of refused) {
      expect(r.status).toBe(503);
      expect(r.code).toBe('STORE_UNAVAILABLE');
      expect(r.ms).toBeLessThan(STORE_TIMEOUT_MS + SLACK_MS);
    }

    const t0 = performance.now();
    await waitFor(async () => (await post()).status === 200, { timeoutMs: 5000, what: 'a login after Redis resumed', pollMs: 50 });
    console.log(`[measure] first login ok ${Math.round(performance.now() - t0)} ms after Redis resumed`);
  }, 30_000);
});
