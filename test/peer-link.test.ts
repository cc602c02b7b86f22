/**
 * PeerLink (src/node/peer-link.ts) alone: a fake host, a fake dialer and fake links, fake timers.
 * The pending buffer and its limits, re-dials with backoff while the peer is listed, inbound
 * adoption and the duplicate-link rule.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { XError } from '../src/errors.js';
import type { Link, LinkOptions } from '../src/link/link.js';
import { silentLogger } from '../src/log.js';
import { PeerLink, type PeerLinkHost, type PendingLimits } from '../src/node/peer-link.js';
import { FakeDialer, FakeLink } from './helpers/fake-link.js';

const PEER = 'node-m';
const LOWER = 'node-a'; // a self id below PEER: its own dial wins a tie
const HIGHER = 'node-z'; // a self id above PEER: the peer's dial wins a tie

const LIMITS: PendingLimits = { maxMessages: 3, maxBytes: 100, maxAgeMs: 60_000, dialMinBackoffMs: 100, dialMaxBackoffMs: 800 };

interface Harness {
  pl: PeerLink;
  dialer: FakeDialer;
  /** Whether the peer is in the membership (addressOf answers). */
  listed: { value: boolean };
  overflows: number[];
  /** Counts reported through onPendingExpired. */
  expired: number[];
  ups: Link[];
  downs: (XError | undefined)[];
}

function harness(selfId = LOWER, limits: PendingLimits = LIMITS): Harness {
  const dialer = new FakeDialer();
  const listed = { value: true };
  const overflows: number[] = [];
  const expired: number[] = [];
  const ups: Link[] = [];
  const downs: (XError | undefined)[] = [];
  const host: PeerLinkHost = {
    self: { type: 4, id: selfId },
    linkOptions: {} as LinkOptions,
    log: silentLogger(),
    addressOf: (id) => (listed.value && id === PEER ? { host: '10.0.0.7', port: 7001, type: 5 } : undefined),
    onFrame: () => {},
    onLinkUp: (_id, link) => ups.push(link),
    onLinkDown: (_id, err) => downs.push(err),
    onPendingOverflow: (_id, count) => overflows.push(count),
    onPendingExpired: (_id, count) => expired.push(count),
  };
  return { pl: new PeerLink(PEER, host, limits, dialer.dial), dialer, listed, overflows, expired, ups, downs };
}

const bytes = (n: number, fill = 1): Uint8Array => new Uint8Array(n).fill(fill);
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const sentText = (l: FakeLink): string[] => l.sent.map((f) => new TextDecoder().decode(f.body));

beforeEach(() => {
  vi.useFakeTimers();
  // Backoff with full jitter: random() = 1 makes every delay its ceiling (min, 2 min, 4 min ... max).
  vi.spyOn(Math, 'random').mockReturnValue(1);
});

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

