/**
 * SessionTable: every client session of a gateway, one per account (SPEC §6.2, §6.5, §6.6).
 *
 * A session outlives its connection by the reconnect grace: a client that comes back with its
 * resume key within it gets everything sent meanwhile. It carries the login generation, so an
 * older login can never evict a newer one.
 *
 *   connection (auth.ts)                  session (this table)
 *
 *   new --AUTH--> authenticating --login()--> attached --detach()--> away --grace over--> expired
 *                                              |  ^  ^                 |                   (onExpired)
 *                                              |  |  +----resume()-----+
 *                                              |  +--resume() on another connection (the old one is kicked)
 *                                              |
 *   attached | away --login() or kick() of a newer generation--> superseded (its connection is kicked)
 *   attached | away --handOff()--> moved (to another gateway: its connection closed, its buffer returned)
 *   attached | away --stop()--> closed
 *
 *   adopt() (a session moved here from another gateway) enters at attached, or at away when its
 *   client left while the state was on its way.
 *
 * expired, superseded, moved and closed are final: the session is out of every map, and nothing about it
 * is reported again. Only the methods of this class change a session; everything else reads it.
 * The table knows its surroundings only through SessionHost, so it runs without sockets.
 */
import { randomBytes } from 'node:crypto';
import { XError } from '../errors.js';
import { HEADER_SIZE } from '../protocol/frame.js';

export type SessionState = 'attached' | 'away' | 'expired' | 'superseded' | 'moved' | 'closed';

/** A frame of a session as the client will receive it (the resume buffer, a moved session's state). */
export interface SessionFrame {
  cmd: number;
  body: Uint8Array;
  flags: number;
  rid: number;
}

/** What the table needs of a client connection. */
export interface SessionConn {
  readonly closed: boolean;
  sendFrame(cmd: number, body: Uint8Array, flags?: number, rid?: number): boolean;
  /** The same frame, already encoded (shared by every receiver of a broadcast). */
  sendEncoded(frame: Buffer): boolean;
  close(err?: XError): void;
}

/** One account's session, read-only: every change is a SessionTable transition. */
export interface Session<C extends SessionConn, R> {
  readonly account: string;
  readonly generation: number;
  readonly state: SessionState;
  /** The client connection while attached, null otherwise. */
  readonly conn: C | null;
  /** Key of the next resume; it changes on every resume (a key works once). */
  readonly resumeKey: string;
  /** Frames kept for the client while away. */
  readonly bufferedCount: number;
  readonly bufferedBytes: number;
  /** The account's routing state; the table only carries it. */
  readonly route: R;
}

export interface SessionHost<C extends SessionConn, R> {
  /** The grace ran out with nobody back: the account is lost. Called once per expired session. */
  onExpired(session: Session<C, R>): void;
  /** A frame kept for an away client was dropped to stay within the resume buffer. */
  onBufferEvicted(session: Session<C, R>): void;
  /** The number of sessions changed (a gauge). */
  onCountChanged(count: number): void;
}

export interface SessionLimits {
  /** gateway.reconnectGraceMs: how long an away session waits for a resume. */
  graceMs: number;
  /** gateway.resumeBufferMax: frames kept for an away client (0: none). */
  bufferMax: number;
  /** gateway.resumeBufferMaxBytes: bytes kept for an away client. */
  bufferMaxBytes: number;
}

/** 144 random bits: not guessable, and a whole number of base64url characters (24). */
const RESUME_KEY_BYTES = 18;

type BufferedFrame = SessionFrame;

/** The mutable record behind a Session; only this file writes it. */
class SessionRecord<C extends SessionConn, R> implements Session<C, R> {
  state: SessionState = 'attached';
  buffer: BufferedFrame[] = [];
  bufferedBytes = 0;
  graceTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly account: string,
    readonly generation: number,
    public conn: C | null,
    public resumeKey: string,
    readonly route: R,
  ) {}

  get bufferedCount(): number {
    return this.buffer.length;
  }
}

export class SessionTable<C extends SessionConn, R> {
  private readonly byAccount = new Map<string, SessionRecord<C, R>>();
  private readonly byResumeKey = new Map<string, SessionRecord<C, R>>();
  private readonly byConn = new Map<C, SessionRecord<C, R>>();
  private stopped = false;

  constructor(
    private readonly host: SessionHost<C, R>,
    private readonly limits: SessionLimits,
  ) {}

  /** Sessions attached or away. */
  get size(): number {
    return this.byAccount.size;
  }

  get attachedCount(): number {
    return this.byConn.size;
  }

  get(account: string): Session<C, R> | undefined {
    return this.byAccount.get(account);
  }

