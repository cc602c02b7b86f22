// Raw-Node TCP reference: length-prefixed frames (lib/frame.js) over one loopback connection.
// opts.mode selects the writer: 'batch' (frames coalesced per tick) or 'direct' (one write per frame).
import net from 'node:net';
import { once } from 'node:events';
import { FrameParser, createWriter, FLAG_RESPONSE } from '../lib/frame.js';
import { runWindow, payloadBuffer } from '../lib/load.js';
import { LOOPBACK } from '../lib/net.js';
import { now } from '../lib/impl.js';

const CMD_DATA = 1;
const CMD_MARK = 0xfff0; // one-way: start counting
const CMD_END = 0xfff1; // one-way: stop counting, reply with the count
const RID_MASK = 0xffff; // > max in-flight, so rid & mask never collides

/** Server: echoes every data frame (opts.echo) or only counts them (one-way). */
async function server({ mode = 'batch', echo = true }) {
  const srv = net.createServer((socket) => {
    socket.setNoDelay(true);
    const writer = createWriter(socket, mode);
    let count = 0;
    let markCount = 0;
    let markTime = 0;
    const parser = new FrameParser((cmd, flags, rid, body) => {
      if (cmd === CMD_DATA) {
        count++;
        if (echo) writer.frame(cmd, flags | FLAG_RESPONSE, rid, body);
      } else if (cmd === CMD_MARK) {
        markCount = count;
        markTime = now();
      } else if (cmd === CMD_END) {
        const reply = Buffer.alloc(16);
        reply.writeDoubleBE(count - markCount, 0);
        reply.writeDoubleBE((now() - markTime) / 1000, 8);
        writer.frame(CMD_END, FLAG_RESPONSE, rid, reply);
        writer.flush();
      }
    });
    socket.on('data', (chunk) => parser.push(chunk));
    socket.on('error', () => socket.destroy());
  });
  srv.listen(0, LOOPBACK);
  await once(srv, 'listening');
  return { host: LOOPBACK, port: srv.address().port };
}

async function connect({ host, port }) {
  const socket = net.connect(port, host);
  await once(socket, 'connect');
  socket.setNoDelay(true);
  return socket;
}

/** Request/response: `inflight` outstanding echo requests on one connection. */
async function echoClient({ server: addr, mode = 'batch', inflight, payloadBytes, warmupMs, durationMs }) {
  const socket = await connect(addr);
  const writer = createWriter(socket, mode);
  const body = payloadBuffer(payloadBytes);
  const pending = new Array(RID_MASK + 1);
  let nextRid = 0;
  const parser = new FrameParser((cmd, flags, rid) => {
    const done = pending[rid & RID_MASK];
    pending[rid & RID_MASK] = undefined;
    done?.();
  });
  socket.on('data', (chunk) => parser.push(chunk));
  try {
    return await runWindow({
      inflight,
      warmupMs,
      durationMs,
      request(slot, done) {
        const rid = nextRid++ & 0xffffffff;
        pending[rid & RID_MASK] = done;
        writer.frame(CMD_DATA, 0, rid >>> 0, body);
      },
    });
  } finally {
    socket.destroy();
  }
}

/** One-way pipelined: writes as fast as the socket drains; the server counts what it parsed. */
async function onewayClient({ server: addr, mode = 'batch', payloadBytes, warmupMs, durationMs }) {
  const socket = await connect(addr);
  const writer = createWriter(socket, mode);
  const body = payloadBuffer(payloadBytes);
  const reply = new Promise((resolve) => {
    const parser = new FrameParser((cmd, flags, rid, b) => {
      if (cmd === CMD_END) resolve({ count: b.readDoubleBE(0), seconds: b.readDoubleBE(8) });
    });
    socket.on('data', (chunk) => parser.push(chunk));
  });

  let running = true;
  let rid = 0;
  const pump = async () => {
    for (let iter = 1; running; iter++) {
      for (let i = 0; i < 64; i++) writer.frame(CMD_DATA, 0, rid++ >>> 0, body);
      writer.flush();
      if (socket.writableNeedDrain) await once(socket, 'drain');
      else if ((iter & 15) === 0) await new Promise(setImmediate); // let timers run
    }
  };
  const pumping = pump();
  await sleep(warmupMs);
  writer.frame(CMD_MARK, 0, 0, Buffer.alloc(0));
  await sleep(durationMs);
  running = false;
  await pumping;
  writer.frame(CMD_END, 0, 0, Buffer.alloc(0));
  writer.flush();
  try {
    const { count, seconds } = await reply;
    const rate = count / seconds;
    return { rate, mbps: (rate * payloadBytes) / 1e6, count, seconds };
  } finally {
    socket.destroy();
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export default [
  { name: 'raw-tcp-echo', server: (opts) => server({ ...opts, echo: true }), client: echoClient },
  { name: 'raw-tcp-oneway', server: (opts) => server({ ...opts, echo: false }), client: onewayClient },
];
