import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterNode } from '../src/node/node.js';
import { XError } from '../src/errors.js';
import { startCluster, waitUntil } from './helpers/inproc.js';

type Cluster = Awaited<ReturnType<typeof startCluster>>;
let c: Cluster;
let a: ClusterNode;
let b: ClusterNode;

beforeAll(async () => {
  c = await startCluster();
  a = c.own(new ClusterNode(c.ctx, { type: 6, name: 'a' }));
  b = c.own(new ClusterNode(c.ctx, { type: 7, name: 'b' }));
  b.handle(1, (body) => body);
  b.handle(2, () => {
    throw new XError('BAD_REQUEST', 'refused by b');
  });
  b.handle(3, () => undefined); // never answers
  b.handle(4, async (body) => `async:${Buffer.from(body).toString()}`);
  await Promise.all([a.start(), b.start()]);
  await Promise.all([a.ready(5000), b.ready(5000)]);
  await waitUntil(() => a.has(b.id), 5000, 'a lists b');
});

afterAll(async () => {
  await c?.cleanup();
});

describe('node requests', () => {
  it('request() and requestCb() return the reply body', async () => {
    expect(Buffer.from(await a.request(b.id, 1, 'hi')).toString()).toBe('hi');
    expect(Buffer.from(await a.requestOne(7, 4, 'x')).toString()).toBe('async:x');
    const body = await new Promise<Uint8Array>((resolve, reject) => a.requestCb(b.id, 1, 'cb', (e, r) => (e ? reject(e) : resolve(r!))));
    expect(Buffer.from(body).toString()).toBe('cb');
  });

  it('carries typed errors: handler error, no handler, no target, timeout', async () => {
    await expect(a.request(b.id, 2, '')).rejects.toMatchObject({ code: 'BAD_REQUEST', message: 'refused by b' });
    await expect(a.request(b.id, 99, '')).rejects.toMatchObject({ code: 'NO_HANDLER' });
    await expect(a.request('nobody', 1, '')).rejects.toMatchObject({ code: 'NO_TARGET' });
    await expect(a.request(b.id, 3, '', { timeoutMs: 100 })).rejects.toMatchObject({ code: 'TIMEOUT' });
  });

  it('requestCb never calls back synchronously, even for an immediate refusal', async () => {
    let calledSync = true;
    const err = await new Promise<XError | null>((resolve) => {
      a.requestCb('nobody', 1, '', (e) => resolve(e));
      calledSync = false;
    });
    expect(calledSync).toBe(false);
    expect(err?.code).toBe('NO_TARGET');
  });

  it('refuses payloads that are neither bytes nor strings', async () => {
    expect(() => a.sendById(b.id, 1, { x: 1 } as unknown as string)).toThrow(/payload must be/);
  });
});
