// Starts the backend on the in-memory store and plays through the SDK, over real sockets.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { XClient, login } from 'xserver/client';
import { startDevCluster, type DevCluster } from 'xserver';
import { AddScore, Milestone, Top, contracts } from '../src/contracts.js';
import service from '../src/service.js';

let dev: DevCluster;

before(async () => {
  dev = await startDevCluster({ services: [service], configure: (c) => (c.login.port = 0) });
});

after(async () => {
  await dev?.stop();
});

test('game: a player scores, gets the milestone push and tops the board', async () => {
  const client = new XClient({ transport: 'tcp', contracts });
  await client.connect(await login(dev.loginUrl, 'alice', 'secret-pw'));
  try {
    const milestone = new Promise<{ score: number }>((resolve) => client.on(Milestone, resolve));
    assert.deepEqual(await client.request(AddScore, { points: 60 }), { name: 'alice', score: 60 });
    assert.deepEqual(await client.request(AddScore, { points: 50 }), { name: 'alice', score: 110 });
    assert.deepEqual(await milestone, { score: 110 });
    assert.deepEqual(await client.request(Top, { limit: 3 }), [{ name: 'alice', score: 110 }]);
  } finally {
    await client.close();
  }
});
