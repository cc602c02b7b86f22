/**
 * Password hashing for the login service: scrypt from node:crypto with a random 16-byte salt,
 * stored as "scrypt$N$r$p$saltB64$hashB64" (AccountRecord.passwordHash), verified in constant time.
 * Account-name and password rules live here too so the HTTP API and the CLI agree on them.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { XError } from '../errors.js';

export const SCRYPT_N = 16384;
export const SCRYPT_R = 8;
export const SCRYPT_P = 1;
export const SALT_BYTES = 16;
export const HASH_BYTES = 32;

export const ACCOUNT_NAME_MAX = 64;
export const PASSWORD_MAX = 128;

/**
 * Bounds accepted when verifying a stored hash: a hash written with other parameters still
 * verifies, but a corrupt or hostile record cannot make one check take seconds or gigabytes.
 */
const MAX_N = 1 << 20;
const MAX_R = 32;
const MAX_P = 16;
const MAX_STORED_HASH_BYTES = 128;

const ACCOUNT_NAME_RE = /^[A-Za-z0-9_.@-]{1,64}$/;

function scrypt(password: string | Buffer, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password, salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** Memory scrypt needs (128·N·r) plus headroom; node's default cap (32 MiB) is too low for large N. */
function maxmem(N: number, r: number): number {
  return 128 * N * r * 2 + 1024 * 1024;
}

/** Hashes a password: "scrypt$16384$8$1$<salt base64>$<hash base64>". */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await scrypt(password.normalize('NFC'), salt, HASH_BYTES, {
    N: SCRYPT_N,
    r: SCRYPT_R,
    p: SCRYPT_P,
    maxmem: maxmem(SCRYPT_N, SCRYPT_R),
  });
  return ['scrypt', SCRYPT_N, SCRYPT_R, SCRYPT_P, salt.toString('base64'), hash.toString('base64')].join('$');
}

interface ParsedHash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

/** Parses a stored hash; null when it is not a well-formed scrypt hash within the accepted bounds. */
export function parsePasswordHash(stored: string): ParsedHash | null {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return null;
  const [N, r, p] = parts.slice(1, 4).map((s) => (/^\d{1,10}$/.test(s!) ? Number(s) : NaN)) as [number, number, number];
  // N must be a power of two > 1.
  if (!(N > 1 && N <= MAX_N && (N & (N - 1)) === 0)) return null;
  if (!(r >= 1 && r <= MAX_R && p >= 1 && p <= MAX_P)) return null;
  const b64 = /^[A-Za-z0-9+/]+={0,2}$/;
  if (!b64.test(parts[4]!) || !b64.test(parts[5]!)) return null;
  const salt = Buffer.from(parts[4]!, 'base64');
  const hash = Buffer.from(parts[5]!, 'base64');
  if (salt.length === 0 || hash.length < 16 || hash.length > MAX_STORED_HASH_BYTES) return null;
  return { N, r, p, salt, hash };
}

/**
 * True when `password` matches `stored`. The comparison is constant-time; a malformed stored
 * hash never matches (and is not an exception: the caller answers "bad credentials").
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const h = parsePasswordHash(stored);
  if (!h) return false;
  const got = await scrypt(password.normalize('NFC'), h.salt, h.hash.length, { N: h.N, r: h.r, p: h.p, maxmem: maxmem(h.N, h.r) });
  return timingSafeEqual(got, h.hash);
}

let dummyHash: Promise<string> | undefined;

/**
 * Spends about as long as verifying a real password, for unknown accounts: the response time then
 * does not tell whether an account exists. Always resolves false.
 */
export async function verifyAgainstDummy(password: string): Promise<false> {
  dummyHash ??= hashPassword(randomBytes(16).toString('hex'));
  await verifyPassword(password, await dummyHash);
  return false;
}

/** Throws BAD_REQUEST unless `name` is 1–64 characters of A–Z a–z 0–9 _ . - @. */
export function validateAccountName(name: unknown): string {
  if (typeof name !== 'string') throw new XError('BAD_REQUEST', '"account" must be a string');
  if (name.length === 0) throw new XError('BAD_REQUEST', 'account name is empty');
  if (name.length > ACCOUNT_NAME_MAX) throw new XError('BAD_REQUEST', `account name is longer than ${ACCOUNT_NAME_MAX} characters`);
  if (!ACCOUNT_NAME_RE.test(name)) {
    throw new XError('BAD_REQUEST', 'account name may contain only letters A-Z a-z, digits and _ . - @');
  }
  return name;
}

/** Throws BAD_REQUEST unless `password` is a string of 1–128 characters. */
export function validatePassword(password: unknown): string {
  if (typeof password !== 'string') throw new XError('BAD_REQUEST', '"password" must be a string');
  if (password.length === 0) throw new XError('BAD_REQUEST', 'password is empty');
  if (password.length > PASSWORD_MAX) throw new XError('BAD_REQUEST', `password is longer than ${PASSWORD_MAX} characters`);
  return password;
}
