/**
 * Exactly-once broadcasts for a session that moves between gateways (docs/protocol.md, "Session
 * handoff").
 *
 * A node numbers its broadcasts (BroadcastClients.seq: 1, 2, 3... per node) and sends each one to
 * every gateway, each on its own link, so two gateways are at different points of the same
 * node's stream at any instant. When a session moves from A to B, A's state says, per node, the
 * last broadcast the session got at A (`seen`). B compares with its own point of that stream:
 *
 *   B ahead  (B's last > A's):  B already delivered (A's, B's] to its other sessions; the moved
 *                               session gets them now, from this log, in order (`catchUp`).
 *   B behind (B's last < A's):  the broadcasts up to A's number are still on their way to B; the
 *                               moved session got them at A, so B skips them for it (`record`).
 *
 * The log keeps the most recent broadcasts, at most `maxEntries` and `maxBytes` (the frames are
 * the ones already encoded for the sockets, so an entry costs a reference): far more than the lag
 * between two gateways on one intranet. A catch-up that reaches past what the log still holds is
 * counted as missed. A skip ends when this gateway catches up, when the account moves on or
 * arrives again, when its source leaves, or after `skipTtlMs`, whichever comes first: at most one
 * per source per account moved in within that time. Unnumbered broadcasts (seq 0) pass through
 * without any of this.
 */

/** One broadcast as this gateway delivered it: the encoded client frame. */
export interface LoggedBroadcast {
  source: string;
  seq: number;
  cmd: number;
  frame: Buffer;
}

export interface BroadcastLogLimits {
  maxEntries: number;
  maxBytes: number;
  /** How long a skip lasts at most (it only has to cover the lag between two gateways). */
  skipTtlMs: number;
}

/** A moved account's skip of one source: its broadcasts up to `upTo`, until `until` (performance.now()). */
interface Skip {
  upTo: number;
  until: number;
}

export class BroadcastLog {
  /** Per source: the last numbered broadcast received here. */
  private readonly last = new Map<string, number>();
  /** Per source: the highest number evicted from the log (a catch-up from below it misses some). */
  private readonly evicted = new Map<string, number>();
  /** Oldest first; `head` is the index of the oldest live entry (compacted as it advances). */
  private entries: LoggedBroadcast[] = [];
  private head = 0;
  private bytes = 0;
  /** Per source, per moved account: skip this source's broadcasts up to a number (the account got them at its old gateway). */
  private readonly skips = new Map<string, Map<string, Skip>>();

  constructor(
    private readonly limits: BroadcastLogLimits,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Entries held (for tests and metrics). */
  get size(): number {
    return this.entries.length - this.head;
  }

  /**
   * A numbered broadcast arrived: logs it and answers the accounts that must not get it (they got
   * it before they moved here), or undefined when every session gets it.
   */
  record(b: LoggedBroadcast): ReadonlySet<string> | undefined {
    if (b.seq === 0) return undefined;
    this.last.set(b.source, b.seq);
    this.entries.push(b);
    this.bytes += b.frame.length;
    while (this.size > this.limits.maxEntries || (this.bytes > this.limits.maxBytes && this.size > 1)) this.evictOldest();
    const skip = this.skips.get(b.source);
    if (!skip) return undefined;
    const out = new Set<string>();
    const now = this.now();
    for (const [account, { upTo, until }] of skip) {
      if (now > until) {
        skip.delete(account);
        continue;
      }
      if (b.seq <= upTo) out.add(account);
      // This gateway has caught up with the old one on this source: nothing more to skip.
      if (b.seq >= upTo) skip.delete(account);
    }
    if (skip.size === 0) this.skips.delete(b.source);
    return out.size > 0 ? out : undefined;
  }

  /** What a session moving away from here has got, per source: for the state handed to the next gateway. */
  seen(account: string): Record<string, bigint> {
    const out: Record<string, bigint> = {};
    for (const [source, seq] of this.last) out[source] = BigInt(seq);
    // Still skipping: the session got more at its previous gateway than this one has delivered.
    const now = this.now();
    for (const [source, skip] of this.skips) {
      const k = skip.get(account);
      if (k !== undefined && now <= k.until && k.upTo > (this.last.get(source) ?? 0)) out[source] = BigInt(k.upTo);
    }
    return out;
  }

  /**
   * A session moved here having got `seen` at its old gateway: the broadcasts it still needs from
   * the log (oldest first), and how many it needs that the log no longer holds. Registers the
   * skips for sources this gateway is behind on, among those `live` says can still send here;
   * a skip lasts at most limits.skipTtlMs.
   */
  catchUp(account: string, seen: Record<string, bigint>, live: (source: string) => boolean): { replay: LoggedBroadcast[]; missed: number } {
    this.forgetAccount(account); // whatever an earlier session of the account left
    this.sweep();
    const cut = new Map<string, number>();
    let missed = 0;
    const until = this.now() + this.limits.skipTtlMs;
    for (const [source, s] of Object.entries(seen)) {
      const got = Number(s);
      const here = this.last.get(source) ?? 0;
      if (here < got) {
        if (!live(source)) continue; // gone: nothing more of it will arrive to skip
        let skip = this.skips.get(source);
        if (!skip) this.skips.set(source, (skip = new Map()));
        skip.set(account, { upTo: got, until });
      } else if (here > got) {
        cut.set(source, got);
        missed += Math.max(0, (this.evicted.get(source) ?? 0) - got);
      }
    }
    const replay: LoggedBroadcast[] = [];
    if (cut.size > 0) {
      for (let i = this.head; i < this.entries.length; i++) {
        const e = this.entries[i]!;
        const got = cut.get(e.source);
        if (got !== undefined && e.seq > got) replay.push(e);
      }
    }
    return { replay, missed };
  }

  /** The account's skips end (it left, or moved on): nothing is kept for it. */
  forgetAccount(account: string): void {
    for (const [source, skip] of this.skips) if (skip.delete(account) && skip.size === 0) this.skips.delete(source);
  }

  /** Skips past their time (a source that never sent the numbers they wait for). */
  private sweep(): void {
    const now = this.now();
    for (const [source, skip] of this.skips) {
      for (const [account, k] of skip) if (now > k.until) skip.delete(account);
      if (skip.size === 0) this.skips.delete(source);
    }
  }

  /** A source left the cluster: its numbers are not needed any more (its logged frames age out). */
  forgetSource(source: string): void {
    this.last.delete(source);
    this.evicted.delete(source);
    this.skips.delete(source);
  }

  private evictOldest(): void {
    const e = this.entries[this.head]!;
    this.entries[this.head] = undefined as unknown as LoggedBroadcast;
    this.head++;
    this.bytes -= e.frame.length;
    if (this.last.has(e.source)) this.evicted.set(e.source, e.seq);
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