describe('PeerLink pending buffer', () => {
  it('buffers while dialling and sends the buffered messages first, in order, when the link opens', async () => {
    const h = harness();
    const first = text('one');
    expect(h.pl.send(7, first)).toBe(true);
    expect(h.pl.send(7, text('two'))).toBe(true);
    first.set(text('XXX')); // the caller reuses its buffer: the buffered copy must not change
    expect(h.dialer.attempts).toHaveLength(1);
    expect(h.dialer.last).toMatchObject({ host: '10.0.0.7', port: 7001, expect: { type: 5, id: PEER } });

    const link = h.dialer.last.accept();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.pl.send(7, text('three'))).toBe(true);
    expect(sentText(link)).toEqual(['one', 'two', 'three']);
    expect(link.started).toBe(true);
    expect(h.ups).toEqual([link]);
    expect(h.pl.pendingCount).toBe(0);
  });

  it('bounds the buffer by message count: the send over the limit is refused and reported as overflow', async () => {
    const h = harness();
    for (let i = 0; i < LIMITS.maxMessages; i++) expect(h.pl.send(7, text(`m${i}`))).toBe(true);
    expect(h.pl.send(7, text('over'))).toBe(false);
    expect(h.overflows).toEqual([1]);
    const link = h.dialer.last.accept();
    await vi.advanceTimersByTimeAsync(0);
    expect(sentText(link)).toEqual(['m0', 'm1', 'm2']);
  });

  it('bounds the buffer by bytes: a message that would pass maxBytes is refused, one that fits is kept', () => {
    const h = harness();
    expect(h.pl.send(7, bytes(60))).toBe(true);
    expect(h.pl.send(7, bytes(41))).toBe(false); // 101 > 100
    expect(h.pl.send(7, bytes(40))).toBe(true); // exactly 100
    expect(h.overflows).toEqual([1]);
    expect(h.pl.pendingCount).toBe(2);
  });

  it('a request that does not fit fails with QUEUE_FULL; a buffered one times out and frees its place', async () => {
    const h = harness(LOWER, { ...LIMITS, maxMessages: 1 });
    const waiting = h.pl.request(9, text('q1'), 500);
    const refused = h.pl.request(9, text('q2'), 500);
    await expect(refused).rejects.toMatchObject({ code: 'QUEUE_FULL' });
    const timedOut = expect(waiting).rejects.toMatchObject({ code: 'TIMEOUT' });
    await vi.advanceTimersByTimeAsync(500);
    await timedOut;
    expect(h.pl.pendingCount).toBe(0);
    expect(h.pl.send(7, text('fits again'))).toBe(true);
  });

  it('a buffered request goes out on the link with what is left of its timeout', async () => {
    const h = harness();
    const reply = h.pl.request(9, text('q'), 1000);
    await vi.advanceTimersByTimeAsync(300);
    const link = h.dialer.last.accept();
    await vi.advanceTimersByTimeAsync(0);
    expect(link.requests).toHaveLength(1);
    expect(link.requests[0]!.timeoutMs).toBe(700);
    link.requests[0]!.answer(text('a'));
    await expect(reply).resolves.toMatchObject({ body: text('a') });
  });

  it('drops buffered messages older than maxAgeMs: sends are reported dropped, a request fails with TIMEOUT, younger ones go out', async () => {
    const h = harness(LOWER, { ...LIMITS, maxMessages: 10, maxAgeMs: 1000 });
    const dropped: string[] = [];
    expect(h.pl.send(7, text('old1'), 0, 0, (e) => dropped.push(e.code))).toBe(true);
    const req = h.pl.request(8, text('old-req'), 5000);
    const reqErr = req.catch((e: XError) => e);
    await vi.advanceTimersByTimeAsync(600);
    expect(h.pl.send(7, text('young'), 0, 0, (e) => dropped.push(e.code))).toBe(true);
    await vi.advanceTimersByTimeAsync(450); // old1 and old-req are 1050 ms old, young 450 ms
    expect(dropped).toEqual(['TIMEOUT']);
    expect(await reqErr).toMatchObject({ code: 'TIMEOUT', message: expect.stringContaining('node.pendingMaxAgeMs') });
    expect(h.expired).toEqual([2]);
    expect(h.pl.pendingCount).toBe(1);
    const link = h.dialer.last.accept();
    await vi.advanceTimersByTimeAsync(0);
    expect(sentText(link)).toEqual(['young']);
    expect(h.expired).toEqual([2]);
  });

  it('a message that ages out while the dial is still under way is not sent when the link opens late', async () => {
    const h = harness(LOWER, { ...LIMITS, maxAgeMs: 500 });
    expect(h.pl.send(7, text('late'))).toBe(true);
    await vi.advanceTimersByTimeAsync(3000); // a partition: the dial hangs
    expect(h.pl.pendingCount).toBe(0);
    const link = h.dialer.last.accept();
    await vi.advanceTimersByTimeAsync(0);
    expect(sentText(link)).toEqual([]);
    expect(h.expired).toEqual([1]);
    // The freed buffer takes new messages, which go straight out on the open link.
    expect(h.pl.send(7, text('fresh'))).toBe(true);
    expect(sentText(link)).toEqual(['fresh']);
  });

  it('closing (the peer left) fails what is buffered with the reason and refuses later sends', () => {
    const h = harness();
    const dropped: XError[] = [];
    h.pl.send(7, text('x'), 0, 0, (e) => dropped.push(e));
    h.pl.close(new XError('NO_TARGET', 'node-m left'));
    expect(dropped.map((e) => e.code)).toEqual(['NO_TARGET']);
    expect(h.pl.send(7, text('y'))).toBe(false);
  });
});

