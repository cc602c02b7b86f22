/**
 * MgrLease: holds (or waits for) the mgr address lease in the store.
 *
 * standby --acquire ok--> active --refresh says "not yours" or unconfirmed for a whole TTL--> standby
 *
 * The active side refreshes every `refreshMs`. It steps down as soon as the store says another
 * instance holds the lease, and also when it could not confirm the lease for a whole TTL (the
 * store may be unreachable from here but not from a standby: staying active then risks a split
 * brain). `isValid()` is the local guard other code checks before acting as the active mgr.
 *
 * Every acquisition and refresh carries a deadline (LeaseCommandOptions.notAfter) equal to how
 * long we wait for it, so one we gave up on is never applied later by a store that stalled, and
 * the store sends lease commands only when connected, so the time we start one is when it went
 * out: a confirmation is never dated before the store came back.
 */
import type { Logger } from 'pino';
import { isXError } from '../errors.js';
import type { LeaseRecord, LeaseStore } from '../store/store.js';

/**
 * The active mgr steps down this share of the TTL (at least MIN_STEP_DOWN_MARGIN_MS) before the
 * store could expire an unconfirmed lease: room for clock drift between us and the store.
 */
const STEP_DOWN_MARGIN = 0.1;
const MIN_STEP_DOWN_MARGIN_MS = 50;
/**
 * An acquisition must land within this share of the TTL: a new active mgr then has at least half a
 * TTL before its first refresh has to be confirmed, instead of stepping down right after it started.
 */
const ACQUIRE_DEADLINE_SHARE = 0.5;

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
      const waitMs = this.opts.ttlMs * ACQUIRE_DEADLINE_SHARE;
      rec = await withTimeout(this.store.acquireLease(this.record, this.opts.ttlMs, { notAfter: Date.now() + waitMs }), waitMs);
      this.confirmedAt = t0;
    } catch (e) {
      this.logStoreError('standby: lease acquisition failed', e);
      return;
    }
    if (!rec || this.stopped) return;
    this.active = rec;
    this.arm();
    this.host.onActive(rec);
  }

  private async refresh(): Promise<void> {
    const t0 = performance.now();
    // A refresh is worth something only until the watchdog fires; past that it must not extend a
    // lease we no longer act on, nor keep a stale mgr active.
    const waitMs = this.confirmedAt + this.opts.ttlMs - this.margin() - t0;
    let ok: boolean;
    try {
      if (waitMs <= 0) throw new Error('no time left before the watchdog');
      ok = await withTimeout(this.store.refreshLease(this.record.instanceId, this.opts.ttlMs, { notAfter: Date.now() + waitMs }), waitMs);
    } catch (e) {
      this.logStoreError('lease refresh failed', e);
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
    const margin = this.margin();
    const left = this.confirmedAt + this.opts.ttlMs - margin - performance.now();
    this.watchdog = setTimeout(() => this.lose(`lease not confirmed within ${this.opts.ttlMs - margin} ms`), Math.max(0, left));
  }

  private margin(): number {
    return Math.max(MIN_STEP_DOWN_MARGIN_MS, this.opts.ttlMs * STEP_DOWN_MARGIN);
  }

  /** A lease command the store refused as late says Redis stalled (or its clock is off): worth a warning. */
  private logStoreError(msg: string, e: unknown): void {
    const err = (e as Error).message;
    if (isXError(e) && typeof e.details?.late === 'number')
      this.log.warn({ err, lateMs: e.details.late }, `${msg}: applied too late, refused by the store`);
    else this.log.debug({ err }, msg);
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
