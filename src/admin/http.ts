/**
 * Admin HTTP server of a process: /livez (the event loop is not stalled), /healthz (answers at
 * all), /readyz (ready to serve: the roles say so and the store answers), /metrics
 * (Prometheus), plus JSON routes and HTML pages the roles register, possibly after start.
 * Plain node:http: a handful of GET endpoints do not justify a framework dependency.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { XError, isXError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';

export interface AdminRequest {
  /** Path without query string or trailing slash, e.g. /api/nodes. */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  raw: IncomingMessage;
}

/** Returns the JSON body; throw an XError('BAD_REQUEST') for a 400, anything else gives a 500. */
export type RouteHandler = (req: AdminRequest) => unknown | Promise<unknown>;

export interface AdminServerOptions {
  host: string;
  port: number;
  logger: Logger;
  metrics: Metrics;
  ready: () => boolean;
  /** Whether the store answers now; when given, /readyz also needs it (and reports it). */
  storeReady?: () => Promise<boolean>;
  /** /livez answers 503 when the event loop was blocked longer than this since the last probe. */
  liveStallMs?: number;
  routes?: Record<string, RouteHandler>;
  pages?: Record<string, string>;
}

export interface AdminServer {
  /** The bound port (useful with port 0). */
  port: number;
  addRoute(path: string, handler: RouteHandler): void;
  addPage(path: string, html: string): void;
  close(): Promise<void>;
}

const BUILTIN = new Set(['/healthz', '/livez', '/readyz', '/metrics']);
/** How often /livez's timer checks that the event loop runs. */
const LOOP_DELAY_RESOLUTION_MS = 20;
/** /livez's threshold when the caller gives none (the adminLiveStallMs default). */
const DEFAULT_LIVE_STALL_MS = 5000;

export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  const { logger, metrics } = opts;
  const routes = new Map<string, RouteHandler>();
  const pages = new Map<string, string>();

  // Two roles claiming the same path is a wiring bug; fail loudly at registration.
  const claim = (path: string): string => {
    const p = normalize(path);
    if (BUILTIN.has(p) || routes.has(p) || pages.has(p)) throw new Error(`admin path ${p} is already registered`);
    return p;
  };
  const addRoute = (path: string, handler: RouteHandler): void => void routes.set(claim(path), handler);
  const addPage = (path: string, html: string): void => void pages.set(claim(path), html);
  for (const [p, h] of Object.entries(opts.routes ?? {})) addRoute(p, h);
  for (const [p, html] of Object.entries(opts.pages ?? {})) addPage(p, html);

  // The worst event-loop delay since the last /livez: a probe that gets an answer at all still learns
  // that the process was stuck for seconds in between (a sync loop, a GC storm).
  // A timer that notes how late it fires; the probe also counts the stall that may still be in
  // progress when it is served (before the timer had its turn).
  let lastTick = performance.now();
  let maxLag = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    maxLag = Math.max(maxLag, now - lastTick - LOOP_DELAY_RESOLUTION_MS);
    lastTick = now;
  }, LOOP_DELAY_RESOLUTION_MS);
  ticker.unref();
  const liveStallMs = opts.liveStallMs ?? DEFAULT_LIVE_STALL_MS;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = normalize(url.pathname);
    const known = BUILTIN.has(path) || routes.has(path) || pages.has(path);
    if (!known) return sendError(res, 404, 'NOT_FOUND', `no admin endpoint ${path}`);
    // HEAD is accepted as GET: node:http omits the body itself. Probes sometimes use it.
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return sendError(res, 405, 'METHOD_NOT_ALLOWED', `${req.method} not allowed on ${path}; use GET`);
    }
    switch (path) {
      case '/healthz':
        return sendJson(res, 200, { ok: true });
      case '/livez': {
        const current = performance.now() - lastTick - LOOP_DELAY_RESOLUTION_MS;
        const maxDelayMs = Math.max(0, Math.round(Math.max(maxLag, current)));
        maxLag = 0;
        const live = maxDelayMs <= liveStallMs;
        return sendJson(res, live ? 200 : 503, { live, maxDelayMs });
      }
      case '/readyz': {
        let ready = false;
        try {
          ready = opts.ready();
        } catch (e) {
          logger.warn({ err: e }, 'readiness check threw; reporting not ready');
        }
        if (!opts.storeReady) return sendJson(res, ready ? 200 : 503, { ready });
        const store = await opts.storeReady().catch(() => false);
        return sendJson(res, ready && store ? 200 : 503, { ready: ready && store, store });
      }
      case '/metrics':
        return send(res, 200, metrics.contentType, await metrics.text());
    }
    const html = pages.get(path);
    if (html !== undefined) return send(res, 200, 'text/html; charset=utf-8', html);
    const body = await routes.get(path)!({ path, query: url.searchParams, headers: req.headers, raw: req });
    sendJson(res, 200, body ?? null);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const bad = isXError(e, 'BAD_REQUEST');
      if (!bad) logger.error({ err: e, url: req.url }, 'admin request failed');
      if (res.headersSent) return void res.destroy();
      const code = isXError(e) ? e.code : 'INTERNAL';
      sendError(res, bad ? 400 : 500, code, e instanceof Error ? e.message : String(e));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new XError('CONFIG', `admin server cannot listen on ${opts.host}:${opts.port}: ${e.message}`)));
    server.listen(opts.port, opts.host, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ host: opts.host, port }, 'admin server listening');

  return {
    port,
    addRoute,
    addPage,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(ticker);
        server.close(() => resolve());
        // Keep-alive connections (scrapers, browsers) would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}

function normalize(path: string): string {
  return path.length > 1 ? path.replace(/\/+$/, '') : path;
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  // Protobuf messages carry uint64 as bigint, which JSON.stringify rejects.
  const text = JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  send(res, status, 'application/json; charset=utf-8', text);
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  sendJson(res, status, { error: { code, message } });
}
