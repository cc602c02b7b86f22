// xserver node -> node one-way pipelined sends (tcp-oneway scenario).
// Server process: mgr + receiver node that counts DATA messages between a MARK and an END request
// (receiver-side rate, like the raw reference). Client process: a sender node that calls
// node.sendById() as fast as the link drains.
//
// Flow control uses only the public API: every BATCH messages the sender issues an ACK request on the
// same link (FIFO per sender->receiver pair, so its reply means the batch before it was handled) and
// keeps at most WINDOW_BYTES of payload unacknowledged. That plays the role of the raw client's
// `writableNeedDrain`: sendById() itself never blocks, it refuses (returns false) once the link holds
// link.maxOutboundBytes, and a refused message would be a lost one.
import { payloadBuffer } from '../lib/load.js';
import { Fifo } from '../lib/load.js';
import { roleContext, startMgr, waitFor, tick, sleep, ClusterNode, T_ECHO, T_CALLER, CMD } from './_common.js';

const BATCH = 256;
const WINDOW_BYTES = 4 * 1024 * 1024;
const EMPTY = new Uint8Array(0);

let sender;

async function senderNode(opts) {
  if (sender) return sender;
  const ctx = roleContext(opts);
  await ctx.store.ready(5000);
  const node = new ClusterNode(ctx, { type: T_CALLER, name: 'sender' });
  await node.start();
  await node.ready();
  const target = await waitFor(() => node.one(T_ECHO), 10_000, 'receiver listed');
  await node.request(target.id, CMD.ACK, EMPTY); // open the link
  sender = { node, target: target.id };
  return sender;
}

export default {
  name: 'xserver',
  scenario: 'tcp-oneway',
  needs: ['redis'],

  async server(opts, ctx) {
    const rctx = roleContext(opts);
    await startMgr(rctx);
    const node = new ClusterNode(rctx, { type: T_ECHO, name: 'receiver' });
    let count = 0;
    let markCount = 0;
    let markTime = 0;
    node.handle(CMD.DATA, () => {
      count++;
    });
    node.handle(CMD.ACK, () => EMPTY);
    node.handle(CMD.MARK, () => {
      markCount = count;
      markTime = ctx.now();
    });
    node.handle(CMD.END, () => {
      const reply = Buffer.alloc(16);
      reply.writeDoubleBE(count - markCount, 0);
      reply.writeDoubleBE((ctx.now() - markTime) / 1000, 8);
      return reply;
    });
    await node.start();
    await node.ready();
    return { id: node.id };
  },

  async client(opts) {
    const { node, target } = await senderNode(opts);
    const body = payloadBuffer(opts.payloadBytes);
    const windowBytes = opts.windowBytes ?? WINDOW_BYTES;
    // Big bodies: smaller batches, so at least two fit in the window (the ACK keeps the pipe full).
    const batch = Math.max(1, Math.min(BATCH, Math.floor(windowBytes / (2 * opts.payloadBytes))));
    const maxBatches = Math.max(2, Math.floor(windowBytes / (batch * opts.payloadBytes)));
    const acks = new Fifo();
    let refused = 0;
    let ackErrors = 0;
    let running = true;

    const pump = async () => {
      for (let iter = 1; running; iter++) {
        for (let i = 0; i < batch; i++) if (!node.sendById(target, CMD.DATA, body)) refused++;
        acks.push(node.request(target, CMD.ACK, EMPTY).catch(() => void ackErrors++));
        if (acks.size >= maxBatches) await acks.shift();
        else if ((iter & 15) === 0) await tick(); // let the link flush and timers run
      }
      while (acks.size) await acks.shift();
    };
    const pumping = pump();
    await sleep(opts.warmupMs);
    node.sendById(target, CMD.MARK, EMPTY);
    await sleep(opts.durationMs);
    running = false;
    await pumping;
    const reply = Buffer.from(await node.request(target, CMD.END, EMPTY, { timeoutMs: 30_000 }));
    const count = reply.readDoubleBE(0);
    const seconds = reply.readDoubleBE(8);
    const rate = count / seconds;
    return { rate, mbps: (rate * opts.payloadBytes) / 1e6, count, seconds, errors: refused + ackErrors };
  },
};
