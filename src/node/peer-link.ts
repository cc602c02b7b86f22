/**
 * PeerLink: the one direct link between this node and one peer (SPEC §5).
 *
 * - Created on first use; dialled in the background while messages wait in a bounded buffer.
 * - One link per pair: when both sides dial at once, the link dialled by the lower id wins
 *   (the acceptor applies the rule in `admitInbound`; the refused side waits for the inbound).
 * - Re-dialled with backoff while the peer is listed and there is something to send; closed when
 *   the peer leaves the membership.
 * - Buffered messages keep their order and go out before anything sent after the link opens.
 * - Nothing waits longer than `maxAgeMs` (node.pendingMaxAgeMs): an older message is dropped, a
 *   request rejected with TIMEOUT, a send reported through its `onDropped` and `onPendingExpired`.
 */
import type { Logger } from 'pino';
import { XError } from '../errors.js';
import { Backoff } from '../protocol/backoff.js';
import type { Link, LinkIdentity, LinkOptions } from '../link/link.js';
import type { Frame } from '../protocol/frame.js';
import { dialLink, type LinkDialer } from './dial.js';

export interface PeerLinkHost {
  readonly self: LinkIdentity;
  readonly linkOptions: LinkOptions;
  readonly log: Logger;
  /** Where to dial the peer now; undefined when it is no longer listed. */
  /** Where a listed peer is, and the identity key its link must prove. */
  addressOf(id: string): { host: string; port: number; type: number; publicKey?: Uint8Array } | undefined;
  onFrame(frame: Frame, link: Link): void;
  onLinkUp(peerId: string, link: Link): void;
  onLinkDown(peerId: string, err: XError | undefined): void;
  /** Messages dropped because the pending buffer was full. */
  onPendingOverflow(peerId: string, count: number): void;
  /** Messages dropped because they waited longer than `maxAgeMs` for the link. */
  onPendingExpired(peerId: string, count: number): void;
}

export interface PendingLimits {
  maxMessages: number;
  maxBytes: number;
  /** Oldest a buffered message may get; older ones are dropped (node.pendingMaxAgeMs). */
  maxAgeMs: number;
  dialMinBackoffMs: number;
  dialMaxBackoffMs: number;
}

/** Work waiting for the link: a send or a request. Returns false when it was refused. */
type PendingOp = { bytes: number; at: number; run: (link: Link) => void; fail: (e: XError) => void };

export class PeerLink {
  private link: Link | null = null;
  private dialing = false;
  /** Our dial was refused as a duplicate: the peer is dialling us. */
  private awaitingInbound = false;
  private retryTimer: NodeJS.Timeout | null = null;
  /** Fires when the oldest buffered message reaches maxAgeMs. */
  private expiryTimer: NodeJS.Timeout | null = null;
  private readonly backoff: Backoff;
  private pending: PendingOp[] = [];
  private pendingBytes = 0;
  private closed = false;

  constructor(
    readonly peerId: string,
    private readonly host: PeerLinkHost,
    private readonly limits: PendingLimits,
    private readonly dial: LinkDialer = dialLink,
  ) {
    this.backoff = new Backoff(limits.dialMinBackoffMs, limits.dialMaxBackoffMs);
  }

  get isOpen(): boolean {
    return this.link !== null && this.link.isOpen;
  }

  get current(): Link | null {
    return this.link;
  }

  get pendingCount(): number {
    return this.pending.length;
  }

  /**
   * Sends now if open, else buffers (bounded) and makes sure a dial is under way. `onDropped` runs
   * if a buffered message is thrown away because the peer left before the link came up.
   */
  send(cmd: number, body: Uint8Array, flags = 0, rid = 0, onDropped?: (e: XError) => void): boolean {
    const l = this.link;
    if (l !== null) return l.send(cmd, body, flags, rid);
    // The body may be a view into a socket chunk: a buffered message keeps its own copy.
    const copy = body.slice();
    return this.enqueue({ bytes: copy.length, at: 0, run: (link) => void link.send(cmd, copy, flags, rid), fail: onDropped ?? (() => {}) });
  }

