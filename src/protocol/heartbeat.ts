/**
 * Ping/pong liveness for one link. Knows its host only through HeartbeatHost, so every link
 * kind (node<->mgr, node<->node, gateway<->client, and the client SDK's side) reuses it.
 * Browser-safe: timers and performance.now() only.
 *
 * Any received frame counts as life (`touch`). A ping is sent every `intervalMs`; the peer is
 * declared hung when nothing arrived for `timeoutMs`. Checks run every intervalMs/2, so
 * detection lands within timeoutMs + intervalMs/2.
 *
 * If this process itself was stalled (SIGSTOP, a long GC), the check timer fires late; then the
 * silence says nothing about the peer, so the clock restarts instead of blaming it.
 */

/** A check this many ticks (plus the slack) late means this process was not running. */
const LATE_TICKS = 4;
const LATE_SLACK_MS = 250;
/** Checks run at least this far apart, whatever the interval. */
const MIN_TICK_MS = 5;

export interface HeartbeatHost {
  sendPing(): void;
  onHeartbeatTimeout(silentMs: number): void;
}

export class Heartbeat {
  private timer: ReturnType<typeof setInterval> | null = null;
  private lastRx = 0;
  private lastPing = 0;
  private lastTick = 0;

  constructor(
    private readonly host: HeartbeatHost,
    private readonly intervalMs: number,
    private readonly timeoutMs: number,
  ) {}

  start(): void {
    const now = performance.now();
    this.lastRx = now;
    this.lastPing = now;
    this.lastTick = now;
    const tickMs = Math.max(MIN_TICK_MS, Math.floor(this.intervalMs / 2));
    this.timer = setInterval(() => this.tick(tickMs), tickMs);
    // In Node a heartbeat alone must not keep the process alive (browsers have no unref).
    (this.timer as { unref?: () => void }).unref?.();
  }

  touch(): void {
    this.lastRx = performance.now();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private tick(tickMs: number): void {
    const now = performance.now();
    const late = now - this.lastTick;
    this.lastTick = now;
    if (late > tickMs * LATE_TICKS + LATE_SLACK_MS) {
      // We were not running: give the peer a fresh window instead of a false verdict.
      this.lastRx = now;
    }
    const silent = now - this.lastRx;
    if (silent >= this.timeoutMs) {
      this.stop();
      this.host.onHeartbeatTimeout(Math.round(silent));
      return;
    }
    if (now - this.lastPing >= this.intervalMs) {
      this.lastPing = now;
      this.host.sendPing();
    }
  }
}
