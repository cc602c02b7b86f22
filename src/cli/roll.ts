/**
 * `xserver roll`: a rolling restart. Every process of a running cluster is replaced by a fresh
 * one started the same way (same role, entry and settings: its step of the plan, the shape of
 * clusterPlan() in ./up.ts), one process at a time; the roll stops at the first step that does
 * not finish, with ROLL_FAILED naming it.
 *
 * Order, and why:
 *
 *   1. the standby mgr   stop-first: stop it, start its replacement, wait until that stands by.
 *                        Nothing depends on a standby, so nobody notices.
 *   2. the active mgr    stop-first: its graceful stop releases the lease, the (new) standby takes
 *                        over within mgr.standbyPollMs and every member re-registers there; then
 *                        its replacement starts as the next standby. One failover for two mgrs.
 *                        It is stopped only once another running mgr stands by; a lone mgr (one-mgr
 *                        clusters) is stopped anyway, and the cluster has none until the
 *                        replacement takes the lease (members keep their peers and links).
 *   3. login             stop-first: it holds nothing, but it listens on the one login port
 *                        (login.port) that clients know, which its replacement cannot bind while
 *                        the old one has it. Logins during the gap fail (a client tries again);
 *                        behind a load balancer with two logins there is no gap.
 *   4. gateways          surge: the replacement first (listed, not draining), then DRAIN of the old
 *                        one, until it has left the membership. The sessions on the old one go
 *                        with it (live handoff, SPEC §12, moves them).
 *   5. service nodes     surge, last: by then the mgrs, login and gateways they serve under are
 *                        new, and a stateful node's accounts have a new node of their type to go to.
 *
 * mgrs are stopped with SIGTERM (the same drain path as `xserver drain`): they are not members of
 * the membership the DRAIN command addresses. Everything else is drained through the mgr.
 *
 * One step, as a state machine (transitions in `Roll.step`):
 *
 *   surge:       starting ─▶ awaiting-ready ─▶ draining ─▶ awaiting-gone ─▶ done
 *   stop-first:  draining ─▶ awaiting-gone ─▶ starting ─▶ awaiting-ready ─▶ done
 *                any state ──(timeout, exit, refused drain)──▶ failed
 *
 * The processes themselves are started and watched by a RollHost: `xserver up` (which owns its
 * children) in the CLI, the test harness in the tests. A host's processes run on one machine, so
 * a process is matched to its member by pid.
 */
