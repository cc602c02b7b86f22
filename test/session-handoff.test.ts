/**
 * The session handoff's mechanisms (src/gateway/handoff.ts) with fake timers: the pure pieces, and
 * SessionHandoff on a fake system channel with the real SessionTable (test/handoff.test.ts runs it
 * between real gateways).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { NodeType } from '../src/context.js';
import { ErrorCode, type XError } from '../src/errors.js';
import { BroadcastLog } from '../src/gateway/broadcast-log.js';
import type { ClientConnection } from '../src/gateway/client-conn.js';
import { FenceHold, HandoffTokens, MovedSession, SessionHandoff, tokenIssuer, type HandoffDeps } from '../src/gateway/handoff.js';
import type { NodeChannel } from '../src/gateway/node-channel.js';
import { AccountRoute } from '../src/gateway/routing.js';
import { SessionTable } from '../src/gateway/sessions.js';
import { NodeInfoSchema } from '../src/gen/xserver/v1/cluster_pb.js';
import {
  HandoffClaimSchema,
  HandoffDoneSchema,
  HandoffFenceSchema,
  HandoffForwardSchema,
  HandoffStateSchema,
} from '../src/gen/xserver/v1/handoff_pb.js';
import type { Link } from '../src/link/link.js';
import { silentLogger } from '../src/log.js';
import { parseGoingAway } from '../src/protocol/client-messages.js';
import { Cmd } from '../src/protocol/commands.js';
import type { Frame } from '../src/protocol/frame.js';
import { decode, encode } from '../src/wire/codec.js';
import { decodeToClient, encodeToClient } from '../src/wire/relay-codec.js';

const TTL_MS = 1000;

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

const bytes = (s: string) => new TextEncoder().encode(s);

describe('HandoffTokens', () => {
  it('a token names its issuer and works once, for the gateway it was issued for', () => {
    const t = new HandoffTokens('gw-a', TTL_MS);
    const token = t.issue({ account: 'x', generation: 7, target: 'gw-b' });
    expect(tokenIssuer(token)).toBe('gw-a');
    expect(t.take(token, 'gw-c')).toBeUndefined(); // another gateway cannot claim it...
    expect(t.take(token, 'gw-b')).toEqual({ account: 'x', generation: 7, target: 'gw-b' }); // ...and it is still there for the right one
    expect(t.take(token, 'gw-b')).toBeUndefined();
    expect(t.size).toBe(0);
  });

  it('a token expires after its TTL, and a new offer for the account replaces the old token', () => {
    const t = new HandoffTokens('gw-a', TTL_MS);
    const first = t.issue({ account: 'x', generation: 1, target: 'gw-b' });
    const second = t.issue({ account: 'x', generation: 1, target: 'gw-c' });
    expect(t.size).toBe(1);
    expect(t.take(first, 'gw-b')).toBeUndefined();
    vi.advanceTimersByTime(TTL_MS - 1);
    const other = t.issue({ account: 'y', generation: 1, target: 'gw-b' });
    vi.advanceTimersByTime(1);
    expect(t.take(second, 'gw-c')).toBeUndefined();
    expect(t.size).toBe(1);
    t.clear();
    expect(t.take(other, 'gw-b')).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a string without an issuer is not a handoff token', () => {
    expect(tokenIssuer('plain')).toBeUndefined();
    expect(tokenIssuer('~abc')).toBeUndefined();
    expect(tokenIssuer('gw~x~y')).toBe('gw~x');
  });
});

describe('FenceHold', () => {
  it('holds the messages of an awaited node until its fence, then releases them in order; others pass', () => {
    const h = new FenceHold(['s1', 's2'], 10);
    expect(h.hold('s1', { sourceType: 4, body: bytes('1') })).toBe('held');
    expect(h.hold('s1', { sourceType: 4, body: bytes('2') })).toBe('held');
    expect(h.hold('other', { sourceType: 5, body: bytes('x') })).toBe('pass');
    expect(h.release('s1').map((m) => Buffer.from(m.body).toString())).toEqual(['1', '2']);
    expect(h.awaits('s1')).toBe(false);
    expect(h.hold('s1', { sourceType: 4, body: bytes('3') })).toBe('pass');
    expect(h.done).toBe(false);
    expect(h.release('s2')).toEqual([]);
    expect(h.done).toBe(true);
  });

  it('a node over the limit overflows (the caller releases it); releaseAll empties every hold', () => {
    const h = new FenceHold(['s1', 's2'], 2);
    h.hold('s1', { sourceType: 4, body: bytes('a') });
    h.hold('s1', { sourceType: 4, body: bytes('b') });
    expect(h.hold('s1', { sourceType: 4, body: bytes('c') })).toBe('overflow');
    h.hold('s2', { sourceType: 4, body: bytes('d') });
    expect(h.releaseAll().map((m) => Buffer.from(m.body).toString())).toEqual(['a', 'b', 'd']);
    expect(h.done).toBe(true);
  });
});

describe('MovedSession', () => {
  it('is finished only once the new gateway confirmed, every node fenced and every request routed here was answered', () => {
    const m = new MovedSession('x', 1, 'gw-b', new Set(['s1', 's2']), new Set([5]));
    m.fenced('s1');
    m.confirm();
    expect(m.finished).toBe(false);
    m.fenced('s2');
    expect(m.finished).toBe(false);
    m.answered(5);
    expect(m.finished).toBe(true);
    const none = new MovedSession('y', 1, 'gw-b', new Set(), new Set());
    expect(none.finished).toBe(false);
    none.confirm();
    expect(none.finished).toBe(true);
  });
});

// ------------------------------------------------------------------ SessionHandoff with a fake node and real SessionTable

interface SentSystem {
  id: string;
  cmd: number;
  body: Uint8Array;
}

/** A client connection that records frames; its close detaches it like the gateway's does. */
class FakeClient {
  closed = false;
  closedWith: XError | undefined;
  readonly frames: { cmd: number; body: string; rid: number }[] = [];
  onClose: (c: FakeClient) => void = () => {};
  sendFrame(cmd: number, body: Uint8Array, _flags = 0, rid = 0): boolean {
    if (this.closed) return false;
    this.frames.push({ cmd, body: Buffer.from(body).toString(), rid });
    return true;
  }
  close(err?: XError): void {
    if (this.closed) return;
    this.closed = true;
    this.closedWith = err;
    this.onClose(this);
  }
}

