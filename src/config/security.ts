/**
 * The secure-default rules (docs/operations.md, "Security model"): the built-in secret and
 * development conveniences only while every listener is on loopback; a secret of its own, strong
 * enough that offline guessing is hopeless, as soon as one is not.
 */
import { isIP } from 'node:net';
import { DEV_SECRET } from './schema.js';

/** Fewest bits of entropy a secret must have once a process listens beyond loopback (32 random bytes). */
export const MIN_SECRET_BITS = 256;

/** Listener addresses the rules look at: each one reachable from other hosts unless it is loopback. */
export const LISTEN_KEYS = ['bindHost', 'gateway.host', 'login.host'] as const;
export type ListenKey = (typeof LISTEN_KEYS)[number];

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopback(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h);
  return false;
}

/**
 * An upper estimate of a secret's entropy: its length times the bits per character of the
 * smallest usual alphabet it fits (hex 4, base64 6, printable ASCII ~6.6, anything else 8).
 * `openssl rand -hex 32` and `-base64 32` both reach 256; a word or a short phrase does not.
 */
export function secretBits(secret: string): number {
  const chars = [...secret];
  if (chars.length === 0) return 0;
  // One character repeated (or two alternating) is no secret, whatever its length.
  if (new Set(chars).size <= 2) return new Set(chars).size;
  let perChar = 8;
  if (/^[0-9a-fA-F]+$/.test(secret)) perChar = 4;
  else if (/^[A-Za-z0-9+/=_-]+$/.test(secret)) perChar = 6;
  else if (/^[\x20-\x7e]+$/.test(secret)) perChar = Math.log2(95);
  return Math.floor(chars.length * perChar);
}

export interface SecurityInput {
  secret: string;
  hosts: Record<ListenKey, string>;
  autoRegister: boolean;
  /** login.playground (absent: off). */
  playground?: boolean;
}

/** The refusals for a config (empty when it is acceptable). Each names the settings to change. */
export function securityProblems(cfg: SecurityInput, describe: (key: string) => string): string[] {
  const exposed = LISTEN_KEYS.filter((k) => !isLoopback(cfg.hosts[k]));
  const problems: string[] = [];
  if (exposed.length > 0) {
    const where = exposed.map((k) => `${k} is ${describe(k)}`).join(', ');
    if (cfg.secret === DEV_SECRET) {
      problems.push(
        `secret: the built-in development secret is public and allowed only on loopback, but ${where}; ` +
          `set secret to one of your own (\`xserver secret\` prints one) or bind 127.0.0.1 (bindHost, gateway.host, login.host)`,
      );
    } else if (secretBits(cfg.secret) < MIN_SECRET_BITS) {
      problems.push(
        `secret: too weak to listen beyond loopback (${where}): about ${secretBits(cfg.secret)} bits, at least ${MIN_SECRET_BITS} needed ` +
          `(32 random bytes; \`xserver secret\` prints one)`,
      );
    }
  }
  if (cfg.autoRegister && !isLoopback(cfg.hosts['login.host'])) {
    problems.push(
      `login.autoRegister: anyone who reaches login.host can create accounts, so it is allowed only on loopback, but login.host is ${describe('login.host')}; ` +
        `create accounts with \`xserver account add\` or a login.verifier instead`,
    );
  }
  if (cfg.playground && !isLoopback(cfg.hosts['login.host'])) {
    problems.push(
      `login.playground: the playground lists every service's contracts and sends any of them, so it is allowed only on loopback, but login.host is ${describe('login.host')}; ` +
        `turn login.playground off outside development`,
    );
  }
  return problems;
}
