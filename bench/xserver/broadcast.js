// Roles for the `broadcast` scenario (scenarios/10-broadcast.js).
// - source: mgr + the "world" ClusterNode (type 4, relay enabled); start() broadcasts with
//   broadcastToClients() at a fixed rate: one RELAY_BROADCAST_CLIENTS frame per gateway per message.
// - server: one Gateway (rate limits lifted as in ws-clients); two of them, one process each.
// - clients: raw `ws` connections, each authenticated with a token written to the store, spread
//   round-robin over the gateways; every broadcast frame is tallied (lib/broadcast.js).
import { Tally, messageBody, startSender } from '../lib/broadcast.js';
import { roleContext, startMgr, waitFor, ClusterNode, Gateway, runtimeOf, fdLimit, T_ECHO, CMD } from './_common.js';
import { gatewayConfig, openClients } from './ws.js';

/** What the clients see: type 4 × gateway.cmdOffset (1000) + the node's command. */
const CLIENT_CMD = T_ECHO * 1000 + CMD.DATA;
const CONNECT_PARALLELISM = 100;
const LINK_TIMEOUT_MS = 15_000;

let world;
let gateway;
let clientCtx;
const held = [];
const tally = new Tally();
let sender;

export default {
  name: 'xserver',
  scenario: 'broadcast',
  needs: ['redis'],

  async source(opts) {
    const ctx = roleContext(opts);
    await startMgr(ctx);
    world = new ClusterNode(ctx, { type: T_ECHO, name: 'world' });
    world.enableRelay();
    await world.start();
    await world.ready();
    return {};
  },

  async server(opts) {
    const ctx = roleContext(opts, gatewayConfig);
    await ctx.store.ready(5000);
    gateway = new Gateway(ctx);
    await gateway.start();
    await gateway.node.ready();
    return { host: '127.0.0.1', gatewayId: gateway.node.id, wsPort: gateway.wsPort, fdLimit: fdLimit() };
  },

  async connectSource({ servers }) {
    const rt = runtimeOf(world);
    await waitFor(() => servers.every((s) => rt.isLinked(s.gatewayId)), LINK_TIMEOUT_MS, 'the world node linked to every gateway');
    return { links: servers.length };
  },

  async serverClients() {
    return { connections: gateway.connectionCount };
  },

  async clients(opts) {
    clientCtx ??= roleContext(opts);
    await clientCtx.store.ready(5000);
    const { servers, count } = opts;
    const onPush = (cmd, body) => {
      if (cmd === CLIENT_CMD) tally.received(body);
    };
    const missing = count - held.length;
    const per = servers.map((_, i) => Math.floor(missing / servers.length) + (i < missing % servers.length ? 1 : 0));
    const opened = await Promise.all(
      servers.map((s, i) => openClients(clientCtx.store, s, 'ws', per[i], 1, CONNECT_PARALLELISM / servers.length, onPush)),
    );
    held.push(...opened.flat());
    return { opened: held.length };
  },

  async collect(window) {
    tally.window(window);
  },

  async results() {
    return tally.result();
  },

  async start({ rate, payloadBytes }) {
    sender = startSender(rate, (seq) => world.broadcastToClients(CMD.DATA, messageBody(payloadBytes, seq)));
  },

  async stop() {
    return { sent: sender?.stop() ?? 0 };
  },
};