import { fetchStatus, requestDrain, type ClusterStatus } from './status.js';
import type { XConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { LeaseRecord, LeaseWatcher } from '../store/store.js';
import { NodeType } from '../protocol/commands.js';
import { XError } from '../errors.js';

/** One process of a cluster plan (`xserver up`'s clusterPlan(), servicePlan()): what starts it. */
export interface PlanStep {
  name: string;
  role: 'mgr' | 'login' | 'gateway' | 'node';
  entry?: string;
  /** Extra config for this process only. */
  set?: Record<string, string | number | boolean>;
}

/** A process of the cluster as the host sees it: the plan step it runs and its pid. */
export interface RollProcess {
  readonly step: PlanStep;
  readonly pid: number | undefined;
  /** Still running. */
  readonly alive: boolean;
}

/** Starts and stops the processes of a cluster (it owns them). */
export interface RollHost<P extends RollProcess = RollProcess> {
  /** The processes of the cluster now, in plan order. */
  processes(): readonly P[];
  /** Starts a replacement for `old`: the same step. */
  start(old: P): Promise<P>;
  /** SIGTERM: drain, then exit (used for mgrs, which DRAIN does not address). */
  terminate(p: P): void;
  /** A running mgr's instance id, once it knows it (its log, its admin API). */
  mgrInstanceId(p: P): Promise<string | undefined>;
  /** Whether a running mgr is active or standing by (its /readyz). */
  mgrReady(p: P): Promise<boolean>;
}

/** What the roll asks the cluster: status and DRAIN through the active mgr, the lease from the store. */
export interface RollCluster {
  status(): Promise<ClusterStatus>;
  lease(): Promise<LeaseRecord | null>;
  drain(memberId: string): Promise<string[]>;
}

/** The RollCluster of a config and an open store: `xserver status` and `xserver drain` as calls. */
export function rollCluster(config: XConfig, store: LeaseWatcher, logger: Logger): RollCluster {
  return {
    status: () => fetchStatus(config, store, logger),
    lease: () => store.readLease(),
    drain: (id) => requestDrain(config, store, logger, id),
  };
}

/** The roll options from the settings (roll.*). */
export function rollOptions(config: XConfig, extra: Partial<RollOptions> = {}): RollOptions {
  return { stepTimeoutMs: config.roll.stepTimeoutMs, pollMs: config.roll.pollMs, ...extra };
}

export type RollStrategy = 'surge' | 'stop-first';
export type StepState = 'starting' | 'awaiting-ready' | 'draining' | 'awaiting-gone' | 'done' | 'failed';

export interface RollEvent {
  /** The plan step's name, e.g. "gateway-1". */
  name: string;
  state: StepState;
  /** Wall ms. */
  t: number;
  detail?: string;
}

export interface RollOptions {
  stepTimeoutMs: number;
  pollMs: number;
  /** Every state change of every step (progress output, test timelines). */
  onEvent?: (e: RollEvent) => void;
  /** Only these steps (by plan step name); default every process of the host. */
  only?: (step: PlanStep) => boolean;
}

export interface RollResult<P> {
  /** Each old process and its replacement, in roll order. */
  replaced: { name: string; old: P; replacement: P; ms: number }[];
}

/** The rank of a process in the roll (lower rolls first), and how it is replaced. See the file comment. */
export function rollRank(p: RollProcess, activeMgr: boolean): { rank: number; strategy: RollStrategy } {
  switch (p.step.role) {
    case 'mgr':
      return { rank: activeMgr ? 1 : 0, strategy: 'stop-first' };
    case 'login':
      return { rank: 2, strategy: 'stop-first' };
    case 'gateway':
      return { rank: 3, strategy: 'surge' };
    case 'node':
      return { rank: 4, strategy: 'surge' };
  }
}

/** Orders the processes for the roll; a stable sort, so plan order holds within a rank. */
export function rollOrder<P extends RollProcess>(procs: readonly P[], activeMgrs: ReadonlySet<P>): { proc: P; strategy: RollStrategy }[] {
  return procs
    .map((proc, i) => ({ proc, i, ...rollRank(proc, activeMgrs.has(proc)) }))
    .sort((a, b) => a.rank - b.rank || a.i - b.i)
    .map(({ proc, strategy }) => ({ proc, strategy }));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Roll<P extends RollProcess> {
  constructor(
    private readonly host: RollHost<P>,
    private readonly cluster: RollCluster,
    private readonly opts: RollOptions,
  ) {}

  /** Rolls every process (or `opts.only`); rejects with ROLL_FAILED at the first step that does not finish. */
  async run(): Promise<RollResult<P>> {
    const procs = this.host.processes().filter((p) => p.alive && (this.opts.only?.(p.step) ?? true));
    const lease = await this.cluster.lease();
    const active = new Set<P>();
    for (const p of procs) if (p.step.role === 'mgr' && lease && (await this.host.mgrInstanceId(p)) === lease.instanceId) active.add(p);
    const replaced: RollResult<P>['replaced'] = [];
    for (const { proc, strategy } of rollOrder(procs, active)) {
      const t0 = Date.now();
      const replacement = await this.step(proc, strategy);
      replaced.push({ name: proc.step.name, old: proc, replacement, ms: Date.now() - t0 });
    }
    return { replaced };
  }

  /** One step: the transitions of the state machine in the file comment. */
  private async step(old: P, strategy: RollStrategy): Promise<P> {
    const order: StepState[] =
      strategy === 'surge'
        ? ['starting', 'awaiting-ready', 'draining', 'awaiting-gone']
        : ['draining', 'awaiting-gone', 'starting', 'awaiting-ready'];
    let fresh: P | undefined;
    let oldMemberId = '';
    let oldMgrId: string | undefined;
    /** The active mgr had no standby: its lease is released, not taken over. */
    let loneMgr = false;
    let state: StepState = order[0]!;
    const enter = (s: StepState, detail?: string): void => {
      state = s;
      this.opts.onEvent?.({ name: old.step.name, state: s, t: Date.now(), ...(detail ? { detail } : {}) });
    };
    try {
      for (const s of order) {
        enter(s);
        switch (s) {
          case 'starting':
            fresh = await this.host.start(old);
            break;
          case 'awaiting-ready':
            await this.until(`the replacement (pid ${fresh!.pid}) to be ready`, () => this.isReady(fresh!), fresh!);
            break;
          case 'draining':
            if (old.step.role === 'mgr') {
              oldMgrId = await this.host.mgrInstanceId(old);
              if (oldMgrId !== undefined && (await this.cluster.lease())?.instanceId === oldMgrId && !(await this.standbyBesides(old))) {
                loneMgr = true;
                enter('draining', 'no other mgr runs: the cluster has none until the replacement takes the lease (members keep their peers)');
              }
              this.host.terminate(old);
            } else {
              oldMemberId = await this.until(
                `the old process (pid ${old.pid}) to be listed`,
                async () => (await this.memberOf(old.pid))?.id as string | undefined,
              );
              await this.cluster.drain(oldMemberId);
            }
            break;
          case 'awaiting-gone':
            await this.until(`the old process (pid ${old.pid}) to leave`, () => this.isGone(old, oldMemberId, oldMgrId, loneMgr));
            break;
          default:
            break;
        }
      }
      enter('done');
      return fresh!;
    } catch (e) {
      const failedIn = state;
      // A surge replacement that never got ready goes; the old process was not touched and serves on.
      if (strategy === 'surge' && (failedIn === 'starting' || failedIn === 'awaiting-ready') && fresh?.alive) this.host.terminate(fresh);
      enter('failed', (e as Error).message);
      const after = 'the steps before it are done, the ones after it still run the old processes; fix the cause and run `xserver roll` again';
      throw new XError('ROLL_FAILED', `roll stopped at ${old.step.name} (${failedIn}): ${(e as Error).message}; ${after}`, {
        step: old.step.name,
        state: failedIn,
      });
    }
  }

  /** Polls `cond` every roll.pollMs until it yields a value; fails at roll.stepTimeoutMs or when `watch` exits. */
  private async until<T>(what: string, cond: () => Promise<T | undefined | false>, watch?: P): Promise<T> {
    const deadline = Date.now() + this.opts.stepTimeoutMs;
    let last: unknown;
    for (;;) {
      if (watch && !watch.alive) throw new Error(`the replacement (pid ${watch.pid}) exited while waiting for ${what}; see its output`);
      try {
        const v = await cond();
        if (v !== undefined && v !== false) return v;
      } catch (e) {
        last = e; // the mgr may be between two holders during a failover: ask again
      }
      if (Date.now() >= deadline) {
        const why = last ? ` (last error: ${(last as Error).message})` : '';
        throw new Error(`gave up waiting for ${what} after roll.stepTimeoutMs=${this.opts.stepTimeoutMs}${why}`);
      }
      await sleep(this.opts.pollMs);
    }
  }

  /**
   * Before the active mgr stops: waits until another mgr stands by to take over. False when the
   * active one is the only mgr (a one-mgr cluster, e.g. `up --service`): it is rolled anyway.
   */
  private async standbyBesides(active: P): Promise<boolean> {
    const others = this.host.processes().filter((p) => p !== active && p.alive && p.step.role === 'mgr');
    if (others.length === 0) return false;
    return this.until('another mgr to stand by before the active one stops', async () => {
      for (const p of others) if (p.alive && (await this.host.mgrReady(p))) return true;
      return false;
    });
  }

  private async memberOf(pid: number | undefined): Promise<Record<string, unknown> | undefined> {
    const s = await this.cluster.status();
    return pid === undefined ? undefined : s.members.find((m) => m.pid === pid);
  }

  private async isReady(p: P): Promise<boolean> {
    if (p.step.role === 'mgr') return this.host.mgrReady(p);
    const m = await this.memberOf(p.pid);
    return m !== undefined && m.draining !== true && (p.step.role !== 'login' || m.type === NodeType.LOGIN);
  }

  private async isGone(old: P, memberId: string, mgrId: string | undefined, lone: boolean): Promise<boolean> {
    if (old.alive) return false;
    if (old.step.role === 'mgr') {
      // The active mgr's lease must have moved on (a standby took over) before anything else
      // rolls; a lone mgr's is only released (its replacement, started next, takes it).
      const lease = await this.cluster.lease();
      return lease === null ? lone : lease.instanceId !== mgrId;
    }
    const s = await this.cluster.status();
    return !s.members.some((m) => m.id === memberId);
  }
}
