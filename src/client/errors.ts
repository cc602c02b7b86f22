/**
 * Errors raised by the client SDK. `code` is a stable string: either one of the SDK's own codes
 * below or a code sent by the server (gateway / login / node), passed through unchanged.
 */

/** Codes produced by the SDK itself. Server codes (BAD_TOKEN, KICKED, ...) pass through as sent. */
export const ClientErrorCode = {
  /** The connection went away (in-flight requests, connect before WELCOME). */
  DISCONNECTED: 'DISCONNECTED',
  /** `close()` was called. */
  CLOSED: 'CLOSED',
  /** A request, connect or login took too long. */
  TIMEOUT: 'TIMEOUT',
  /** `login()` failed without a server error code (network error, bad reply). */
  LOGIN_FAILED: 'LOGIN_FAILED',
  /** `send()`/`request()` while not connected (and not reconnecting). */
  NOT_CONNECTED: 'NOT_CONNECTED',
  /** `connect()` while already connected or connecting. */
  ALREADY_CONNECTED: 'ALREADY_CONNECTED',
  /** The send queue used while reconnecting is full. */
  QUEUE_FULL: 'QUEUE_FULL',
  /** A malformed frame or body. */
  BAD_FRAME: 'BAD_FRAME',
  /** A frame over the size limit. */
  FRAME_TOO_LARGE: 'FRAME_TOO_LARGE',
  /** A command outside the user range, or not an integer. */
  BAD_COMMAND: 'BAD_COMMAND',
  /** The requested transport is not available here (e.g. TCP in a browser). */
  UNSUPPORTED: 'UNSUPPORTED',
  /** The transport could not connect. */
  CONNECT_FAILED: 'CONNECT_FAILED',
  /** No frame from the gateway for too long. */
  HEARTBEAT_TIMEOUT: 'HEARTBEAT_TIMEOUT',
  /** Reconnect gave up after `maxReconnectAttempts`. */
  RECONNECT_FAILED: 'RECONNECT_FAILED',
  /** Kicked by the gateway (same account logged in elsewhere, limits). */
  KICKED: 'KICKED',
  /** A message handler or event listener threw (reported through the 'error' event). */
  HANDLER_ERROR: 'HANDLER_ERROR',
} as const;

export class ClientError extends Error {
  /** Stable code: an SDK code (see ClientErrorCode) or the server's code. */
  readonly code: string;
  /** HTTP status, for errors from `login()`. */
  readonly status?: number;

  constructor(code: string, message: string, opts: { status?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ClientError';
    this.code = code;
    if (opts.status !== undefined) this.status = opts.status;
  }
}

/** True when `e` is a ClientError (optionally with the given code). */
export function isClientError(e: unknown, code?: string): e is ClientError {
  return e instanceof ClientError && (code === undefined || e.code === code);
}
