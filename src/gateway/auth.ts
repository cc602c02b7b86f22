/**
 * Client authentication (SPEC §6.2): the first frame is AUTH with a single-use token from the
 * login service, a resume key of a session within its reconnect grace, or the handoff token of a
 * GOING_AWAY (handoff.ts takes the session over from the gateway that issued it). Also the deadlines of
 * every connection: AUTH within gateway.authTimeoutMs, then a frame at least every
 * gateway.idleTimeoutMs.
 *
 * A connection is `new` until its AUTH, `authenticating` while the store answers (no deadline
 * then: the store's own timeouts bound it), and authenticated once the SessionTable attached it.
 */
import type { Logger } from 'pino';
import { KickAccountSchema } from '../gen/xserver/v1/relay_pb.js';
import type { XConfig } from '../config/schema.js';
import { XError } from '../errors.js';
import type { SessionStore } from '../store/store.js';
import { encode } from '../wire/codec.js';
import { Cmd } from '../protocol/commands.js';
import type { Frame } from '../protocol/frame.js';
import { compareVersions, encodeWelcome, parseAuth, type AuthRequest } from '../protocol/client-messages.js';
import type { ClientConnection } from './client-conn.js';
import type { NodeChannel } from './node-channel.js';
import { AccountRoute, type GatewaySession, type GatewaySessions } from './routing.js';

/** Longest token accepted: the login service issues far shorter ones; this bounds what reaches the store. */
const MAX_TOKEN_LENGTH = 256;
/**
 * One timer walks every connection at a quarter of the shortest deadline (a deadline is enforced
 * at most 25% late), within [MIN_SWEEP_MS, MAX_SWEEP_MS]: authTimeoutMs may be as low as 50 ms,
 * and a walk per second is cheap even for tens of thousands of connections.
 */
const SWEEPS_PER_DEADLINE = 4;
const MIN_SWEEP_MS = 20;
const MAX_SWEEP_MS = 1000;

export interface AuthDeps {
  settings: XConfig['gateway'];
  store: Pick<SessionStore, 'takeToken' | 'getPresence' | 'setPresence'>;
  node: NodeChannel;
  sessions: GatewaySessions;
  log: Logger;
  /** Every open client connection (for the deadlines). */
  connections(): Iterable<ClientConnection>;
  /** A fresh login attached its session (tell the allocated nodes). */
  onLogin(s: GatewaySession): void;
  /** A session was resumed (a counter). */
  onResumed(): void;
  /** AUTH {handoff}: take the session over from the gateway that issued the token (handoff.ts); resolves once decided. */
  claimHandoff(conn: ClientConnection, token: string): Promise<void>;
  /** Something was refused, by reason (a counter). */
  refused(reason: string): void;
}

