/**
 * A bot worker process (forked by BotPool, messages in ./messages.ts): runs its share of the bots,
 * each one logging in over HTTP and talking through the SDK's XClient, and reports running totals.
 *
 * One bot:
 *
 *            ramp token                 WELCOME
 *   queued ──────────────▶ logging-in ──────────▶ open
 *     ▲                        │                   │
 *     └── login/connect failed ┘◀── session over ──┘   (counted; it logs in again at the ramp)
 *
 *   any ── quiesce/close ──▶ stopped
 *
 * Logins go at this worker's share of bots.rampPerSec, at most its share of bots.maxPendingLogins
 * at once. An open bot ticks every 1000/rate ms from a random phase (so bots do not tick in step).
 */
import { setMaxListeners } from 'node:events';
import { XClient } from '../client/client.js';
import { isClientError } from '../client/errors.js';
import { login, type LoginResult } from '../client/login.js';
import { LatencyHistogram } from './histogram.js';
import type { FromWorker, ToWorker, WorkerOptions, WorkerStats } from './messages.js';
import { echoScript, loadScript, type BotContext, type Script } from './script.js';

/** How often the ramp hands out login tokens; a token bucket refilled at rampPerSec. */
const RAMP_PUMP_MS = 20;
/** How often quiesce checks whether the ticks in flight are done. */
const QUIESCE_POLL_MS = 10;
/** Distinct error keys kept (codes come from servers and scripts); the rest count as `<stage>:OTHER`. */
const MAX_ERROR_KEYS = 100;

type BotState = 'queued' | 'logging-in' | 'open' | 'stopped';

interface Bot {
  index: number;
  account: string;
  state: BotState;
  client: XClient | null;
  lr: LoginResult | null;
  tick: number;
  busy: boolean;
  timer: ReturnType<typeof setTimeout> | null;
  /** Session scripts: the waiter of ctx.next(). */
  wake: ((go: boolean) => void) | null;
}

let opts: WorkerOptions;
let script: Script;
const bots: Bot[] = [];
const queue: Bot[] = [];
let pendingLogins = 0;
let firstOpenAt: number | null = null;
let stopping = false;
const abort = new AbortController();
const latency = new LatencyHistogram();
const loginTime = new LatencyHistogram();
const counts = { loginsOk: 0, loginsFailed: 0, messages: 0, ok: 0, ticks: 0, skipped: 0 };
const errors: Record<string, number> = {};
/** Errors ctx.request()/ctx.send() counted already, so the tick does not count them again. */
const counted = new WeakSet<object>();
let rampTimer: ReturnType<typeof setInterval> | null = null;
let reportTimer: ReturnType<typeof setInterval> | null = null;

function send(msg: FromWorker): void {
  process.send?.(msg);
}

function countError(stage: string, e: unknown): void {
  const own = (e as { code?: unknown } | null)?.code;
  const code = isClientError(e) ? e.code : typeof own === 'string' && own !== '' ? own : 'ERROR';
  countKey(stage, code);
  if (e !== null && typeof e === 'object') counted.add(e);
}

function countKey(stage: string, code: string): void {
  let key = `${stage}:${code}`;
  if (errors[key] === undefined && Object.keys(errors).length >= MAX_ERROR_KEYS) key = `${stage}:OTHER`;
  errors[key] = (errors[key] ?? 0) + 1;
}

/** Every state change of a bot goes through here. */
function moveTo(bot: Bot, next: BotState): void {
  if (bot.state === 'stopped') return;
  const prev = bot.state;
  bot.state = next;
  if (prev === 'open') stopTicks(bot);
  switch (next) {
    case 'queued':
      bot.client = null;
      bot.lr = null;
      queue.push(bot);
      break;
    case 'logging-in':
      pendingLogins++;
      void logIn(bot);
      break;
    case 'open':
      firstOpenAt ??= Date.now();
      startTicks(bot);
      break;
    case 'stopped':
      bot.wake?.(false);
      bot.wake = null;
      break;
  }
}

async function logIn(bot: Bot): Promise<void> {
  const t0 = performance.now();
  const client = new XClient({ transport: opts.transport, requestTimeoutMs: opts.requestTimeoutMs, connectTimeoutMs: opts.loginTimeoutMs });
  try {
    const lr = await login(opts.loginUrl, bot.account, opts.password, { timeoutMs: opts.loginTimeoutMs, signal: abort.signal });
    await client.connect(lr);
    loginTime.recordMs(performance.now() - t0);
    counts.loginsOk++;
    if (bot.state !== 'logging-in' || stopping) {
      void client.close(); // the run ended meanwhile
      return;
    }
    bot.client = client;
    bot.lr = lr;
    client.on('disconnected', (reason) => {
      if (bot.client !== client || bot.state !== 'open') return;
      countKey('session', reason);
      moveTo(bot, 'queued');
    });
    moveTo(bot, 'open');
  } catch (e) {
    void client.close();
    if (bot.state !== 'logging-in' || stopping) return;
    counts.loginsFailed++;
    countError('login', e);
    moveTo(bot, 'queued');
  } finally {
    pendingLogins--;
  }
}

function contextOf(bot: Bot, client: XClient): BotContext {
  const lr = bot.lr!;
  return {
    index: bot.index,
    account: bot.account,
    login: lr,
    get tick() {
      return bot.tick;
    },
    params: opts.params,
    signal: abort.signal,
    request: async (cmd, data, o) => {
      counts.messages++;
      const t0 = performance.now();
      try {
        const reply = await client.request(cmd, data, { timeoutMs: o?.timeoutMs ?? opts.requestTimeoutMs });
        latency.recordMs(performance.now() - t0);
        counts.ok++;
        return reply;
      } catch (e) {
        countError('request', e);
        throw e;
      }
    },
    send: (cmd, data) => {
      counts.messages++;
      try {
        client.send(cmd, data);
      } catch (e) {
        countError('send', e);
        throw e;
      }
    },
    next: () =>
      new Promise<boolean>((resolve) => {
        if (stopping || bot.state !== 'open' || bot.client !== client) return resolve(false);
        bot.wake = resolve;
      }),
    record: (ms) => latency.recordMs(ms),
    fail: (code) => {
      countKey('script', code);
    },
  };
}

