import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { XError } from '../src/errors.js';
import { HEADER_SIZE, encodeFrame } from '../src/protocol/frame.js';
import { SessionTable, type Session, type SessionConn, type SessionLimits } from '../src/gateway/sessions.js';

const GRACE_MS = 1000;
const WELCOME = 1;

interface Sent {
  cmd: number;
  body: string;
  flags: number;
  rid: number;
}

/** A client connection that records what it was sent; its close reaches the table like the gateway's does. */
class FakeConn implements SessionConn {
  closed = false;
  closedWith: XError | undefined;
  readonly sent: Sent[] = [];
  constructor(private readonly onClose: (c: FakeConn) => void) {}

  sendFrame(cmd: number, body: Uint8Array, flags = 0, rid = 0): boolean {
    if (this.closed) return false;
    this.sent.push({ cmd, body: Buffer.from(body).toString(), flags, rid });
    return true;
  }

  sendEncoded(frame: Buffer): boolean {
    return this.sendFrame(frame.readUInt32BE(4), frame.subarray(HEADER_SIZE), frame[8], frame.readUInt32BE(9));
  }

  close(err?: XError): void {
    if (this.closed) return;
    this.closed = true;
    this.closedWith = err;
    this.onClose(this);
  }

  bodies(cmd: number): string[] {
    return this.sent.filter((f) => f.cmd === cmd).map((f) => f.body);
  }
}

type S = Session<FakeConn, string>;

function setup(limits: Partial<SessionLimits> = {}) {
  const expired: S[] = [];
  const counts: number[] = [];
  let evicted = 0;
  const table = new SessionTable<FakeConn, string>(
    {
      onExpired: (s) => expired.push(s),
      onBufferEvicted: () => evicted++,
      onCountChanged: (n) => counts.push(n),
    },
    { graceMs: GRACE_MS, bufferMax: 100, bufferMaxBytes: 1 << 20, ...limits },
  );
  const conn = () => new FakeConn((c) => table.detach(c));
  const welcome = (s: S) => s.conn!.sendFrame(WELCOME, bytes(s.resumeKey));
  return { table, conn, welcome, expired, counts, evicted: () => evicted };
}

