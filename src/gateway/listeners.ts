/**
 * The gateway's client listeners: a TCP port and a WebSocket port speaking the same frames
 * (SPEC §6). They admit connections up to gateway.maxConnections and keep the set of open ones;
 * what a connection says goes to the host.
 */
import net from 'node:net';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { WebSocketServer } from 'ws';
import type { XConfig } from '../config/schema.js';
import { XError } from '../errors.js';
import type { TlsMaterial } from '../tls.js';
import type { Frame } from '../protocol/frame.js';
import { TcpClientConnection, WsClientConnection, type ClientConnHost, type ClientConnection, type ClientLimits } from './client-conn.js';

/** How often the per-address accept buckets that refilled are forgotten. */
const BUCKET_SWEEP_MS = 1000;

/** Node checks request deadlines on a timer; no more often than this, whatever the auth deadline. */
const MIN_UPGRADE_CHECK_MS = 20;

/**
 * Hard cap of ws on one WebSocket message: gateway.maxFrame is checked by us (an ERROR frame says
 * why); this only stops a message far beyond it (twice, plus room for the frame header) from
 * being buffered whole.
 */
const WS_HARD_CAP_FACTOR = 2;
const WS_HARD_CAP_SLACK = 64;

export interface ListenerHost extends ClientConnHost {
  /** The number of open connections changed (login balances gateways on it). */
  onCountChanged(count: number): void;
  /** A connection was refused, by reason (a counter). */
  refused(reason: string): void;
}

export class ClientListeners {
  private readonly tcp: net.Server;
  private readonly httpServer: http.Server;
  private stopReload: () => void = () => {};
  private readonly wss: WebSocketServer;
  private readonly conns = new Set<ClientConnection>();
  private closing = false;

  /** Unauthenticated connections per client address (gateway.maxPendingPerAddress); no entry at 0. */
  private readonly pending = new Map<string, number>();
  /** Connections not yet authenticated, so a close knows whether to count it down. */
  private readonly unauthenticated = new WeakSet<ClientConnection>();
  /** New connections per address (gateway.acceptRatePerAddress): a token bucket, dropped once full again. */
  private readonly acceptBuckets = new Map<string, { tokens: number; at: number }>();
  private bucketSweep: ReturnType<typeof setInterval> | null = null;

  /** Connections report here first, so the set is current before the host hears of a close. */
  private readonly connHost: ClientConnHost = {
    onAuthenticated: (c) => this.settle(c),
    onFrame: (c: ClientConnection, f: Frame) => this.host.onFrame(c, f),
    onClose: (c: ClientConnection, err: XError | undefined) => {
      this.settle(c);
      this.conns.delete(c);
      this.host.onCountChanged(this.conns.size);
      this.host.onClose(c, err);
    },
  };

  constructor(
    private readonly settings: XConfig['gateway'],
    private readonly host: ListenerHost,
    /** With gateway.tls: TLS over TCP and wss://, reloaded when the files change. */
    private readonly tlsMaterial?: TlsMaterial,
  ) {
    const g = settings;
    const limits: ClientLimits = {
      maxFrame: g.maxFrame,
      preAuthMaxFrame: g.preAuthMaxFrame,
      maxOutboundBytes: g.maxOutboundBytes,
      ratePerSec: g.rateLimitPerSec,
      burst: g.rateBurst,
      wsBatchBytes: g.wsBatchBytes,
      wsMaxMessage: g.maxFrame * WS_HARD_CAP_FACTOR + WS_HARD_CAP_SLACK,
    };
    const onTcp = (s: net.Socket): void => this.accept(new TcpClientConnection(s, this.connHost, limits));
    // A WebSocket upgrade (and a TLS handshake) is part of authenticating: a client that has not
    // finished it within gateway.authTimeoutMs is cut off like one that sends no AUTH.
    const httpOptions = { connectionsCheckingInterval: Math.max(MIN_UPGRADE_CHECK_MS, Math.floor(g.authTimeoutMs / 4)) };
    const onHttp = (_req: http.IncomingMessage, res: http.ServerResponse): void => {
      res.writeHead(426, { 'content-type': 'text/plain' }).end('WebSocket only\n');
    };
    if (tlsMaterial) {
      const secure = { ...tlsMaterial.options, handshakeTimeout: g.authTimeoutMs };
      const tcp = tls.createServer(secure, onTcp);
      const web = https.createServer({ ...secure, ...httpOptions }, onHttp);
      this.stopReload = tlsMaterial.onReload((o) => {
        tcp.setSecureContext({ ...o });
        web.setSecureContext({ ...o });
      });
      this.tcp = tcp;
      this.httpServer = web;
    } else {
      this.tcp = net.createServer(onTcp);
      this.httpServer = http.createServer(httpOptions, onHttp);
    }
    this.httpServer.headersTimeout = g.authTimeoutMs;
    this.httpServer.requestTimeout = g.authTimeoutMs;
    // ws enforces a hard cap at twice our limit; below it we answer with our own ERROR frame.
    this.wss = new WebSocketServer({
      server: this.httpServer,
      maxPayload: limits.wsMaxMessage,
      perMessageDeflate: false,
    });
    this.wss.on('connection', (ws, req) => this.accept(new WsClientConnection(ws, req.socket, this.connHost, limits)));
  }

