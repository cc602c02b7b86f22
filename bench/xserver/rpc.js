// xserver node -> node request/response (rpc and tcp-echo scenarios).
// Server process: an mgr (Redis store: the memory store cannot be shared across processes) and an
// echo ClusterNode. Client process: a ClusterNode that finds the echo node with one(type) and calls
// node.requestCb() (row `xserver`) or node.request() (row `xserver promise`, rpc only) with
// `inflight` requests outstanding. The direct node<->node link carries the traffic; the mgr only
// introduces the two.
import { runWindow, payloadBuffer } from '../lib/load.js';
import { roleContext, startMgr, waitFor, ClusterNode, T_ECHO, T_CALLER, CMD } from './_common.js';

let caller; // client process: one node for every point

async function callerNode(opts) {
  if (caller) return caller;
  const ctx = roleContext(opts);
  await ctx.store.ready(5000);
  const node = new ClusterNode(ctx, { type: T_CALLER, name: 'caller' });
  await node.start();
  await node.ready();
  const target = await waitFor(() => node.one(T_ECHO), 10_000, 'echo node listed');
  // Open the direct link before measuring.
  await node.request(target.id, CMD.ECHO, payloadBuffer(8));
  caller = { node, target: target.id };
  return caller;
}

/** `form`: 'callback' (node.requestCb) or 'promise' (node.request(), what most code awaits). */
function rpcImpl(name, scenario, form) {
  return {
    name,
    scenario,
    needs: ['redis'],
    options: { form },

    async server(opts) {
      const ctx = roleContext(opts);
      await startMgr(ctx);
      const node = new ClusterNode(ctx, { type: T_ECHO, name: 'echo' });
      node.handle(CMD.ECHO, (body) => body);
      await node.start();
      await node.ready();
      return { id: node.id };
    },

    async client(opts) {
      const { node, target } = await callerNode(opts);
      const body = payloadBuffer(opts.payloadBytes);
      return runWindow({
        inflight: opts.inflight,
        warmupMs: opts.warmupMs,
        durationMs: opts.durationMs,
        request:
          opts.form === 'promise'
            ? (slot, done) =>
                node.request(target, CMD.ECHO, body).then(
                  () => done(),
                  (err) => done(err),
                )
            : // The callback form: no promise per request (node.request() is the same path wrapped in one).
              (slot, done) => node.requestCb(target, CMD.ECHO, body, (err) => done(err ?? undefined)),
      });
    },
  };
}

export default [rpcImpl('xserver', ['rpc', 'tcp-echo'], 'callback'), rpcImpl('xserver promise', ['rpc'], 'promise')];
