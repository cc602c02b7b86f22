/**
 * Contracts end to end: one declaration types the service's handler and the client's call; a
 * wrong payload is a compile error (checked by `npm run typecheck`), a body that does not decode
 * a typed runtime error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XClient, command, jsonCodec } from '../src/client/index.js';
import { Gateway } from '../src/gateway/gateway.js';
import { ClusterNode } from '../src/node/node.js';
import { issueLogin, startCluster, waitUntil } from './helpers/inproc.js';

// ---- the contract module both ends import ----
interface Role {
  name: string;
  level: number;
}
const GetRoles = command({ type: 4, cmd: 1, name: 'lobby.getRoles', request: jsonCodec<{ prefix: string }>(), response: jsonCodec<Role[]>() });
const Say = command({ type: 4, cmd: 2, name: 'lobby.say', request: jsonCodec<{ text: string }>() });
const Heard = command({ type: 4, cmd: 3, name: 'lobby.heard', request: jsonCodec<{ from: string; text: string }>() });
const Broken = command({
  type: 4,
  cmd: 4,
  name: 'lobby.broken',
  request: jsonCodec<Record<string, never>>(),
  response: jsonCodec<{ ok: boolean }>(),
});
const Sum = command({ type: 5, cmd: 7, name: 'match.sum', request: jsonCodec<number[]>(), response: jsonCodec<number>() });

type Cluster = Awaited<ReturnType<typeof startCluster>>;
let c: Cluster;
let gw: Gateway;
let lobby: ClusterNode;
let match: ClusterNode;

beforeAll(async () => {
  c = await startCluster();
  lobby = c.own(new ClusterNode(c.ctx, { type: 4, name: 'lobby' }));
  match = c.own(new ClusterNode(c.ctx, { type: 5, name: 'match' }));
  lobby.enableRelay();
  lobby.handleClient(GetRoles, (req) => [{ name: `${req.prefix}-knight`, level: 3 }]);
  lobby.handleClient(Say, (msg, ctx) => void lobby.sendToClient(ctx.account, Heard, { from: ctx.account, text: msg.text }));
  // A handler whose bytes are not the contract's response (a service bug): the client gets BAD_PAYLOAD.
  lobby.handleClient(4, () => 'not json');
  match.handle(Sum, (xs) => xs.reduce((a, b) => a + b, 0));
  gw = c.own(new Gateway(c.ctx));
  await Promise.all([lobby.start(), match.start(), gw.start()]);
  await Promise.all([lobby.ready(5000), match.ready(5000), gw.node.ready(5000)]);
  await waitUntil(() => gw.node.has(lobby.id) && lobby.has(match.id), 5000, 'membership');
});

afterAll(async () => {
  await c?.cleanup();
});

const loginResult = (account: string) => issueLogin(c.store, gw, account, { '4': lobby.id });

describe('contracts', () => {
  it('a request, a one-way message and a push, typed by one declaration on both ends', async () => {
    const client = new XClient({ transport: 'tcp' });
    await client.connect(await loginResult('hero'));
    const roles: Role[] = await client.request(GetRoles, { prefix: 'dark' });
    expect(roles).toEqual([{ name: 'dark-knight', level: 3 }]);
    const heard = new Promise<{ from: string; text: string }>((r) => client.on(Heard, r));
    client.send(Say, { text: 'hello' });
    expect(await heard).toEqual({ from: 'hero', text: 'hello' });
    await client.close();
  });

  it('a response that does not decode is a typed error (BAD_PAYLOAD), not garbage', async () => {
    const client = new XClient({ transport: 'tcp' });
    await client.connect(await loginResult('victim'));
    await expect(client.request(Broken, {})).rejects.toMatchObject({ code: 'BAD_PAYLOAD' });
    await client.close();
  });

  it('node to node: handle(contract) and request(id, contract)', async () => {
    const total: number = await lobby.request(match.id, Sum, [1, 2, 3]);
    expect(total).toBe(6);
    expect(await lobby.requestOne(Sum, [4, 5])).toBe(9);
  });

  it('wrong payloads and replies do not compile', () => {
    const client = new XClient();
    const typeOnly = (): void => {
      // @ts-expect-error -- the request of GetRoles is { prefix: string }
      void client.request(GetRoles, { prefix: 7 });
      // @ts-expect-error -- Say has no response
      void client.request(Say, { text: 'x' }).then((r: string) => r);
      // @ts-expect-error -- a handler must return the contract's response type
      lobby.handleClient(GetRoles, () => [{ name: 1 }]);
      // @ts-expect-error -- a push carries Heard's message
      lobby.sendToClient('a', Heard, { text: 'no from' });
    };
    expect(typeof typeOnly).toBe('function');
  });
});