  /** The session `conn` is attached to (undefined: not authenticated, or no longer the session's). */
  of(conn: C): Session<C, R> | undefined {
    return this.byConn.get(conn);
  }

  values(): IterableIterator<Session<C, R>> {
    return this.byAccount.values();
  }

  /** True while a login of `generation` would be refused: a newer login holds the account here. */
  newerLoginExists(account: string, generation: number): boolean {
    return (this.byAccount.get(account)?.generation ?? -1) > generation;
  }

  /**
   * A fresh login attaches `conn` as the account's session; an older session of the account is
   * superseded (kicked, no ACCOUNT_LOST: the service state stays). Null when a newer login holds
   * the account, or the table is stopped: the caller refuses the client.
   */
  login(conn: C, account: string, generation: number, route: R): Session<C, R> | null {
    if (this.stopped) return null;
    const old = this.byAccount.get(account);
    if (old && old.generation > generation) return null;
    if (old) this.supersede(old, 'logged in again');
    const s = new SessionRecord(account, generation, conn, newResumeKey(), route);
    this.byAccount.set(account, s);
    this.byResumeKey.set(s.resumeKey, s);
    this.byConn.set(conn, s);
    this.host.onCountChanged(this.byAccount.size);
    return s;
  }

  /**
   * AUTH {resume}: attaches `conn` to the session of `key` (away -> attached, or attached on a
   * connection the client gave up on -> attached here), rotates the key, calls `welcome` (the
   * caller sends WELCOME with the new key) and then hands over the frames kept meanwhile, in
   * order. Null for an unknown, used or expired key.
   */
  resume(conn: C, key: string, welcome: (s: Session<C, R>) => void): Session<C, R> | null {
    const s = this.byResumeKey.get(key);
    if (!s) return null;
    this.clearGrace(s);
    const previous = s.conn;
    if (previous) this.byConn.delete(previous);
    s.conn = conn;
    s.state = 'attached';
    this.byConn.set(conn, s);
    // The old connection is half-dead from the client's point of view; it is no longer the session's.
    if (previous && previous !== conn) previous.close(new XError('KICKED', 'resumed on a new connection'));
    this.byResumeKey.delete(s.resumeKey);
    s.resumeKey = newResumeKey();
    this.byResumeKey.set(s.resumeKey, s);
    welcome(s);
    const buffered = s.buffer;
    s.buffer = [];
    s.bufferedBytes = 0;
    for (const b of buffered) conn.sendFrame(b.cmd, b.body, b.flags, b.rid);
    return s;
  }

  /**
   * A session moved here from another gateway (AUTH {handoff}): like a login of `generation`, then
   * `welcome` (the caller sends WELCOME) and the frames the old gateway had not delivered, in order.
   * With `conn` null (the client left while the state travelled) the session starts away, the
   * frames kept for a resume within the grace. Null when a newer login holds the account here.
   */
  adopt(
    conn: C | null,
    account: string,
    generation: number,
    route: R,
    frames: readonly SessionFrame[],
    welcome: (s: Session<C, R>) => void,
  ): Session<C, R> | null {
    if (this.stopped) return null;
    const old = this.byAccount.get(account);
    if (old && old.generation > generation) return null;
    if (old) this.supersede(old, 'moved here from another gateway');
    const s = new SessionRecord(account, generation, conn, newResumeKey(), route);
    this.byAccount.set(account, s);
    this.byResumeKey.set(s.resumeKey, s);
    this.host.onCountChanged(this.byAccount.size);
    if (conn === null || conn.closed) {
      s.conn = null;
      s.state = 'away';
      for (const f of frames) this.keep(s, f); // the handed-over frames are this session's own
      s.graceTimer = setTimeout(() => this.expire(s), this.limits.graceMs);
      s.graceTimer.unref();
      return s;
    }
    this.byConn.set(conn, s);
    welcome(s);
    for (const f of frames) conn.sendFrame(f.cmd, f.body, f.flags, f.rid);
    return s;
  }

  /**
   * The session moves to another gateway (its claim arrived there): out of every map, its
   * connection closed without an error (the client is on its way), nothing reported lost. Returns
   * the frames kept for it and not delivered, oldest first.
   */
  handOff(session: Session<C, R>): SessionFrame[] {
    const s = session as SessionRecord<C, R>;
    if (!isLive(s)) return [];
    this.clearGrace(s);
    this.remove(s, 'moved');
    const frames = s.buffer;
    s.buffer = [];
    s.bufferedBytes = 0;
    const c = s.conn;
    s.conn = null;
    if (c) {
      this.byConn.delete(c);
      c.close();
    }
    return frames;
  }