  request(cmd: number, body: Uint8Array, timeoutMs: number): Promise<Frame> {
    const l = this.link;
    if (l !== null) return l.request(cmd, body, timeoutMs);
    const copy = body.slice();
    return new Promise<Frame>((resolve, reject) => {
      const t0 = performance.now();
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        // Give its place in the buffer back.
        const i = this.pending.indexOf(op);
        if (i >= 0) {
          this.pending.splice(i, 1);
          this.pendingBytes -= op.bytes;
        }
        reject(new XError('TIMEOUT', `request to ${this.peerId.slice(0, 8)} timed out after ${timeoutMs} ms waiting for the link`));
      }, timeoutMs);
      const op: PendingOp = {
        bytes: copy.length,
        at: 0,
        run: (link) => {
          if (settled) return;
          clearTimeout(timer);
          const left = Math.max(1, timeoutMs - (performance.now() - t0));
          link.request(cmd, copy, left).then(resolve, reject);
        },
        fail: (e) => {
          if (settled) return;
          clearTimeout(timer);
          reject(e);
        },
      };
      const ok = this.enqueue(op);
      if (!ok) {
        clearTimeout(timer);
        reject(new XError('QUEUE_FULL', `pending buffer to ${this.peerId.slice(0, 8)} is full`));
      }
    });
  }

  /**
   * The acceptor side of the duplicate rule. Returns a refusal when our own dial must win,
   * else null (the caller then hands the accepted link to `adoptInbound`).
   */
  admitInbound(): XError | null {
    if (this.closed) return null;
    if (this.dialing && this.host.self.id < this.peerId) {
      return new XError('DUPLICATE_LINK', 'both sides dialled; the link from the lower id wins');
    }
    if (this.link && this.link.direction === 'out' && this.link.isOpen && this.host.self.id < this.peerId) {
      return new XError('DUPLICATE_LINK', 'a link already exists');
    }
    return null;
  }

  adoptInbound(link: Link): void {
    if (this.closed) {
      link.close();
      return;
    }
    // Any older link (ours or theirs) is replaced; its close must not be taken for the peer's death.
    const old = this.link;
    this.link = null;
    if (old && old !== link) {
      old.onClose = () => {};
      old.close();
    }
    this.dialing = false; // a dial still in flight is discarded when it lands
    this.awaitingInbound = false;
    this.attach(link);
  }

  /** Starts a dial if there is none and the peer is listed. */
  ensure(): void {
    if (this.closed || this.link || this.dialing || this.retryTimer || this.awaitingInbound) return;
    const addr = this.host.addressOf(this.peerId);
    if (!addr) {
      this.failPending(new XError('NO_TARGET', `node ${this.peerId} is not listed`));
      return;
    }
    this.dialing = true;
    const expect = { type: addr.type, id: this.peerId, publicKey: addr.publicKey };
    this.dial(addr.host, addr.port, this.host.self, expect, this.host.linkOptions).then(
      (link) => {
        if (!this.dialing || this.closed || this.link) {
          // Superseded by an inbound link (or closed) while dialling.
          link.close();
          return;
        }
        this.dialing = false;
        this.attach(link);
      },
      (err: XError) => {
        if (!this.dialing) return;
        this.dialing = false;
        if (err.code === 'DUPLICATE_LINK') this.awaitingInbound = true;
        this.host.log.debug({ peer: this.peerId, code: err.code }, `dial failed: ${err.message}`);
        this.scheduleRetry();
      },
    );
  }

  /** The peer left the membership: drop the link and everything waiting for it. */
  close(reason: XError): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.clearExpiry();
    this.failPending(reason);
    const l = this.link;
    this.link = null;
    if (l) {
      l.onClose = () => {};
      l.close();
    }
  }

  private attach(link: Link): void {
    this.link = link;
    this.backoff.reset();
    link.onFrame = (f, l) => this.host.onFrame(f, l);
    link.onClose = (err) => {
      if (this.link !== link) return;
      this.link = null;
      this.host.onLinkDown(this.peerId, err);
      // Keep the link warm while the peer is listed: the mgr tells us if it is gone.
      this.scheduleRetry();
    };
    // Buffered work first, in order, then whatever comes next goes straight to the link.
    this.expire();
    this.clearExpiry();
    const ops = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (const op of ops) op.run(link);
    link.start();
    this.host.onLinkUp(this.peerId, link);
  }

  private enqueue(op: PendingOp): boolean {
    if (this.closed) return false;
    if (this.pending.length >= this.limits.maxMessages || this.pendingBytes + op.bytes > this.limits.maxBytes) {
      this.host.onPendingOverflow(this.peerId, 1);
      return false;
    }
    op.at = performance.now();
    this.pending.push(op);
    this.pendingBytes += op.bytes;
    if (!this.expiryTimer) this.armExpiry();
    this.ensure();
    return true;
  }

  /** Drops what has waited maxAgeMs or longer (the buffer is in arrival order: oldest first). */
  private expire(): void {
    const cutoff = performance.now() - this.limits.maxAgeMs;
    let n = 0;
    while (n < this.pending.length && this.pending[n]!.at <= cutoff) n++;
    if (n === 0) return;
    const old = this.pending.splice(0, n);
    for (const op of old) this.pendingBytes -= op.bytes;
    const err = new XError(
      'TIMEOUT',
      `waited more than ${this.limits.maxAgeMs} ms for the link to ${this.peerId.slice(0, 8)} (node.pendingMaxAgeMs)`,
    );
    for (const op of old) op.fail(err);
    this.host.onPendingExpired(this.peerId, n);
  }

  private armExpiry(): void {
    const oldest = this.pending[0];
    if (!oldest) return;
    const wait = Math.max(0, oldest.at + this.limits.maxAgeMs - performance.now());
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = null;
      this.expire();
      this.armExpiry();
    }, wait);
    this.expiryTimer.unref();
  }

  private clearExpiry(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer) return;
    const delay = this.backoff.next();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      // Waited long enough for the peer's own dial: try ours again.
      this.awaitingInbound = false;
      if (!this.link && (this.pending.length > 0 || this.host.addressOf(this.peerId))) this.ensure();
    }, delay);
    this.retryTimer.unref();
  }

  private failPending(e: XError): void {
    this.clearExpiry();
    const ops = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (const op of ops) op.fail(e);
  }
}
