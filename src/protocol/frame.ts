/**
 * Length-prefixed frames (docs/protocol.md, "Frames"): the one codec every side uses — links,
 * gateway, client SDK, benchmarks and test fakes.
 *
 *   u32 length   bytes after this field (>= HEADER_REST)
 *   u32 cmd      command; >= SYSTEM_CMD_BASE are reserved for the framework
 *   u8  flags    REQUEST | RESPONSE | ERROR
 *   u32 rid      request id (0 when not a request/response)
 *   ... body     length - HEADER_REST bytes
 *
 * All integers big-endian. Browser-safe: Uint8Array and DataView only, no Node built-ins.
 */

/** Size of the fixed header, length field included. */
export const HEADER_SIZE = 13;
/** Bytes counted by `length` besides the body: cmd + flags + rid. */
export const HEADER_REST = 9;
/** Default largest body (the intranet `link.maxFrame` default and the SDK's `maxFrame`). */
export const DEFAULT_MAX_FRAME = 4 * 1024 * 1024;

export const Flags = {
  NONE: 0,
  REQUEST: 1,
  RESPONSE: 2,
  ERROR: 4,
} as const;

export interface Frame {
  cmd: number;
  flags: number;
  rid: number;
  body: Uint8Array;
}

export type FrameErrorCode = 'BAD_FRAME' | 'FRAME_TOO_LARGE';

/** Builds the error a decoder throws; each side plugs in its own error class (XError, ClientError). */
export type FrameErrorFactory = (code: FrameErrorCode, message: string, details?: { size: number; limit: number }) => Error;

/** The decoders' default error: a code, a message and, for FRAME_TOO_LARGE, the sizes. */
export class FrameError extends Error {
  constructor(
    readonly code: FrameErrorCode,
    message: string,
    readonly details?: { size: number; limit: number },
  ) {
    super(message);
    this.name = 'FrameError';
  }
}

const frameError: FrameErrorFactory = (code, message, details) => new FrameError(code, message, details);

const EMPTY = new Uint8Array(0);

/** Encodes one frame into a fresh buffer (control frames, clients, tests). */
export function encodeFrame(cmd: number, body: Uint8Array = EMPTY, flags = 0, rid = 0): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + body.length);
  writeHeader(out, 0, cmd, body.length, flags, rid);
  out.set(body, HEADER_SIZE);
  return out;
}

/** Writes a header for a body of `bodyLength` bytes at `out[at]` (the body follows at at + HEADER_SIZE). */
export function writeHeader(out: Uint8Array, at: number, cmd: number, bodyLength: number, flags: number, rid: number): void {
  const len = bodyLength + HEADER_REST;
  out[at] = len >>> 24;
  out[at + 1] = len >>> 16;
  out[at + 2] = len >>> 8;
  out[at + 3] = len;
  out[at + 4] = cmd >>> 24;
  out[at + 5] = cmd >>> 16;
  out[at + 6] = cmd >>> 8;
  out[at + 7] = cmd;
  out[at + 8] = flags;
  out[at + 9] = rid >>> 24;
  out[at + 10] = rid >>> 16;
  out[at + 11] = rid >>> 8;
  out[at + 12] = rid;
}

export function readU32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

/** The error for a frame's length field (the u32 at its start), or null when it is acceptable. */
export function lengthError(len: number, maxFrame: number, makeError: FrameErrorFactory): Error | null {
  if (len < HEADER_REST) return makeError('BAD_FRAME', `frame length ${len} is smaller than the ${HEADER_REST}-byte header`);
  const size = len - HEADER_REST;
  if (size > maxFrame) return makeError('FRAME_TOO_LARGE', `frame body of ${size} bytes exceeds the limit of ${maxFrame}`, { size, limit: maxFrame });
  return null;
}

/**
 * Decodes exactly one whole frame (a WebSocket message). Throws BAD_FRAME when the bytes are not
 * one frame, FRAME_TOO_LARGE when the body exceeds `maxFrame`. The body is a view into `bytes`.
 */
export function decodeFrame(bytes: Uint8Array, maxFrame = DEFAULT_MAX_FRAME, makeError: FrameErrorFactory = frameError): Frame {
  if (bytes.length < HEADER_SIZE) throw makeError('BAD_FRAME', `message of ${bytes.length} bytes is shorter than a frame header`);
  const len = readU32(bytes, 0);
  const err = lengthError(len, maxFrame, makeError);
  if (err) throw err;
  if (len + 4 !== bytes.length) throw makeError('BAD_FRAME', `frame length ${len} does not match a message of ${bytes.length} bytes`);
  return { cmd: readU32(bytes, 4), flags: bytes[8]!, rid: readU32(bytes, 9), body: bytes.subarray(HEADER_SIZE) };
}

