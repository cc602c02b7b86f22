/**
 * In-process cluster for gateway/relay tests: real TCP, real Redis, roles in this process.
 * Each call uses its own cluster name; `cleanup()` stops everything and deletes the keys.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { applyTimings, clusterKeyPatterns, deleteKeys, waitFor } from '../../testkit/index.js';
import { defaultConfig, type XConfig } from '../../src/config/schema.js';
import { silentLogger } from '../../src/log.js';
import { Metrics } from '../../src/metrics.js';
import { MgrServer } from '../../src/mgr/mgr.js';
import { createRoleContext, stopInOrder, type StopStep } from '../../src/roles.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { FrameDecoder, encodeFrame, type Frame } from '../../src/protocol/frame.js';
import type { LoginResult } from '../../src/client/index.js';
import type { Gateway } from '../../src/gateway/gateway.js';
import { encodeAuth } from '../../src/protocol/client-messages.js';
import { Cmd } from '../../src/protocol/commands.js';
import type { SessionStore } from '../../src/store/store.js';

export const REDIS_URL = process.env.XSERVER_TEST_REDIS ?? 'redis://127.0.0.1:6379';

export function testConfig(cluster: string, over: (c: XConfig) => void = () => {}): XConfig {
  // The kit's fast timings, as the process harnesses use them (testkit/timings.js).
  const c = applyTimings(defaultConfig());
  c.cluster = cluster;
  c.redisUrl = REDIS_URL;
  c.mgr.port = 0;
  c.login.port = 0;
  c.bindHost = '127.0.0.1';
  c.gateway.host = '127.0.0.1';
  over(c);
  return c;
}

export async function startCluster(over?: (c: XConfig) => void) {
  const cluster = `t-${randomBytes(5).toString('hex')}`;
  const config = testConfig(cluster, over);
  const store = new RedisStore(config.redisUrl, cluster);
  await store.ready(2000);
  const ctx = createRoleContext({ config, store, logger: silentLogger(), metrics: new Metrics() });
  const stops: StopStep[] = [];
  // Role start-up: the mgr here, the rest through own() in the tests.
  const mgr = new MgrServer(ctx);
  await mgr.start();
  await waitFor(() => mgr.isActive, { timeoutMs: 5000, what: 'mgr active' });
  stops.push({ name: 'mgr', stop: () => mgr.stop() });
  return {
    cluster,
    config,
    store,
    ctx,
    mgr,
    /** Registers something to stop at cleanup (stopped in reverse order). */
    own<T extends { stop(): Promise<unknown> }>(x: T): T {
      stops.push({ name: x.constructor.name, stop: () => x.stop() });
      return x;
    },
    async cleanup(): Promise<void> {
      await stopInOrder([...stops.reverse(), { name: 'store', stop: () => store.close() }], ctx.logger);
      await deleteKeys(REDIS_URL, clusterKeyPatterns(cluster));
    },
  };
}

/** Re-check interval of the in-process waits: everything is in this process, checks are cheap. */
const INPROC_POLL_MS = 5;

/** The kit's waitFor in the positional form the in-process tests use. */
export async function waitUntil(cond: () => boolean | undefined, timeoutMs: number, what: string): Promise<void> {
  await waitFor(() => Boolean(cond()), { timeoutMs, what, pollMs: INPROC_POLL_MS });
}

/** A bare TCP game client speaking the frame protocol, for protocol-level tests. */
export class RawClient {
  readonly frames: Frame[] = [];
  closed = false;
  private readonly socket: net.Socket;
  private readonly decoder = new FrameDecoder(16 * 1024 * 1024, (f) => this.frames.push({ ...f, body: Buffer.from(f.body) }));

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (c) => this.decoder.push(c));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => {});
  }

  static connect(port: number, opts: { paused?: boolean } = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => {
        const c = new RawClient(s);
        if (opts.paused) s.pause();
        resolve(c);
      });
      s.once('error', reject);
    });
  }

  get raw(): net.Socket {
    return this.socket;
  }

  send(cmd: number, body: Uint8Array | string = new Uint8Array(0), flags = 0, rid = 0): void {
    this.socket.write(encodeFrame(cmd, typeof body === 'string' ? Buffer.from(body) : body, flags, rid));
  }

  async next(pred: (f: Frame) => boolean, timeoutMs = 3000): Promise<Frame> {
    return waitFor(() => this.frames.find(pred), { timeoutMs, what: 'a matching frame', pollMs: INPROC_POLL_MS });
  }

  json(f: Frame): Record<string, unknown> {
    return JSON.parse(Buffer.from(f.body).toString()) as Record<string, unknown>;
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * What the login service hands out, without the login service: a single-use token for `account`
 * on `gateway`, written straight into the store, as a LoginResult the SDK can connect() with.
 */
export async function issueLogin(
  store: Pick<SessionStore, 'putToken'>,
  gateway: Gateway,
  account: string,
  allocations: Record<string, string> = {},
  ttlMs = 10_000,
): Promise<LoginResult> {
  const token = randomBytes(16).toString('base64url');
  const generation = Date.now();
  await store.putToken(token, { account, gatewayId: gateway.node.id, generation, allocations, expiresAt: Date.now() + ttlMs }, ttlMs);
  return {
    token,
    account,
    generation,
    expiresInMs: ttlMs,
    gateway: { id: gateway.node.id, host: '127.0.0.1', tcpPort: gateway.tcpPort, wsUrl: `ws://127.0.0.1:${gateway.wsPort}/` },
    allocations,
  };
}

/** A raw TCP client authenticated with a token from issueLogin (WELCOME received). */
export async function rawLogin(store: Pick<SessionStore, 'putToken'>, gateway: Gateway, account: string): Promise<RawClient> {
  const lr = await issueLogin(store, gateway, account);
  const cl = await RawClient.connect(gateway.tcpPort);
  cl.send(Cmd.AUTH, encodeAuth({ token: lr.token }));
  await cl.next((f) => f.cmd === Cmd.WELCOME);
  return cl;
}
