/**
 * Requests waiting for their response, by request id, with one timer for all their deadlines
 * (a timer per request cost ~15% of the request rate on a link). The timer fires at the earliest
 * deadline known when it was armed, fails what is due and re-arms for the next one; a request
 * answered in time costs a ring slot written and cleared, nothing else. Browser-safe: the
 * intranet links and the client SDK share it.
 */

interface Entry<P> {
  value: P;
  deadline: number;
}

/** Ring slots at first, and the most it grows to; a request whose slot is still taken beyond that waits in a map. */
const INITIAL_SLOTS = 64;
const MAX_SLOTS = 1 << 16;

/**
 * performance.now() read once per run of synchronous code: the requests a burst of responses
 * sends from one callback share one reading, dropped at the next microtask checkpoint. A deadline
 * is thus early by at most the time the current code has been running. (Three clock reads per
 * request, the link's and a load driver's two, were ~13% of a 1.7 M req/s caller.)
 */
let clockReading = -1;
const dropReading = (): void => {
  clockReading = -1;
};
export function turnClock(): number {
  if (clockReading < 0) {
    clockReading = performance.now();
    queueMicrotask(dropReading);
  }
  return clockReading;
}

/**
 * Request ids are handed out in sequence, so the requests in flight cover a short run of ids: a
 * ring indexed by the id's low bits holds them with no hashing and no object per request (a Map
 * of entries was a tenth of a 1 M req/s caller, with its garbage). The ring doubles when a slot
 * is still taken (up to MAX_SLOTS); past that, the few long-lived requests go to `overflow`.
 */
export class PendingRequests<P> {
  private mask = INITIAL_SLOTS - 1;
  private values: (P | undefined)[] = new Array<P | undefined>(INITIAL_SLOTS);
  private rids = new Float64Array(INITIAL_SLOTS);
  private deadlines = new Float64Array(INITIAL_SLOTS);
  private readonly overflow = new Map<number, Entry<P>>();
  private count = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private timerAt = Infinity;

  constructor(
    /** Called for each request whose deadline passed; it is already removed. */
    private readonly onTimeout: (rid: number, value: P) => void,
    private readonly now: () => number = turnClock,
  ) {}

  get size(): number {
    return this.count;
  }

  add(rid: number, value: P, timeoutMs: number): void {
    const deadline = this.now() + timeoutMs;
    this.put(rid, value, deadline);
    this.count++;
    if (deadline < this.timerAt) this.arm(deadline);
  }

  get(rid: number): P | undefined {
    const i = rid & this.mask;
    if (this.values[i] !== undefined && this.rids[i] === rid) return this.values[i];
    return this.overflow.get(rid)?.value;
  }

  /** Removes and returns the request (undefined when it timed out or was never there). */
  take(rid: number): P | undefined {
    const i = rid & this.mask;
    const v = this.values[i];
    if (v !== undefined && this.rids[i] === rid) {
      this.values[i] = undefined;
      this.count--;
      return v;
    }
    const e = this.overflow.get(rid);
    if (!e) return undefined;
    this.overflow.delete(rid);
    this.count--;
    return e.value;
  }

  /** Removes and returns every request `which` selects (all of them by default), oldest deadline first; the timer stops when none is left. */
  takeAll(which: (value: P) => boolean = () => true): P[] {
    const out = this.remove((_rid, e) => which(e.value));
    if (this.count === 0) this.disarm();
    return out.map(([, e]) => e.value);
  }

  private put(rid: number, value: P, deadline: number): void {
    for (;;) {
      const i = rid & this.mask;
      if (this.values[i] === undefined) {
        this.values[i] = value;
        this.rids[i] = rid;
        this.deadlines[i] = deadline;
        return;
      }
      if (this.values.length >= MAX_SLOTS) {
        this.overflow.set(rid, { value, deadline });
        return;
      }
      this.grow();
    }
  }

  /** Twice the slots; entries whose new slot is taken go to the overflow map. */
  private grow(): void {
    const { values, rids, deadlines } = this;
    const size = values.length * 2;
    this.mask = size - 1;
    this.values = new Array<P | undefined>(size);
    this.rids = new Float64Array(size);
    this.deadlines = new Float64Array(size);
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === undefined) continue;
      const j = rids[i]! & this.mask;
      if (this.values[j] === undefined) {
        this.values[j] = v;
        this.rids[j] = rids[i]!;
        this.deadlines[j] = deadlines[i]!;
      } else this.overflow.set(rids[i]!, { value: v, deadline: deadlines[i]! });
    }
  }

  /** Removes the entries `which` picks, oldest deadline first. */
  private remove(which: (rid: number, e: Entry<P>) => boolean): [number, Entry<P>][] {
    const out: [number, Entry<P>][] = [];
    for (let i = 0; i < this.values.length; i++) {
      const value = this.values[i];
      if (value === undefined) continue;
      const e = { value, deadline: this.deadlines[i]! };
      if (!which(this.rids[i]!, e)) continue;
      this.values[i] = undefined;
      out.push([this.rids[i]!, e]);
    }
    for (const [rid, e] of this.overflow) {
      if (!which(rid, e)) continue;
      this.overflow.delete(rid);
      out.push([rid, e]);
    }
    this.count -= out.length;
    return out.sort((a, b) => a[1].deadline - b[1].deadline);
  }

  /** The earliest deadline still waiting (Infinity when none). */
  private earliest(): number {
    let next = Infinity;
    for (let i = 0; i < this.values.length; i++) if (this.values[i] !== undefined && this.deadlines[i]! < next) next = this.deadlines[i]!;
    for (const e of this.overflow.values()) if (e.deadline < next) next = e.deadline;
    return next;
  }

  private arm(at: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerAt = at;
    const t = setTimeout(this.sweep, Math.max(0, Math.ceil(at - this.now())));
    // In Node the connection keeps the process alive, not a deadline.
    (t as { unref?: () => void }).unref?.();
    this.timer = t;
  }

  private disarm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
  }

  private readonly sweep = (): void => {
    this.timer = null;
    this.timerAt = Infinity;
    const now = this.now();
    const due = this.remove((_rid, e) => e.deadline <= now);
    const next = this.earliest();
    if (next < Infinity) this.arm(next);
    for (const [rid, e] of due) this.onTimeout(rid, e.value);
  };
}
