/** Client version gating: gateway.minClientVersion refuses older clients with UPDATE_REQUIRED {minVersion}; the SDK raises its own event. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XClient } from '../src/client/index.js';
import { Gateway } from '../src/gateway/gateway.js';
import { compareVersions } from '../src/protocol/client-messages.js';
import { issueLogin, startCluster } from './helpers/inproc.js';

type Cluster = Awaited<ReturnType<typeof startCluster>>;
let c: Cluster;
let gw: Gateway;

beforeAll(async () => {
  c = await startCluster((cfg) => {
    cfg.gateway.minClientVersion = '2.4.0';
  });
  gw = c.own(new Gateway(c.ctx));
  await gw.start();
  await gw.node.ready(5000);
});

afterAll(async () => {
  await c?.cleanup();
});

const loginResult = (account: string) => issueLogin(c.store, gw, account);

describe('client version gating', () => {
  it('an older client (or one that sends no version) is refused with UPDATE_REQUIRED and the minimum; the SDK says so', async () => {
    for (const version of ['2.3.9', undefined]) {
      const client = new XClient({ transport: 'tcp', reconnect: false, ...(version ? { version } : {}) });
      const seen: string[] = [];
      client.on('update-required', (min) => seen.push(min));
      await expect(client.connect(await loginResult(`old-${version ?? 'none'}`))).rejects.toMatchObject({ code: 'UPDATE_REQUIRED' });
      expect(seen).toEqual(['2.4.0']);
    }
  });

  it('a client at or above the minimum connects (versions compare numerically: 2.10 > 2.4)', async () => {
    for (const version of ['2.4.0', '2.10']) {
      const client = new XClient({ transport: 'ws', version });
      const w = await client.connect(await loginResult(`new-${version}`));
      expect(w.account).toBe(`new-${version}`);
      await client.close();
    }
  });

  it('compareVersions', () => {
    expect(compareVersions('1.10', '1.9')).toBeGreaterThan(0);
    expect(compareVersions('1.2', '1.2.0')).toBe(0);
    expect(compareVersions('1.2.0', '1.2.1')).toBeLessThan(0);
    expect(compareVersions('2.0.0-beta', '2.0.0-alpha')).toBeGreaterThan(0);
  });
});
