/**
 * MgrClient: the node's side of discovery (the seed's steps 2, 4 and 5, hardened).
 *
 * Loop: read the lease from the store -> dial the mgr it names (expecting type mgr and that
 * instance id, so a stale address owned by another process is refused) -> REGISTER -> apply the
 * SNAPSHOT -> follow JOINED/LEFT/UPDATED until the link drops -> back to the store. Retries back
 * off; a takeover announcement (pub/sub) cuts the wait short, so a failover costs about one
 * lease TTL.
 */
import type { Logger } from 'pino';
import {
  LeftSchema,
  RegisterSchema,
  RoutingPoliciesSchema,
  VersionCountsSchema,
  type RoutingPolicy,
  type VersionCount,
  UpdatedSchema,
  type Left,
  type NodeInfo,
  type Snapshot,
  type Updated,
} from '../gen/xserver/v1/cluster_pb.js';
import { type XError } from '../errors.js';
import { Backoff } from '../protocol/backoff.js';
import type { Link, LinkIdentity, LinkOptions } from '../link/link.js';
import type { LeaseRecord, LeaseWatcher } from '../store/store.js';
import { decode, encode } from '../wire/codec.js';
import { Cmd } from '../protocol/commands.js';
import type { Frame } from '../protocol/frame.js';
import { NodeType } from '../context.js';
import { dialLink, type LinkDialer } from './dial.js';
import { decodeJoined, decodeJoinedBatch, decodeSnapshot, followMembership, forgetMember } from './member-infos.js';
import { LogThrottle } from '../log.js';

/** A member that cannot reach or join the mgr says so at most this often per kind of failure. */
const PROBLEM_LOG_INTERVAL_MS = 5000;

export interface MgrClientHost {
  /** Current own info, sent at every (re-)registration. */
  selfInfo(): NodeInfo;
  onSnapshot(s: Snapshot): void;
  onJoined(info: NodeInfo): void;
  onLeft(l: Left): void;
  onUpdated(u: Updated): void;
  /** The mgr relays an operator's `xserver drain` for this member. */
  onDrainRequested(): void;
  /** The canary routing policies changed (ROUTING_POLICIES: the whole table; a SNAPSHOT carries it too). */
  onPolicies(policies: RoutingPolicy[]): void;
  /** Accounts this member holds per service type and version (gateways; VERSION_COUNTS from `xserver status`). */
  countAccounts(): VersionCount[];
  onConnected(lease: LeaseRecord): void;
  onLost(reason: string): void;
}

export interface MgrClientOptions {
  minBackoffMs: number;
  maxBackoffMs: number;
  registerTimeoutMs: number;
  /** The most members a cluster may have (mgr.maxMembers): bounds the infos shared in this process. */
  maxMembers: number;
}

export class MgrClient {
  private link: Link | null = null;
  private lease: LeaseRecord | null = null;
  private stopped = false;
  private wakeUp: (() => void) | null = null;
  private unsubscribe: (() => Promise<void>) | null = null;
  private unfollow: (() => void) | null = null;
  private readonly backoff: Backoff;
  /** Membership frames that arrived before the registration snapshot was applied. */
  private early: Frame[] | null = null;
  private readonly problems = new LogThrottle(PROBLEM_LOG_INTERVAL_MS);
  /** Why the latest attempt to register failed ("" once registered). */
  lastFailure = '';

  constructor(
    private readonly store: LeaseWatcher,
    private readonly self: LinkIdentity,
    private readonly linkOptions: LinkOptions,
    private readonly opts: MgrClientOptions,
    private readonly host: MgrClientHost,
    private readonly log: Logger,
    private readonly dial: LinkDialer = dialLink,
  ) {
    this.backoff = new Backoff(opts.minBackoffMs, opts.maxBackoffMs);
  }

  get connected(): boolean {
    return this.link !== null && this.link.isOpen;
  }

  get mgr(): LeaseRecord | null {
    return this.connected ? this.lease : null;
  }

  async start(): Promise<void> {
    this.unfollow = followMembership(this.opts.maxMembers);
    try {
      this.unsubscribe = await this.store.onLeaseAnnounced(() => this.wake());
    } catch (e) {
      // Polling still finds the mgr; announcements only make it faster.
      this.log.warn({ err: (e as Error).message }, 'cannot subscribe to mgr announcements; polling only');
    }
    void this.loop();
  }

  /** LEAVE (graceful) then close. */
  async stop(leaveTimeoutMs: number): Promise<void> {
    this.stopped = true;
    this.wake();
    const link = this.link;
    if (link?.isOpen) {
      await link.request(Cmd.LEAVE, new Uint8Array(0), leaveTimeoutMs).catch(() => {});
      link.close();
    }
    await this.unsubscribe?.().catch(() => {});
    this.unfollow?.();
  }

  sendUpdate(overload: number[], version: string, draining: boolean): boolean {
    return this.link?.send(Cmd.UPDATED, encode(UpdatedSchema, { id: this.self.id, overload, version, draining })) ?? false;
  }

