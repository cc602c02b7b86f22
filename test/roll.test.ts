/**
 * The roll procedure (src/cli/roll.ts) on a fake host and a fake cluster, with fake timers: the
 * order of the steps, surge vs stop-first, and ROLL_FAILED naming the step that did not finish.
 * The real processes are in test/cluster/roll.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Roll, rollOrder, type RollCluster, type RollEvent, type RollHost, type RollProcess } from '../src/cli/roll.js';
import type { PlanStep } from '../src/cli/up.js';
import type { ClusterStatus } from '../src/cli/status.js';
import type { LeaseRecord } from '../src/store/store.js';
import { isXError } from '../src/errors.js';

const TYPE = { login: 2, gateway: 3, node: 4 } as const;

class FakeProc implements RollProcess {
  alive = true;
  constructor(
    readonly step: PlanStep,
    readonly pid: number,
    readonly mgrId = '',
  ) {}
}

/**
 * A cluster that behaves like the real one, as far as the roll sees it: a started member
 * registers after `registerMs`; a drained one leaves (and exits) after `drainMs`; a stopped
 * mgr releases the lease to the longest-waiting standby.
 */
class FakeCluster implements RollHost<FakeProc> {
  procs: FakeProc[] = [];
  members = new Map<number, { id: string; type: number; draining: boolean }>();
  lease: LeaseRecord | null = null;
  log: string[] = [];
  nextPid = 100;
  registerMs = 500;
  drainMs = 300;
  /** A replacement of this step exits at once (a bad build). */
  crashing = '';

  add(step: PlanStep, mgrId = ''): FakeProc {
    const p = new FakeProc(step, this.nextPid++, mgrId);
    this.procs.push(p);
    if (step.role !== 'mgr') this.members.set(p.pid!, { id: `m${p.pid}`, type: TYPE[step.role], draining: false });
    else if (!this.lease) this.lease = { instanceId: mgrId, addr: '127.0.0.1', port: 1, epoch: 1 };
    return p;
  }

  processes(): readonly FakeProc[] {
    return this.procs.filter((p) => p.alive);
  }
  async start(old: FakeProc): Promise<FakeProc> {
    this.log.push(`start ${old.step.name}`);
    const p = new FakeProc(old.step, this.nextPid++, old.step.role === 'mgr' ? `mgr${this.nextPid}` : '');
    this.procs.push(p);
    if (old.step.name === this.crashing) p.alive = false;
    else if (p.step.role !== 'mgr') {
      setTimeout(() => this.members.set(p.pid!, { id: `m${p.pid}`, type: TYPE[p.step.role as 'login'], draining: false }), this.registerMs);
    } else if (!this.lease) this.lease = { instanceId: p.mgrId, addr: '127.0.0.1', port: 1, epoch: 2 };
    return p;
  }
  terminate(p: FakeProc): void {
    this.log.push(`stop ${p.step.name}`);
    p.alive = false;
    if (this.lease?.instanceId === p.mgrId) {
      const standby = this.procs.find((q) => q.alive && q.step.role === 'mgr');
      this.lease = standby ? { ...this.lease, instanceId: standby.mgrId, epoch: this.lease.epoch + 1 } : null;
    }
  }
  async mgrInstanceId(p: FakeProc): Promise<string> {
    return p.mgrId;
  }
  async mgrReady(p: FakeProc): Promise<boolean> {
    return p.alive;
  }

  async status(): Promise<ClusterStatus> {
    return {
      mgr: { instanceId: this.lease?.instanceId ?? '', epoch: 1, addr: '', port: 1, settling: false },
      members: [...this.members].map(([pid, m]) => ({ ...m, pid })),
      checks: [],
      policies: [],
      accounts: [],
      gatewaysCounted: 0,
    };
  }
  async readLease(): Promise<LeaseRecord | null> {
    return this.lease;
  }
  async drain(id: string): Promise<string[]> {
    const [pid, m] = [...this.members].find(([, x]) => x.id === id)!;
    const p = this.procs.find((q) => q.pid === pid)!;
    this.log.push(`drain ${p.step.name}`);
    m.draining = true;
    setTimeout(() => {
      this.members.delete(pid);
      p.alive = false;
    }, this.drainMs);
    return [id];
  }
}

function demoCluster(): FakeCluster {
  const c = new FakeCluster();
  c.add({ name: 'mgr-1', role: 'mgr' }, 'A'); // holds the lease
  c.add({ name: 'mgr-2', role: 'mgr' }, 'B');
  c.add({ name: 'login', role: 'login' });
  c.add({ name: 'lobby-1', role: 'node', entry: 'lobby.js' });
  c.add({ name: 'gateway-1', role: 'gateway' });
  return c;
}