describe('PeerLink re-dials', () => {
  it('re-dials with exponential backoff up to the maximum while the peer is listed', async () => {
    const h = harness();
    h.dialer.respond = (a) => a.refuse(new XError('LINK_CLOSED', 'connection refused'));
    h.pl.send(7, text('x'));
    await vi.advanceTimersByTimeAsync(100 + 200 + 400 + 800 + 800 + 800);
    expect(h.dialer.gaps()).toEqual([100, 200, 400, 800, 800, 800]);
    expect(h.pl.pendingCount).toBe(1); // still waiting for the link
  });

  it('stops re-dialling once the peer is no longer listed and fails what waited with NO_TARGET', async () => {
    const h = harness();
    h.dialer.respond = (a) => a.refuse(new XError('LINK_CLOSED', 'connection refused'));
    const dropped: XError[] = [];
    h.pl.send(7, text('x'), 0, 0, (e) => dropped.push(e));
    await vi.advanceTimersByTimeAsync(150); // two attempts
    h.listed.value = false;
    await vi.advanceTimersByTimeAsync(5000);
    expect(h.dialer.attempts).toHaveLength(2);
    expect(dropped.map((e) => e.code)).toEqual(['NO_TARGET']);
  });

  it('re-dials after an open link drops, while the peer is listed, and resets the backoff on success', async () => {
    const h = harness();
    h.pl.send(7, text('x'));
    const first = h.dialer.last.accept();
    await vi.advanceTimersByTimeAsync(0);
    first.drop();
    expect(h.downs).toHaveLength(1);
    expect(h.pl.isOpen).toBe(false);
    await vi.advanceTimersByTimeAsync(LIMITS.dialMinBackoffMs);
    expect(h.dialer.attempts).toHaveLength(2);
    expect(h.dialer.gaps()).toEqual([LIMITS.dialMinBackoffMs]);
    const second = h.dialer.last.accept();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.pl.current).toBe(second.asLink());
  });
});

describe('PeerLink inbound links and the duplicate rule', () => {
  it('adopts an inbound link while dialling: the buffer goes out on it and the late dial result is closed', async () => {
    const h = harness(HIGHER);
    h.pl.send(7, text('one'));
    h.pl.send(7, text('two'));
    expect(h.pl.admitInbound()).toBeNull(); // the peer has the lower id: its dial wins
    const inbound = new FakeLink({ type: 5, id: PEER }, 'in');
    h.pl.adoptInbound(inbound.asLink());
    expect(sentText(inbound)).toEqual(['one', 'two']);
    expect(h.pl.current).toBe(inbound.asLink());

    const late = h.dialer.last.accept();
    await vi.advanceTimersByTimeAsync(0);
    expect(late.isOpen).toBe(false);
    expect(h.pl.current).toBe(inbound.asLink());
    expect(h.ups).toEqual([inbound.asLink()]);
  });

  it('while both sides dial, the lower id refuses the inbound link: its own dial wins', () => {
    const h = harness(LOWER);
    h.pl.send(7, text('x'));
    expect(h.pl.admitInbound()).toMatchObject({ code: 'DUPLICATE_LINK' });
  });

  it('the lower id refuses an inbound link while its own outbound link is open; the higher id accepts it', async () => {
    const low = harness(LOWER);
    low.pl.send(7, text('x'));
    low.dialer.last.accept();
    await vi.advanceTimersByTimeAsync(0);
    expect(low.pl.admitInbound()).toMatchObject({ code: 'DUPLICATE_LINK' });

    const high = harness(HIGHER);
    high.pl.send(7, text('x'));
    high.dialer.last.accept();
    await vi.advanceTimersByTimeAsync(0);
    expect(high.pl.admitInbound()).toBeNull();
  });

  it("a dial refused as DUPLICATE_LINK waits for the peer's link instead of dialling again at once", async () => {
    const h = harness(HIGHER);
    h.pl.send(7, text('x'));
    h.dialer.last.refuse(new XError('DUPLICATE_LINK', 'both sides dialled'));
    await vi.advanceTimersByTimeAsync(0);
    h.pl.send(7, text('y')); // more work does not start another dial while we wait for the peer
    await vi.advanceTimersByTimeAsync(LIMITS.dialMinBackoffMs - 1);
    expect(h.dialer.attempts).toHaveLength(1);

    const inbound = new FakeLink({ type: 5, id: PEER }, 'in');
    h.pl.adoptInbound(inbound.asLink());
    expect(sentText(inbound)).toEqual(['x', 'y']);
  });

  it("if the peer's link never comes after DUPLICATE_LINK, it dials again after the backoff", async () => {
    const h = harness(HIGHER);
    h.pl.send(7, text('x'));
    h.dialer.last.refuse(new XError('DUPLICATE_LINK', 'both sides dialled'));
    await vi.advanceTimersByTimeAsync(LIMITS.dialMinBackoffMs);
    expect(h.dialer.attempts).toHaveLength(2);
    expect(h.dialer.gaps()).toEqual([LIMITS.dialMinBackoffMs]);
  });
});
