/**
 * Browser-safe frame codec for the client SDK (docs/protocol.md §1).
 *
 *   u32 length   bytes after this field: 9 + body length
 *   u32 cmd      command; >= 0xFFFF0000 are reserved for the framework
 *   u8  flags    REQUEST=1 | RESPONSE=2 | ERROR=4
 *   u32 rid      request id (0 when neither request nor response)
 *   ... body
 *
 * All integers big-endian. Only Uint8Array / DataView: no Buffer, no Node built-ins, so this
 * module loads unchanged in browsers. (The server side has its own codec in src/wire; this one is
 * a deliberate duplicate so that dist/client has no dependency outside itself.)
 */
import { ClientError } from './errors.js';

/** Size of the fixed header, length field included. */
export const HEADER_SIZE = 13;
/** Bytes counted by `length` besides the body: cmd + flags + rid. */
export const HEADER_REST = 9;
/** Default largest body the client accepts (matches the intranet `link.maxFrame` default). */
export const DEFAULT_MAX_FRAME = 4 * 1024 * 1024;

export const Flags = {
  NONE: 0,
  REQUEST: 1,
  RESPONSE: 2,
  ERROR: 4,
} as const;

/** Framework commands a client sees (docs/protocol.md §2, §6). */
export const SysCmd = {
  AUTH: 0xffff0003,
  WELCOME: 0xffff0004,
  ERROR: 0xffff0005,
  PING: 0xffff0006,
  PONG: 0xffff0007,
} as const;

/** Commands from here up are reserved for the framework. */
export const SYSTEM_CMD_BASE = 0xffff0000;

export interface Frame {
  cmd: number;
  flags: number;
  rid: number;
  body: Uint8Array;
}

const EMPTY = new Uint8Array(0);

/** Encodes one frame into a fresh Uint8Array. */
export function encodeFrame(cmd: number, body: Uint8Array = EMPTY, flags = 0, rid = 0): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, HEADER_REST + body.length);
  v.setUint32(4, cmd >>> 0);
  v.setUint8(8, flags & 0xff);
  v.setUint32(9, rid >>> 0);
  out.set(body, HEADER_SIZE);
  return out;
}

function readU32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

function checkLength(len: number, maxFrame: number): void {
  if (len < HEADER_REST) {
    throw new ClientError('BAD_FRAME', `frame length ${len} is smaller than the ${HEADER_REST}-byte header`);
  }
  if (len - HEADER_REST > maxFrame) {
    throw new ClientError('FRAME_TOO_LARGE', `frame body of ${len - HEADER_REST} bytes exceeds the limit of ${maxFrame}`);
  }
}

/**
 * Decodes exactly one whole frame (a WebSocket message). Throws ClientError BAD_FRAME when the
 * bytes are not one frame, FRAME_TOO_LARGE when the body exceeds `maxFrame`.
 * The body is a view into `bytes` (no copy).
 */
export function decodeFrame(bytes: Uint8Array, maxFrame = DEFAULT_MAX_FRAME): Frame {
  if (bytes.length < HEADER_SIZE) {
    throw new ClientError('BAD_FRAME', `message of ${bytes.length} bytes is shorter than a frame header`);
  }
  const len = readU32(bytes, 0);
  checkLength(len, maxFrame);
  if (len + 4 !== bytes.length) {
    throw new ClientError('BAD_FRAME', `frame length ${len} does not match a message of ${bytes.length} bytes`);
  }
  return {
    cmd: readU32(bytes, 4),
    flags: bytes[8]!,
    rid: readU32(bytes, 9),
    body: bytes.subarray(HEADER_SIZE),
  };
}

/**
 * Streaming decoder for TCP. Feed it whatever the socket delivers; it calls `onFrame` for each
 * complete frame, in order. A length over `maxFrame` (checked as soon as the length field is
 * in, before buffering the body) or below the header size throws a ClientError: the caller
 * closes the connection.
 *
 * Bodies are views into the received chunk (or into a reassembly buffer); the decoder never
 * writes into a chunk after handing it out, so keeping a body is safe as long as the caller
 * does not reuse its chunks.
 */
export class FrameDecoder {
  /** Chunks of an incomplete frame; joined once, when the whole frame is in (linear in its size). */
  private parts: Uint8Array[] = [];
  private partBytes = 0;
  /** Bytes the incomplete frame needs in total (0 while its length field is incomplete). */
  private need = 0;

  constructor(
    public maxFrame: number,
    private readonly onFrame: (frame: Frame) => void,
  ) {}

  /** Bytes received but not yet forming a whole frame. */
  get buffered(): number {
    return this.partBytes;
  }

  push(chunk: Uint8Array): void {
    let buf = chunk;
    if (this.parts.length > 0) {
      this.parts.push(chunk);
      this.partBytes += chunk.length;
      if (this.need === 0 && this.partBytes >= 4) {
        // The length field was split: join the few buffered bytes with this chunk and read it.
        this.parts = [join(this.parts, this.partBytes)];
        const len = readU32(this.parts[0]!, 0);
        checkLength(len, this.maxFrame);
        this.need = 4 + len;
      }
      if (this.need === 0 || this.partBytes < this.need) return;
      buf = this.parts.length === 1 ? this.parts[0]! : join(this.parts, this.partBytes);
      this.reset();
    }
    let at = 0;
    const end = buf.length;
    while (end - at >= 4) {
      const len = readU32(buf, at);
      checkLength(len, this.maxFrame);
      if (end - at - 4 < len) break;
      const frame: Frame = {
        cmd: readU32(buf, at + 4),
        flags: buf[at + 8]!,
        rid: readU32(buf, at + 9),
        body: buf.subarray(at + HEADER_SIZE, at + 4 + len),
      };
      at += 4 + len;
      this.onFrame(frame);
    }
    if (at < end) {
      const rest = buf.subarray(at);
      this.parts = [rest];
      this.partBytes = rest.length;
      this.need = rest.length >= 4 ? 4 + readU32(rest, 0) : 0;
    }
  }

  /** Drops any partial frame. */
  reset(): void {
    this.parts = [];
    this.partBytes = 0;
    this.need = 0;
  }
}

function join(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** UTF-8 encodes a string (or returns bytes unchanged). */
export function toBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === 'string' ? encoder.encode(data) : data;
}

/** Decodes a UTF-8 body as a string. */
export function text(data: Uint8Array): string {
  return decoder.decode(data);
}

/** Parses a UTF-8 JSON body. Throws ClientError BAD_FRAME when it is not valid JSON. */
export function json<T = unknown>(data: Uint8Array): T {
  try {
    return JSON.parse(decoder.decode(data)) as T;
  } catch (e) {
    throw new ClientError('BAD_FRAME', `body is not valid JSON: ${(e as Error).message}`);
  }
}
