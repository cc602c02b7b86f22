import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { Gateway } from '../src/gateway/gateway.js';
import { ClusterNode } from '../src/node/node.js';
import { encodeAuth, parseWelcome } from '../src/protocol/client-messages.js';
import { Cmd, NodeType } from '../src/protocol/commands.js';
import { encodeFrame } from '../src/protocol/frame.js';
import { RawClient, issueLogin, rawLogin, startCluster, waitUntil } from './helpers/inproc.js';

type Cluster = Awaited<ReturnType<typeof startCluster>>;

/** The world node's type, and the command its broadcasts reach clients as (type * cmdOffset + 9). */
const WORLD = 4;
const CHAT = 9;
const MAX_OUTBOUND = 64 * 1024;

let c: Cluster;
let gw: Gateway;
let world: ClusterNode;
const clientCmd = () => WORLD * c.config.gateway.cmdOffset + CHAT;

/** Every byte a TCP client receives, in order. */
function rawBytes(cl: RawClient): () => Buffer {
  const chunks: Buffer[] = [];
  cl.raw.on('data', (d: Buffer) => chunks.push(d));
  return () => Buffer.concat(chunks);
}

/** A WebSocket client logged in with a token; every binary message it receives, as received. */
async function wsLogin(account: string): Promise<{ ws: WebSocket; messages: Buffer[] }> {
  const lr = await issueLogin(c.store, gw, account);
  const ws = new WebSocket(`ws://127.0.0.1:${gw.wsPort}/`);
  const messages: Buffer[] = [];
  ws.on('message', (d: Buffer) => messages.push(d));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(encodeFrame(Cmd.AUTH, encodeAuth({ token: lr.token })));
  await waitUntil(() => messages.length > 0, 3000, 'WELCOME over WebSocket');
  expect(messages[0]!.readUInt32BE(4)).toBe(Cmd.WELCOME);
  return { ws, messages };
}

beforeAll(async () => {
  c = await startCluster((cfg) => {
    cfg.gateway.reconnectGraceMs = 10_000;
    cfg.gateway.maxOutboundBytes = MAX_OUTBOUND;
  });
  gw = c.own(new Gateway(c.ctx));
  await gw.start();
  world = c.own(new ClusterNode(c.ctx, { type: WORLD, name: 'world' }));
  world.enableRelay();
  await world.start();
  await Promise.all([gw.node.ready(5000), world.ready(5000)]);
  await waitUntil(() => world.list(NodeType.GATEWAY).length === 1, 5000, 'the world node sees the gateway');
});

afterAll(async () => {
  await c?.cleanup();
});

describe('broadcast fan-out', () => {
  it('hands TCP, WebSocket and away clients the same bytes', async () => {
    const tcp = await rawLogin(c.store, gw, 'b-tcp');
    const tcpBytes = rawBytes(tcp);
    const ws = await wsLogin('b-ws');
    const away = await rawLogin(c.store, gw, 'b-away');
    const key = parseWelcome(away.frames.find((f) => f.cmd === Cmd.WELCOME)!.body).resume;
    away.close();
    await waitUntil(() => !gw.isConnected('b-away'), 3000, 'the away session');

    expect(world.broadcastToClients(CHAT, 'hello world')).toBe(1);
    const expected = Buffer.from(encodeFrame(clientCmd(), Buffer.from('hello world')));

    await waitUntil(() => tcpBytes().includes(expected), 3000, 'the TCP client gets the frame');
    await waitUntil(() => ws.messages.length === 2, 3000, 'the WebSocket client gets the frame');
    expect(ws.messages[1]!.equals(expected)).toBe(true);

    // The away client resumes and gets what was kept for it, byte for byte.
    const back = await RawClient.connect(gw.tcpPort);
    const backBytes = rawBytes(back);
    back.send(Cmd.AUTH, encodeAuth({ resume: key }));
    await back.next((f) => f.cmd === clientCmd());
    expect(backBytes().includes(expected)).toBe(true);

    tcp.close();
    back.close();
    ws.ws.close();
  });

  it('still cuts a client that stopped reading (SLOW_CONSUMER), and the others keep getting it', async () => {
    const reader = await rawLogin(c.store, gw, 's-reader');
    const slow = await rawLogin(c.store, gw, 's-slow');
    slow.raw.pause();
    const body = Buffer.alloc(4000, 7);
    // In rounds, each waited for at the reader, so the node's link to the gateway never backs up;
    // enough in all to fill the paused socket's kernel buffers and then the gateway's limit.
    for (let round = 0; round < 400 && gw.isConnected('s-slow'); round++) {
      for (let i = 0; i < 20; i++) world.broadcastToClients(CHAT, body);
      const want = (round + 1) * 20;
      await waitUntil(() => reader.frames.filter((f) => f.cmd === clientCmd()).length >= want, 5000, `round ${round} at the reader`);
    }
    expect(gw.isConnected('s-slow')).toBe(false);
    slow.raw.resume();
    const e = await slow.next((f) => f.cmd === Cmd.ERROR, 10_000);
    expect(slow.json(e).code).toBe('SLOW_CONSUMER');
    expect(gw.isConnected('s-reader')).toBe(true);
    reader.close();
    slow.close();
  }, 60_000);
});
