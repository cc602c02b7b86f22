/**
 * Gateway: terminates game clients (TCP and WebSocket, same frames) and relays between them and
 * the service nodes (SPEC §6). It is itself a cluster node of type 3: ports[1] is its client TCP
 * port, ports[2] its WebSocket port, overload[0] its connection count (login balances on it).
 *
 * This file puts the parts together:
 *   listeners.ts  client ports and the set of open connections
 *   auth.ts       AUTH (token or resume key) and the auth/idle deadlines
 *   sessions.ts   the SessionTable: one session per account, the reconnect grace, generations
 *   routing.ts    client -> node routing, replies, and the relay's node -> gateway commands
 *   handoff.ts    live session handoff to another gateway while this one drains
 *   broadcast-log.ts  numbered broadcasts, so a moved session gets each one once
 */
import type { Logger } from 'pino';
import { statefulTypeNumbers } from '../config/schema.js';
import { NodeType, type RoleContext } from '../context.js';
import { XError } from '../errors.js';
import { ClusterNode } from '../node/node.js';
import { runtimeOf, type NodeRuntime } from '../node/internal.js';
import { ClientAuth } from './auth.js';
import type { ClientConnection } from './client-conn.js';
import { ClientListeners } from './listeners.js';
import type { NodeChannel } from './node-channel.js';
import { type AccountRoute, Router, type GatewaySessions } from './routing.js';
import { SessionTable } from './sessions.js';
import { SessionHandoff } from './handoff.js';
import { BroadcastLog } from './broadcast-log.js';
import { tlsMaterialFor } from '../tls.js';
import { hostPort } from '../config/addresses.js';
import { clientEndpoints } from '../node/endpoints.js';

export class Gateway {
  readonly node: ClusterNode;
  private readonly rt: NodeRuntime;
  private readonly log: Logger;
  private readonly cfg: RoleContext['config'];
  private readonly listeners: ClientListeners;
  private readonly sessions: GatewaySessions;
  private readonly auth: ClientAuth;
  private readonly router: Router;
  private readonly handoff: SessionHandoff;
  private readonly retireCounters: (() => void)[];
  private stopping = false;

  constructor(ctx: RoleContext) {
    this.cfg = ctx.config;
    const g = ctx.config.gateway;
    this.node = new ClusterNode(ctx, { type: NodeType.GATEWAY, name: 'gateway' });
    this.rt = runtimeOf(this.node);
    this.log = this.node.log;
    // Auth and routing use the node only through this channel.
    const channel: NodeChannel = this.rt;
    const mm = ctx.metrics;
    const m = {
      connections: mm.gauge('gateway_connections', 'Open client connections'),
      sessions: mm.gauge('gateway_sessions', 'Client sessions (connected or within the reconnect grace)'),
      refused: mm.counter('gateway_refused_total', 'Client frames, connections or messages refused', ['reason']),
      lost: mm.counter('gateway_accounts_lost_total', 'Accounts reported lost to nodes'),
      resumed: mm.counter('gateway_sessions_resumed_total', 'Sessions resumed within the grace period'),
      movedIn: mm.counter('gateway_sessions_moved_in_total', 'Sessions taken over from a draining gateway'),
      movedOut: mm.counter('gateway_sessions_moved_out_total', 'Sessions handed over to another gateway while draining'),
    };
    const refused = (reason: string): void => m.refused.inc({ reason });

    this.sessions = new SessionTable<ClientConnection, AccountRoute>(
      {
        onExpired: (s) => this.router.accountLost(s),
        onBufferEvicted: () => refused('resume_buffer_full'),
        onCountChanged: (n) => m.sessions.set(n),
      },
      { graceMs: g.reconnectGraceMs, bufferMax: g.resumeBufferMax, bufferMaxBytes: g.resumeBufferMaxBytes },
    );
    const broadcasts = new BroadcastLog({ maxEntries: g.broadcastLogMax, maxBytes: g.broadcastLogBytes, skipTtlMs: g.handoffTimeoutMs });
    this.router = new Router(
      {
        config: ctx.config,
        store: ctx.store,
        node: channel,
        sessions: this.sessions,
        log: this.log,
        onAuth: (conn, f) => this.auth.onAuthFrame(conn, f),
        refused,
        accountLost: () => m.lost.inc(),
        handoff: () => this.handoff,
        broadcasts,
      },
      statefulTypeNumbers(ctx.config),
    );
    this.auth = new ClientAuth({
      settings: g,
      store: ctx.store,
      node: channel,
      sessions: this.sessions,
      log: this.log,
      connections: () => this.listeners.connections(),
      onLogin: (s) => this.router.announceAll(s),
      onResumed: () => m.resumed.inc(),
      claimHandoff: (conn, token) => this.handoff.claim(conn, token),
      refused,
    });
    this.handoff = new SessionHandoff({
      settings: g,
      store: ctx.store,
      node: channel,
      sessions: this.sessions,
      log: this.log,
      welcome: (conn, s) => this.auth.welcomeMoved(conn, s),
      refuse: (conn, err) => this.auth.refuse(conn, err),
      announce: (s) => this.router.announceAll(s),
      deliver: (body, sourceType) => this.router.deliverMoved(body, sourceType),
      broadcasts,
      refused,
      onMovedIn: () => m.movedIn.inc(),
      onMovedOut: () => m.movedOut.inc(),
    });
    const tlsMaterial = g.tls ? tlsMaterialFor(ctx.config.tls, this.log) : undefined;
    this.listeners = new ClientListeners(
      g,
      {
        onFrame: (c, f) => this.router.onClientFrame(c, f),
        onClose: (c, err) => {
          // The one limit enforced where the connection writes, so counted here.
          if (err?.code === 'SLOW_CONSUMER') refused('slow_consumer');
          this.onClientClose(c, err);
        },
        onCountChanged: (n) => {
          m.connections.set(n);
          this.node.setOverload(0, n);
        },
        refused,
      },
      tlsMaterial,
    );
    this.node.on('left', (peer) => this.router.nodeLeft(peer.id));
    // Requests still unanswered when nothing more can come from their node fail now, typed.
    this.rt.onPeerLinkGone((id) => {
      this.router.failInflight(id);
      broadcasts.forgetSource(id);
    });
    this.rt.setAccountCounter(() => this.router.countAccounts());
    // Per-message counts are plain numbers read at scrape time (no label hashing per message).
    const count = this.router.count;
    this.rt.setStatsOverride(() => ({
      connections: this.listeners.size,
      messagesIn: count.inbound,
      messagesOut: count.outbound,
      latency: this.router.latency.take(),
      accountsLost: count.accountsLost,
    }));
    this.retireCounters = [
      mm.polledCounter('gateway_client_messages_in_total', 'Client messages routed to nodes').add({}, () => count.inbound),
      mm.polledCounter('gateway_client_messages_out_total', 'Messages delivered to clients').add({}, () => count.outbound),
    ];
  }

