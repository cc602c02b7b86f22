/**
 * Heartbeat alone, with fake timers (performance.now included) and a fake host that records
 * pings and timeouts.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Heartbeat, type HeartbeatHost } from '../src/protocol/heartbeat.js';

const INTERVAL_MS = 100;
const TIMEOUT_MS = 400;

function fakeHost() {
  const host = { pings: 0, timeouts: [] as number[] };
  const h: HeartbeatHost = {
    sendPing: () => void host.pings++,
    onHeartbeatTimeout: (ms) => void host.timeouts.push(ms),
  };
  return { host, h };
}

/** Makes performance.now() jump ahead without any timer firing: this process was stalled. */
function stallFor(ms: number): void {
  const clockNow = performance.now.bind(performance);
  vi.spyOn(performance, 'now').mockImplementation(() => clockNow() + ms);
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout', 'Date', 'performance'] });
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

describe('Heartbeat', () => {
  it('sends a ping every interval while started', () => {
    const { host, h } = fakeHost();
    const hb = new Heartbeat(h, INTERVAL_MS, 10_000);
    hb.start();
    vi.advanceTimersByTime(INTERVAL_MS - 1);
    expect(host.pings).toBe(0);
    vi.advanceTimersByTime(1);
    expect(host.pings).toBe(1);
    vi.advanceTimersByTime(INTERVAL_MS * 4);
    expect(host.pings).toBe(5);
    hb.stop();
  });

  it('a missed pong closes after the timeout, once', () => {
    const { host, h } = fakeHost();
    new Heartbeat(h, INTERVAL_MS, TIMEOUT_MS).start();
    vi.advanceTimersByTime(TIMEOUT_MS - 1);
    expect(host.timeouts).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(host.timeouts).toEqual([TIMEOUT_MS]);
    // It stopped itself: no more pings, no second verdict.
    const pings = host.pings;
    vi.advanceTimersByTime(TIMEOUT_MS * 10);
    expect(host.timeouts).toEqual([TIMEOUT_MS]);
    expect(host.pings).toBe(pings);
  });

  it('detection lands within the timeout plus half an interval', () => {
    const { host, h } = fakeHost();
    const timeoutMs = 420; // not a multiple of the check period (interval / 2)
    new Heartbeat(h, INTERVAL_MS, timeoutMs).start();
    vi.advanceTimersByTime(timeoutMs - 1);
    expect(host.timeouts).toEqual([]);
    vi.advanceTimersByTime(INTERVAL_MS / 2);
    expect(host.timeouts).toHaveLength(1);
    expect(host.timeouts[0]).toBeGreaterThanOrEqual(timeoutMs);
    expect(host.timeouts[0]).toBeLessThanOrEqual(timeoutMs + INTERVAL_MS / 2);
  });

  it('traffic counts as liveness: a peer that keeps sending is never timed out', () => {
    const { host, h } = fakeHost();
    const hb = new Heartbeat(h, INTERVAL_MS, TIMEOUT_MS);
    hb.start();
    for (let t = 0; t < TIMEOUT_MS * 10; t += INTERVAL_MS) {
      vi.advanceTimersByTime(INTERVAL_MS);
      hb.touch();
    }
    expect(host.timeouts).toEqual([]);
    // Once it goes quiet, the clock runs from its last frame.
    vi.advanceTimersByTime(TIMEOUT_MS);
    expect(host.timeouts).toEqual([TIMEOUT_MS]);
  });

  it('own stall does not blame the peer: a late check restarts the clock', () => {
    const { host, h } = fakeHost();
    new Heartbeat(h, INTERVAL_MS, TIMEOUT_MS).start();
    vi.advanceTimersByTime(INTERVAL_MS);
    stallFor(TIMEOUT_MS * 25); // e.g. SIGSTOP or a long GC pause: no timer ran meanwhile
    vi.advanceTimersByTime(INTERVAL_MS / 2); // the first check after the stall
    expect(host.timeouts).toEqual([]);
    // The peer gets a fresh window, not more: still silent a full timeout later, it is blamed.
    vi.advanceTimersByTime(TIMEOUT_MS - INTERVAL_MS / 2 - 1);
    expect(host.timeouts).toEqual([]);
    vi.advanceTimersByTime(INTERVAL_MS / 2 + 1);
    expect(host.timeouts).toEqual([TIMEOUT_MS]);
  });

  it('stop() ends pings and checks', () => {
    const { host, h } = fakeHost();
    const hb = new Heartbeat(h, INTERVAL_MS, TIMEOUT_MS);
    hb.start();
    hb.stop();
    vi.advanceTimersByTime(TIMEOUT_MS * 10);
    expect(host).toEqual({ pings: 0, timeouts: [] });
  });
});
