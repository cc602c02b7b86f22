// Raw ws@8 reference: a binary echo server and clients keeping a window of requests per connection.
import { once } from 'node:events';
import { WebSocket, WebSocketServer } from 'ws';
import { runWindow, Fifo, payloadBuffer } from '../lib/load.js';
import { LOOPBACK } from '../lib/net.js';

const CONNECT_PARALLELISM = 50;

async function server() {
  const wss = new WebSocketServer({ host: LOOPBACK, port: 0, perMessageDeflate: false, backlog: 2048 });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => ws.terminate());
  });
  await once(wss, 'listening');
  return { host: LOOPBACK, port: wss.address().port };
}

async function openConnection(url) {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await once(ws, 'open');
  const waiting = new Fifo();
  ws.on('message', () => waiting.shift()?.());
  return { ws, waiting };
}

/** Opens `count` connections, CONNECT_PARALLELISM at a time. */
export async function openConnections(url, count) {
  const conns = [];
  while (conns.length < count) {
    const batch = Math.min(CONNECT_PARALLELISM, count - conns.length);
    conns.push(...(await Promise.all(Array.from({ length: batch }, () => openConnection(url)))));
  }
  return conns;
}

/**
 * opts.clients connections, each with opts.window requests in flight (total clients × window).
 * Without a window (single-connection runs), opts.inflight is the window.
 */
async function client({ server: addr, clients = 1, window, inflight, payloadBytes, warmupMs, durationMs }) {
  window ??= inflight;
  const conns = await openConnections(`ws://${addr.host}:${addr.port}/`, clients);
  const body = payloadBuffer(payloadBytes);
  try {
    return await runWindow({
      inflight: clients * window,
      warmupMs,
      durationMs,
      request(slot, done) {
        const conn = conns[slot % clients];
        conn.waiting.push(done);
        conn.ws.send(body, { binary: true });
      },
    });
  } finally {
    for (const { ws } of conns) ws.terminate();
  }
}

export default [{ name: 'raw-ws-echo', server, client }];