  get tcpPort(): number {
    return (this.tcp.address() as net.AddressInfo | null)?.port ?? 0;
  }

  get wsPort(): number {
    return (this.httpServer.address() as net.AddressInfo | null)?.port ?? 0;
  }

  get size(): number {
    return this.conns.size;
  }

  connections(): Iterable<ClientConnection> {
    return this.conns;
  }

  async listen(): Promise<void> {
    const g = this.settings;
    await listen(this.tcp, g.tcpPort, g.host, g.listenBacklog);
    await listen(this.httpServer, g.wsPort, g.host, g.listenBacklog);
    this.bucketSweep = setInterval(() => this.sweepBuckets(), BUCKET_SWEEP_MS);
    this.bucketSweep.unref();
  }

  /** Refuses new connections, closes the open ones with `err`, and the ports. */
  close(err: XError): void {
    this.closing = true;
    this.stopReload();
    if (this.bucketSweep) clearInterval(this.bucketSweep);
    this.bucketSweep = null;
    for (const c of [...this.conns]) c.close(err);
    this.tcp.close();
    this.wss.close();
    this.httpServer.close();
    this.httpServer.closeAllConnections?.();
  }

  private accept(conn: ClientConnection): void {
    const g = this.settings;
    if (this.closing || this.conns.size >= g.maxConnections) {
      this.host.refused('too_many_connections');
      conn.close(new XError('TOO_MANY_CONNECTIONS', `gateway is full (${g.maxConnections} connections)`));
      return;
    }
    if (!this.takeAcceptToken(conn.address)) {
      this.host.refused('accept_rate');
      conn.close(new XError('RATE_LIMITED', `more than ${g.acceptRatePerAddress} new connections/s from ${conn.address}`));
      return;
    }
    const pending = this.pending.get(conn.address) ?? 0;
    if (pending >= g.maxPendingPerAddress) {
      this.host.refused('too_many_pending');
      conn.close(new XError('TOO_MANY_CONNECTIONS', `${pending} connections from ${conn.address} have not authenticated yet`));
      return;
    }
    this.pending.set(conn.address, pending + 1);
    this.unauthenticated.add(conn);
    this.conns.add(conn);
    this.host.onCountChanged(this.conns.size);
  }

  /** The connection authenticated or closed: it no longer counts as pending for its address. */
  private settle(conn: ClientConnection): void {
    if (!this.unauthenticated.delete(conn)) return;
    const n = (this.pending.get(conn.address) ?? 1) - 1;
    if (n <= 0) this.pending.delete(conn.address);
    else this.pending.set(conn.address, n);
  }

  private takeAcceptToken(address: string): boolean {
    const rate = this.settings.acceptRatePerAddress;
    const now = performance.now();
    const b = this.acceptBuckets.get(address) ?? { tokens: rate, at: now };
    b.tokens = Math.min(rate, b.tokens + ((now - b.at) * rate) / 1000);
    b.at = now;
    this.acceptBuckets.set(address, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Forgets the buckets that have refilled: the map holds only addresses that connected within the last second or so. */
  private sweepBuckets(): void {
    const rate = this.settings.acceptRatePerAddress;
    const now = performance.now();
    for (const [addr, b] of this.acceptBuckets) if (b.tokens + ((now - b.at) * rate) / 1000 >= rate) this.acceptBuckets.delete(addr);
  }
}

function listen(server: net.Server | http.Server, port: number, host: string, backlog: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
