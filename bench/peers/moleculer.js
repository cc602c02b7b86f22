// moleculer@0.14.36 peer: request/response (`server`/`client`) and discovery (`observer`/`node`),
// over the TCP transporter (static urls, no UDP) or the Redis transporter + Redis discoverer.
import moleculer from 'moleculer';
import { LOOPBACK, freePort } from '../lib/net.js';
import { runWindow, payloadString } from '../lib/load.js';

const { ServiceBroker } = moleculer;

const SERVER_NODE = 'bench-server';
const SERVICE_WAIT_MS = 15_000;

/**
 * transport: 'tcp' | 'redis'. tcpPort: our own listening port (TCP only, random when absent);
 * seeds: { nodeID: port } of nodes to reach over TCP.
 */
function brokerOptions({ transport, nodeID, namespace, redisUrl, tcpPort, seeds = {}, heartbeatIntervalMs, heartbeatTimeoutMs }) {
  const opts = { nodeID, namespace, logger: false };
  if (heartbeatIntervalMs) opts.heartbeatInterval = heartbeatIntervalMs / 1000;
  if (heartbeatTimeoutMs) opts.heartbeatTimeout = heartbeatTimeoutMs / 1000;
  if (transport === 'tcp') {
    const urls = Object.entries(seeds).map(([id, port]) => `${LOOPBACK}:${port}/${id}`);
    if (tcpPort) urls.push(`${LOOPBACK}:${tcpPort}/${nodeID}`); // our own entry fixes our port
    opts.transporter = {
      type: 'TCP',
      // The TCP transporter replaces heartbeats by gossip: gossip as often as others heartbeat.
      options: { udpDiscovery: false, urls, gossipPeriod: opts.heartbeatInterval ?? 2 },
    };
  } else if (transport === 'redis') {
    opts.transporter = { type: 'Redis', options: redisUrl };
    opts.registry = { discoverer: { type: 'Redis', options: { redis: redisUrl } } };
  } else {
    throw new Error(`unknown moleculer transport '${transport}'`);
  }
  return opts;
}

async function server(opts) {
  const tcpPort = opts.transport === 'tcp' ? await freePort() : undefined;
  const broker = new ServiceBroker(brokerOptions({ ...opts, nodeID: SERVER_NODE, tcpPort }));
  broker.createService({ name: 'echo', actions: { echo: (ctx) => ctx.params } });
  await broker.start();
  return { tcpPort };
}

let clientBroker; // one broker per client process, reused across measurement points

async function client({ server: info, inflight, payloadBytes, warmupMs, durationMs, ...opts }) {
  if (!clientBroker) {
    const broker = new ServiceBroker(brokerOptions({ ...opts, nodeID: `bench-client-${process.pid}`, seeds: { [SERVER_NODE]: info.tcpPort } }));
    await broker.start();
    await broker.waitForServices('echo', SERVICE_WAIT_MS);
    clientBroker = broker;
  }
  const params = { data: payloadString(payloadBytes) };
  return runWindow({
    inflight,
    warmupMs,
    durationMs,
    request: (slot, done) => clientBroker.call('echo.echo', params).then(() => done(), done),
  });
}

/** Discovery: a broker that reports every node it sees join or leave. */
async function observer(opts, ctx) {
  const nodeID = `observer-${process.pid}`;
  const tcpPort = opts.transport === 'tcp' ? await freePort() : undefined;
  const broker = new ServiceBroker(brokerOptions({ ...opts, nodeID, tcpPort }));
  broker.createService({
    name: 'observer',
    events: {
      // (payload) => ...: Moleculer passes the payload, not a Context, to handlers whose first
      // parameter is not named ctx/context.
      '$node.connected': (payload) => ctx.emit({ type: 'up', node: payload.node.id }),
      '$node.disconnected': (payload) => ctx.emit({ type: 'down', node: payload.node.id }),
    },
  });
  await broker.start();
  return { nodeID, tcpPort };
}

/** Discovery: a plain node with one service; opts.nodeId is the id the observer must report. */
async function node({ nodeId, observer: obs, ...opts }) {
  const broker = new ServiceBroker(brokerOptions({ ...opts, nodeID: nodeId, seeds: { [obs.nodeID]: obs.tcpPort } }));
  broker.createService({ name: 'work', actions: { ping: () => 'pong' } });
  await broker.start();
  return { nodeID: nodeId };
}

export default [
  { name: 'moleculer-rpc', server, client },
  { name: 'moleculer-discovery', observer, node },
];