const bytes = (s: string) => new TextEncoder().encode(s);

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('SessionTable', () => {
  it('a login attaches the connection and frames go straight to it', () => {
    const { table, conn, counts } = setup();
    const c = conn();
    const s = table.login(c, 'alice', 1, 'route-a')!;
    expect(s.state).toBe('attached');
    expect(s.route).toBe('route-a');
    expect(table.of(c)).toBe(s);
    expect(table.get('alice')).toBe(s);
    expect(table.deliver(s, 4001, bytes('hi'), 0, 0)).toBe(true);
    expect(c.bodies(4001)).toEqual(['hi']);
    expect(counts).toEqual([1]);
    expect(table.attachedCount).toBe(1);
  });

  it('a resume within the grace loses nothing: WELCOME first, then every frame kept while away, in order', () => {
    const { table, conn, welcome, expired } = setup();
    const first = conn();
    const s = table.login(first, 'mia', 1, '')!;
    const key = s.resumeKey;
    first.close();
    expect(s.state).toBe('away');
    expect(table.of(first)).toBeUndefined();
    for (let i = 0; i < 3; i++) expect(table.deliver(s, 4006, bytes(`away-${i}`), 0, 0)).toBe(false);
    expect(s.bufferedCount).toBe(3);
    vi.advanceTimersByTime(GRACE_MS - 1);
    const again = conn();
    expect(table.resume(again, key, welcome)).toBe(s);
    expect(s.state).toBe('attached');
    expect(s.conn).toBe(again);
    expect(again.sent.map((f) => f.cmd)).toEqual([WELCOME, 4006, 4006, 4006]);
    expect(again.bodies(4006)).toEqual(['away-0', 'away-1', 'away-2']);
    expect(s.bufferedCount).toBe(0);
    vi.advanceTimersByTime(GRACE_MS * 5);
    expect(expired).toEqual([]);
  });

  it('the grace running out expires the session and reports it lost exactly once', () => {
    const { table, conn, welcome, expired, counts } = setup();
    const c = conn();
    const s = table.login(c, 'lena', 1, '')!;
    c.close();
    vi.advanceTimersByTime(GRACE_MS - 1);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(expired).toEqual([s]);
    expect(s.state).toBe('expired');
    expect(table.get('lena')).toBeUndefined();
    expect(counts).toEqual([1, 0]);
    // Too late to resume; nothing fires again.
    expect(table.resume(conn(), s.resumeKey, welcome)).toBeNull();
    vi.advanceTimersByTime(GRACE_MS * 5);
    expect(expired).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a newer login supersedes the older session: its connection is kicked, no grace, nothing reported lost', () => {
    const { table, conn, expired } = setup();
    const c1 = conn();
    const old = table.login(c1, 'noah', 1, '')!;
    const c2 = conn();
    const s = table.login(c2, 'noah', 2, '')!;
    expect(c1.closed).toBe(true);
    expect(c1.closedWith?.code).toBe('KICKED');
    expect(old.state).toBe('superseded');
    expect(table.get('noah')).toBe(s);
    expect(s.state).toBe('attached');
    // The kicked connection's close did not start a reconnect grace.
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(GRACE_MS * 5);
    expect(expired).toEqual([]);
  });

  it('a newer login supersedes an away session and cancels its grace', () => {
    const { table, conn, expired } = setup();
    const c1 = conn();
    const old = table.login(c1, 'noah', 1, '')!;
    c1.close();
    table.login(conn(), 'noah', 2, '');
    expect(old.state).toBe('superseded');
    vi.advanceTimersByTime(GRACE_MS * 5);
    expect(expired).toEqual([]);
  });

  it('an older generation can never evict a newer session, by login or by kick', () => {
    const { table, conn } = setup();
    const c5 = conn();
    const s = table.login(c5, 'olga', 5, '')!;
    expect(table.newerLoginExists('olga', 4)).toBe(true);
    expect(table.newerLoginExists('olga', 5)).toBe(false);
    const c4 = conn();
    expect(table.login(c4, 'olga', 4, '')).toBeNull();
    expect(table.kick('olga', 4, 'older')).toBe(false);
    expect(table.kick('olga', 5, 'same')).toBe(false);
    expect(table.get('olga')).toBe(s);
    expect(s.state).toBe('attached');
    expect(c5.closed).toBe(false);
    expect(table.of(c4)).toBeUndefined();
  });

  it('a kick of a newer generation from another gateway supersedes the session with that reason', () => {
    const { table, conn, expired } = setup();
    const c = conn();
    const s = table.login(c, 'olga', 1, '')!;
    expect(table.kick('olga', 2, 'logged in on another gateway')).toBe(true);
    expect(s.state).toBe('superseded');
    expect(c.closedWith?.message).toBe('logged in on another gateway');
    expect(table.get('olga')).toBeUndefined();
    vi.advanceTimersByTime(GRACE_MS * 5);
    expect(expired).toEqual([]);
  });

  it('a resume key works once: the rotated-away key and unknown keys are refused', () => {
    const { table, conn, welcome } = setup();
    const c = conn();
    const s = table.login(c, 'pete', 1, '')!;
    const firstKey = s.resumeKey;
    c.close();
    const c2 = conn();
    table.resume(c2, firstKey, welcome);
    expect(s.resumeKey).not.toBe(firstKey);
    expect(c2.bodies(WELCOME)).toEqual([s.resumeKey]);
    c2.close();
    const c3 = conn();
    expect(table.resume(c3, firstKey, welcome)).toBeNull();
    expect(table.resume(c3, 'no-such-key', welcome)).toBeNull();
    expect(c3.sent).toEqual([]);
    expect(s.state).toBe('away');
  });

  it('resuming on a new connection while the old one is still attached kicks the old one without a grace', () => {
    const { table, conn, welcome, expired } = setup();
    const c1 = conn();
    const s = table.login(c1, 'quinn', 1, '')!;
    const c2 = conn();
    expect(table.resume(c2, s.resumeKey, welcome)).toBe(s);
    expect(c1.closedWith?.code).toBe('KICKED');
    expect(s.state).toBe('attached');
    expect(s.conn).toBe(c2);
    expect(table.of(c1)).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(GRACE_MS * 5);
    expect(expired).toEqual([]);
  });

  it('the resume buffer keeps the newest frames within its count limit', () => {
    const { table, conn, welcome, evicted } = setup({ bufferMax: 3 });
    const c = conn();
    const s = table.login(c, 'rita', 1, '')!;
    c.close();
    for (let i = 0; i < 5; i++) table.deliver(s, 4001, bytes(String(i)), 0, 0);
    expect(s.bufferedCount).toBe(3);
    expect(evicted()).toBe(2);
    const again = conn();
    table.resume(again, s.resumeKey, welcome);
    expect(again.bodies(4001)).toEqual(['2', '3', '4']);
  });

  it('the resume buffer keeps the newest frames within its byte limit, and never a frame bigger than it', () => {
    const { table, conn, welcome, evicted } = setup({ bufferMaxBytes: 10 });
    const c = conn();
    const s = table.login(c, 'sam', 1, '')!;
    c.close();
    for (const b of ['aaaa', 'bbbb', 'cccc', 'dddd']) table.deliver(s, 4001, bytes(b), 0, 0);
    expect(s.bufferedBytes).toBe(8);
    expect(evicted()).toBe(2);
    table.deliver(s, 4001, bytes('x'.repeat(11)), 0, 0);
    expect(s.bufferedBytes).toBe(8);
    expect(evicted()).toBe(2);
    const again = conn();
    table.resume(again, s.resumeKey, welcome);
    expect(again.bodies(4001)).toEqual(['cccc', 'dddd']);
  });

  it('a resume buffer of zero frames keeps nothing', () => {
    const { table, conn } = setup({ bufferMax: 0 });
    const c = conn();
    const s = table.login(c, 'tom', 1, '')!;
    c.close();
    table.deliver(s, 4001, bytes('gone'), 0, 0);
    expect(s.bufferedCount).toBe(0);
  });

  it('keeps a copy of a frame body, but only a view of an encoded broadcast frame', () => {
    const { table, conn, welcome } = setup();
    const c = conn();
    const s = table.login(c, 'uma', 1, '')!;
    c.close();
    const chunk = bytes('view');
    const shared = Buffer.from(encodeFrame(4002, bytes('bcast')));
    table.deliver(s, 4001, chunk.subarray(0, 4), 0, 0);
    table.deliverEncoded(s, shared, 4002);
    chunk.fill(0x21);
    shared.fill(0x21, HEADER_SIZE);
    const again = conn();
    table.resume(again, s.resumeKey, welcome);
    expect(again.bodies(4001)).toEqual(['view']);
    expect(again.bodies(4002)).toEqual(['!!!!!']);
  });

  it('keeps the flags and rid of a reply kept for the resume', () => {
    const { table, conn, welcome } = setup();
    const c = conn();
    const s = table.login(c, 'vic', 1, '')!;
    c.close();
    table.deliver(s, 4002, bytes('re'), 2, 77);
    const again = conn();
    table.resume(again, s.resumeKey, welcome);
    expect(again.sent.find((f) => f.cmd === 4002)).toEqual({ cmd: 4002, body: 're', flags: 2, rid: 77 });
  });

  it('the close of a connection that never logged in changes nothing', () => {
    const { table, conn } = setup();
    const c = conn();
    c.close();
    expect(table.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('stop() closes every session, clears every grace timer and reports nothing lost', () => {
    const { table, conn, welcome, expired } = setup();
    const sessions: S[] = [];
    for (const account of ['a', 'b', 'c']) {
      const c = conn();
      sessions.push(table.login(c, account, 1, '')!);
      c.close();
    }
    const attached = table.login(conn(), 'd', 1, '')!;
    expect(vi.getTimerCount()).toBe(3);
    const key = sessions[0]!.resumeKey;
    table.stop();
    expect(vi.getTimerCount()).toBe(0);
    expect([...sessions, attached].map((s) => s.state)).toEqual(['closed', 'closed', 'closed', 'closed']);
    expect(table.size).toBe(0);
    vi.advanceTimersByTime(GRACE_MS * 5);
    expect(expired).toEqual([]);
    expect(table.resume(conn(), key, welcome)).toBeNull();
    expect(table.login(conn(), 'e', 1, '')).toBeNull();
  });

  it('handOff moves a session away: its connection closed without an error, its undelivered frames returned, never reported lost', () => {
    const { table, conn, expired } = setup();
    const c = conn();
    const s = table.login(c, 'h', 1, 'route')!;
    table.detach(c);
    table.deliver(s, 7, bytes('kept-1'), 0, 0);
    table.deliver(s, 7, bytes('kept-2'), 0, 0);
    const c2 = conn();
    const key = s.resumeKey;
    expect(table.resume(c2, key, () => {})).not.toBeNull();
    table.deliver(s, 7, bytes('direct'), 0, 0); // attached: sent, not kept
    const frames = table.handOff(s);
    expect(frames).toEqual([]);
    expect(c2.closed).toBe(true);
    expect(c2.closedWith).toBeUndefined();
    expect(s.state).toBe('moved');
    expect(table.get('h')).toBeUndefined();
    expect(table.of(c2)).toBeUndefined();
    expect(table.handOff(s)).toEqual([]); // final
    vi.advanceTimersByTime(GRACE_MS * 2);
    expect(expired).toEqual([]);

    // Away when the claim arrives: the kept frames travel with it, and its grace ends.
    const c3 = conn();
    const s3 = table.login(c3, 'h2', 1, '')!;
    table.detach(c3);
    table.deliver(s3, 7, bytes('a'), 0, 0);
    table.deliver(s3, 8, bytes('b'), 2, 9);
    expect(table.handOff(s3).map((f) => [f.cmd, Buffer.from(f.body).toString(), f.flags, f.rid])).toEqual([
      [7, 'a', 0, 0],
      [8, 'b', 2, 9],
    ]);
    vi.advanceTimersByTime(GRACE_MS * 2);
    expect(expired).toEqual([]);
  });

  it('adopt attaches a moved session: WELCOME first, then the frames it brought, in order; a newer login here wins', () => {
    const { table, conn, welcome, expired } = setup();
    const c = conn();
    const frames = [
      { cmd: 7, body: bytes('one'), flags: 0, rid: 0 },
      { cmd: 7, body: bytes('two'), flags: 0, rid: 0 },
    ];
    const s = table.adopt(c, 'm', 5, 'r', frames, welcome)!;
    expect(s.state).toBe('attached');
    expect(c.sent.map((f) => f.cmd)).toEqual([WELCOME, 7, 7]);
    expect(c.bodies(7)).toEqual(['one', 'two']);
    expect(table.of(c)).toBe(s);
    // A newer login of the account already here: the moved (older) session is refused.
    table.login(conn(), 'n', 9, '');
    expect(table.adopt(conn(), 'n', 5, '', [], welcome)).toBeNull();

    // The client left while the state travelled: away, frames kept for a resume, lost once after the grace.
    const away = table.adopt(null, 'g', 3, '', frames, welcome)!;
    expect(away.state).toBe('away');
    expect(away.bufferedCount).toBe(2);
    vi.advanceTimersByTime(GRACE_MS + 1);
    expect(expired.map((x) => x.account)).toEqual(['g']);
  });
});
