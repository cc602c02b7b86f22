/**
 * Pieces shared by both sides of the link handshake (docs/protocol.md, "Link handshake"):
 * the proofs, the limits that apply before authentication, the step a handshake machine returns,
 * and the pre-auth frame reader. The machines themselves are handshake-dialler.ts and
 * handshake-acceptor.ts; socket-handshake.ts runs them over a socket.
 *
 * The secret never crosses the wire: each side proves it knows it by an HMAC over both
 * nonces, the cluster name and its own id, so a proof cannot be replayed on another
 * connection or by another identity. The dialler proves first (AUTH) and the acceptor only in
 * WELCOME, after the dialler's proof checked out: whoever connects to a port without the secret
 * receives nothing that depends on it, so it has nothing to test guesses against offline.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ErrorReplySchema } from '../gen/xserver/v1/cluster_pb.js';
import { XError } from '../errors.js';
import { encode } from '../wire/codec.js';
import { Cmd } from '../protocol/commands.js';
import { decodeFrame, encodeFrame, lengthError, readU32, type Frame } from '../protocol/frame.js';
import { toXError } from '../wire/frame.js';

/** 2: the acceptor's proof moved from CHALLENGE to WELCOME (the dialler proves first). 3: identity keys and signatures in AUTH and WELCOME. */
export const PROTOCOL_VERSION = 3;
export const NONCE_BYTES = 32;

/**
 * Largest frame body accepted before the peer is authenticated. Handshake frames are a few
 * hundred bytes; anything bigger from an unknown peer is an attack or garbage, and must not
 * make us buffer `link.maxFrame` bytes for it.
 */
export const HANDSHAKE_MAX_FRAME = 16 * 1024;

/**
 * Shortest nonce either side takes from the other. Each side's own fresh nonce is what makes a
 * recorded proof useless against it; a nonce this short could repeat.
 */
export const MIN_NONCE_BYTES = 16;

export function newNonce(): Uint8Array {
  return randomBytes(NONCE_BYTES);
}

/** What a proof or signature covers. Every field is length-prefixed (u32 BE), so no two different field lists give the same bytes. */
function transcript(label: string, cluster: string, a: Uint8Array, b: Uint8Array, id: string): Buffer {
  const parts: Buffer[] = [];
  for (const f of [Buffer.from(label), Buffer.from(cluster), a, b, Buffer.from(id)]) {
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32BE(f.length, 0);
    parts.push(len, Buffer.from(f.buffer, f.byteOffset, f.byteLength));
  }
  return Buffer.concat(parts);
}

/** Sent by the acceptor in WELCOME, once the dialler has proven the secret. */
export function acceptorProof(secret: string, cluster: string, dialNonce: Uint8Array, acceptNonce: Uint8Array, acceptorId: string): Buffer {
  return createHmac('sha256', secret)
    .update(transcript('xs3-acceptor', cluster, dialNonce, acceptNonce, acceptorId))
    .digest();
}

/** Sent by the dialler in AUTH. */
export function diallerProof(secret: string, cluster: string, acceptNonce: Uint8Array, dialNonce: Uint8Array, diallerId: string): Buffer {
  return createHmac('sha256', secret)
    .update(transcript('xs3-dialler', cluster, acceptNonce, dialNonce, diallerId))
    .digest();
}

/** What the acceptor signs with its identity key in WELCOME (fresh nonces: a signature is not replayable). */
export function acceptorKeyTranscript(cluster: string, dialNonce: Uint8Array, acceptNonce: Uint8Array, acceptorId: string): Buffer {
  return transcript('xs3-acceptor-key', cluster, dialNonce, acceptNonce, acceptorId);
}

/** What the dialler signs with its identity key in AUTH. */
export function diallerKeyTranscript(cluster: string, acceptNonce: Uint8Array, dialNonce: Uint8Array, diallerId: string): Buffer {
  return transcript('xs3-dialler-key', cluster, acceptNonce, dialNonce, diallerId);
}

/** Constant-time comparison, so the time a check takes says nothing about the expected proof. */
export function proofMatches(expected: Buffer, got: Uint8Array): boolean {
  return got.length === expected.length && timingSafeEqual(expected, got);
}

/** The remote end of a link: its process type and id, and (once it signed the handshake) its identity key. */
export interface HandshakeIdentity {
  type: number;
  id: string;
  publicKey?: Uint8Array;
}

/**
 * What a handshake machine asks its transport to do after an input. `send` is written first,
 * in order. Then, at most one of:
 * - `done`: the peer is authenticated; `leftover` holds bytes that arrived after the last
 *   handshake frame and belong to the open link.
 * - `refuse`: the handshake failed; close the connection after flushing `send` (which ends with
 *   the ERROR frame telling the peer why, unless the peer itself refused).
 */
export interface HandshakeStep {
  send: Frame[];
  /** `probe`: the dialler only checked the address (HELLO.probe); the acceptor closes instead of opening a link. */
  done?: { remote: HandshakeIdentity; leftover: Uint8Array | null; probe?: boolean };
  refuse?: XError;
}

/** The ERROR frame that tells the peer why it is being refused. */
export function errorFrame(err: XError): Frame {
  return controlFrame(Cmd.ERROR, encode(ErrorReplySchema, { code: err.codeNumber, message: err.message }));
}

export function controlFrame(cmd: number, body: Uint8Array): Frame {
  return { cmd, flags: 0, rid: 0, body };
}

/** Bytes of frames in order, as they go on the wire. */
export function encodeFrames(frames: readonly Frame[]): Uint8Array {
  if (frames.length === 1) return encodeFrame(frames[0]!.cmd, frames[0]!.body, frames[0]!.flags, frames[0]!.rid);
  return Buffer.concat(frames.map((f) => encodeFrame(f.cmd, f.body, f.flags, f.rid)));
}

export function asXError(e: unknown): XError {
  return e instanceof XError ? e : new XError('BAD_FRAME', String(e));
}

/**
 * The inbound byte stream during a handshake. Frames are decoded one at a time, on demand, under
 * the current limit (HANDSHAKE_MAX_FRAME until the peer is authenticated), so the bytes behind
 * the last handshake frame (the open link's first frames, of any size) are never judged by the
 * pre-auth limit: they are handed over untouched.
 */
export class HandshakeReader {
  private buf: Uint8Array = new Uint8Array(0);
  private limit = HANDSHAKE_MAX_FRAME;

  /** Keeps what arrived (a handshake is a few hundred bytes; a partial frame is at most the limit). */
  push(bytes: Uint8Array): void {
    this.buf = this.buf.length === 0 ? bytes : Buffer.concat([this.buf, bytes]);
  }

  /** The next whole frame, or undefined. Throws BAD_FRAME / FRAME_TOO_LARGE as soon as a length field is wrong. */
  next(): Frame | undefined {
    if (this.buf.length < 4) return undefined;
    const len = readU32(this.buf, 0);
    const err = lengthError(len, this.limit, toXError);
    if (err) throw err;
    if (this.buf.length < 4 + len) return undefined;
    const frame = decodeFrame(this.buf.subarray(0, 4 + len), this.limit, toXError);
    this.buf = this.buf.subarray(4 + len);
    return frame;
  }

  /** Once the peer is authenticated, frames after the handshake may be full-size. */
  raiseLimit(maxFrame: number): void {
    this.limit = maxFrame;
  }

  /** The bytes not taken as handshake frames, for the link's decoder. */
  takeRest(): Uint8Array | null {
    const rest = this.buf;
    this.buf = new Uint8Array(0);
    return rest.length > 0 ? rest : null;
  }
}