function rollOf(c: FakeCluster, events: RollEvent[] = [], stepTimeoutMs = 5000): Roll<FakeProc> {
  const cluster: RollCluster = { status: () => c.status(), lease: () => c.readLease(), drain: (id) => c.drain(id) };
  return new Roll(c, cluster, { stepTimeoutMs, pollMs: 50, onEvent: (e) => events.push(e) });
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('roll', () => {
  it('orders standby mgr, active mgr, login, gateways, service nodes (plan order within a rank)', () => {
    const c = demoCluster();
    const order = rollOrder(c.procs, new Set([c.procs[0]!]));
    expect(order.map((o) => `${o.proc.step.name} ${o.strategy}`)).toEqual([
      'mgr-2 stop-first',
      'mgr-1 stop-first',
      'login stop-first',
      'gateway-1 surge',
      'lobby-1 surge',
    ]);
  });

  it('stops mgrs and login before their replacement starts; starts a gateway or node before draining the old one', async () => {
    const c = demoCluster();
    const events: RollEvent[] = [];
    const done = rollOf(c, events).run();
    await vi.advanceTimersByTimeAsync(20_000);
    const r = await done;
    expect(r.replaced.map((x) => x.name)).toEqual(['mgr-2', 'mgr-1', 'login', 'gateway-1', 'lobby-1']);
    expect(c.log).toEqual([
      'stop mgr-2',
      'start mgr-2',
      'stop mgr-1',
      'start mgr-1',
      'drain login',
      'start login',
      'start gateway-1',
      'drain gateway-1',
      'start lobby-1',
      'drain lobby-1',
    ]);
    // The lease moved to the replacement of the standby, and every old process is gone.
    expect(c.lease?.instanceId).toBe(r.replaced[0]!.replacement.mgrId);
    expect(r.replaced.every((x) => !x.old.alive && x.replacement.alive)).toBe(true);
    expect(events.filter((e) => e.name === 'gateway-1').map((e) => e.state)).toEqual([
      'starting',
      'awaiting-ready',
      'draining',
      'awaiting-gone',
      'done',
    ]);
  });

  it('stops at a replacement that exits, with ROLL_FAILED naming the step; nothing after it rolls', async () => {
    const c = demoCluster();
    c.crashing = 'gateway-1';
    const events: RollEvent[] = [];
    const done = rollOf(c, events).run();
    const failed = done.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(20_000);
    const e = await failed;
    expect(isXError(e, 'ROLL_FAILED')).toBe(true);
    expect((e as Error).message).toMatch(/roll stopped at gateway-1 \(awaiting-ready\): the replacement \(pid \d+\) exited/);
    expect(c.log).not.toContain('drain gateway-1');
    expect(c.log).not.toContain('start lobby-1');
    expect(events.at(-1)).toMatchObject({ name: 'gateway-1', state: 'failed' });
  });

  it('stops the active mgr only once another mgr stands by; a lone mgr is rolled anyway, and the roll says so', async () => {
    const lone = new FakeCluster();
    lone.add({ name: 'mgr-1', role: 'mgr' }, 'A');
    const events: RollEvent[] = [];
    const done = rollOf(lone, events).run();
    await vi.advanceTimersByTimeAsync(20_000);
    await done;
    expect(lone.log).toEqual(['stop mgr-1', 'start mgr-1']);
    expect(events.find((e) => e.detail)?.detail).toMatch(/no other mgr runs/);

    // A standby that is running but not ready (still starting) is waited for, up to roll.stepTimeoutMs.
    const c = demoCluster();
    const ready = c.mgrReady.bind(c);
    c.mgrReady = async (p) => p.step.name !== 'mgr-2' && ready(p);
    const cluster: RollCluster = { status: () => c.status(), lease: () => c.readLease(), drain: (id) => c.drain(id) };
    const onlyActive = new Roll(c, cluster, { stepTimeoutMs: 2000, pollMs: 50, only: (step) => step.name === 'mgr-1' });
    const slow = onlyActive.run().catch((x: unknown) => x);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(((await slow) as Error).message).toMatch(
      /roll stopped at mgr-1 \(draining\): gave up waiting for another mgr to stand by before the active one stops/,
    );
    expect(c.procs.find((p) => p.mgrId === 'A')!.alive).toBe(true);
    expect(c.log).toEqual([]);
  });

  it('a surge replacement that never gets ready is stopped; the old process serves on', async () => {
    const c = demoCluster();
    c.registerMs = 60_000;
    const cluster: RollCluster = { status: () => c.status(), lease: () => c.readLease(), drain: (id) => c.drain(id) };
    const old = c.procs.find((p) => p.step.name === 'gateway-1')!;
    const failed = new Roll(c, cluster, { stepTimeoutMs: 2000, pollMs: 50, only: (step) => step.name === 'gateway-1' })
      .run()
      .catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(((await failed) as Error).message).toMatch(/roll stopped at gateway-1 \(awaiting-ready\)/);
    expect(c.log).toEqual(['start gateway-1', 'stop gateway-1']);
    expect(old.alive).toBe(true);
    expect(c.procs.filter((p) => p.step.name === 'gateway-1' && p.alive)).toEqual([old]);
  });

  it('gives up on a step after roll.stepTimeoutMs, naming what it waited for', async () => {
    const c = demoCluster();
    c.drainMs = 60_000; // a drained member never leaves in time: the first one is login
    const done = rollOf(c, [], 2000).run();
    const failed = done.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(30_000);
    const e = await failed;
    expect(isXError(e, 'ROLL_FAILED')).toBe(true);
    expect((e as Error).message).toMatch(
      /roll stopped at login \(awaiting-gone\): gave up waiting for the old process \(pid \d+\) to leave after roll.stepTimeoutMs=2000/,
    );
  });
});