const SETTINGS = { handoffTokenTtlMs: 1000, handoffTimeoutMs: 500, handoffStateMaxBytes: 4096, resumeBufferMax: 10 };

/** One gateway's SessionHandoff on a fake system channel; `frame()` delivers a system frame as if from `from`. */
function gatewayUnderTest(id: string, peers: { id: string; draining?: boolean }[]) {
  const handlers = new Map<number, (f: Frame, link: Link) => void>();
  const sent: SentSystem[] = [];
  const delivered: string[] = [];
  const refusedConns: { conn: FakeClient; code: string }[] = [];
  const events: string[] = [];
  const sessions = new SessionTable<ClientConnection, AccountRoute>(
    { onExpired: (s) => events.push(`expired ${s.account}`), onBufferEvicted: () => {}, onCountChanged: () => {} },
    { graceMs: 1000, bufferMax: 10, bufferMaxBytes: 1 << 16 },
  );
  const peerList = peers.map((p) => ({
    id: p.id,
    info: create(NodeInfoSchema, { id: p.id, type: NodeType.GATEWAY, outerIp: '10.0.0.9', ports: [1, 7001, 7002], draining: p.draining ?? false }),
    overload: () => 0,
  }));
  const node = {
    id,
    handleSystem: (cmd: number, h: (f: Frame, link: Link) => void) => void handlers.set(cmd, h),
    sendSystem: (to: string, cmd: number, body: Uint8Array) => {
      sent.push({ id: to, cmd, body });
      return true;
    },
    list: () => peerList,
  } as unknown as NodeChannel;
  const store = {
    movePresence: vi.fn(async () => true),
    getPresence: vi.fn(async () => null),
  };
  const handoff = new SessionHandoff({
    settings: SETTINGS as unknown as HandoffDeps['settings'],
    store,
    node,
    sessions,
    log: silentLogger(),
    welcome: (conn) => void conn.sendFrame(Cmd.WELCOME, new TextEncoder().encode('welcome')),
    refuse: (conn, err) => {
      refusedConns.push({ conn: conn as unknown as FakeClient, code: err.code });
      conn.close(err);
    },
    announce: (s) => events.push(`announce ${s.account}`),
    deliver: (body) => delivered.push(Buffer.from(decodeToClient(body).data).toString()),
    broadcasts: new BroadcastLog({ maxEntries: 16, maxBytes: 1 << 20, skipTtlMs: 5000 }),
    refused: (reason) => events.push(`refused ${reason}`),
    onMovedIn: () => events.push('moved in'),
    onMovedOut: () => events.push('moved out'),
  });
  const frame = (cmd: number, body: Uint8Array, from: string, type: number = NodeType.GATEWAY): void =>
    handlers.get(cmd)!({ cmd, body, flags: 0, rid: 0 }, { remote: { id: from, type } } as unknown as Link);
  const client = (): FakeClient => {
    const c = new FakeClient();
    c.onClose = (x) => sessions.detach(x as unknown as ClientConnection);
    return c;
  };
  return { handoff, sessions, sent, delivered, refusedConns, events, frame, client, store };
}

