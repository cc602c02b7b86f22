/**
 * The JSON bodies a game client and a gateway exchange (docs/protocol.md, "Client protocol"):
 * each message has one type, one encoder and one parser, used by the gateway, the client SDK and
 * the test fakes alike.
 *
 *   client -> gateway   AUTH        {"token"} | {"resume"} | {"handoff"}, each with "version"?, "contracts"?
 *   gateway -> client   WELCOME     {account, generation, resume, heartbeatMs, graceMs, resumed, moved?}
 *   gateway -> client   ERROR       {code, message, cmd?}   (also the body of an error response)
 *   gateway -> client   GOING_AWAY  {gateway: {id, host, tcpPort, wsUrl, tls}, handoff}
 */
import { jsonBytes, parseJson } from './bytes.js';

/** Ping interval a client uses when WELCOME names none (the `gateway.heartbeatMs` default). */
export const DEFAULT_HEARTBEAT_MS = 10_000;

/**
 * AUTH: a single-use token from the login service, the resume key of a session within its
 * grace, or the handoff token of a GOING_AWAY (the session moves here from the draining gateway
 * that issued it, without a login); `version` is the client's own version, which a gateway may require to be recent enough;
 * `contracts` maps a service type (decimal) to the contractHash() of the client's contracts of
 * that type, which must equal the hash the type's services registered.
 */
export type AuthRequest = ({ token: string } | { resume: string } | { handoff: string }) & {
  version?: string;
  contracts?: Record<string, string>;
  /**
   * WebSocket only: the client reads messages holding several whole frames, of up to this many
   * bytes (docs/protocol.md, "Frames"); the gateway's WELCOME `batch` says what it accepts back.
   */
  batch?: number;
};

/** Most service types an AUTH `contracts` map may name (the gateway refuses more as BAD_REQUEST). */
export const MAX_AUTH_CONTRACT_TYPES = 256;

/** The gateway's WELCOME. */
export interface Welcome {
  account: string;
  generation: number;
  /** Key for `AUTH {"resume"}` after a disconnect; it changes on every resume. */
  resume: string;
  /** The client must send something (PING) at least this often. */
  heartbeatMs: number;
  /** True when this connection resumed an existing session. */
  resumed: boolean;
  /** How long the gateway keeps the session after a disconnect; resuming stops after it. */
  graceMs?: number;
  /** True when the session moved here from another gateway (AUTH {"handoff"}). */
  moved?: boolean;
  /** Answer to AUTH `batch`: the gateway sends batched messages and accepts them up to this many bytes. */
  batch?: number;
}

/** Where a GOING_AWAY sends the client: the endpoints login hands out for that gateway (src/node/endpoints.ts). */
export interface HandoffGateway {
  id: string;
  host: string;
  /** 0: no TCP listener. */
  tcpPort: number;
  /** "": no WebSocket listener. */
  wsUrl: string;
  tls: boolean;
}

/**
 * GOING_AWAY: the gateway is draining. The client connects to `gateway` and sends
 * AUTH {"handoff": handoff}; its session (generation, undelivered messages, allocations, requests
 * in flight) follows it there. The token works once, within `gateway.handoffTokenTtlMs`. A client
 * that ignores the message keeps its session here until the drain deadline.
 */
export interface GoingAway {
  gateway: HandoffGateway;
  handoff: string;
}

/** An ERROR notice, or the body of an error response. `cmd` names the client frame it answers. */
export interface ErrorNotice {
  code: string;
  message: string;
  cmd?: number;
  /** With UPDATE_REQUIRED: the oldest client version the gateway accepts. */
  minVersion?: string;
  /** With CONTRACT_MISMATCH: the service type, the client's hash and the services' hash of it. */
  contract?: { type: number; client: string; server: string };
}

/** A body that is not the message it should be. `code` is BAD_REQUEST (AUTH) or BAD_FRAME (gateway → client). */
export class MessageError extends Error {
  constructor(
    readonly code: 'BAD_REQUEST' | 'BAD_FRAME',
    message: string,
  ) {
    super(message);
    this.name = 'MessageError';
  }
}

