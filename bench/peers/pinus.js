// pinus-rpc@1.7.4 peer: RpcClient -> Gateway echo service, with the TCP mailbox or the default MQTT one.
import { LOOPBACK, freePort, waitForPort } from '../lib/net.js';
import { runWindow, payloadString } from '../lib/load.js';
import pinusRpc from 'pinus-rpc';

const { createServer, createClient, createTcpAcceptor, createDefaultAcceptor, createTcpMailBox, createMqttMailBox } = pinusRpc;

const SERVER_ID = 'bench-server-1';
const SERVER_TYPE = 'bench';

const transports = {
  tcp: { acceptorFactory: createTcpAcceptor, mailboxFactory: createTcpMailBox },
  mqtt: { acceptorFactory: createDefaultAcceptor, mailboxFactory: createMqttMailBox },
};

function transport(name) {
  const t = transports[name];
  if (!t?.acceptorFactory || !t?.mailboxFactory) throw new Error(`n/a: pinus-rpc has no '${name}' mailbox/acceptor`);
  return t;
}

async function server({ mailbox }) {
  const port = await freePort(); // pinus-rpc rejects port 0
  const services = { user: { echo: { echo: (msg) => msg } } };
  const gateway = createServer({ port, paths: [], services, acceptorFactory: transport(mailbox).acceptorFactory });
  let failure;
  gateway.on('error', (err) => (failure ??= err));
  gateway.start(); // listens asynchronously and emits no 'listening': wait until the port accepts
  await waitForPort(LOOPBACK, port);
  if (failure) throw failure;
  return { host: LOOPBACK, port };
}

async function client({ server: addr, mailbox, inflight, payloadBytes, warmupMs, durationMs }) {
  const rpc = createClient({
    mailboxFactory: transport(mailbox).mailboxFactory,
    context: { serverId: 'bench-client-1' },
  });
  await new Promise((resolve, reject) => rpc.start((err) => (err ? reject(err) : resolve())));
  rpc.addServer({ id: SERVER_ID, serverType: SERVER_TYPE, host: addr.host, port: addr.port });
  const msg = { namespace: 'user', serverType: SERVER_TYPE, service: 'echo', method: 'echo', args: [payloadString(payloadBytes)] };
  const call = (done) => rpc.rpcInvoke(SERVER_ID, msg, (err) => done(err));
  await new Promise((resolve, reject) => call((err) => (err ? reject(err) : resolve()))); // connect
  try {
    return await runWindow({ inflight, warmupMs, durationMs, request: (slot, done) => call(done) });
  } finally {
    rpc.stop(true);
  }
}

export default [{ name: 'pinus-rpc', server, client }];
