import { afterEach, describe, expect, it } from 'vitest';
import { startAdminServer, type AdminServer, type AdminServerOptions } from '../src/admin/http.js';
import { XError } from '../src/errors.js';
import { silentLogger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';
import { waitFor } from '../testkit/index.js';

let server: AdminServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(ready: () => boolean = () => true, metrics = new Metrics(), more: Partial<AdminServerOptions> = {}): Promise<string> {
  server = await startAdminServer({
    host: '127.0.0.1',
    port: 0,
    logger: silentLogger(),
    metrics,
    ready,
    ...more,
    routes: {
      '/api/echo': (req) => ({ q: req.query.get('q'), big: 2n ** 64n }),
      '/api/slow': async () => {
        await new Promise((r) => setTimeout(r, 5));
        return [1, 2, 3];
      },
      '/api/boom': () => {
        throw new Error('kaput');
      },
      '/api/bad': () => {
        throw new XError('BAD_REQUEST', 'missing ?id');
      },
      '/api/nothing': () => undefined,
    },
    pages: { '/': '<h1>xserver</h1>' },
  });
  return `http://127.0.0.1:${server.port}`;
}

describe('admin server', () => {
  it('serves /healthz', async () => {
    const base = await start();
    expect(server!.port).toBeGreaterThan(0);
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ ok: true });
  });

  it('reports readiness from ready() and flips with it', async () => {
    let ready = false;
    const base = await start(() => ready);
    let res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ ready: false });
    ready = true;
    res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ready: true });
  });

  it('/livez reports a blocked event loop once, then recovers', async () => {
    const base = await start(() => true, new Metrics(), { liveStallMs: 150 });
    expect((await fetch(`${base}/livez`)).status).toBe(200);
    const until = performance.now() + 400;
    while (performance.now() < until) {
      // a synchronous stall, as a runaway handler would cause
    }
    const res = await fetch(`${base}/livez`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { live: boolean; maxDelayMs: number };
    expect(body.live).toBe(false);
    expect(body.maxDelayMs).toBeGreaterThanOrEqual(300);
    // Recovers: a later probe is 200 again (on a loaded machine the next one may see a stall of
    // its own, so it is asked until one is not).
    await waitFor(async () => (await fetch(`${base}/livez`)).status === 200, { timeoutMs: 5000, what: '/livez 200 again', pollMs: 50 });
  });

  it('/readyz needs the store too when a store check is given, and says which part is missing', async () => {
    let storeUp = false;
    const base = await start(() => true, new Metrics(), { storeReady: async () => storeUp });
    let res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ ready: false, store: false });
    storeUp = true;
    res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ready: true, store: true });
  });

  it('treats a throwing ready() as not ready', async () => {
    const base = await start(() => {
      throw new Error('store down');
    });
    expect((await fetch(`${base}/readyz`)).status).toBe(503);
  });

  it('serves Prometheus text with the metrics of its registry', async () => {
    const metrics = new Metrics();
    const c = metrics.counter('test_requests_total', 'Requests seen by the test.', ['kind']);
    expect(metrics.counter('test_requests_total', 'Requests seen by the test.', ['kind'])).toBe(c); // idempotent
    c.inc({ kind: 'a' }, 3);
    metrics.gauge('test_links', 'Open links.').set(2);
    metrics.histogram('test_latency_seconds', 'Latency.', [], [0.1, 1]).observe(0.5);
    const base = await start(() => true, metrics);
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await res.text();
    expect(text).toContain('# TYPE xserver_test_requests_total counter');
    expect(text).toContain('xserver_test_requests_total{kind="a"} 3');
    expect(text).toContain('xserver_test_links 2');
    expect(text).toContain('xserver_test_latency_seconds_bucket{le="1"} 1');
  });

  it('rejects reusing a metric name with another kind or labels', () => {
    const metrics = new Metrics();
    metrics.counter('x_total', 'X.', ['a']);
    expect(() => metrics.gauge('x_total', 'X.', ['a'])).toThrow(/already exists/);
    expect(() => metrics.counter('x_total', 'X.', ['b'])).toThrow(/already exists/);
  });

  it('can include default process metrics', async () => {
    const metrics = new Metrics({ defaultMetrics: true });
    expect(await metrics.text()).toContain('xserver_process_cpu_user_seconds_total');
  });

  it('serves JSON routes (sync and async), bigint-safe, and pages', async () => {
    const base = await start();
    let res = await fetch(`${base}/api/echo?q=hi`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ q: 'hi', big: '18446744073709551616' });
    res = await fetch(`${base}/api/slow/`); // trailing slash tolerated
    expect(await res.json()).toEqual([1, 2, 3]);
    res = await fetch(`${base}/api/nothing`);
    expect(await res.json()).toBeNull();
    res = await fetch(`${base}/`);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await res.text()).toBe('<h1>xserver</h1>');
  });

  it('accepts routes added after start and refuses duplicates', async () => {
    const base = await start();
    expect((await fetch(`${base}/api/late`)).status).toBe(404);
    server!.addRoute('/api/late', () => ({ late: true }));
    const res = await fetch(`${base}/api/late`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ late: true });
    expect(() => server!.addRoute('/api/late', () => 1)).toThrow(/already registered/);
    expect(() => server!.addRoute('/metrics', () => 1)).toThrow(/already registered/);
  });

  it('answers errors as JSON: 404, 405, 400, 500', async () => {
    const base = await start();
    let res = await fetch(`${base}/nope`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'no admin endpoint /nope' } });

    res = await fetch(`${base}/api/echo`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
    expect(await res.json()).toMatchObject({ error: { code: 'METHOD_NOT_ALLOWED' } });

    res = await fetch(`${base}/api/boom`);
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: { code: 'INTERNAL', message: 'kaput' } });

    res = await fetch(`${base}/api/bad`);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: { code: 'BAD_REQUEST', message: 'missing ?id' } });
  });

  it('answers HEAD like GET without a body', async () => {
    const base = await start();
    const res = await fetch(`${base}/healthz`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
  });

  it('fails to start with a CONFIG error when the port is taken', async () => {
    const base = await start();
    const port = Number(new URL(base).port);
    await expect(
      startAdminServer({ host: '127.0.0.1', port, logger: silentLogger(), metrics: new Metrics(), ready: () => true }),
    ).rejects.toMatchObject({ code: 'CONFIG', message: expect.stringContaining(`127.0.0.1:${port}`) });
  });

  it('closes promptly despite keep-alive connections', async () => {
    const base = await start();
    await fetch(`${base}/healthz`);
    const t0 = Date.now();
    await server!.close();
    server = undefined;
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});