  /**
   * `conn` closed: its session (if `conn` still is its connection) goes away and waits the grace.
   * Returns that session, or undefined when the close changes nothing (a kicked or replaced
   * connection, one that never authenticated).
   */
  detach(conn: C): Session<C, R> | undefined {
    const s = this.byConn.get(conn);
    if (!s) return undefined;
    this.byConn.delete(conn);
    s.conn = null;
    s.state = 'away';
    s.graceTimer = setTimeout(() => this.expire(s), this.limits.graceMs);
    s.graceTimer.unref();
    return s;
  }

  /** KICK_ACCOUNT: a newer login of the account elsewhere supersedes the session here. */
  kick(account: string, generation: number, why: string): boolean {
    const s = this.byAccount.get(account);
    if (!s || s.generation >= generation) return false;
    this.supersede(s, why);
    return true;
  }

  /**
   * A frame for the account's client: sent when attached (true if the connection took it), kept
   * for the resume when away, oldest first out beyond the count or byte limit. A body over the
   * byte limit by itself is not kept. `body` is a view into a socket chunk: a kept one is copied.
   */
  deliver(session: Session<C, R>, cmd: number, body: Uint8Array, flags: number, rid: number): boolean {
    // Sound: every Session comes from this table, and is a SessionRecord.
    const s = session as SessionRecord<C, R>;
    if (s.state === 'attached') return s.conn!.sendFrame(cmd, body, flags, rid);
    if (s.state === 'away') this.keep(s, { cmd, body: body.slice(), flags, rid });
    return false;
  }

  /**
   * deliver() of a frame encoded once for many sessions (a broadcast of `cmd`; flags and rid 0):
   * an attached client is handed `frame` itself; an away session keeps a view of its body (a
   * reference, not a copy), re-encoded only if the client resumes.
   */
  deliverEncoded(session: Session<C, R>, frame: Buffer, cmd: number): boolean {
    const s = session as SessionRecord<C, R>;
    if (s.state === 'attached') return s.conn!.sendEncoded(frame);
    if (s.state === 'away') this.keep(s, { cmd, body: frame.subarray(HEADER_SIZE), flags: 0, rid: 0 });
    return false;
  }

  /** Keeps a frame for an away session's resume: oldest out beyond the count or byte limit; one over the byte limit by itself is not kept. */
  private keep(s: SessionRecord<C, R>, f: BufferedFrame): void {
    const body = f.body;
    const { bufferMax, bufferMaxBytes } = this.limits;
    if (bufferMax === 0 || body.length > bufferMaxBytes) return;
    while (s.buffer.length > 0 && (s.buffer.length >= bufferMax || s.bufferedBytes + body.length > bufferMaxBytes)) {
      s.bufferedBytes -= s.buffer.shift()!.body.length;
      this.host.onBufferEvicted(s);
    }
    s.buffer.push(f);
    s.bufferedBytes += body.length;
  }

  /** Every session ends (closed), every grace timer is cleared; nothing is reported lost. */
  stop(): void {
    this.stopped = true;
    for (const s of this.byAccount.values()) {
      this.clearGrace(s);
      s.state = 'closed';
      s.conn = null;
      s.buffer = [];
      s.bufferedBytes = 0;
    }
    this.byAccount.clear();
    this.byResumeKey.clear();
    this.byConn.clear();
  }

  /** A newer login replaces `s`: out of every map, its connection kicked. */
  private supersede(s: SessionRecord<C, R>, why: string): void {
    this.clearGrace(s);
    this.remove(s, 'superseded');
    const c = s.conn;
    s.conn = null;
    if (c) {
      this.byConn.delete(c);
      c.close(new XError('KICKED', why));
    }
  }

  /** The grace ran out (the timer only runs while away). */
  private expire(s: SessionRecord<C, R>): void {
    s.graceTimer = null;
    if (s.state !== 'away') return;
    this.remove(s, 'expired');
    s.buffer = [];
    s.bufferedBytes = 0;
    this.host.onExpired(s);
  }

  private remove(s: SessionRecord<C, R>, final: 'expired' | 'superseded' | 'moved'): void {
    s.state = final;
    this.byAccount.delete(s.account);
    this.byResumeKey.delete(s.resumeKey);
    this.host.onCountChanged(this.byAccount.size);
  }

  private clearGrace(s: SessionRecord<C, R>): void {
    if (s.graceTimer) clearTimeout(s.graceTimer);
    s.graceTimer = null;
  }
}

/** True while the session is the account's current one (attached or away). */
export function isLive(s: Session<SessionConn, unknown>): boolean {
  return s.state === 'attached' || s.state === 'away';
}

function newResumeKey(): string {
  return randomBytes(RESUME_KEY_BYTES).toString('base64url');
}
