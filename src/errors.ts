/**
 * Typed errors. Every error that crosses an API or the wire carries a stable code;
 * the numeric value is what travels in ErrorReply frames (docs/protocol.md).
 */
export const ErrorCode = {
  BAD_FRAME: 1,
  FRAME_TOO_LARGE: 2,
  AUTH_FAILED: 3,
  WRONG_TARGET: 4,
  HANDSHAKE_TIMEOUT: 5,
  HEARTBEAT_TIMEOUT: 6,
  LINK_CLOSED: 7,
  TIMEOUT: 8,
  NO_TARGET: 9,
  NO_HANDLER: 10,
  HANDLER_ERROR: 11,
  QUEUE_FULL: 12,
  NOT_ACTIVE: 13,
  DUPLICATE_LINK: 14,
  PROTOCOL_VERSION: 15,
  WRONG_CLUSTER: 16,
  CONFIG: 17,
  SHUTTING_DOWN: 18,
  BAD_REQUEST: 19,
  UNKNOWN_COMMAND: 20,
  STORE_UNAVAILABLE: 21,
  // client / gateway / login
  BAD_TOKEN: 30,
  TOKEN_EXPIRED: 31,
  RESERVED_COMMAND: 32,
  RATE_LIMITED: 33,
  KICKED: 34,
  TOO_MANY_CONNECTIONS: 35,
  SLOW_CONSUMER: 36,
  IDLE_TIMEOUT: 37,
  BAD_CREDENTIALS: 38,
  NO_GATEWAY: 39,
  ACCOUNT_EXISTS: 40,
  FORBIDDEN: 41,
  UPDATE_REQUIRED: 42,
  CONTRACT_MISMATCH: 43,
  ADVERTISE_UNREACHABLE: 44,
  // session handoff between gateways
  MOVE_FAILED: 45,
  BAD_HANDOFF_TOKEN: 46,
  HANDOFF_TOO_LARGE: 47,
  // account handoff between stateful nodes
  STATE_TOO_LARGE: 48,
  HANDOFF_FAILED: 49,
  // canary routing
  BAD_POLICY: 51,
  UNKNOWN_TYPE: 52,
  NO_POLICY: 53,
  // operations
  ROLL_FAILED: 56,
  INTERNAL: 99,
} as const;

export type ErrorCodeName = keyof typeof ErrorCode;

const nameByNumber = new Map<number, ErrorCodeName>(Object.entries(ErrorCode).map(([k, v]) => [v, k as ErrorCodeName]));

export function errorCodeName(code: number): ErrorCodeName | `UNKNOWN_${number}` {
  return nameByNumber.get(code) ?? `UNKNOWN_${code}`;
}

export class XError extends Error {
  readonly code: ErrorCodeName;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCodeName, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'XError';
    this.code = code;
    this.details = details;
  }

  get codeNumber(): number {
    return ErrorCode[this.code];
  }

  /** Rebuilds an error received in an ErrorReply frame. */
  static fromWire(code: number, message: string): XError {
    const name = nameByNumber.get(code) ?? 'INTERNAL';
    return new XError(name, message);
  }
}

export function isXError(e: unknown, code?: ErrorCodeName): e is XError {
  return e instanceof XError && (code === undefined || e.code === code);
}
