/**
 * Harness for the end-to-end tests of the demo cluster (test/e2e/*.test.ts).
 *
 * Starts the cluster of `xserver up` (clusterPlan(): mgr ×2, login serving the chat page with
 * autoRegister, gateway ×2, lobby ×2, match) as real processes — `node bin/xserver.js <role>`,
 * each detached in its own process group — on the shared Redis under a random cluster name
 * `e2e-<hex>`, with short timings. Children log JSON lines (XSERVER_LOG_PRETTY=false); they are
 * parsed into `proc.logs`, and the lobbies' "account lost" lines become `demo.lost()`.
 *
 * Game clients are the SDK from dist/client (what a Node game client would import) with the
 * lobby's contracts (examples/contracts.ts), wrapped in `Player`, which records every message and
 * connection event with its wall time.
 *
 * Processes, waits, the fast timings, the machine lock and the cleanup come from the test kit
 * (testkit/); this file adds the demo's roles, its clients and its log lines.
 *
 * `demoSuite()` registers the hooks: a cross-file lock shared with test/helpers/cluster.ts (one
 * process-cluster test file at a time: their timings need the machine's cores), and after each
 * test SIGKILL of every process group it started plus SCAN MATCH xs:{<cluster>}:* + DEL (never
 * FLUSHALL), whether the test passed or not. On failure the children's output goes to
 * $TMPDIR/xserver-e2e-logs/<cluster>/ and a timeline is printed.
 *
 * Needs `npm run build` (dist/) first: the processes and the SDK run from dist.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Redis } from 'ioredis';
import {
  XClient,
  login,
  type LoginResult,
  type MessageCommand,
  type RequestCommand,
  type Welcome,
  type XClientOptions,
} from '../../dist/client/index.js';
import {
  CreateRole,
  EnterGame,
  LOBBY,
  MatchFound,
  PrivateChat,
  PrivateMessage,
  WorldChat,
  WorldMessage,
  lobbyContracts,
} from '../../examples/contracts.js';
import {
  FAST_TIMINGS,
  GroupProcess,
  ProcessExitedError,
  REPO_ROOT,
  clusterKeyPatterns,
  deleteKeys,
  freePort,
  killGroups,
  timingsEnv,
  waitFor,
  xserverEnv,
  xserverSpawnOptions,
  xserverStatus,
} from '../../testkit/index.js';
import type { SpawnOptions } from '../../testkit/process-group.js';
import type { PlanStep } from '../../src/cli/up.js';
import type { RollHost } from '../../src/cli/roll.js';
import { processSuite } from '../../testkit/suite.js';

export const ROOT = REPO_ROOT;
export const REDIS_URL = process.env.XSERVER_E2E_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Wall clock in ms (the children's pino `time` uses the same clock). */
export const wall = (): number => Date.now();

/** The kit's fast timings (testkit/timings.js); GRACE_MS is the gateway's reconnect grace among them. */
export const GRACE_MS = FAST_TIMINGS['gateway.reconnectGraceMs']!;
export const FAST_ENV: Readonly<Record<string, string>> = timingsEnv();

export interface LogLine {
  level: number;
  time: number;
  msg: string;
  [k: string]: unknown;
}

export interface Member {
  id: string;
  type: number;
  name: string;
  ports: number[];
  pid: number;
  overload: number[];
  [k: string]: unknown;
}

export interface Status {
  mgr: Record<string, unknown>;
  members: Member[];
}

export interface LostEvent {
  account: string;
  /** Wall time of the lobby's log line. */
  time: number;
  lobby: Proc;
}

// ------------------------------------------------------------------------------------- processes

/** A role process of the demo: a process group of the test kit, with its role and node id. */
export class Proc extends GroupProcess {
  /** The node id (from `xserver status --json`, matched by pid); '' for mgrs. */
  id = '';
  /** Its admin HTTP port (mgrs with DemoOptions.mgrAdmin); 0 = none. */
  adminPort = 0;
  /** The step of the plan this process runs. */
  step!: PlanStep;

  constructor(
    readonly role: 'mgr' | 'login' | 'gateway' | 'node',
    opts: SpawnOptions,
  ) {
    super(opts);
  }
}

// ------------------------------------------------------------------------------------- the cluster

