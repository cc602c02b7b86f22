/** Secure defaults (SPEC §10): the built-in secret and development conveniences stay on loopback. */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import { DEV_SECRET, defaultConfig } from '../src/config/schema.js';
import { MIN_SECRET_BITS, isLoopback, secretBits } from '../src/config/security.js';
import { isXError } from '../src/errors.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const STRONG = randomBytes(32).toString('base64');

function refusal(overrides: Record<string, unknown>): string {
  try {
    loadConfig({ env: {}, overrides });
  } catch (e) {
    expect(isXError(e, 'CONFIG')).toBe(true);
    return (e as Error).message;
  }
  throw new Error('expected a CONFIG error');
}

describe('secure defaults', () => {
  it('every listener binds loopback by default, with the built-in secret', () => {
    const c = defaultConfig();
    expect(c.secret).toBe(DEV_SECRET);
    expect([c.bindHost, c.gateway.host, c.login.host, c.adminHost]).toEqual(['127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.1']);
    expect(() => loadConfig({ env: {} })).not.toThrow();
  });

  it('a non-loopback listener with the built-in secret is refused, naming secret and the listener', () => {
    for (const key of ['bindHost', 'gateway.host', 'login.host']) {
      const msg = refusal({ [key]: '0.0.0.0' });
      expect(msg).toMatch(/^secret: the built-in development secret/m);
      expect(msg).toContain(`${key} is "0.0.0.0"`);
    }
  });

  it('a weak secret is refused beyond loopback and accepted on it; 32 random bytes are accepted anywhere', () => {
    expect(refusal({ bindHost: '0.0.0.0', secret: 'hunter2' })).toMatch(/secret: too weak to listen beyond loopback \(bindHost is "0.0.0.0"/);
    expect(refusal({ bindHost: '10.1.2.3', secret: 'a'.repeat(100) })).toMatch(/too weak/);
    expect(() => loadConfig({ env: {}, overrides: { secret: 'hunter2' } })).not.toThrow();
    const c = loadConfig({ env: {}, overrides: { bindHost: '0.0.0.0', 'gateway.host': '0.0.0.0', 'login.host': '::', secret: STRONG } });
    expect(c.bindHost).toBe('0.0.0.0');
  });

  it('the refusal never echoes the secret', () => {
    expect(refusal({ bindHost: '0.0.0.0', secret: 'hunter2-unique-text' })).not.toContain('hunter2-unique-text');
  });

  it('auto-registration is refused on a non-loopback login host, even with a strong secret', () => {
    expect(refusal({ 'login.host': '0.0.0.0', 'login.autoRegister': true, secret: STRONG })).toMatch(
      /^login\.autoRegister: anyone who reaches login\.host/m,
    );
    expect(() => loadConfig({ env: {}, overrides: { 'login.autoRegister': true } })).not.toThrow();
  });

  it('the playground is off by default and refused on a non-loopback login host, even with a strong secret', () => {
    expect(defaultConfig().login.playground).toBe(false);
    expect(refusal({ 'login.host': '0.0.0.0', 'login.playground': true, secret: STRONG })).toMatch(
      /^login\.playground: .* allowed only on loopback/m,
    );
    expect(loadConfig({ env: {}, overrides: { 'login.playground': true } }).login.playground).toBe(true);
  });

  it('loopback is 127.0.0.0/8, ::1 and localhost; nothing else', () => {
    for (const h of ['127.0.0.1', '127.8.9.10', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.5', 'example.com', '', '128.0.0.1']) expect(isLoopback(h), h).toBe(false);
  });

  it('secret strength: openssl rand -hex 32 / -base64 32 pass, words and repetitions do not', () => {
    expect(secretBits(randomBytes(32).toString('hex'))).toBeGreaterThanOrEqual(MIN_SECRET_BITS);
    expect(secretBits(randomBytes(32).toString('base64'))).toBeGreaterThanOrEqual(MIN_SECRET_BITS);
    expect(secretBits(DEV_SECRET)).toBeLessThan(MIN_SECRET_BITS);
    expect(secretBits('correct horse battery staple')).toBeLessThan(MIN_SECRET_BITS);
    expect(secretBits('x'.repeat(500))).toBeLessThan(MIN_SECRET_BITS);
    expect(secretBits('')).toBe(0);
  });

  it('`xserver secret` prints a fresh secret that passes the rule, different each time', async () => {
    const run = async () =>
      (await promisify(execFile)(process.execPath, [path.join(ROOT, 'bin/xserver.js'), 'secret'], { cwd: ROOT, timeout: 20_000 })).stdout.trim();
    const [a, b] = await Promise.all([run(), run()]);
    expect(a).not.toBe(b);
    expect(Buffer.from(a, 'base64')).toHaveLength(32);
    expect(secretBits(a)).toBeGreaterThanOrEqual(MIN_SECRET_BITS);
    expect(() => loadConfig({ env: {}, overrides: { bindHost: '0.0.0.0', secret: a } })).not.toThrow();
  });

  it('a real process refuses to start on 0.0.0.0 with the built-in secret, and says why', async () => {
    const r = await promisify(execFile)(
      process.execPath,
      [path.join(ROOT, 'bin/xserver.js'), 'mgr', '--redis', 'memory://', '--set', 'bindHost=0.0.0.0'],
      {
        cwd: ROOT,
        timeout: 20_000,
        env: { ...process.env, XSERVER_SECRET: '' },
      },
    ).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/secret: the built-in development secret/);
    expect(r.stderr).toMatch(/bindHost is "0.0.0.0"/);
  });
});
