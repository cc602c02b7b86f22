// Raw ws@8 reference for the broadcast scenario: each "gateway" is a WebSocketServer that takes
// frames from the broadcaster over one TCP connection (the counterpart of the relay link) and
// writes every frame, as received, to each of its sockets with ws.send() of the same Buffer.
// "raw ws@8 corked" (options.batch) writes all the frames of one ingest chunk to a socket under one
// cork, as the gateway does with the frames of one event-loop turn: a server that falls behind then
// writes several messages per syscall instead of one.
// Roles as in the xserver plug-in: source, server, connectSource, clients, collect, results, start, stop.
import net from 'node:net';
import { once } from 'node:events';
import { WebSocket, WebSocketServer } from 'ws';
import { LOOPBACK } from './net.js';
import { FrameParser, encodeFrame, HEADER_BYTES } from './frame.js';
import { Tally, messageBody, startSender } from './broadcast.js';
import { fdLimit } from './ws-idle.js';

/** The command of the broadcast frame (the xserver row's client sees type 4 × 1000 + 2). */
const CHAT = 4002;
const CONNECT_PARALLELISM = 100;

let wss;
const links = []; // source -> server connections
const held = [];
const tally = new Tally();
let sender;

export default [
  {
    name: 'raw-ws-broadcast',

    async source() {
      return {};
    },

    async server({ batch = false }) {
      wss = new WebSocketServer({ host: LOOPBACK, port: 0, perMessageDeflate: false, backlog: 2048 });
      const sockets = new Map(); // ws -> its net.Socket (for cork)
      wss.on('connection', (ws, req) => {
        sockets.set(ws, req.socket);
        ws.on('close', () => sockets.delete(ws));
        ws.on('error', () => ws.terminate());
      });
      await once(wss, 'listening');
      const ingest = net.createServer((socket) => {
        socket.setNoDelay(true);
        let frames = [];
        const parser = new FrameParser((cmd, flags, rid, body) => {
          const frame = encodeFrame(cmd, flags, rid, body);
          if (batch) frames.push(frame);
          else for (const ws of wss.clients) ws.send(frame, { binary: true });
        });
        socket.on('data', (c) => {
          parser.push(c);
          if (frames.length === 0) return;
          for (const [ws, sock] of sockets) {
            sock.cork();
            for (const f of frames) ws.send(f, { binary: true });
            sock.uncork();
          }
          frames = [];
        });
        socket.on('error', () => socket.destroy());
      });
      ingest.listen(0, LOOPBACK);
      await once(ingest, 'listening');
      return { host: LOOPBACK, wsPort: wss.address().port, ingestPort: ingest.address().port, fdLimit: fdLimit() };
    },

    async connectSource({ servers }) {
      for (const s of servers) {
        const socket = net.connect(s.ingestPort, s.host);
        socket.setNoDelay(true);
        await once(socket, 'connect');
        links.push(socket);
      }
      return { links: links.length };
    },

    async serverClients() {
      return { connections: wss.clients.size };
    },

    async clients({ servers, count }) {
      while (held.length < count) {
        const batch = Math.min(CONNECT_PARALLELISM, count - held.length);
        const opened = await Promise.all(
          Array.from({ length: batch }, async (_, i) => {
            const s = servers[(held.length + i) % servers.length];
            const ws = new WebSocket(`ws://${s.host}:${s.wsPort}/`, { perMessageDeflate: false });
            ws.binaryType = 'nodebuffer';
            ws.on('error', () => {}); // a failed open rejects once(ws, 'open') below
            ws.on('message', (data) => {
              if (data.readUInt32BE(4) === CHAT) tally.received(data.subarray(HEADER_BYTES));
            });
            await once(ws, 'open');
            return ws;
          }),
        );
        held.push(...opened);
      }
      return { opened: held.length, closed: held.filter((ws) => ws.readyState !== WebSocket.OPEN).length };
    },

    async collect(window) {
      tally.window(window);
    },

    async results() {
      return { ...tally.result(), closed: held.filter((ws) => ws.readyState !== WebSocket.OPEN).length };
    },

    async start({ rate, payloadBytes }) {
      sender = startSender(rate, (seq) => {
        const frame = encodeFrame(CHAT, 0, 0, messageBody(payloadBytes, seq));
        for (const l of links) l.write(frame);
      });
    },

    async stop() {
      return { sent: sender?.stop() ?? 0 };
    },
  },
];
