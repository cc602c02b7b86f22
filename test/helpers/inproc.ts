/**
 * In-process cluster for gateway/relay tests: real TCP, real Redis, roles in this process.
 * Each call uses its own cluster name; `cleanup()` stops everything and deletes the keys.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { deleteKeys } from './machine.js';
import { defaultConfig, type XConfig } from '../../src/config/schema.js';
import type { RoleContext } from '../../src/context.js';
import { silentLogger } from '../../src/log.js';
import { Metrics } from '../../src/metrics.js';
import { MgrServer } from '../../src/mgr/mgr.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { FrameDecoder, encodeFrame, type Frame } from '../../src/wire/frame.js';

export const REDIS_URL = process.env.XSERVER_TEST_REDIS ?? 'redis://127.0.0.1:6379';

export function testConfig(cluster: string, over: (c: XConfig) => void = () => {}): XConfig {
  const c = defaultConfig();
  c.cluster = cluster;
  c.redisUrl = REDIS_URL;
  c.mgr.port = 0;
  c.mgr.settleGraceMs = 300;
  c.mgr.updateMinIntervalMs = 0;
  c.node.updateIntervalMs = 20;
  c.link.heartbeatIntervalMs = 200;
  c.link.heartbeatTimeoutMs = 1000;
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
  const ctx: RoleContext = { config, store, logger: silentLogger(), metrics: new Metrics() };
  const stops: (() => Promise<unknown>)[] = [];
  const mgr = new MgrServer(ctx);
  await mgr.start();
  await waitUntil(() => mgr.isActive, 5000, 'mgr active');
  stops.push(() => mgr.stop());
  return {
    cluster,
    config,
    store,
    ctx,
    mgr,
    /** Registers something to stop at cleanup (stopped in reverse order). */
    own<T extends { stop(): Promise<unknown> }>(x: T): T {
      stops.push(() => x.stop());
      return x;
    },
    async cleanup(): Promise<void> {
      for (const s of stops.reverse()) await s().catch(() => {});
      await store.close().catch(() => {});
      await deleteKeys(REDIS_URL, `xs:{${cluster}}:*`);
    },
  };
}

export async function waitUntil(cond: () => boolean | undefined, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
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
    let found: Frame | undefined;
    await waitUntil(() => (found = this.frames.find(pred)) !== undefined, timeoutMs, 'a matching frame');
    return found!;
  }

  json(f: Frame): Record<string, unknown> {
    return JSON.parse(Buffer.from(f.body).toString()) as Record<string, unknown>;
  }

  close(): void {
    this.socket.destroy();
  }
}