function object(body: Uint8Array, code: MessageError['code'], what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = parseJson(body);
  } catch {
    throw new MessageError(code, `${what} body is not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new MessageError(code, `${what} body is not a JSON object`);
  return v as Record<string, unknown>;
}

export function encodeAuth(req: AuthRequest): Uint8Array {
  return jsonBytes(req);
}

/**
 * Parses AUTH. A `resume` string wins over a `token`; the token is returned as sent (its length
 * and validity are the gateway's to judge). Throws MessageError BAD_REQUEST otherwise.
 */
export function parseAuth(body: Uint8Array): AuthRequest {
  const shape = 'AUTH body must be JSON {"token": "..."}, {"resume": "..."} or {"handoff": "..."}';
  let o: Record<string, unknown>;
  try {
    o = object(body, 'BAD_REQUEST', 'AUTH');
  } catch {
    throw new MessageError('BAD_REQUEST', shape);
  }
  const extra: { version?: string; contracts?: Record<string, string>; batch?: number } = typeof o.version === 'string' ? { version: o.version } : {};
  if (o.contracts !== undefined) extra.contracts = parseContractHashes(o.contracts);
  if (o.batch !== undefined) {
    if (!Number.isSafeInteger(o.batch) || (o.batch as number) < 0)
      throw new MessageError('BAD_REQUEST', 'AUTH "batch" must be a byte count (0 or more)');
    if ((o.batch as number) > 0) extra.batch = o.batch as number;
  }
  if (typeof o.resume === 'string') return { resume: o.resume, ...extra };
  if (typeof o.handoff === 'string') return { handoff: o.handoff, ...extra };
  if (typeof o.token === 'string') return { token: o.token, ...extra };
  return { token: '', ...extra };
}

/** AUTH `contracts`: {"<type>": "<hash>"}, at most MAX_AUTH_CONTRACT_TYPES entries of short strings. */
function parseContractHashes(v: unknown): Record<string, string> {
  const bad = (why: string): never => {
    throw new MessageError('BAD_REQUEST', `AUTH "contracts" must map service types to contract hashes: ${why}`);
  };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('not an object');
  const entries = Object.entries(v);
  if (entries.length > MAX_AUTH_CONTRACT_TYPES) bad(`more than ${MAX_AUTH_CONTRACT_TYPES} types`);
  const out: Record<string, string> = {};
  for (const [k, h] of entries) {
    if (!/^\d{1,9}$/.test(k)) bad(`key ${JSON.stringify(k.slice(0, 20))} is not a type number`);
    if (typeof h !== 'string' || !/^[0-9a-f]{1,64}$/.test(h)) bad(`the hash of type ${k} is not lowercase hex`);
    out[String(Number(k))] = h as string;
  }
  return out;
}

export function encodeWelcome(w: Welcome): Uint8Array {
  return jsonBytes(w);
}

/** Parses WELCOME, keeping every field (graceMs included). Throws MessageError BAD_FRAME when it has no resume key. */
export function parseWelcome(body: Uint8Array): Welcome {
  const o = object(body, 'BAD_FRAME', 'WELCOME');
  if (typeof o.resume !== 'string') throw new MessageError('BAD_FRAME', 'malformed WELCOME (no resume key)');
  const w: Welcome = {
    account: typeof o.account === 'string' ? o.account : String(o.account ?? ''),
    generation: Number(o.generation ?? 0),
    resume: o.resume,
    heartbeatMs: typeof o.heartbeatMs === 'number' && o.heartbeatMs > 0 ? o.heartbeatMs : DEFAULT_HEARTBEAT_MS,
    resumed: o.resumed === true,
  };
  if (typeof o.graceMs === 'number' && o.graceMs >= 0) w.graceMs = o.graceMs;
  if (o.moved === true) w.moved = true;
  if (typeof o.batch === 'number' && Number.isSafeInteger(o.batch) && o.batch > 0) w.batch = o.batch;
  return w;
}

export function encodeGoingAway(g: GoingAway): Uint8Array {
  return jsonBytes(g);
}

/** Parses GOING_AWAY. Throws MessageError BAD_FRAME when it names no gateway endpoint or token. */
export function parseGoingAway(body: Uint8Array): GoingAway {
  const o = object(body, 'BAD_FRAME', 'GOING_AWAY');
  const g = o.gateway as Record<string, unknown> | undefined;
  if (typeof o.handoff !== 'string' || o.handoff === '' || typeof g !== 'object' || g === null) {
    throw new MessageError('BAD_FRAME', 'malformed GOING_AWAY (no gateway or handoff token)');
  }
  const gateway: HandoffGateway = {
    id: typeof g.id === 'string' ? g.id : '',
    host: typeof g.host === 'string' ? g.host : '',
    tcpPort: typeof g.tcpPort === 'number' ? g.tcpPort : 0,
    wsUrl: typeof g.wsUrl === 'string' ? g.wsUrl : '',
    tls: g.tls === true,
  };
  if (gateway.wsUrl === '' && (gateway.host === '' || gateway.tcpPort <= 0))
    throw new MessageError('BAD_FRAME', 'GOING_AWAY names no gateway endpoint');
  return { gateway, handoff: o.handoff };
}

export function encodeErrorNotice(e: ErrorNotice): Uint8Array {
  return jsonBytes({
    code: e.code,
    message: e.message,
    ...(e.cmd === undefined ? {} : { cmd: e.cmd }),
    ...(e.minVersion === undefined ? {} : { minVersion: e.minVersion }),
    ...(e.contract === undefined ? {} : { contract: e.contract }),
  });
}

/**
 * Parses an ERROR body, tolerating garbage: a body that is not `{code, message}` gives
 * `fallbackCode` (a notice must never be lost because its body was odd).
 */
export function parseErrorNotice(body: Uint8Array, fallbackCode: string): ErrorNotice {
  let o: Record<string, unknown>;
  try {
    o = object(body, 'BAD_FRAME', 'ERROR');
  } catch {
    return { code: fallbackCode, message: fallbackCode };
  }
  const code = typeof o.code === 'string' && o.code ? o.code : fallbackCode;
  const message = typeof o.message === 'string' && o.message ? o.message : code;
  const out: ErrorNotice = { code, message };
  if (typeof o.cmd === 'number') out.cmd = o.cmd;
  if (typeof o.minVersion === 'string') out.minVersion = o.minVersion;
  const k = o.contract as Record<string, unknown> | undefined;
  if (typeof k === 'object' && k !== null && typeof k.type === 'number' && typeof k.client === 'string' && typeof k.server === 'string') {
    out.contract = { type: k.type, client: k.client, server: k.server };
  }
  return out;
}

/**
 * Compares dotted versions numerically, part by part ("1.10" > "1.9"; a missing part is 0; a
 * non-numeric part compares as text). Negative when a < b, 0 when equal, positive when a > b.
 */
export function compareVersions(a: string, b: string): number {
  const pa = a.trim().split(/[.-]/);
  const pb = b.trim().split(/[.-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '0';
    const y = pb[i] ?? '0';
    const nx = /^\d+$/.test(x) ? Number(x) : NaN;
    const ny = /^\d+$/.test(y) ? Number(y) : NaN;
    const d = Number.isNaN(nx) || Number.isNaN(ny) ? x.localeCompare(y) : nx - ny;
    if (d !== 0) return d;
  }
  return 0;
}
