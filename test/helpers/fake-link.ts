/**
 * A fake Link and a fake dialer for the unit tests of PeerLink and MgrClient: no sockets, every
 * dial is an attempt the test accepts or refuses, every request waits for the test's answer.
 * Only the members those classes use are here; `asLink()` hands the fake to them as a Link.
 */
import { XError } from '../../src/errors.js';
import type { Link, LinkIdentity, LinkOptions } from '../../src/link/link.js';
import type { LinkDialer } from '../../src/node/dial.js';
import type { Frame } from '../../src/protocol/frame.js';

export interface SentFrame {
  cmd: number;
  body: Uint8Array;
  flags: number;
  rid: number;
}

export interface PendingFakeRequest {
  cmd: number;
  body: Uint8Array;
  timeoutMs: number;
  answer(body: Uint8Array): void;
  fail(err: XError): void;
}

export class FakeLink {
  onFrame: (frame: Frame, link: Link) => void = () => {};
  onClose: (err: XError | undefined, link: Link) => void = () => {};
  readonly sent: SentFrame[] = [];
  readonly requests: PendingFakeRequest[] = [];
  isOpen = true;
  started = false;

  constructor(
    readonly remote: LinkIdentity,
    readonly direction: 'in' | 'out',
  ) {}

  asLink(): Link {
    return this as unknown as Link;
  }

  start(): this {
    this.started = true;
    return this;
  }

  send(cmd: number, body: Uint8Array, flags = 0, rid = 0): boolean {
    if (!this.isOpen) return false;
    this.sent.push({ cmd, body, flags, rid });
    return true;
  }

  /** Waits for the test's answer; fails with TIMEOUT after `timeoutMs`, as a real link does. */
  request(cmd: number, body: Uint8Array, timeoutMs: number): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new XError('TIMEOUT', `fake request ${cmd} timed out after ${timeoutMs} ms`)), timeoutMs);
      this.requests.push({
        cmd,
        body,
        timeoutMs,
        answer: (reply) => {
          clearTimeout(timer);
          resolve({ cmd, flags: 0, rid: this.requests.length, body: reply });
        },
        fail: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
    });
  }

  /** A frame from the remote side. */
  receive(cmd: number, body: Uint8Array): void {
    this.onFrame({ cmd, flags: 0, rid: 0, body }, this.asLink());
  }

  /** Local close (what PeerLink / MgrClient call). */
  close(err?: XError): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.onClose(err, this.asLink());
  }

  /** The remote side went away. */
  drop(err = new XError('LINK_CLOSED', 'the peer closed the connection')): void {
    this.close(err);
  }
}

export interface DialAttempt {
  host: string;
  port: number;
  expect: { type: number; id: string };
  /** performance.now() of the dial (fake clock in the tests). */
  at: number;
  accept(): FakeLink;
  refuse(err: XError): void;
}

export class FakeDialer {
  readonly attempts: DialAttempt[] = [];
  /** Runs at every dial (e.g. to accept or refuse at once); attempts stay pending otherwise. */
  respond: (attempt: DialAttempt) => void = () => {};

  readonly dial: LinkDialer = (host: string, port: number, _self: LinkIdentity, expect: { type: number; id: string }, _opts: LinkOptions) =>
    new Promise<Link>((resolve, reject) => {
      const attempt: DialAttempt = {
        host,
        port,
        expect,
        at: performance.now(),
        accept: () => {
          const link = new FakeLink(expect, 'out');
          resolve(link.asLink());
          return link;
        },
        refuse: (err) => reject(err),
      };
      this.attempts.push(attempt);
      this.respond(attempt);
    });

  get last(): DialAttempt {
    const a = this.attempts[this.attempts.length - 1];
    if (!a) throw new Error('no dial attempt yet');
    return a;
  }

  /** Gaps between consecutive attempts, in ms. */
  gaps(): number[] {
    return this.attempts.slice(1).map((a, i) => a.at - this.attempts[i]!.at);
  }
}
