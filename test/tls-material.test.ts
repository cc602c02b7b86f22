import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TlsMaterial } from '../src/tls.js';
import { waitFor } from '../testkit/index.js';
import { haveOpenssl, makeCa, makeCert } from './helpers/certs.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'xs-tlsm-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!haveOpenssl())('TlsMaterial', () => {
  it('refuses unreadable or mismatched files with a CONFIG error naming the setting', () => {
    const { ca } = makeCa(dir);
    const a = makeCert(dir, 'a');
    const b = makeCert(dir, 'b');
    expect(() => new TlsMaterial({ cert: path.join(dir, 'none.pem'), key: a.key, ca })).toThrow(/tls\.cert: cannot read/);
    expect(() => new TlsMaterial({ cert: a.cert, key: b.key, ca })).toThrow(/tls\.cert \/ tls\.key/);
    expect(new TlsMaterial({ cert: a.cert, key: a.key, ca }).options.cert).toBeDefined();
  });

  it('reloads on a change, and keeps the old material while the files do not form a valid pair', async () => {
    const { ca } = makeCa(dir);
    const live = { cert: path.join(dir, 'live.pem'), key: path.join(dir, 'live.key'), ca };
    const first = makeCert(dir, 'first');
    const second = makeCert(dir, 'second');
    copyFileSync(first.cert, live.cert);
    copyFileSync(first.key, live.key);
    const errors: string[] = [];
    const m = new TlsMaterial(live, (e) => errors.push(e.message), 50);
    const seen: string[] = [];
    m.onReload((o) => seen.push(String(o.cert)));
    try {
      writeFileSync(live.key, 'not a key');
      await waitFor(() => errors.length > 0, { timeoutMs: 5000, what: 'the broken key reported' });
      expect(String(m.options.cert)).toBe(String(readCert(first.cert)));
      copyFileSync(second.key, live.key);
      copyFileSync(second.cert, live.cert);
      await waitFor(() => String(m.options.cert) === String(readCert(second.cert)), { timeoutMs: 5000, what: 'the renewed pair loaded' });
      expect(seen.at(-1)).toBe(String(readCert(second.cert)));
    } finally {
      m.stop();
    }
  });
});

function readCert(p: string): Buffer {
  return readFileSync(p);
}
