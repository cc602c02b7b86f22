// What users run: client -> gateway -> service node -> gateway -> client echo, each client logged in
// through the real login service (POST /login, an account created by login.autoRegister) and
// speaking through the real SDK (XClient, WebSocket), with its promise request(). The "xserver"
// rows of the same scenarios use hand-built frames and tokens written into the store: together
// they separate the gateway's cost from the SDK's and login's.
import { XClient, login } from '../../dist/client/index.js';
import { LoginServer } from '../../dist/login/login.js';
import { runWindow, payloadBuffer } from '../lib/load.js';
import { ClusterNode, runtimeOf, waitFor, T_ECHO, CMD } from './_common.js';
import { startGatewayStack } from './ws.js';

const LOGIN_PARALLELISM = 20;
/** Every client logs in (one scrypt verification each, by design slow): beyond this the logins would take the point's time. */
const MAX_CLIENTS = 200;

let seq = 0;

export default {
  name: 'xserver sdk',
  scenario: ['ws-echo', 'ws-clients'],
  needs: ['redis'],

  async server(opts) {
    const { ctx, gateway } = await startGatewayStack(opts, (c) => {
      c.login.host = '127.0.0.1';
      c.login.port = 0;
      c.login.autoRegister = true;
      c.login.maxFailures = 1e9;
    });
    const node = new ClusterNode(ctx, { type: T_ECHO, name: 'echo' });
    node.enableRelay();
    node.handleClient(CMD.ECHO, (data) => data);
    await node.start();
    await node.ready();
    const loginServer = new LoginServer(ctx);
    await loginServer.start();
    await loginServer.whenRegistered(10_000);
    await waitFor(
      () => runtimeOf(node).isLinked(gateway.node.id) && loginServer.node.has(gateway.node.id),
      10_000,
      'echo node and login see the gateway',
    );
    return { loginUrl: `http://127.0.0.1:${loginServer.port}` };
  },

  async client(opts) {
    const clients = opts.clients ?? 1;
    if (clients > MAX_CLIENTS) throw new Error(`not measured above ${MAX_CLIENTS} clients: each logs in through scrypt`);
    const window = opts.window ?? opts.inflight;
    const conns = [];
    try {
      while (conns.length < clients) {
        const batch = Math.min(LOGIN_PARALLELISM, clients - conns.length);
        conns.push(
          ...(await Promise.all(
            Array.from({ length: batch }, async () => {
              const c = new XClient({ requestTimeoutMs: 30_000 });
              await c.connect(await login(opts.server.loginUrl, `sdk-${process.pid}-${++seq}`, 'bench-password'));
              return c;
            }),
          )),
        );
      }
      const body = payloadBuffer(opts.payloadBytes);
      const cmd = T_ECHO * 1000 + CMD.ECHO;
      return await runWindow({
        inflight: clients * window,
        warmupMs: opts.warmupMs,
        durationMs: opts.durationMs,
        request(slot, done) {
          conns[slot % clients].request(cmd, body).then(() => done(), done);
        },
      });
    } finally {
      await Promise.all(conns.map((c) => c.close()));
    }
  },
};