  get tcpPort(): number {
    return this.listeners.tcpPort;
  }

  get wsPort(): number {
    return this.listeners.wsPort;
  }

  get connectionCount(): number {
    return this.listeners.size;
  }

  /** Client sessions held here (connected, or away within the reconnect grace). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /**
   * Drains: the member is listed as draining (login sends nobody here), and every attached client
   * is asked to move to another live gateway (GOING_AWAY), when there is one. Bound: the sessions
   * still here plus those handed over whose move is not confirmed yet.
   */
  drain(): { what: string; bound(): number } {
    const first = !this.rt.draining;
    this.rt.startDraining();
    if (first) this.handoff.offerAll();
    return { what: 'sessions', bound: () => this.sessions.size + this.handoff.moving };
  }

  async start(): Promise<void> {
    await this.listeners.listen();
    this.rt.setExtraPorts([this.tcpPort, this.wsPort]);
    const pub = clientEndpoints(this.rt.info());
    const bind = this.cfg.gateway.host;
    this.rt.addListener('tcp', hostPort(bind, this.tcpPort), hostPort(pub.host, pub.tcpPort));
    this.rt.addListener('ws', hostPort(bind, this.wsPort), pub.wsUrl);
    this.node.setOverload(0, 0);
    await this.node.start();
    this.auth.start();
    this.log.info(
      { tcpPort: this.tcpPort, wsPort: this.wsPort, publicTcp: hostPort(pub.host, pub.tcpPort), publicUrl: pub.wsUrl },
      'gateway listening for clients',
    );
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.auth.stop();
    this.handoff.stop();
    this.listeners.close(new XError('SHUTTING_DOWN', 'gateway is shutting down; log in again'));
    this.sessions.stop();
    await this.node.stop();
    for (const retire of this.retireCounters) retire();
  }

  /** True while the account has a live client connection here. */
  isConnected(account: string): boolean {
    const c = this.sessions.get(account)?.conn;
    return c !== undefined && c !== null && !c.closed;
  }

  statusJson(): Record<string, unknown> {
    return {
      connections: this.listeners.size,
      sessions: this.sessions.size,
      attached: this.sessions.attachedCount,
      tcpPort: this.tcpPort,
      wsPort: this.wsPort,
    };
  }

  private onClientClose(conn: ClientConnection, err: XError | undefined): void {
    this.auth.forget(conn);
    const s = this.sessions.detach(conn);
    if (s) this.log.debug({ account: s.account, reason: err?.code }, 'client disconnected; waiting for a reconnect');
  }
}
