import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as api from '../src/index.js';
import { Gateway } from '../src/gateway/gateway.js';
import { Link } from '../src/link/link.js';
import { ClusterNode } from '../src/node/node.js';
import { runtimeOf } from '../src/node/internal.js';
import { NodeRuntime } from '../src/node/runtime.js';
import type { ClientContext } from '../src/node/relay.js';
import type { MessageContext } from '../src/node/types.js';
import { Cmd } from '../src/protocol/commands.js';
import { Flags } from '../src/protocol/frame.js';
import { RawClient, startCluster, waitUntil } from './helpers/inproc.js';

type Cluster = Awaited<ReturnType<typeof startCluster>>;

/** The runtime's system channel, links and JSON views: none of it is on the facade. */
const INTERNALS = ['handleSystem', 'sendSystem', 'requestSystem', 'connect', 'isLinked', 'selfJson', 'peersJson', 'setExtraPorts', 'info'];

/** Every value reachable as an own property (string or symbol key) of `o`. */
function ownValues(o: object): unknown[] {
  return Reflect.ownKeys(o).map((k) => (o as Record<PropertyKey, unknown>)[k]);
}

let c: Cluster;
let gw: Gateway;
let a: ClusterNode;
let b: ClusterNode;
const seen: { message?: MessageContext; client?: ClientContext } = {};

beforeAll(async () => {
  c = await startCluster();
  gw = c.own(new Gateway(c.ctx));
  await gw.start();
  a = c.own(new ClusterNode(c.ctx, { type: 6, name: 'a' }));
  b = c.own(new ClusterNode(c.ctx, { type: 7, name: 'b' }));
  b.handle(1, (body, ctx) => {
    seen.message = ctx;
    return body;
  });
  b.enableRelay();
  b.handleClient(2, (data, ctx) => {
    seen.client = ctx;
    return data;
  });
  await Promise.all([a.start(), b.start()]);
  await Promise.all([a.ready(5000), b.ready(5000), gw.node.ready(5000)]);
  await waitUntil(() => a.has(b.id) && gw.node.has(b.id), 5000, 'a and the gateway list b');
});

afterAll(async () => {
  await c?.cleanup();
});

describe('ClusterNode facade', () => {
  it('does not expose the system channel, links or JSON views', () => {
    for (const name of INTERNALS) expect(name in a, name).toBe(false);
    expect(ownValues(a).some((v) => v instanceof NodeRuntime)).toBe(false);
  });

  it('refuses system commands through the user API (no forged ACCOUNT_LOST)', () => {
    expect(() => a.sendById(b.id, Cmd.ACCOUNT_LOST, 'x')).toThrow(expect.objectContaining({ code: 'BAD_REQUEST' }) as Error);
    expect(() => a.handle(Cmd.RELAY_FROM_CLIENT, () => undefined)).toThrow(expect.objectContaining({ code: 'BAD_REQUEST' }) as Error);
  });

  it('gives a message handler a context without the link', async () => {
    await a.request(b.id, 1, 'hi');
    const ctx = seen.message!;
    expect(ctx.fromId).toBe(a.id);
    expect('link' in ctx).toBe(false);
    expect(ownValues(ctx).some((v) => v instanceof Link || v instanceof NodeRuntime)).toBe(false);
  });

  it('gives a client handler a context without the gateway link', async () => {
    const account = 'facade-user';
    const generation = await c.store.nextGeneration(account);
    const token = randomBytes(16).toString('base64url');
    await c.store.putToken(token, { account, gatewayId: gw.node.id, generation, allocations: {}, expiresAt: Date.now() + 10_000 }, 60_000);
    const cl = await RawClient.connect(gw.tcpPort);
    try {
      cl.send(Cmd.AUTH, JSON.stringify({ token }));
      expect((await cl.next((f) => f.cmd === Cmd.WELCOME || f.cmd === Cmd.ERROR)).cmd).toBe(Cmd.WELCOME);
      cl.send(7002, 'ping', Flags.REQUEST, 5);
      expect(Buffer.from((await cl.next((f) => f.rid === 5)).body).toString()).toBe('ping');
      const ctx = seen.client!;
      expect(ctx.account).toBe(account);
      expect('link' in ctx).toBe(false);
      expect(ownValues(ctx).some((v) => v instanceof Link || v instanceof NodeRuntime)).toBe(false);
    } finally {
      cl.close();
    }
  });

  it('lets framework code reach the runtime through runtimeOf', async () => {
    const rt = runtimeOf(a);
    expect(rt).toBeInstanceOf(NodeRuntime);
    expect(rt.id).toBe(a.id);
    expect(rt.selfJson()).toMatchObject({ id: a.id, mgrConnected: true });
    await a.request(b.id, 1, 'link up');
    expect(rt.isLinked(b.id)).toBe(true);
    expect(() => runtimeOf({} as ClusterNode)).toThrow(expect.objectContaining({ code: 'CONFIG' }) as Error);
  });

  it('keeps runtimeOf and the runtime out of the package exports', () => {
    expect('runtimeOf' in api).toBe(false);
    expect('NodeRuntime' in api).toBe(false);
    expect('bindFacade' in api).toBe(false);
  });
});
