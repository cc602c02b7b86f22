/** HTTP login against the login service (docs/protocol.md §6.1). Uses the global fetch. */
import { ClientError } from './errors.js';

/** The gateway picked for this login. */
export interface GatewayInfo {
  id: string;
  host: string;
  tcpPort: number;
  wsUrl: string;
  /** The gateway's client ports speak TLS: `wsUrl` is wss://, and TCP is TLS over TCP. */
  tls?: boolean;
}

/** What `POST /login` returns; pass it to `XClient.connect()`. */
export interface LoginResult {
  /** Single-use token for AUTH, bound to the account and the gateway. */
  token: string;
  account: string;
  generation?: number;
  gateway: GatewayInfo;
  /** Service type (as a decimal string) -> allocated node id. */
  allocations: Record<string, string>;
  /** Remaining token lifetime. */
  expiresInMs?: number;
}

export interface LoginOptions {
  /** Gives up after this long (default 10 s): ClientError TIMEOUT. */
  timeoutMs?: number;
  /** Aborts the request. */
  signal?: AbortSignal;
  /** A fetch implementation (default: the global fetch). */
  fetch?: typeof fetch;
  /** Extra fields merged into the JSON request body. */
  extra?: Record<string, unknown>;
}

/**
 * Resolves the login endpoint: `loginUrl` may be the service's base URL (`http://host:port`,
 * `/` in a page served by the login service) or the `/login` endpoint itself.
 */
export function loginEndpoint(loginUrl: string): string {
  const base = (globalThis as { location?: { href?: string } }).location?.href;
  const u = base ? new URL(loginUrl, base) : new URL(loginUrl);
  if (!/\/login\/?$/.test(u.pathname)) u.pathname = u.pathname.replace(/\/*$/, '/login');
  return u.toString();
}

/**
 * Logs in: `POST {loginUrl}/login` with `{account, password}`.
 * A non-2xx answer rejects with a ClientError carrying the server's code (BAD_CREDENTIALS,
 * RATE_LIMITED, NO_GATEWAY, ...) and the HTTP `status`; network failures and malformed replies
 * reject with LOGIN_FAILED, a timeout with TIMEOUT.
 */
export async function login(loginUrl: string, account: string, password: string, opts: LoginOptions = {}): Promise<LoginResult> {
  const doFetch = opts.fetch ?? (globalThis as { fetch?: typeof fetch }).fetch;
  if (typeof doFetch !== 'function') throw new ClientError('UNSUPPORTED', 'no fetch implementation available');
  let url: string;
  try {
    url = loginEndpoint(loginUrl);
  } catch (e) {
    throw new ClientError('LOGIN_FAILED', `bad login URL "${loginUrl}"`, { cause: e });
  }
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const ctl = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ctl.abort();
  }, timeoutMs);
  const onAbort = (): void => ctl.abort();
  opts.signal?.addEventListener('abort', onAbort);
  if (opts.signal?.aborted) ctl.abort();
  try {
    let res: Response;
    let bodyText: string;
    try {
      res = await doFetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ ...opts.extra, account, password }),
        signal: ctl.signal,
      });
      bodyText = await res.text();
    } catch (e) {
      if (timedOut) throw new ClientError('TIMEOUT', `login: no answer from ${url} within ${timeoutMs} ms`);
      throw new ClientError('LOGIN_FAILED', `login: ${url}: ${(e as Error).message}`, { cause: e });
    }
    let body: unknown = undefined;
    try {
      body = bodyText === '' ? undefined : JSON.parse(bodyText);
    } catch {
      // not JSON; handled below
    }
    if (!res.ok) {
      const b = body as { error?: { code?: unknown; message?: unknown }; code?: unknown; message?: unknown } | undefined;
      const err = b && typeof b === 'object' ? (b.error && typeof b.error === 'object' ? b.error : b) : undefined;
      const code = typeof err?.code === 'string' && err.code ? err.code : 'LOGIN_FAILED';
      const message = typeof err?.message === 'string' && err.message ? err.message : `login failed: HTTP ${res.status}`;
      throw new ClientError(code, message, { status: res.status });
    }
    const r = body as Partial<LoginResult> | undefined;
    if (!r || typeof r !== 'object' || typeof r.token !== 'string' || !r.gateway || typeof r.gateway !== 'object') {
      throw new ClientError('LOGIN_FAILED', 'login: malformed reply (no token or gateway)', { status: res.status });
    }
    return { ...r, allocations: r.allocations ?? {} } as LoginResult;
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