export interface DemoOptions {
  /** Extra `--set key=value` for every process. */
  set?: Record<string, string | number | boolean>;
  /**
   * Log levels by process label prefix, e.g. { gateway: 'debug' } (gateways then log "client
   * disconnected; waiting for a reconnect") or { match: 'debug' } ("player queued", "match found").
   */
  logLevels?: Record<string, string>;
  /** Give each mgr an admin HTTP server (dashboard) on a free port: `proc.adminPort`. */
  mgrAdmin?: boolean;
}

export class Demo {
  readonly name = `e2e-${randomBytes(5).toString('hex')}`;
  readonly procs: Proc[] = [];
  /** Other process groups of the test (e.g. an `xserver up`), killed by destroy() too. */
  readonly others: GroupProcess[] = [];
  loginUrl = '';
  loginPort = 0;
  private destroyed = false;
  private readonly players: Player[] = [];
  private readonly redisClients: Redis[] = [];

  constructor(private readonly opts: DemoOptions = {}) {}

  get mgrs(): Proc[] {
    return this.procs.filter((p) => p.role === 'mgr');
  }
  get login(): Proc {
    return this.procs.find((p) => p.role === 'login')!;
  }
  get gateways(): Proc[] {
    return this.procs.filter((p) => p.role === 'gateway');
  }
  get lobbies(): Proc[] {
    return this.procs.filter((p) => p.label.startsWith('lobby'));
  }
  get match(): Proc {
    return this.procs.find((p) => p.label === 'match')!;
  }

  byId(id: string): Proc {
    const p = this.procs.find((q) => q.id === id);
    if (!p)
      throw new Error(`no process of this test has node id ${id} (known: ${this.procs.map((q) => `${q.label}=${q.id.slice(0, 8)}`).join(', ')})`);
    return p;
  }

  childEnv(): NodeJS.ProcessEnv {
    // No XSERVER_* of a developer's shell (no XSERVER_CONFIG either): the test decides.
    return xserverEnv({
      ...FAST_ENV,
      XSERVER_CLUSTER: this.name,
      XSERVER_REDIS_URL: REDIS_URL,
      XSERVER_ADMIN_PORT: '0',
    });
  }

  private spawn(label: string, role: Proc['role'], args: string[]): Proc {
    const p = new Proc(role, { ...xserverSpawnOptions({ label, args, env: this.childEnv(), clock: wall }), stdin: 'ignore' });
    this.procs.push(p);
    return p;
  }

