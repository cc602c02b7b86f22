/**
 * Challenge-response proofs of the link handshake (docs/protocol.md, "Handshake").
 * The secret never crosses the wire: each side proves it knows it by an HMAC over both
 * nonces, the cluster name and its own id, so a proof cannot be replayed on another
 * connection or by another identity.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const PROTOCOL_VERSION = 1;
export const NONCE_BYTES = 32;

export function newNonce(): Uint8Array {
  return randomBytes(NONCE_BYTES);
}

/** Every field is length-prefixed (u32 BE), so no two different field lists hash the same bytes. */
function proof(secret: string, label: string, cluster: string, a: Uint8Array, b: Uint8Array, id: string): Buffer {
  const h = createHmac('sha256', secret);
  for (const f of [Buffer.from(label), Buffer.from(cluster), a, b, Buffer.from(id)]) {
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32BE(f.length, 0);
    h.update(len).update(f);
  }
  return h.digest();
}

/** Sent by the acceptor in CHALLENGE. */
export function acceptorProof(secret: string, cluster: string, dialNonce: Uint8Array, acceptNonce: Uint8Array, acceptorId: string): Buffer {
  return proof(secret, 'xs1-acceptor', cluster, dialNonce, acceptNonce, acceptorId);
}

/** Sent by the dialler in AUTH. */
export function diallerProof(secret: string, cluster: string, acceptNonce: Uint8Array, dialNonce: Uint8Array, diallerId: string): Buffer {
  return proof(secret, 'xs1-dialler', cluster, acceptNonce, dialNonce, diallerId);
}

export function proofMatches(expected: Buffer, got: Uint8Array): boolean {
  return got.length === expected.length && timingSafeEqual(expected, got);
}