const toClient = (account: string, data: string, rid = 0) =>
  encodeToClient({ account, cmd: 1, data: bytes(data), rid, errorCode: 0, errorMessage: '' });

describe('SessionHandoff (fake node channel, real SessionTable)', () => {
  it('the old gateway: GOING_AWAY to attached clients, a claim hands the session over once, late messages and fences are forwarded, done when confirmed', async () => {
    const a = gatewayUnderTest('gw-a', [{ id: 'gw-a' }, { id: 'gw-b' }, { id: 'gw-c', draining: true }]);
    const conn = a.client();
    const route = new AccountRoute(new Map([[4, 's1']]));
    route.inflight.set(9, { target: 's1', cmd: 4002, at: 0 });
    a.sessions.login(conn as unknown as ClientConnection, 'x', 5, route);
    expect(a.handoff.offerAll()).toBe(1);
    const going = parseGoingAway(new TextEncoder().encode(conn.frames.find((f) => f.cmd === Cmd.GOING_AWAY)!.body));
    expect(going.gateway).toEqual({ id: 'gw-b', host: '10.0.0.9', tcpPort: 7001, wsUrl: 'ws://10.0.0.9:7002/', tls: false });

    // A claim by another gateway than the one named is refused, and leaves the token for the right one.
    a.frame(Cmd.HANDOFF_CLAIM, encode(HandoffClaimSchema, { claimId: 1, token: going.handoff }), 'gw-c');
    expect(decode(HandoffStateSchema, a.sent.at(-1)!.body).errorCode).toBe(ErrorCode.BAD_HANDOFF_TOKEN);
    expect(conn.closed).toBe(false);

    a.frame(Cmd.HANDOFF_CLAIM, encode(HandoffClaimSchema, { claimId: 2, token: going.handoff }), 'gw-b');
    const st = decode(HandoffStateSchema, a.sent.at(-1)!.body);
    expect(a.sent.at(-1)!.id).toBe('gw-b');
    expect({ claimId: st.claimId, errorCode: st.errorCode, account: st.account, generation: st.generation, allocations: st.allocations }).toEqual({
      claimId: 2,
      errorCode: 0,
      account: 'x',
      generation: 5n,
      allocations: { 4: 's1' },
    });
    expect(st.inflight.map((i) => [i.rid, i.target, i.cmd])).toEqual([[9, 's1', 4002]]);
    expect(conn.closed).toBe(true);
    expect(conn.closedWith).toBeUndefined();
    expect(a.sessions.size).toBe(0);
    expect(a.handoff.moving).toBe(1);

    // Used: a second claim of the same token is refused.
    a.frame(Cmd.HANDOFF_CLAIM, encode(HandoffClaimSchema, { claimId: 3, token: going.handoff }), 'gw-b');
    expect(decode(HandoffStateSchema, a.sent.at(-1)!.body).errorCode).toBe(ErrorCode.BAD_HANDOFF_TOKEN);

    // What still reaches A is forwarded to B, the answer to request 9 included; then s1's fence, then B's DONE.
    expect(a.handoff.forwardIfMoved('x', toClient('x', 'late push'), 0, 4, 's1')).toBe(true);
    expect(a.handoff.forwardIfMoved('x', toClient('x', 'answer', 9), 9, 4, 's1')).toBe(true);
    expect(a.handoff.forwardIfMoved('nobody', toClient('nobody', 'p'), 0, 4, 's1')).toBe(false);
    a.frame(Cmd.HANDOFF_FENCE, encode(HandoffFenceSchema, { account: 'x', generation: 5n }), 's1', 4);
    const forwards = a.sent.filter((x) => x.cmd === Cmd.HANDOFF_FORWARD).map((x) => decode(HandoffForwardSchema, x.body));
    expect(forwards.map((f) => (f.fence ? `fence ${f.sourceId}` : Buffer.from(decodeToClient(f.toClient).data).toString()))).toEqual([
      'late push',
      'answer',
      'fence s1',
    ]);
    expect(a.handoff.moving).toBe(1); // B has not confirmed yet
    a.frame(Cmd.HANDOFF_DONE, encode(HandoffDoneSchema, { account: 'x', generation: 5n }), 'gw-b');
    expect(a.handoff.moving).toBe(0);
    expect(a.handoff.forwardIfMoved('x', toClient('x', 'later'), 0, 4, 's1')).toBe(false);
    expect(a.events).toEqual(['moved out']);
  });

  it('no GOING_AWAY when no other gateway is live and not draining', () => {
    const a = gatewayUnderTest('gw-a', [{ id: 'gw-a' }, { id: 'gw-c', draining: true }]);
    const conn = a.client();
    a.sessions.login(conn as unknown as ClientConnection, 'x', 5, new AccountRoute(new Map()));
    expect(a.handoff.offerAll()).toBe(0);
    expect(conn.frames).toEqual([]);
  });

  it('the new gateway: adopts the state (WELCOME, then its frames), holds the direct messages of a node until its fence comes through the old gateway', async () => {
    const b = gatewayUnderTest('gw-b', [{ id: 'gw-a' }, { id: 'gw-b' }]);
    const conn = b.client();
    const claimed = b.handoff.claim(conn as unknown as ClientConnection, 'gw-a~token');
    const claim = decode(HandoffClaimSchema, b.sent.find((x) => x.cmd === Cmd.HANDOFF_CLAIM)!.body);
    expect(claim.token).toBe('gw-a~token');
    const state = {
      claimId: claim.claimId,
      account: 'x',
      generation: 5n,
      allocations: { 4: 's1' },
      frames: [{ cmd: 4001, body: bytes('buffered') }],
    };
    b.frame(Cmd.HANDOFF_STATE, encode(HandoffStateSchema, state), 'gw-a');
    await claimed;
    expect(conn.frames.map((f) => f.body)).toEqual(['welcome', 'buffered']);
    const s = b.sessions.get('x')!;
    expect(s.generation).toBe(5);

    // s1 already sends here directly: held. Another node is not awaited: passes.
    expect(b.handoff.holdIfFenced(s, toClient('x', 'direct 1'), 4, 's1')).toBe(true);
    expect(b.handoff.holdIfFenced(s, toClient('x', 'direct 2'), 4, 's1')).toBe(true);
    expect(b.handoff.holdIfFenced(s, toClient('x', 'other node'), 5, 's9')).toBe(false);
    // What s1 sent A before: forwarded, delivered at once; then its fence releases the held ones.
    b.frame(Cmd.HANDOFF_FORWARD, encode(HandoffForwardSchema, { sourceType: 4, sourceId: 's1', toClient: toClient('x', 'via A') }), 'gw-a');
    expect(b.delivered).toEqual(['via A']);
    b.frame(Cmd.HANDOFF_FORWARD, encode(HandoffForwardSchema, { sourceType: 4, sourceId: 's1', fence: { account: 'x', generation: 5n } }), 'gw-a');
    expect(b.delivered).toEqual(['via A', 'direct 1', 'direct 2']);
    expect(b.handoff.holdIfFenced(s, toClient('x', 'after'), 4, 's1')).toBe(false);

    // Presence A -> B, then ACCOUNT_ARRIVED, then DONE to A.
    await vi.waitFor(() => expect(b.sent.some((x) => x.cmd === Cmd.HANDOFF_DONE)).toBe(true));
    expect(b.store.movePresence).toHaveBeenCalledWith('x', 5, 'gw-a', 'gw-b');
    expect(b.events).toEqual(['moved in', 'announce x']);
    expect(b.sent.find((x) => x.cmd === Cmd.HANDOFF_DONE)!.id).toBe('gw-a');
  });

  it('the new gateway: fences that never come end the hold after handoffTimeoutMs; an unanswered claim and a token of an unknown gateway are refused', async () => {
    const b = gatewayUnderTest('gw-b', [{ id: 'gw-a' }, { id: 'gw-b' }]);
    const conn = b.client();
    void b.handoff.claim(conn as unknown as ClientConnection, 'gw-a~t');
    const claimId = decode(HandoffClaimSchema, b.sent.at(-1)!.body).claimId;
    b.frame(Cmd.HANDOFF_STATE, encode(HandoffStateSchema, { claimId, account: 'y', generation: 1n, allocations: { 4: 's1' } }), 'gw-a');
    const s = b.sessions.get('y')!;
    expect(b.handoff.holdIfFenced(s, toClient('y', 'held'), 4, 's1')).toBe(true);
    vi.advanceTimersByTime(SETTINGS.handoffTimeoutMs);
    expect(b.delivered).toEqual(['held']);

    const late = b.client();
    const claimed = b.handoff.claim(late as unknown as ClientConnection, 'gw-a~never-answered');
    vi.advanceTimersByTime(SETTINGS.handoffTimeoutMs);
    await claimed;
    const unknown = b.client();
    await b.handoff.claim(unknown as unknown as ClientConnection, 'gw-zz~t');
    expect(b.refusedConns.map((r) => r.code)).toEqual(['MOVE_FAILED', 'BAD_HANDOFF_TOKEN']);
  });
});
