/**
 * `xserver bots`: the load generator (docs/bots.md). Simulated clients over worker processes
 * (src/bots/pool.ts), each logging in through the login service and talking through the SDK's
 * XClient; a live line every bots.reportIntervalMs on stderr, a final report as a table and/or JSON.
 * Bad flags exit with code 2, a run in which no bot ever connected with 1.
 */
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { XConfig } from '../config/schema.js';
import { BotPool, type PoolOptions, type PoolTotals } from '../bots/pool.js';
import { describeSource, parseGatewaySource, sampleGateway, type GatewaySample, type GatewaySource } from '../bots/gateway-probe.js';
import { buildReport, formatReport, hardware, liveLine, type ReportInput } from '../bots/report.js';

export interface BotsFlags {
  clients?: string;
  rate: string;
  duration: string;
  ramp?: string;
  workers?: string;
  script?: string;
  type?: string;
  cmd: string;
  payload: string;
  login?: string;
  accountPrefix: string;
  password: string;
  transport: string;
  param?: Record<string, string>;
  gateway?: string;
  json?: string | boolean;
}

/** A flag that cannot be used: exit code 2 with this message. */
export class BotsUsageError extends Error {}

/** Most workers `--workers` accepts: far beyond any core count, it only guards against a typo. */
const MAX_WORKERS = 256;
/** Highest --rate: five times the gateway's default per-client limit (gateway.rateLimitPerSec); a typo guard. */
const MAX_RATE = 1000;

/** "3s", "500ms", "2m", or a number of seconds. */
export function parseDuration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(v.trim());
  if (!m) throw new BotsUsageError(`--duration wants a time like 30s, 500ms or 2m, got "${v}"`);
  const x = Number(m[1]);
  const ms = m[2] === 'ms' ? x : m[2] === 'm' ? x * 60_000 : x * 1000;
  if (ms <= 0) throw new BotsUsageError(`--duration must be more than 0, got "${v}"`);
  return ms;
}

function num(flag: string, v: string, min: number, max: number, integer: boolean): number {
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || x < min || x > max || (integer && !Number.isInteger(x))) {
    throw new BotsUsageError(`--${flag} wants ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got "${v}"`);
  }
  return x;
}

export interface BotsPlan {
  clients: number;
  durationMs: number;
  pool: PoolOptions;
  scriptLabel: string;
  gateway?: GatewaySource;
  json?: string | true;
}

/** Checks the flags against the settings; throws BotsUsageError naming the flag. */
export function planBots(flags: BotsFlags, config: XConfig): BotsPlan {
  if (flags.clients === undefined) throw new BotsUsageError('--clients <n> is required');
  const clients = num('clients', flags.clients, 1, config.bots.maxClients, true);
  const rate = num('rate', flags.rate, 0, MAX_RATE, false);
  const durationMs = parseDuration(flags.duration);
  const rampPerSec = flags.ramp === undefined ? config.bots.rampPerSec : num('ramp', flags.ramp, 1, 1_000_000, true);
  const workers = flags.workers === undefined ? Math.min(os.availableParallelism(), clients) : num('workers', flags.workers, 1, MAX_WORKERS, true);
  if (flags.transport !== 'ws' && flags.transport !== 'tcp') throw new BotsUsageError(`--transport is ws or tcp, got "${flags.transport}"`);
  if (flags.script === undefined && flags.type === undefined) {
    throw new BotsUsageError('give --script <module>, or --type <n> for the built-in script (an echo request to that service type)');
  }
  const echo = {
    type: flags.type === undefined ? 0 : num('type', flags.type, 4, 0xffff, true),
    sub: num('cmd', flags.cmd, 0, 0xffff, true),
    bytes: num('payload', flags.payload, 0, config.gateway.maxFrame, true),
  };
  const loginUrl = flags.login ?? `http://127.0.0.1:${config.login.port}`;
  try {
    new URL(loginUrl);
  } catch {
    throw new BotsUsageError(`--login wants the login service's URL (http://host:port), got "${loginUrl}"`);
  }
  let gateway: GatewaySource | undefined;
  if (flags.gateway !== undefined) {
    try {
      gateway = parseGatewaySource(flags.gateway);
    } catch (e) {
      throw new BotsUsageError((e as Error).message);
    }
  }
  const scriptPath = flags.script === undefined ? undefined : path.resolve(flags.script);
  return {
    clients,
    durationMs,
    scriptLabel: scriptPath ?? `built-in echo (type ${echo.type}, cmd ${echo.sub}, ${echo.bytes} B)`,
    gateway,
    json: flags.json === undefined || flags.json === false ? undefined : flags.json === true ? true : flags.json,
    pool: {
      workers: Math.min(workers, clients),
      loginUrl,
      accountPrefix: flags.accountPrefix,
      password: flags.password,
      transport: flags.transport,
      rate,
      rampPerSec,
      maxPendingLogins: config.bots.maxPendingLogins,
      ...(scriptPath ? { scriptUrl: pathToFileURL(scriptPath).href } : {}),
      echo,
      params: flags.param ?? {},
      loginTimeoutMs: config.bots.loginTimeoutMs,
      requestTimeoutMs: config.bots.requestTimeoutMs,
      reportIntervalMs: config.bots.reportIntervalMs,
      stopTimeoutMs: config.bots.stopTimeoutMs,
    },
  };
}

