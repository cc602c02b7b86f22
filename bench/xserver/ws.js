// Client -> gateway -> service node -> gateway -> client echo (ws-echo and ws-clients scenarios).
// Server process: mgr + Gateway + a non-stateful service node (type 4, statefulTypes '') whose
// handleClient(cmd) returns the data, so every client request is relayed to the node and its reply
// relayed back. Client process: raw `ws` (or net) connections, each authenticated with a token
// written into the store (what the login service does), then request frames with window/in-flight
// requests outstanding per connection. Rows: "xserver" (WebSocket) and "xserver tcp" (the gateway's
// TCP client port, same frames).
import net from 'node:net';
import { once } from 'node:events';
import { WebSocket } from 'ws';
import { runWindow, payloadBuffer } from '../lib/load.js';
import { FrameParser, BatchWriter } from '../lib/frame.js';
import {
  roleContext,
  startMgr,
  waitFor,
  issueToken,
  encodeFrame,
  ClusterNode,
  runtimeOf,
  Gateway,
  T_ECHO,
  CMD,
  Flags,
  SYS,
  encodeAuth,
} from './_common.js';

const CONNECT_PARALLELISM = 50;
const EMPTY = Buffer.alloc(0);

/**
 * Gateway settings for a load test: no rate limit (the default 200 msg/s per client would be the
 * result), and no per-address limits (every load client comes from 127.0.0.1).
 */
export function gatewayConfig(c) {
  c.gateway.host = '127.0.0.1';
  c.gateway.rateLimitPerSec = 1e9;
  c.gateway.rateBurst = 1e9;
  c.gateway.floodDisconnectAfter = 1e9;
  c.gateway.acceptRatePerAddress = 1e9;
  c.gateway.maxPendingPerAddress = 1e9;
  c.gateway.reconnectGraceMs = 0; // a finished point's sessions go at once
}

export async function startGatewayStack(opts, patch) {
  const ctx = roleContext(opts, (c) => {
    gatewayConfig(c);
    patch?.(c);
  });
  const mgr = await startMgr(ctx);
  const gateway = new Gateway(ctx);
  await gateway.start();
  await gateway.node.ready();
  return { ctx, mgr, gateway };
}

let connSeq = 0;

/**
 * One authenticated client connection speaking xserver frames, over ws or tcp.
 * conn.request(cmd, body, done) sends a REQUEST frame; done(err?) runs when its RESPONSE arrives.
 * onPush(cmd, body), when given, gets every other frame after WELCOME (what nodes send to the client).
 */
export async function openClient(store, server, transport, window = 8, onPush = undefined) {
  let slots = 16; // a power of two > the requests outstanding on this connection
  while (slots <= window) slots *= 2;
  const mask = slots - 1;
  const account = `bench-${process.pid}-${++connSeq}`;
  const token = await issueToken(store, account, server.gatewayId);
  const pending = new Array(slots);
  let nextRid = 1;
  let welcome;
  const welcomed = new Promise((resolve, reject) => (welcome = { resolve, reject }));
  welcomed.catch(() => {}); // observed by the await below; may settle before it
  const onFrame = (cmd, flags, rid, body) => {
    if (flags & Flags.RESPONSE) {
      const i = rid & mask;
      const done = pending[i];
      pending[i] = undefined;
      if (done) done(flags & Flags.ERROR ? new Error(`error reply: ${body.toString()}`) : undefined);
    } else if (cmd === SYS.WELCOME) welcome.resolve();
    else if (cmd === SYS.ERROR) welcome.reject(new Error(`gateway refused: ${body.toString()}`));
    else onPush?.(cmd, body);
  };
  const auth = encodeFrame(SYS.AUTH, 0, 0, encodeAuth({ token }));
  let send;
  let close;
  if (transport === 'tcp') {
    const socket = net.connect(server.tcpPort, server.host);
    socket.setNoDelay(true);
    await once(socket, 'connect');
    const parser = new FrameParser(onFrame);
    socket.on('data', (c) => parser.push(c));
    socket.on('error', (e) => welcome.reject(e));
    const writer = new BatchWriter(socket);
    socket.write(auth);
    send = (cmd, flags, rid, body) => writer.frame(cmd, flags, rid, body);
    close = () => socket.destroy();
  } else {
    const ws = new WebSocket(`ws://${server.host}:${server.wsPort}/`, { perMessageDeflate: false });
    ws.binaryType = 'nodebuffer';
    ws.on('error', (e) => welcome.reject(e));
    await once(ws, 'open');
    ws.on('message', (data) => onFrame(data.readUInt32BE(4), data[8], data.readUInt32BE(9), data.subarray(13)));
    ws.send(auth);
    send = (cmd, flags, rid, body) => ws.send(encodeFrame(cmd, flags, rid, body));
    close = () => ws.terminate();
  }
  await welcomed;
  return {
    account,
    request(cmd, body, done) {
      const rid = nextRid;
      nextRid = (nextRid + 1) & 0x7fffffff || 1;
      pending[rid & mask] = done;
      send(cmd, Flags.REQUEST, rid, body);
    },
    ping() {
      send(SYS.PING, 0, 0, EMPTY);
    },
    close,
  };
}

/** Opens `count` authenticated connections, CONNECT_PARALLELISM at a time. */
export async function openClients(store, server, transport, count, window, parallelism = CONNECT_PARALLELISM, onPush = undefined) {
  const conns = [];
  try {
    while (conns.length < count) {
      const batch = Math.min(parallelism, count - conns.length);
      conns.push(...(await Promise.all(Array.from({ length: batch }, () => openClient(store, server, transport, window, onPush)))));
    }
  } catch (err) {
    for (const c of conns) c.close();
    throw err;
  }
  return conns;
}

let clientCtx;

function echoImpl(name, transport) {
  return {
    name,
    scenario: ['ws-echo', 'ws-clients'],
    needs: ['redis'],
    options: { transport },

    async server(opts) {
      const { ctx, gateway } = await startGatewayStack(opts);
      const node = new ClusterNode(ctx, { type: T_ECHO, name: 'echo' });
      node.enableRelay();
      node.handleClient(CMD.ECHO, (data) => data);
      await node.start();
      await node.ready();
      await waitFor(() => runtimeOf(node).isLinked(gateway.node.id), 10_000, 'echo node linked to the gateway');
      return { host: '127.0.0.1', gatewayId: gateway.node.id, wsPort: gateway.wsPort, tcpPort: gateway.tcpPort };
    },

    async client(opts) {
      clientCtx ??= roleContext(opts);
      await clientCtx.store.ready(5000);
      const clients = opts.clients ?? 1;
      const window = opts.window ?? opts.inflight;
      const conns = await openClients(clientCtx.store, opts.server, opts.transport, clients, window);
      const body = payloadBuffer(opts.payloadBytes);
      const cmd = T_ECHO * 1000 + CMD.ECHO; // gateway.cmdOffset 1000: type 4, node cmd 1
      try {
        return await runWindow({
          inflight: clients * window,
          warmupMs: opts.warmupMs,
          durationMs: opts.durationMs,
          request(slot, done) {
            conns[slot % clients].request(cmd, body, done);
          },
        });
      } finally {
        for (const c of conns) c.close();
      }
    },
  };
}

export default [echoImpl('xserver', 'ws'), echoImpl('xserver tcp', 'tcp')];
