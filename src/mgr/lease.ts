/**
 * MgrLease: holds (or waits for) the mgr address lease in the store.
 *
 * standby --acquire ok--> active --refresh says "not yours" or unconfirmed for a whole TTL--> standby
 *
 * The active side refreshes every `refreshMs`. It steps down as soon as the store says another
 * instance holds the lease, and also when it could not confirm the lease for a whole TTL (the
 * store may be unreachable from here but not from a standby: staying active then risks a split
 * brain). `isValid()` is the local guard other code checks before acting as the active mgr.
 */
import type { Logger } from 'pino';
import type { LeaseRecord, LeaseStore } from '../store/store.js';

/**
 * The active mgr steps down this share of the TTL (at least MIN_STEP_DOWN_MARGIN_MS) before the
 * store could expire an unconfirmed lease: room for clock drift between us and the store.
 */
const STEP_DOWN_MARGIN = 0.1;
const MIN_STEP_DOWN_MARGIN_MS = 50;

export interface MgrLeaseHost {
  onActive(rec: LeaseRecord): void;
  onLost(reason: string): void;
}

export interface MgrLeaseOptions {
  ttlMs: number;
  refreshMs: number;
  standbyPollMs: number;
}

export class MgrLease {
  private timer: NodeJS.Timeout | null = null;
  private active: LeaseRecord | null = null;
  private confirmedAt = 0;
  private stopped = false;
  private busy = false;
  /** Fires a little before the lease could have expired in the store without a confirmation. */
  private watchdog: NodeJS.Timeout | null = null;

  constructor(
    private readonly store: LeaseStore,
    private readonly record: Omit<LeaseRecord, 'epoch'>,
    private readonly opts: MgrLeaseOptions,
    private readonly host: MgrLeaseHost,
    private readonly log: Logger,
  ) {}

  get current(): LeaseRecord | null {
    return this.active;
  }

  /** True while this instance holds a lease confirmed less than a TTL ago. */
  isValid(): boolean {
    return this.active !== null && performance.now() - this.confirmedAt < this.opts.ttlMs;
  }

  start(): void {
    this.schedule(0);
  }

  /** Stops refreshing; releases the lease if held (graceful stop: standbys take over at once). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.disarm();
    if (this.active) {
      const id = this.active.instanceId;
      this.active = null;
      await this.store.releaseLease(id).catch((e: Error) => this.log.warn({ err: e.message }, 'could not release the mgr lease'));
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), ms);
  }

  private async tick(): Promise<void> {
    if (this.stopped || this.busy) return;
    this.busy = true;
    try {
      if (this.active) await this.refresh();
      else await this.tryAcquire();
    } finally {
      this.busy = false;
      this.schedule(this.active ? this.opts.refreshMs : this.opts.standbyPollMs);
    }
  }

  private async tryAcquire(): Promise<void> {
    let rec: LeaseRecord | null;
    try {
      const t0 = performance.now();
      rec = await withTimeout(this.store.acquireLease(this.record, this.opts.ttlMs), this.opts.ttlMs);
      this.confirmedAt = t0;
    } catch (e) {
      this.log.debug({ err: (e as Error).message }, 'standby: store unreachable');
      return;
    }
    if (!rec || this.stopped) return;
    this.active = rec;
    this.arm();
    this.host.onActive(rec);
  }

  private async refresh(): Promise<void> {
    const t0 = performance.now();
    let ok: boolean;
    try {
      // A store call that hangs must not keep a stale mgr active: bound it by the TTL.
      ok = await withTimeout(this.store.refreshLease(this.record.instanceId, this.opts.ttlMs), this.opts.ttlMs);
    } catch (e) {
      if (!this.isValid()) this.lose(`lease unconfirmed for ${this.opts.ttlMs} ms (store: ${(e as Error).message})`);
      return;
    }
    if (this.stopped || !this.active) return;
    if (ok) {
      this.confirmedAt = t0;
      this.arm();
    } else this.lose('another mgr holds the lease');
  }

  /**
   * The store expires the lease no earlier than confirmedAt + TTL; step down a margin before that
   * unless a refresh confirms it again, so a standby can never be active while we still are.
   */
  private arm(): void {
    this.disarm();
    const margin = Math.max(MIN_STEP_DOWN_MARGIN_MS, this.opts.ttlMs * STEP_DOWN_MARGIN);
    const left = this.confirmedAt + this.opts.ttlMs - margin - performance.now();
    this.watchdog = setTimeout(() => this.lose(`lease not confirmed within ${this.opts.ttlMs - margin} ms`), Math.max(0, left));
  }

  private disarm(): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = null;
  }

  private lose(reason: string): void {
    if (!this.active) return;
    this.disarm();
    this.active = null;
    this.host.onLost(reason);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`store did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
