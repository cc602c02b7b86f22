/**
 * Batched WebSocket messages (docs/protocol.md, "Frames"): a client that asks in AUTH gets the
 * frames of one turn in few messages, no larger than it said, and may send its own the same way;
 * any other client gets exactly one frame per message, and a batch from it is refused. Real
 * gateway and node, real `ws` sockets, and the SDK.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { XClient } from '../src/client/client.js';
import { Gateway } from '../src/gateway/gateway.js';
import { ClusterNode } from '../src/node/node.js';
import { encodeAuth, parseErrorNotice, parseWelcome, type AuthRequest } from '../src/protocol/client-messages.js';
import { Cmd, NodeType } from '../src/protocol/commands.js';
import { Flags, batchFrames, decodeFrames, encodeFrame, type Frame } from '../src/protocol/frame.js';
import { issueLogin, startCluster, waitUntil } from './helpers/inproc.js';

type Cluster = Awaited<ReturnType<typeof startCluster>>;
const TYPE = 4;
const ECHO = 1;
const CHAT = 2;
const MESSAGES = 100;

let c: Cluster;
let gw: Gateway;
let svc: ClusterNode;
const cmd = (sub: number): number => TYPE * c.config.gateway.cmdOffset + sub;

interface Raw {
  ws: WebSocket;
  messages: Buffer[];
  closed: Promise<number>;
  /** Every frame received after WELCOME, in order. */
  frames(): Frame[];
}

async function rawWs(account: string, extra: Partial<AuthRequest> = {}): Promise<Raw> {
  const lr = await issueLogin(c.store, gw, account);
  const ws = new WebSocket(`ws://127.0.0.1:${gw.wsPort}/`);
  const messages: Buffer[] = [];
  ws.on('message', (d: Buffer) => messages.push(d));
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(encodeFrame(Cmd.AUTH, encodeAuth({ token: lr.token, ...extra } as AuthRequest)));
  await waitUntil(() => messages.length > 0, 3000, 'the answer to AUTH');
  return { ws, messages, closed, frames: () => messages.flatMap((m) => decodeFrames(m)).slice(1) };
}

beforeAll(async () => {
  c = await startCluster((cfg) => {
    cfg.statefulTypes = '';
    cfg.gateway.rateLimitPerSec = 100_000; // the SDK case sends 500 requests at once
    cfg.gateway.rateBurst = 100_000;
  });
  gw = c.own(new Gateway(c.ctx));
  await gw.start();
  svc = c.own(new ClusterNode(c.ctx, { type: TYPE, name: 'svc' }));
  svc.enableRelay();
  svc.handleClient(ECHO, (data) => data);
  await svc.start();
  await Promise.all([gw.node.ready(5000), svc.ready(5000)]);
  await waitUntil(() => svc.list(NodeType.GATEWAY).length === 1, 5000, 'the service sees the gateway');
});

afterAll(async () => {
  await c?.cleanup();
});

describe('batched WebSocket messages', () => {
  it('a client that asks gets the frames of one turn in few messages, none over its limit, all in order', async () => {
    const cl = await rawWs('wb-yes', { batch: 4096 });
    const welcome = parseWelcome(decodeFrames(cl.messages[0]!)[0]!.body);
    expect(welcome.batch).toBe(c.config.gateway.wsBatchBytes);
    for (let i = 0; i < MESSAGES; i++) svc.broadcastToClients(CHAT, `m${i}`.padEnd(100, '.'));
    await waitUntil(() => cl.frames().length === MESSAGES, 3000, 'every broadcast');
    expect(cl.frames().map((f) => Buffer.from(f.body).toString().replace(/\.+$/, ''))).toEqual(Array.from({ length: MESSAGES }, (_, i) => `m${i}`));
    expect(cl.frames().every((f) => f.cmd === cmd(CHAT))).toBe(true);
    expect(cl.messages.length - 1).toBeLessThan(MESSAGES / 10);
    expect(Math.max(...cl.messages.map((m) => m.length))).toBeLessThanOrEqual(4096);

    // Its own batch: three requests in one message, three answers.
    const reqs = [1, 2, 3].map((rid) => encodeFrame(cmd(ECHO), Buffer.from(`r${rid}`), Flags.REQUEST, rid));
    cl.ws.send(batchFrames(reqs, 4096)[0]!);
    await waitUntil(() => cl.frames().length === MESSAGES + 3, 3000, 'the three answers');
    expect(
      cl
        .frames()
        .slice(MESSAGES)
        .map((f) => [f.rid, Buffer.from(f.body).toString()]),
    ).toEqual([
      [1, 'r1'],
      [2, 'r2'],
      [3, 'r3'],
    ]);
    cl.ws.close();
  });

  it('any other client gets one frame per message, and a batch from it is refused as BAD_FRAME', async () => {
    const cl = await rawWs('wb-no');
    expect(parseWelcome(decodeFrames(cl.messages[0]!)[0]!.body).batch).toBeUndefined();
    for (let i = 0; i < MESSAGES; i++) svc.broadcastToClients(CHAT, `m${i}`);
    await waitUntil(() => cl.frames().length === MESSAGES, 3000, 'every broadcast');
    expect(cl.messages.length).toBe(MESSAGES + 1);
    const two = batchFrames([encodeFrame(Cmd.PING), encodeFrame(Cmd.PING)], 1024)[0]!;
    cl.ws.send(two);
    expect(await cl.closed).toBe(1000);
    const err = decodeFrames(cl.messages.at(-1)!)[0]!;
    expect(err.cmd).toBe(Cmd.ERROR);
    expect(parseErrorNotice(err.body, '').code).toBe('BAD_FRAME');
  });

  it('AUTH with a "batch" that is not a byte count is BAD_REQUEST', async () => {
    const cl = await rawWs('wb-bad', { batch: -1 });
    const f = decodeFrames(cl.messages[0]!)[0]!;
    expect(f.cmd).toBe(Cmd.ERROR);
    expect(parseErrorNotice(f.body, '').code).toBe('BAD_REQUEST');
    await cl.closed;
  });

  it('the SDK asks for batches over WebSocket: many requests of one turn are answered, in order', async () => {
    const lr = await issueLogin(c.store, gw, 'wb-sdk');
    const client = new XClient({ transport: 'ws' });
    await client.connect(lr);
    expect(client.welcome?.batch).toBe(c.config.gateway.wsBatchBytes);
    const answers = await Promise.all(Array.from({ length: 500 }, (_, i) => client.request(cmd(ECHO), `q${i}`)));
    expect(answers.map((a) => Buffer.from(a).toString())).toEqual(Array.from({ length: 500 }, (_, i) => `q${i}`));
    await client.close();
    const tcp = new XClient({ transport: 'tcp' });
    await tcp.connect(await issueLogin(c.store, gw, 'wb-sdk-tcp'));
    expect(tcp.welcome?.batch).toBeUndefined(); // a stream carries frames back to back anyway
    await tcp.close();
  });
});