  /**
   * Starts the demo cluster of `xserver up` (the same plan, from dist/cli/up.js) with ports
   * chosen by the system and no admin ports, and waits until every member is registered.
   */
  async start(timeoutMs = 20_000): Promise<void> {
    if (!fs.existsSync(path.join(ROOT, 'dist/cli/up.js'))) throw new Error('dist/ is missing: run `npm run build` first');
    const { clusterPlan } = (await import(path.join(ROOT, 'dist/cli/up.js'))) as typeof import('../../src/cli/up.js');
    const plan = clusterPlan();
    for (const step of plan) {
      const adminPort = this.opts.mgrAdmin && step.role === 'mgr' ? await freePort() : 0;
      this.startStep(step, step.name, adminPort).adminPort = adminPort;
    }
    const want = { login: 1, gateway: 2, node: plan.filter((s) => s.role === 'node').length };
    // The login's HTTP port: its 'login listening' line (url http://0.0.0.0:<port>/login).
    const listening = await this.until('login listening', () => this.failIfExited() || this.login.log('login listening'), timeoutMs);
    this.loginPort = Number(new URL(String(listening.url)).port);
    this.loginUrl = `http://127.0.0.1:${this.loginPort}`;
    // Every member registered, as the active mgr sees it; node ids mapped to our pids.
    const st = await this.untilAsync(
      'every member of the plan listed by `xserver status`',
      async () => {
        this.failIfExited();
        const s = await this.status();
        const ours = s.members.filter((m) => this.procs.some((p) => p.pid === m.pid));
        const count = (t: number) => ours.filter((m) => m.type === t).length;
        return count(2) === want.login && count(3) === want.gateway && ours.filter((m) => m.type >= 4).length === want.node ? s : undefined;
      },
      timeoutMs,
      100,
    );
    for (const m of st.members) {
      const p = this.procs.find((q) => q.pid === m.pid);
      if (p) p.id = m.id;
    }
    const loginMember = st.members.find((m) => m.type === 2)!;
    if (loginMember.ports[1] !== this.loginPort) {
      throw new Error(`login advertises HTTP port ${loginMember.ports[1]} (ports[1]) but logged ${this.loginPort}`);
    }
    // The login lists both gateways and both lobbies only once the mgr told it; logins before
    // that would all land on the first gateway. Each node logs 'registered' with the member
    // count of its snapshot; the login learns later joiners by JOINED, which we cannot see, so
    // probe it: a throwaway login must succeed with a lobby allocated.
    await this.untilAsync(
      'the login allocates a gateway and a lobby',
      async () => {
        const r = await fetch(`${this.loginUrl}/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ account: 'warmup', password: 'pw' }),
        });
        const b = (await r.json()) as { allocations?: Record<string, string> };
        return r.ok && b.allocations?.[String(LOBBY)] !== undefined;
      },
      timeoutMs,
      100,
    );
  }

  /**
   * Starts the process of one step of the plan (as start() does for every step), labelled
   * `label` (default the step's name): a replacement in a rolling restart is a second process
   * of the same step. Returns at once; the process registers by itself.
   */
  startStep(step: PlanStep, label = step.name, adminPort = 0): Proc {
    const set: Record<string, string | number | boolean> = { ...(step.set ?? {}) };
    delete set.adminPort; // fixed 7090/7091 in the plan: tests must not collide with `npm start`
    if (adminPort) set.adminPort = adminPort;
    if (step.role === 'login') set['login.port'] = 0;
    const args: string[] = [step.role, ...(step.entry ? ['--entry', step.entry] : [])];
    for (const [k, v] of Object.entries(set)) args.push('--set', `${k}=${String(v)}`);
    const level = Object.entries(this.opts.logLevels ?? {}).find(([prefix]) => step.name.startsWith(prefix))?.[1];
    if (level) args.push('--log-level', level);
    const extra = Object.entries(this.opts.set ?? {}).flatMap(([k, v]) => ['--set', `${k}=${String(v)}`]);
    const p = this.spawn(label, step.role, [...args, ...extra]);
    p.step = step;
    return p;
  }

  /**
   * The demo as a RollHost (src/cli/roll.ts): its live processes; a replacement is a new process
   * of the same step, labelled `<step>.<n>`; a new login's URL becomes `loginUrl` once it listens.
   */
  rollHost(): RollHost<Proc> {
    return {
      processes: () => this.procs.filter((p) => p.alive),
      start: async (old) => {
        const n = this.procs.filter((p) => p.step.name === old.step.name).length;
        const p = this.startStep(old.step, `${old.step.name}.${n + 1}`);
        if (p.role === 'login') {
          const listening = await p.waitForLog('login listening', { timeoutMs: 20_000 });
          this.loginPort = Number(new URL(String(listening.url)).port);
          this.loginUrl = `http://127.0.0.1:${this.loginPort}`;
        }
        return p;
      },
      terminate: (p) => p.signal('SIGTERM'),
      mgrInstanceId: async (p) => p.log('mgr started')?.instanceId as string | undefined,
      mgrReady: async (p) => p.log('mgr started') !== undefined,
    };
  }

  private failIfExited(): undefined {
    const dead = this.procs.find((p) => p.exitInfo !== null);
    if (dead) throw new ProcessExitedError(dead, 'during start-up', 15);
    return undefined;
  }

  /** `xserver status --json` for this cluster. */
  status(timeoutMs = 10_000): Promise<Status> {
    return xserverStatus(this.childEnv(), timeoutMs);
  }

  /** SIGKILL (kill -9) of the process group of `p`; returns the wall time just before. */
  kill9(p: Proc): number {
    const t = wall();
    p.signal('SIGKILL');
    return t;
  }

  /** Every "account lost" line of every lobby, in arrival order. */
  lost(): LostEvent[] {
    const out: LostEvent[] = [];
    for (const lobby of this.lobbies) {
      for (const l of lobby.logs) {
        if (typeof l.msg === 'string' && l.msg.startsWith('account lost') && typeof l.account === 'string')
          out.push({ account: l.account, time: l.time, lobby });
      }
    }
    return out.sort((a, b) => a.time - b.time);
  }

