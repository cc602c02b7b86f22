/**
 * Per-process identity: an Ed25519 key pair made at every start. The secret proves that a peer
 * belongs to the cluster; the key proves which member it is. The mgr binds a member's id to the key
 * it registered with, membership carries the key, and a link claiming that id must sign the
 * handshake with it (docs/protocol.md §3), so only its owner can replace a member's link.
 */
import { createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';

/** Raw Ed25519 public keys are 32 bytes. */
export const PUBLIC_KEY_BYTES = 32;
/** DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw key follows it. */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface NodeIdentity {
  /** Raw Ed25519 public key (32 bytes). */
  readonly publicKey: Uint8Array;
  sign(data: Uint8Array): Uint8Array;
}

export function createIdentity(): NodeIdentity {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
  return {
    publicKey: new Uint8Array(raw),
    sign: (data) => new Uint8Array(sign(null, data, privateKey)),
  };
}

const keyCache = new Map<string, KeyObject>();
/** Keys seen recently (peers, a handful); beyond it the oldest is dropped. */
const KEY_CACHE_MAX = 4096;

/** True when `signature` is `publicKey`'s signature of `data`; false for a malformed key or signature. */
export function verifySignature(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== PUBLIC_KEY_BYTES) return false;
  const hex = Buffer.from(publicKey).toString('hex');
  let key = keyCache.get(hex);
  if (!key) {
    try {
      key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
    } catch {
      return false;
    }
    keyCache.set(hex, key);
    if (keyCache.size > KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value!);
  }
  try {
    return verify(null, data, key, signature);
  } catch {
    return false;
  }
}

/** Byte equality of two keys (no allocation: it runs for links and registrations, not only at start). */
export function sameKey(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