  /** A StatsReport body for the dashboard (one-way); false without an mgr link. */
  sendStats(body: Uint8Array): boolean {
    return this.link?.isOpen ? this.link.send(Cmd.STATS, body) : false;
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wakeUp = null;
        resolve();
      }, ms);
      this.wakeUp = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const reason = await this.connectOnce();
      this.lastFailure = reason ?? '';
      if (this.stopped) return;
      if (reason === null) {
        // Registered: wait until the link drops.
        const why = await new Promise<string>((resolve) => {
          const link = this.link!;
          link.onClose = (err) => resolve(err?.message ?? 'closed');
        });
        this.link = null;
        if (this.stopped) return;
        this.log.warn({ reason: why }, 'lost the mgr; looking for it again (peers and direct links are kept)');
        this.host.onLost(why);
        this.backoff.reset();
        continue;
      }
      await this.sleep(this.backoff.next());
    }
  }

  /** One discovery attempt; null on success, else why it failed. */
  private async connectOnce(): Promise<string | null> {
    let lease: LeaseRecord | null;
    try {
      lease = await this.store.readLease();
    } catch (e) {
      return `store: ${(e as Error).message}`;
    }
    if (!lease) return 'no mgr lease in the store';
    let link: Link;
    try {
      link = await this.dial(lease.addr, lease.port, this.self, { type: NodeType.MGR, id: lease.instanceId }, this.linkOptions);
    } catch (e) {
      // Loud, but not once per retry: the usual cause is an mgr advertising an address this host cannot reach.
      const addr = `${lease.addr}:${lease.port}`;
      this.log.debug({ addr, code: (e as XError).code }, `mgr dial failed: ${(e as Error).message}`);
      this.problems.run(`dial:${(e as XError).code}`, (suppressed) =>
        this.log.warn(
          { addr, code: (e as XError).code, ...(suppressed > 0 ? { suppressed } : {}) },
          `cannot reach the mgr at ${addr} (the address its lease advertises: the mgr's innerIp): ${(e as Error).message}`,
        ),
      );
      return (e as Error).message;
    }
    if (this.stopped) {
      link.close();
      return 'stopped';
    }
    this.early = [];
    link.onFrame = (f) => this.onFrame(f);
    link.start();
    let snap: Snapshot;
    try {
      const reply = await link.request(
        Cmd.REGISTER,
        encode(RegisterSchema, { info: this.host.selfInfo(), joinedBatches: true }),
        this.opts.registerTimeoutMs,
      );
      snap = decodeSnapshot(reply.body);
    } catch (e) {
      link.close();
      this.early = null;
      const code = (e as XError).code;
      this.problems.run(`register:${code}`, (suppressed) => {
        const fields = { code, ...(suppressed > 0 ? { suppressed } : {}) };
        // A misconfigured address never heals by retrying: that is an error, not a warning.
        if (code === 'ADVERTISE_UNREACHABLE') this.log.error(fields, `registration refused: ${(e as Error).message}`);
        else this.log.warn(fields, `registration refused: ${(e as Error).message}`);
      });
      return (e as Error).message;
    }
    if (!link.isOpen || this.stopped) {
      this.early = null;
      link.close();
      return 'mgr link closed during registration';
    }
    this.link = link;
    this.lease = lease;
    this.host.onSnapshot(snap);
    const early = this.early;
    this.early = null;
    for (const f of early) this.onFrame(f);
    this.host.onConnected(lease);
    this.log.info(
      { mgr: `${lease.addr}:${lease.port}`, epoch: lease.epoch, members: snap.members.length, provisional: snap.provisional },
      'registered with the mgr',
    );
    return null;
  }

  private onFrame(f: Frame): void {
    if (this.early !== null) {
      // Copy: the body is a view into a socket chunk.
      this.early.push({ ...f, body: Uint8Array.prototype.slice.call(f.body) });
      return;
    }
    try {
      switch (f.cmd) {
        case Cmd.SNAPSHOT:
          return this.host.onSnapshot(decodeSnapshot(f.body));
        case Cmd.JOINED: {
          const info = decodeJoined(f.body);
          return info && this.host.onJoined(info);
        }
        case Cmd.JOINED_BATCH:
          for (const info of decodeJoinedBatch(f.body)) this.host.onJoined(info);
          return;
        case Cmd.LEFT: {
          const left = decode(LeftSchema, f.body);
          forgetMember(left.id);
          return this.host.onLeft(left);
        }
        case Cmd.UPDATED:
          return this.host.onUpdated(decode(UpdatedSchema, f.body));
        case Cmd.DRAIN:
          return this.host.onDrainRequested();
        case Cmd.ROUTING_POLICIES:
          return this.host.onPolicies(decode(RoutingPoliciesSchema, f.body).policies);
        case Cmd.VERSION_COUNTS:
          this.link?.reply(f, encode(VersionCountsSchema, { counts: this.host.countAccounts() }));
          return;
        default:
          this.log.debug({ cmd: f.cmd }, 'ignoring unknown frame from mgr');
      }
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'bad frame from mgr');
    }
  }
}
