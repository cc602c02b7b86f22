/** The pure pieces of the session handoff (src/gateway/handoff.ts), with fake timers. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FenceHold, HandoffTokens, MovedSession, tokenIssuer } from '../src/gateway/handoff.js';

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