  lostOf(account: string): LostEvent[] {
    return this.lost().filter((e) => e.account === account);
  }

  /** Polls `pred` (every `everyMs`) until it returns a value other than undefined/null/false. */
  async until<T>(what: string, pred: () => T | undefined | null | false, timeoutMs: number, everyMs = 10): Promise<T> {
    return this.untilAsync(what, async () => pred(), timeoutMs, everyMs);
  }

  untilAsync<T>(what: string, pred: () => Promise<T | undefined | null | false>, timeoutMs: number, everyMs = 10): Promise<T> {
    return waitFor(pred, {
      timeoutMs,
      what,
      pollMs: everyMs,
      // A dead process during start-up is final; other errors (status not ready yet) retry.
      retryErrors: (e) => !(e instanceof ProcessExitedError),
      context: () => `--- timeline (last 30) ---\n${this.timeline(30)}`,
    });
  }

  /** A new game client (SDK) for `account`, logged in and connected; closed by destroy(). */
  async player(account: string, opts: XClientOptions = {}): Promise<Player> {
    const p = new Player(this, account, opts);
    this.players.push(p);
    await p.connect();
    return p;
  }

  /** Merged, time-ordered log lines (info and up) and exits of every child. */
  timeline(last = Infinity): string {
    const rows: { t: number; s: string }[] = [];
    for (const p of this.procs) {
      for (const l of p.logs) {
        if (l.level < 30 && !/disconnected|account lost/.test(l.msg ?? '')) continue;
        const extra = ['account', 'code', 'reason', 'peer', 'id', 'from', 'to']
          .filter((k) => l[k] !== undefined)
          .map((k) => `${k}=${String(l[k]).slice(0, 12)}`);
        rows.push({ t: l.time, s: `${p.label.padEnd(9)} [${l.level}] ${l.msg} ${extra.join(' ')}` });
      }
      if (p.exitInfo) rows.push({ t: p.exitInfo.t, s: `${p.label.padEnd(9)} EXIT code=${p.exitInfo.code} signal=${p.exitInfo.signal}` });
    }
    for (const pl of this.players) for (const e of pl.events) rows.push({ t: e.t, s: `client ${pl.account.padEnd(9)} ${e.ev} ${e.detail ?? ''}` });
    rows.sort((a, b) => a.t - b.t);
    const t0 = rows[0]?.t ?? 0;
    return rows
      .slice(Number.isFinite(last) ? -last : 0)
      .map((r) => `+${((r.t - t0) / 1000).toFixed(3)}s ${r.s}`)
      .join('\n');
  }

  dumpLogs(): string {
    const dir = path.join(os.tmpdir(), 'xserver-e2e-logs', this.name);
    fs.mkdirSync(dir, { recursive: true });
    for (const p of [...this.procs, ...this.others]) fs.writeFileSync(path.join(dir, `${p.label}.log`), p.tail(p.lines.length) + '\n');
    fs.writeFileSync(path.join(dir, 'timeline.txt'), this.timeline() + '\n');
    return dir;
  }

  /** Closes the clients, SIGKILLs every process group it started, deletes the cluster's keys. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await Promise.all(this.players.map((p) => p.client.close().catch(() => {})));
    await killGroups([...this.procs, ...this.others]);
    for (const r of this.redisClients) r.disconnect();
    await deleteKeys(REDIS_URL, clusterKeyPatterns(this.name));
  }
}

// ------------------------------------------------------------------------------------- clients

/** A message the lobby pushed: the contract's name and the decoded body. */
export interface Received<M = Record<string, unknown>> {
  t: number;
  name: string;
  body: M;
}

/** A game client of the demo: the SDK plus a record of what it saw. */
export class Player {
  readonly client: XClient;
  session!: LoginResult;
  welcome!: Welcome;
  role = '';
  readonly inbox: Received[] = [];
  readonly events: { t: number; ev: string; detail?: string }[] = [];