/**
 * The frames of one message holding one or more whole frames back to back, in order: a batched
 * WebSocket message (docs/protocol.md, "Frames"). Throws like decodeFrame when a frame is
 * malformed or too large, or when the message ends inside a frame.
 */
export function decodeFrames(bytes: Uint8Array, maxFrame = DEFAULT_MAX_FRAME, makeError: FrameErrorFactory = frameError): Frame[] {
  const out: Frame[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (bytes.length - at < HEADER_SIZE) throw makeError('BAD_FRAME', `message ends inside a frame header (${bytes.length - at} bytes left)`);
    const len = readU32(bytes, at);
    const err = lengthError(len, maxFrame, makeError);
    if (err) throw err;
    const end = at + 4 + len;
    if (end > bytes.length) throw makeError('BAD_FRAME', `frame length ${len} runs past the end of a message of ${bytes.length} bytes`);
    out.push({ cmd: readU32(bytes, at + 4), flags: bytes[at + 8]!, rid: readU32(bytes, at + 9), body: bytes.subarray(at + HEADER_SIZE, end) });
    at = end;
  }
  if (out.length === 0) throw makeError('BAD_FRAME', 'empty message');
  return out;
}

/**
 * Groups encoded frames, in order, into messages of at most `maxBytes` (a frame larger than that
 * is a message by itself): what one batched WebSocket send carries. A message of one frame is
 * that frame's own bytes (no copy); so is every frame over `alone` bytes (a broadcast's bytes
 * stay shared by every socket, instead of being copied once per connection).
 */
export function batchFrames(frames: readonly Uint8Array[], maxBytes: number, alone = Infinity): Uint8Array[] {
  const out: Uint8Array[] = [];
  const fits = (f: Uint8Array, size: number): boolean => f.length <= alone && size + f.length <= maxBytes;
  let i = 0;
  while (i < frames.length) {
    let j = i;
    let size = 0;
    while (j < frames.length && (j === i || (frames[i]!.length <= alone && fits(frames[j]!, size)))) size += frames[j++]!.length;
    if (j - i === 1) out.push(frames[i]!);
    else {
      const m = new Uint8Array(size);
      let at = 0;
      for (let k = i; k < j; k++) {
        m.set(frames[k]!, at);
        at += frames[k]!.length;
      }
      out.push(m);
    }
    i = j;
  }
  return out;
}

/**
 * Streaming decoder for byte streams (TCP). Feed it whatever the socket delivers; it calls
 * `onFrame` for each complete frame, in order. The cost is linear in the bytes received: the
 * chunks of an incomplete frame are kept in a list and joined once, when the frame is whole
 * (a 4 MiB frame in 16 KiB chunks is one copy, not 256 growing ones).
 *
 * A length below the header size or a body over `maxFrame` throws (checked as soon as the length
 * field is in, before the body is buffered): the caller closes that connection.
 *
 * Bodies are views into the received chunk when the frame lies within one chunk (no copy), or
 * into the joined buffer; the decoder never writes into them, so a handler may keep a body as
 * long as the caller does not reuse its chunks.
 */
export class FrameDecoder {
  /** Chunks of an incomplete frame. */
  private parts: Uint8Array[] = [];
  private partBytes = 0;
  /** Bytes the incomplete frame needs in total (0 while its length field is incomplete). */
  private need = 0;

  constructor(
    /** Largest body accepted; may be raised once a peer is authenticated. */
    public maxFrame: number,
    private readonly onFrame: (frame: Frame) => void,
    private readonly makeError: FrameErrorFactory = frameError,
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
        // The length field was split across chunks: join the few bytes buffered so far to read it.
        this.parts = [join(this.parts, this.partBytes)];
        this.need = 4 + this.checkedLength(this.parts[0]!, 0);
      }
      if (this.need === 0 || this.partBytes < this.need) return;
      buf = this.parts.length === 1 ? this.parts[0]! : join(this.parts, this.partBytes);
      this.reset();
    }
    let at = 0;
    const end = buf.length;
    while (end - at >= 4) {
      const len = this.checkedLength(buf, at);
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
      const rest = at === 0 ? buf : buf.subarray(at);
      this.parts = [rest];
      this.partBytes = rest.length;
      this.need = rest.length >= 4 ? 4 + readU32(rest, 0) : 0;
    }
  }

  /** Hands over the bytes of an incomplete frame (when another decoder takes the stream over). */
  takePending(): Uint8Array | null {
    if (this.parts.length === 0) return null;
    const p = this.parts.length === 1 ? this.parts[0]! : join(this.parts, this.partBytes);
    this.reset();
    return p;
  }

  /** Drops any partial frame. */
  reset(): void {
    this.parts = [];
    this.partBytes = 0;
    this.need = 0;
  }

  private checkedLength(b: Uint8Array, at: number): number {
    const len = readU32(b, at);
    const err = lengthError(len, this.maxFrame, this.makeError);
    if (err) throw err;
    return len;
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