/**
 * `--gateway auto`: the pid of the one gateway of the configured cluster that runs on this host,
 * from the active mgr's member list (`xserver status`).
 */
export function gatewayPidOnThisHost(members: Record<string, unknown>[], gatewayType: number): number {
  const here = members.filter((m) => m.type === gatewayType && m.host === os.hostname());
  if (here.length !== 1) {
    const all = members.filter((m) => m.type === gatewayType).map((m) => `${String(m.id)} on ${String(m.host)} (pid ${String(m.pid)})`);
    throw new BotsUsageError(
      `--gateway auto needs exactly one gateway of the cluster on this host (${os.hostname()}); the mgr lists ${all.length ? all.join(', ') : 'none'}: give its admin URL or pid instead`,
    );
  }
  return Number(here[0]!.pid);
}

/** Runs the plan to its end (duration, or the first SIGINT/SIGTERM); returns the exit code. */
export async function runBots(plan: BotsPlan): Promise<number> {
  const startedAt = new Date();
  const t0 = performance.now();
  const hw = hardware();
  let before: GatewaySample | undefined;
  if (plan.gateway) {
    try {
      before = await sampleGateway(plan.gateway);
    } catch (e) {
      throw new BotsUsageError(`cannot read the gateway's memory at ${describeSource(plan.gateway)}: ${(e as Error).message}`);
    }
  }
  let pool: BotPool;
  try {
    pool = await BotPool.start(plan.pool);
  } catch (e) {
    throw new BotsUsageError((e as Error).message);
  }

  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  let signals = 0;
  const onSignal = (): void => {
    if (++signals === 1) {
      process.stderr.write('bots: stopping (a second signal kills the workers)\n');
      finish();
    } else {
      pool.kill();
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Ramp first: until every bot is connected, or for as long as the ramp should take plus one
  // login timeout (bots that keep failing do not hold the run up); then --duration at full load.
  const rampLimitMs = (plan.clients / plan.pool.rampPerSec) * 1000 + plan.pool.loginTimeoutMs;
  let stopTimer: ReturnType<typeof setTimeout> | undefined;
  let rampMs: number | undefined;
  let atFullLoad: PoolTotals | undefined;
  const rampDone = (): void => {
    if (rampMs !== undefined) return;
    rampMs = performance.now() - t0;
    atFullLoad = pool.totals();
    stopTimer = setTimeout(finish, plan.durationMs);
  };
  const rampTimer = setTimeout(rampDone, rampLimitMs);

  pool.setClients(plan.clients);
  let prev: PoolTotals = pool.totals();
  const live = setInterval(() => {
    const now = pool.totals();
    if (now.connected >= plan.clients) rampDone();
    process.stderr.write(`${liveLine(performance.now() - t0, now, prev, plan.clients)}${rampMs === undefined ? '  (ramp)' : ''}\n`);
    prev = now;
  }, plan.pool.reportIntervalMs);

  try {
    await finished;
    clearInterval(live);
    const totals = await pool.quiesce();
    const endedAt = Date.now();
    let gateway: ReportInput['gateway'] = { note: 'not measured: give --gateway <admin URL | pid>' };
    if (plan.gateway && before) {
      try {
        gateway = { source: describeSource(plan.gateway), before, after: await sampleGateway(plan.gateway) };
      } catch (e) {
        gateway = { note: `not measured: ${(e as Error).message}` };
      }
    }
    await pool.close();
    const report = buildReport({
      startedAt,
      elapsedMs: performance.now() - t0,
      rampMs: rampMs ?? performance.now() - t0,
      sendingMs: totals.firstOpenAt === null ? 0 : endedAt - totals.firstOpenAt,
      options: {
        clients: plan.clients,
        rate: plan.pool.rate,
        rampPerSec: plan.pool.rampPerSec,
        workers: pool.size,
        transport: plan.pool.transport,
        script: plan.scriptLabel,
        loginUrl: plan.pool.loginUrl,
      },
      hardware: hw,
      totals,
      // Both ends are worker reports (the totals move once per report interval), so is the time between.
      fullLoad: atFullLoad ? { since: atFullLoad, ms: totals.at - atFullLoad.at } : undefined,
      gateway,
    });
    const json = JSON.stringify(report, null, 2) + '\n';
    if (plan.json === true) process.stdout.write(json);
    else {
      if (plan.json !== undefined) await writeFile(plan.json, json);
      process.stdout.write(formatReport(report) + '\n');
    }
    if (report.ccu.reached === 0) {
      process.stderr.write(`xserver bots: no bot connected to ${plan.pool.loginUrl}; errors: ${JSON.stringify(report.errors.byCode)}\n`);
      return 1;
    }
    return 0;
  } finally {
    clearTimeout(stopTimer);
    clearTimeout(rampTimer);
    clearInterval(live);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    pool.kill();
  }
}