  constructor(
    readonly demo: Demo,
    readonly account: string,
    opts: XClientOptions,
  ) {
    this.client = new XClient({
      transport: 'tcp',
      reconnectDelayMs: 100,
      maxReconnectDelayMs: 400,
      requestTimeoutMs: 5000,
      contracts: lobbyContracts,
      ...opts,
    });
    for (const c of [WorldMessage, PrivateMessage, MatchFound] as MessageCommand<object>[]) {
      this.client.on(c, (body) => this.inbox.push({ t: wall(), name: c.name, body: body as Record<string, unknown> }));
    }
    this.client.on('kicked', (code, message) => this.events.push({ t: wall(), ev: 'kicked', detail: `${code} ${message}` }));
    this.client.on('disconnected', (reason) => this.events.push({ t: wall(), ev: 'disconnected', detail: reason }));
    this.client.on('reconnecting', (n) => this.events.push({ t: wall(), ev: 'reconnecting', detail: String(n) }));
    this.client.on('reconnected', (w) => this.events.push({ t: wall(), ev: 'reconnected', detail: `resumed=${w.resumed}` }));
  }

  /** Logs in (HTTP) and connects to the gateway the login chose. */
  async connect(): Promise<void> {
    this.session = await login(this.demo.loginUrl, this.account, 'pw-' + this.account);
    this.welcome = await this.client.connect(this.session);
    this.events.push({ t: wall(), ev: 'connected', detail: `gateway=${this.session.gateway.id.slice(0, 8)} lobby=${this.lobbyId.slice(0, 8)}` });
  }

  get gatewayId(): string {
    return this.session.gateway.id;
  }

  /** The lobby allocated at login (allocations["4"]). */
  get lobbyId(): string {
    return this.session.allocations[String(LOBBY)] ?? '';
  }

  /** A lobby request under its contract (the reply decoded). */
  ask<Req, Res>(command: RequestCommand<Req, Res>, request: Req, timeoutMs?: number): Promise<Res> {
    return this.client.request(command, request, timeoutMs ? { timeoutMs } : {});
  }

  /** Creates role `name` and enters the game with it. */
  async enter(name: string): Promise<void> {
    await this.ask(CreateRole, { name });
    await this.ask(EnterGame, { name });
    this.role = name;
  }

  worldChat(text: string): void {
    this.client.send(WorldChat, { text });
  }

  whisper(to: string, text: string): Promise<{ delivered: true }> {
    return this.ask(PrivateChat, { to, text });
  }

  /** The first message pushed under `command` that matches `pred`. */
  received<M>(command: MessageCommand<M>, pred: (m: M) => boolean = () => true): Received<M> | undefined {
    return this.inbox.find((m) => m.name === command.name && pred(m.body as M)) as Received<M> | undefined;
  }

  event(ev: string): { t: number; ev: string; detail?: string } | undefined {
    return this.events.find((e) => e.ev === ev);
  }

  /** Waits for a message pushed under `command` that matches `pred`. */
  waitMessage<M>(command: MessageCommand<M>, pred: (m: M) => boolean, what: string, timeoutMs = 5000): Promise<Received<M>> {
    return this.demo.until(`${this.account} receives ${what}`, () => this.received(command, pred), timeoutMs);
  }

  /** Drops the connection without telling the gateway (as a network failure would). */
  dropConnection(): void {
    const t = (this.client as unknown as { transport: { socket?: { destroy(): void }; ws?: { terminate?(): void } } | null }).transport;
    if (!t) throw new Error(`${this.account}: no open transport to drop`);
    if (t.socket) t.socket.destroy();
    else if (t.ws?.terminate) t.ws.terminate();
    else throw new Error(`${this.account}: cannot drop this transport`);
  }
}

// ------------------------------------------------------------------------------------- helpers

/** Random lowercase suffix for account and role names (role names: 2-16 of [A-Za-z0-9_-]). */
export const tag = (): string => randomBytes(3).toString('hex');

/**
 * Registers the hooks of an e2e file; `newDemo()` gives a test a fresh, not yet started cluster,
 * destroyed after the test whatever happened.
 */
export function demoSuite(fileLabel: string): { newDemo(opts?: DemoOptions): Demo } {
  const suite = processSuite({ label: fileLabel });
  return {
    newDemo(opts?: DemoOptions): Demo {
      const d = new Demo(opts);
      return suite.track(d, () => {
        const dir = d.dumpLogs();
        console.error(`[${d.name}] test failed; child output in ${dir}\n--- timeline (last 80) ---\n${d.timeline(80)}`);
      });
    },
  };
}
