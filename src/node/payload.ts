/** Payload conversion shared by the node API: bytes as they are, strings as UTF-8, nothing as empty. */
import { XError } from '../errors.js';

/** Message bodies: raw bytes (e.g. from `proto(Schema, {...})`) or a UTF-8 string. */
export type Payload = Uint8Array | string;

export interface RequestOptions {
  timeoutMs?: number;
}

const EMPTY = new Uint8Array(0);
const textEncoder = new TextEncoder();

export function toBytes(p: Payload | null | undefined): Uint8Array {
  if (p === undefined || p === null) return EMPTY;
  if (p instanceof Uint8Array) return p;
  if (typeof p === 'string') return textEncoder.encode(p);
  throw new XError(
    'BAD_REQUEST',
    `a payload must be a Uint8Array or a string, got ${Array.isArray(p) ? 'an array' : typeof p} (use proto(Schema, {...}) or JSON.stringify)`,
  );
}
