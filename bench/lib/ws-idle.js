// Raw ws@8 reference for idle connections (scale scenario): an echo WebSocketServer whose RSS is
// measured (after a forced GC) before and after opts.count silent client connections.
// Same role names as the xserver plug-in's idle part: idleServer, idleServerMem, idleClients.
import v8 from 'node:v8';
import vm from 'node:vm';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { WebSocket, WebSocketServer } from 'ws';
import { LOOPBACK } from './net.js';

let wss;
const held = [];

async function gcMemory() {
  let gc;
  try {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc');
  } catch {
    gc = undefined;
  }
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 50));
  }
  return process.memoryUsage();
}

async function idleServer() {
  wss = new WebSocketServer({ host: LOOPBACK, port: 0, perMessageDeflate: false, backlog: 2048 });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => ws.terminate());
  });
  await once(wss, 'listening');
  const mem = await gcMemory();
  return { host: LOOPBACK, wsPort: wss.address().port, fdLimit: fdLimit(), rssBefore: mem.rss, heapBefore: mem.heapUsed };
}

/** Soft RLIMIT_NOFILE of this process (from /proc; undefined elsewhere). */
export function fdLimit() {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    return Number.isFinite(soft) ? soft : undefined;
  } catch {
    return undefined;
  }
}

async function idleServerMem() {
  const mem = await gcMemory();
  return { connections: wss.clients.size, rss: mem.rss, heapUsed: mem.heapUsed };
}

async function idleClients({ server, count, parallelism = 100 }) {
  const url = `ws://${server.host}:${server.wsPort}/`;
  while (held.length < count) {
    const batch = Math.min(parallelism, count - held.length);
    const opened = await Promise.all(
      Array.from({ length: batch }, async () => {
        const ws = new WebSocket(url, { perMessageDeflate: false });
        ws.on('error', () => {}); // a failed open rejects once(ws, 'open') below
        await once(ws, 'open');
        return ws;
      }),
    );
    held.push(...opened);
  }
  return { opened: held.length };
}

export default [{ name: 'raw-ws-idle', idleServer, idleServerMem, idleClients }];