function startTicks(bot: Bot): void {
  const client = bot.client!;
  const ctx = contextOf(bot, client);
  if (script.kind === 'session') {
    bot.busy = true;
    void Promise.resolve()
      .then(() => script.run(client, ctx))
      .catch((e: unknown) => {
        if (!(e !== null && typeof e === 'object' && counted.has(e))) countError('script', e);
      })
      .finally(() => {
        bot.busy = false;
      });
  }
  if (opts.rate <= 0) return;
  const period = 1000 / opts.rate;
  const tick = (): void => {
    if (bot.state !== 'open' || bot.client !== client) return;
    if (script.kind === 'session') {
      // Paces the session: wake its ctx.next() (a tick it was not waiting for is skipped).
      const w = bot.wake;
      bot.wake = null;
      if (w) {
        counts.ticks++;
        bot.tick++;
        w(true);
      } else counts.skipped++;
      return;
    }
    if (bot.busy) {
      counts.skipped++;
      return;
    }
    bot.busy = true;
    counts.ticks++;
    void Promise.resolve()
      .then(() => script.run(client, ctx))
      .catch((e: unknown) => {
        if (!(e !== null && typeof e === 'object' && counted.has(e))) countError('script', e);
      })
      .finally(() => {
        bot.busy = false;
        bot.tick++;
      });
  };
  bot.timer = setTimeout(() => {
    bot.timer = setInterval(tick, period);
    tick();
  }, Math.random() * period);
}

function stopTicks(bot: Bot): void {
  if (bot.timer) {
    clearTimeout(bot.timer);
    clearInterval(bot.timer);
    bot.timer = null;
  }
  bot.wake?.(false);
  bot.wake = null;
}

function pumpRamp(): () => void {
  let tokens = 1;
  let last = performance.now();
  const burst = Math.max(1, opts.rampPerSec * (RAMP_PUMP_MS / 1000) * 2);
  return () => {
    const now = performance.now();
    tokens = Math.min(burst, tokens + ((now - last) / 1000) * opts.rampPerSec);
    last = now;
    while (tokens >= 1 && pendingLogins < opts.maxPendingLogins && queue.length > 0) {
      const bot = queue.shift()!;
      if (bot.state !== 'queued') continue;
      tokens--;
      moveTo(bot, 'logging-in');
    }
  };
}

function stats(): WorkerStats {
  let connected = 0;
  for (const b of bots) if (b.state === 'open' && b.client?.connected) connected++;
  return { connected, firstOpenAt, bots: bots.length, ...counts, errors: { ...errors }, latency: latency.toJSON(), login: loginTime.toJSON() };
}

function setTarget(n: number): void {
  while (bots.length < n) {
    const index = opts.worker + bots.length * opts.workers;
    const bot: Bot = {
      index,
      account: `${opts.accountPrefix}${index}`,
      state: 'queued',
      client: null,
      lr: null,
      tick: 0,
      busy: false,
      timer: null,
      wake: null,
    };
    bots.push(bot);
    queue.push(bot);
  }
}

async function quiesce(): Promise<void> {
  stopping = true;
  if (rampTimer) clearInterval(rampTimer);
  queue.length = 0;
  for (const b of bots) if (b.state === 'open') stopTicks(b);
  const deadline = performance.now() + opts.stopTimeoutMs;
  while (bots.some((b) => b.busy) && performance.now() < deadline) await new Promise((r) => setTimeout(r, QUIESCE_POLL_MS));
  abort.abort();
  if (reportTimer) clearInterval(reportTimer);
  send({ t: 'quiesced', stats: stats() });
}

async function close(): Promise<void> {
  if (!stopping) await quiesce();
  const clients = bots.map((b) => b.client).filter((c): c is XClient => c !== null);
  for (const b of bots) moveTo(b, 'stopped');
  await Promise.race([Promise.allSettled(clients.map((c) => c.close())), new Promise((r) => setTimeout(r, opts.stopTimeoutMs).unref())]);
  send({ t: 'closed' });
  process.disconnect?.();
  process.exit(0);
}

async function init(o: WorkerOptions): Promise<void> {
  opts = o;
  // Every pending login listens on the run's abort signal.
  setMaxListeners(o.maxPendingLogins + 10, abort.signal);
  try {
    script = o.scriptUrl ? await loadScript(o.scriptUrl) : echoScript(o.echo);
  } catch (e) {
    send({ t: 'fatal', message: `cannot load the script ${o.scriptUrl}: ${(e as Error).message}` });
    process.exit(1);
  }
  rampTimer = setInterval(pumpRamp(), RAMP_PUMP_MS);
  reportTimer = setInterval(() => send({ t: 'stats', stats: stats() }), o.reportIntervalMs);
  send({ t: 'ready' });
}

// The parent owns this process: without it, stop. Ctrl-C reaches the whole process group; the
// parent decides what happens, so the signals are ignored here.
process.on('disconnect', () => process.exit(0));
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.on('message', (msg: ToWorker) => {
  switch (msg.t) {
    case 'init':
      void init(msg.options);
      break;
    case 'target':
      if (!stopping) setTarget(msg.clients);
      break;
    case 'quiesce':
      void quiesce();
      break;
    case 'close':
      void close();
      break;
  }
});