export class ClientAuth {
  /** Connections that sent AUTH and await the store. */
  private readonly authenticating = new Set<ClientConnection>();
  private sweepTimer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: AuthDeps) {}

  /** Starts the deadline sweep: one timer for all connections. */
  start(): void {
    const g = this.deps.settings;
    const tick = Math.max(MIN_SWEEP_MS, Math.min(MAX_SWEEP_MS, Math.floor(Math.min(g.authTimeoutMs, g.idleTimeoutMs) / SWEEPS_PER_DEADLINE)));
    this.sweepTimer = setInterval(() => this.checkDeadlines(performance.now()), tick);
    this.sweepTimer.unref();
  }

  stop(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
  }

  /** The connection closed: it no longer awaits anything. */
  forget(conn: ClientConnection): void {
    this.authenticating.delete(conn);
  }

  onAuthFrame(conn: ClientConnection, f: Frame): void {
    if (this.deps.sessions.of(conn) || this.authenticating.has(conn)) {
      conn.close(new XError('BAD_REQUEST', 'AUTH sent twice'));
      return;
    }
    this.authenticating.add(conn);
    void this.authenticate(conn, f).finally(() => this.authenticating.delete(conn));
  }

  /** Closes connections past their auth or idle deadline. */
  checkDeadlines(now: number): void {
    const g = this.deps.settings;
    for (const c of this.deps.connections()) {
      if (!this.deps.sessions.of(c)) {
        if (now - c.openedAt > g.authTimeoutMs && !this.authenticating.has(c)) {
          this.deps.refused('auth_timeout');
          c.close(new XError('HANDSHAKE_TIMEOUT', `no AUTH frame within ${g.authTimeoutMs} ms`));
        }
      } else if (now - c.lastRx > g.idleTimeoutMs) {
        this.deps.refused('idle_timeout');
        c.close(new XError('IDLE_TIMEOUT', `no message or ping for ${g.idleTimeoutMs} ms`));
      }
    }
  }

  private async authenticate(conn: ClientConnection, f: Frame): Promise<void> {
    const { store, node, sessions, log } = this.deps;
    let req: AuthRequest;
    try {
      req = parseAuth(f.body);
    } catch (e) {
      return this.refuse(conn, new XError('BAD_REQUEST', (e as Error).message));
    }
    const min = this.deps.settings.minClientVersion;
    if (min !== '' && (req.version === undefined || compareVersions(req.version, min) < 0)) {
      const err = new XError('UPDATE_REQUIRED', `client version ${req.version ?? '(none)'} is older than ${min}; update the client`, {
        minVersion: min,
      });
      return this.refuse(conn, err);
    }
    const mismatch = req.contracts ? this.contractMismatch(req.contracts) : undefined;
    if (mismatch) return this.refuse(conn, mismatch);
    conn.batchAsked = req.batch ?? 0;
    if ('resume' in req) return this.resume(conn, req.resume);
    if ('handoff' in req) {
      if (req.handoff.length === 0 || req.handoff.length > MAX_TOKEN_LENGTH) {
        return this.refuse(conn, new XError('BAD_HANDOFF_TOKEN', 'AUTH "handoff" must be the token of a GOING_AWAY'));
      }
      return this.deps.claimHandoff(conn, req.handoff);
    }
    if (req.token.length === 0 || req.token.length > MAX_TOKEN_LENGTH) {
      return this.refuse(conn, new XError('BAD_TOKEN', 'AUTH needs a "token" from the login service'));
    }
    let rec;
    try {
      rec = await store.takeToken(req.token, node.id);
    } catch (e) {
      return this.refuse(conn, new XError('STORE_UNAVAILABLE', `cannot check the token now: ${(e as Error).message}`));
    }
    if (conn.closed) return;
    if (!rec) return this.refuse(conn, new XError('BAD_TOKEN', 'unknown or already used token; log in again'));
    if (rec.expiresAt !== undefined && Date.now() > rec.expiresAt)
      return this.refuse(conn, new XError('TOKEN_EXPIRED', 'token expired; log in again'));
    if (rec.gatewayId !== node.id) return this.refuse(conn, new XError('BAD_TOKEN', 'token was issued for another gateway'));
    const account = rec.account;
    const generation = rec.generation;
    if (sessions.newerLoginExists(account, generation)) return this.refuse(conn, new XError('BAD_TOKEN', 'a newer login of this account exists'));
    // A session on another gateway (older login) is kicked there.
    try {
      const p = await store.getPresence(account);
      if (p && p.gatewayId !== node.id && p.generation < generation) {
        node.sendSystem(
          p.gatewayId,
          Cmd.KICK_ACCOUNT,
          encode(KickAccountSchema, { account, generation: BigInt(generation), reason: 'logged in on another gateway' }),
        );
      }
      await store.setPresence(account, { gatewayId: node.id, generation });
    } catch (e) {
      log.warn({ account, err: (e as Error).message }, 'presence update failed');
    }
    // Decide only now, after the awaits: another login of this account may have run meanwhile.
    if (conn.closed) return;
    const allocations = new Map(Object.entries(rec.allocations).map(([t, id]) => [Number(t), id]));
    const s = sessions.login(conn, account, generation, new AccountRoute(allocations));
    if (!s) return this.refuse(conn, new XError('BAD_TOKEN', 'a newer login of this account exists'));
    this.welcome(conn, s, false);
    this.deps.onLogin(s);
  }

  /**
   * The contract check (docs/protocol.md, "Contract hash"): for each service type the client names,
   * every listed, non-draining node of that type that registered a hash must have the client's.
   * Types the client does not name, and nodes that declared no contracts, are not checked.
   */
  private contractMismatch(hashes: Record<string, string>): XError | undefined {
    for (const [t, client] of Object.entries(hashes)) {
      const type = Number(t);
      for (const peer of this.deps.node.list(type)) {
        const { contractHash: server, draining } = peer.info;
        if (server === '' || draining || server === client) continue;
        return new XError(
          'CONTRACT_MISMATCH',
          `the client's contracts of type ${type} (${client}) differ from the services' (${server}); rebuild the client`,
          {
            contract: { type, client, server },
          },
        );
      }
    }
    return undefined;
  }

  private resume(conn: ClientConnection, key: string): void {
    const s = this.deps.sessions.resume(conn, key, (s) => {
      this.deps.onResumed();
      this.welcome(conn, s, true);
    });
    if (!s) this.refuse(conn, new XError('BAD_TOKEN', 'unknown or expired session; log in again'));
  }

  /** WELCOME {moved} for a session that moved here from another gateway. */
  welcomeMoved(conn: ClientConnection, s: GatewaySession): void {
    this.welcome(conn, s, true, true);
  }

  private welcome(conn: ClientConnection, s: GatewaySession, resumed: boolean, moved = false): void {
    const g = this.deps.settings;
    // The idle deadline starts now, not at the AUTH frame (the store may have taken a while).
    conn.lastRx = performance.now();
    conn.authenticated();
    const batch = conn.batchAsked > 0 ? conn.batch(conn.batchAsked) : 0;
    conn.sendFrame(
      Cmd.WELCOME,
      encodeWelcome({
        account: s.account,
        generation: s.generation,
        resume: s.resumeKey,
        heartbeatMs: g.heartbeatMs,
        graceMs: g.reconnectGraceMs,
        resumed,
        ...(moved ? { moved } : {}),
        ...(batch > 0 ? { batch } : {}),
      }),
    );
  }

  /** Refuses a client: counted by code, logged, ERROR then the close. */
  refuse(conn: ClientConnection, err: XError): void {
    this.deps.refused(err.code.toLowerCase());
    this.deps.log.info({ from: conn.remote, code: err.code }, `client refused: ${err.message}`);
    conn.close(err);
  }
}
