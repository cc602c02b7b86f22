/**
 * Requests waiting for their response, by request id, with one timer for all their deadlines
 * (a timer per request cost ~15% of the request rate on a link). The timer fires at the earliest
 * deadline known when it was armed, fails what is due and re-arms for the next one; a request
 * answered in time costs a map insert and delete, nothing else. Browser-safe: the intranet links
 * and the client SDK share it.
 */

interface Entry<P> {
  value: P;
  deadline: number;
}

export class PendingRequests<P> {
  private readonly entries = new Map<number, Entry<P>>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private timerAt = Infinity;

  constructor(
    /** Called for each request whose deadline passed; it is already removed. */
    private readonly onTimeout: (rid: number, value: P) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get size(): number {
    return this.entries.size;
  }

  add(rid: number, value: P, timeoutMs: number): void {
    const deadline = this.now() + timeoutMs;
    this.entries.set(rid, { value, deadline });
    if (deadline < this.timerAt) this.arm(deadline);
  }

  get(rid: number): P | undefined {
    return this.entries.get(rid)?.value;
  }

  /** Removes and returns the request (undefined when it timed out or was never there). */
  take(rid: number): P | undefined {
    const e = this.entries.get(rid);
    if (!e) return undefined;
    this.entries.delete(rid);
    return e.value;
  }

  /** Removes and returns every request `which` selects (all of them by default); the timer stops when none is left. */
  takeAll(which: (value: P) => boolean = () => true): P[] {
    const out: P[] = [];
    for (const [rid, e] of this.entries) {
      if (!which(e.value)) continue;
      this.entries.delete(rid);
      out.push(e.value);
    }
    if (this.entries.size === 0) this.disarm();
    return out;
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
    let next = Infinity;
    const due: [number, P][] = [];
    for (const [rid, e] of this.entries) {
      if (e.deadline <= now) {
        this.entries.delete(rid);
        due.push([rid, e.value]);
      } else if (e.deadline < next) next = e.deadline;
    }
    if (next < Infinity) this.arm(next);
    for (const [rid, value] of due) this.onTimeout(rid, value);
  };
}
