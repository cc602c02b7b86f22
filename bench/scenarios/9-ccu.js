// CCU per gateway: how many clients, each at `rate` requests/s, one gateway serves within a p99.
//
// Processes (the `xserver` CLI, on Redis, cluster = the row's namespace): mgr, login (verifier
// testkit/accept-verifier.js: no scrypt per login, which is not what this measures), one gateway
// (client limits per address lifted: every bot dials from 127.0.0.1) and an echo service
// (lib/ccu-echo-service.js). Each is started through `sh -c 'ulimit -n <hard limit>; exec node ...'`
// so it gets the most file descriptors it may have; the CCU steps are capped below the gateway's
// limit. With taskset, the gateway runs alone on cpu 0 and everything else (mgr, login, service,
// the bot workers) on cpu 1.
//
// The load is `xserver bots`' worker pool (dist/bots/pool.js) running the built-in echo script.
// For each step of `steps`, the pool grows to that many clients (logins at `rampPerSec`), waits
// `settleMs`, then measures `windowMs`: request p50/p99 (merged worker histograms, window = totals
// after − totals before), messages/s, errors, the gateway's CPU % (of one core, from its
// /metrics) and RSS per client ((RSS now − RSS before the first client) / clients). Stepping
// stops after a step whose p99 exceeds `stopP99Ms`, or that has errors, or that would not fit
// in `budgetMs`. "CCU p99 ≤ 50 ms" is the largest step whose window p99 is at most 50 ms.
import os from 'node:os';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { ACCEPT_VERIFIER, REPO_ROOT, XSERVER_BIN, freePort, killGroups, sleep, spawnGroup, waitFor, xserverEnv } from '../../testkit/index.js';
import { pinningEnabled, SERVER_CPU, CLIENT_CPU } from '../lib/proc.js';
import { BENCH_DIR } from '../lib/registry.js';
import { renderTable } from '../lib/table.js';
import { CCU_ECHO_CMD, CCU_ECHO_TYPE } from '../lib/ccu-echo-service.js';
import { inspectPortOption, remoteGc } from '../lib/remote-gc.js';

const START_TIMEOUT_MS = 30_000;
const KB = 1000;
/** Room for the gateway's other descriptors (listeners, Redis, links, stdio), as in `scale`. */
const FD_HEADROOM = 250;

/** The command line of one role: raised fd limit, optionally pinned. */
function roleCommand(role, args, cpu) {
  const node = pinningEnabled() && cpu !== undefined ? ['taskset', '-c', String(cpu), process.execPath] : [process.execPath];
  return {
    command: 'sh',
    // $0 "$@" is the node command line; the limit is raised to the hard limit (a process may not go above it).
    args: ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', ...node, XSERVER_BIN, role, ...args],
  };
}

function fdLimitOf(pid) {
  try {
    const line = readFileSync(`/proc/${pid}/limits`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    return Number.isFinite(soft) ? soft : undefined;
  } catch {
    return undefined;
  }
}

async function httpOk(url) {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(1000) })).ok;
  } catch {
    return false;
  }
}

async function startCluster(base, env, procs, log) {
  const ports = { mgr: await freePort(), login: await freePort() };
  const admin = { mgr: await freePort(), login: await freePort(), gateway: await freePort(), echo: await freePort() };
  const inspectPort = await freePort();
  const vars = {
    XSERVER_CLUSTER: env.namespace,
    XSERVER_REDIS_URL: env.redisUrl,
    XSERVER_LOG_LEVEL: process.env.BENCH_XS_LOG ?? 'warn',
    XSERVER_STATEFUL_TYPES: '',
    XSERVER_LOGIN_VERIFIER: ACCEPT_VERIFIER,
    XSERVER_DRAIN_TIMEOUT_MS: '0',
    // Every bot dials from 127.0.0.1: the per-address limits would stop the ramp, not the gateway.
    XSERVER_GATEWAY_ACCEPT_RATE_PER_ADDRESS: '1000000',
    XSERVER_GATEWAY_MAX_PENDING_PER_ADDRESS: '1000000',
    XSERVER_GATEWAY_MAX_CONNECTIONS: '1000000',
    XSERVER_GATEWAY_RECONNECT_GRACE_MS: '0',
  };
  const spawn = (name, role, args, cpu, extraEnv = {}) => {
    const { command, args: a } = roleCommand(role, args, cpu);
    const p = spawnGroup({
      label: `ccu ${name}`,
      command,
      args: a,
      cwd: REPO_ROOT,
      env: xserverEnv({ ...vars, ...extraEnv, XSERVER_ADMIN_PORT: String(admin[name]) }),
      stdin: 'ignore',
    });
    procs.push(p);
    return p;
  };
  spawn('mgr', 'mgr', ['--port', String(ports.mgr)], CLIENT_CPU);
  await waitFor(() => httpOk(`http://127.0.0.1:${admin.mgr}/readyz`), { timeoutMs: START_TIMEOUT_MS, what: 'mgr ready', pollMs: 100 });
  // The gateway's memory is also measured after a full GC (bench/lib/remote-gc.js).
  const gateway = spawn('gateway', 'gateway', [], SERVER_CPU, {
    NODE_OPTIONS: [process.env.NODE_OPTIONS, inspectPortOption(inspectPort)].filter(Boolean).join(' '),
  });
  spawn('login', 'login', ['--port', String(ports.login)], CLIENT_CPU);
  spawn('echo', 'node', ['--entry', path.join(BENCH_DIR, 'lib/ccu-echo-service.js')], CLIENT_CPU);
  for (const name of ['gateway', 'login', 'echo']) {
    await waitFor(
      async () => {
        const dead = procs.find((p) => !p.alive);
        if (dead) throw new Error(`${dead.label} exited: ${dead.tail(5)}`);
        return httpOk(`http://127.0.0.1:${admin[name]}/readyz`);
      },
      { timeoutMs: START_TIMEOUT_MS, what: `${name} ready`, pollMs: 100 },
    );
  }
  const loginUrl = `http://127.0.0.1:${ports.login}`;
  const { login } = await import('../../dist/client/login.js');
  await waitFor(
    () =>
      login(loginUrl, 'ccu-probe', 'bot', { timeoutMs: 2000 }).then(
        () => true,
        () => false,
      ),
    { timeoutMs: START_TIMEOUT_MS, what: 'login hands out the gateway', pollMs: 200 },
  );
  const fdLimit = fdLimitOf(gateway.pid);
  log(
    `    ccu: gateway pid ${gateway.pid}, RLIMIT_NOFILE ${fdLimit ?? 'unknown'}${pinningEnabled() ? '; gateway on cpu 0, the rest on cpu 1' : '; not pinned'}`,
  );
  return { loginUrl, gatewayAdmin: `http://127.0.0.1:${admin.gateway}`, fdLimit, gc: () => remoteGc(gateway.pid, inspectPort) };
}

async function measure(scenario, row, cfg, env, log) {
  const base = { ...scenario.defaults, ...row.options };
  // BENCH_CCU_STEPS=200,500 for a quick look (or a shared machine).
  if (process.env.BENCH_CCU_STEPS)
    base.steps = process.env.BENCH_CCU_STEPS.split(',')
      .map(Number)
      .filter((n) => n > 0);
  // BENCH_CCU_RATE=0.1: clients that are mostly idle (the gateway's memory per session).
  if (process.env.BENCH_CCU_RATE) base.rate = Number(process.env.BENCH_CCU_RATE);
  const { BotPool } = await import('../../dist/bots/pool.js');
  const { sampleGateway, parseGatewaySource, cpuPercent } = await import('../../dist/bots/gateway-probe.js');
  const { latencyJson } = await import('../../dist/bots/report.js');
  const started = Date.now();
  const procs = [];
  const values = { steps: [] };
  const errors = [];
  let pool;
  try {
    const cluster = await startCluster(base, env, procs, log);
    const gw = parseGatewaySource(cluster.gatewayAdmin);
    const cap = cluster.fdLimit ? Math.floor((cluster.fdLimit - FD_HEADROOM) / 100) * 100 : Infinity;
    const steps = base.steps.filter((s) => s <= cap);
    if (steps.length < base.steps.length) errors.push(`steps above ${cap} skipped: the gateway's RLIMIT_NOFILE is ${cluster.fdLimit}`);
    pool = await BotPool.start({
      workers: base.workers ?? Math.max(1, Math.min(2, os.availableParallelism())),
      loginUrl: cluster.loginUrl,
      accountPrefix: 'ccu-',
      password: 'bot',
      transport: 'ws',
      rate: base.rate,
      rampPerSec: base.rampPerSec,
      maxPendingLogins: base.maxPendingLogins,
      echo: { type: CCU_ECHO_TYPE, sub: CCU_ECHO_CMD, bytes: base.payloadBytes },
      params: {},
      loginTimeoutMs: 10_000,
      requestTimeoutMs: base.requestTimeoutMs,
      reportIntervalMs: base.reportIntervalMs,
      stopTimeoutMs: 10_000,
    });
    if (pinningEnabled()) for (const pid of pool.pids) spawnSync('taskset', ['-p', '-c', String(CLIENT_CPU), String(pid)], { stdio: 'ignore' });
    const rssBase = (await sampleGateway(gw)).rssBytes;
    await cluster.gc();
    const rssBaseGc = (await sampleGateway(gw)).rssBytes;
    let prevClients = 0;
    for (const clients of steps) {
      const rampMs = ((clients - prevClients) / base.rampPerSec) * 1000;
      const stepMs = rampMs + base.settleMs + base.windowMs + base.reportIntervalMs * 2;
      if (Date.now() - started + stepMs > base.budgetMs) {
        errors.push(`stopped before ${clients}: the step would end beyond the ${base.budgetMs / 1000} s budget`);
        break;
      }
      pool.setClients(clients);
      const connectTimeoutMs = rampMs * 2 + base.connectSlackMs;
      try {
        await waitFor(() => pool.totals().connected >= clients, { timeoutMs: connectTimeoutMs, what: `${clients} clients connected`, pollMs: 100 });
      } catch {
        const t = pool.totals();
        errors.push(`${clients}: only ${t.connected} connected after ${(connectTimeoutMs / 1000).toFixed(0)} s (errors ${JSON.stringify(t.errors)})`);
        break;
      }
      prevClients = clients;
      await sleep(base.settleMs + base.reportIntervalMs);
      const t0 = pool.totals();
      const g0 = await sampleGateway(gw);
      await sleep(base.windowMs);
      const t1 = pool.totals();
      const g1 = await sampleGateway(gw);
      const win = latencyJson(t1.latency.minus(t0.latency));
      const errs = Object.entries(t1.errors)
        .map(([k, v]) => [k, v - (t0.errors[k] ?? 0)])
        .filter(([, v]) => v > 0);
      const step = {
        clients,
        connected: t1.connected,
        msgPerSec: ((t1.messages - t0.messages) / Math.max(1, t1.at - t0.at)) * 1000,
        p50: win.p50Ms,
        p99: win.p99Ms,
        max: win.maxMs,
        errors: errs.reduce((n, [, v]) => n + v, 0),
        errorCodes: Object.fromEntries(errs),
        gatewayCpu: cpuPercent(g0, g1),
        gatewayRssMb: g1.rssBytes / 1e6,
        kbPerClient: t1.connected ? (g1.rssBytes - rssBase) / t1.connected / KB : undefined,
      };
      // After the window: what the sessions hold once the garbage of the ramp and the traffic is collected.
      await cluster.gc();
      const gGc = await sampleGateway(gw);
      step.gatewayRssGcMb = gGc.rssBytes / 1e6;
      step.kbPerClientGc = t1.connected ? (gGc.rssBytes - rssBaseGc) / t1.connected / KB : undefined;
      values.steps.push(step);
      log(
        `    ccu ${clients}: ${step.msgPerSec.toFixed(0)} msg/s, p50 ${step.p50?.toFixed(2)} ms, p99 ${step.p99?.toFixed(2)} ms, max ${step.max?.toFixed(0)} ms, ` +
          `errors ${step.errors}${step.errors ? ` ${JSON.stringify(step.errorCodes)}` : ''}; gateway CPU ${step.gatewayCpu?.toFixed(0)}%, RSS ${step.gatewayRssMb.toFixed(0)} MB, ${step.kbPerClient?.toFixed(2)} KB/client ` +
          `(after a full GC ${step.gatewayRssGcMb.toFixed(0)} MB, ${step.kbPerClientGc?.toFixed(2)} KB/client)`,
      );
      if (step.errors > 0 || !(step.p99 <= base.stopP99Ms)) {
        if (clients !== steps[steps.length - 1]) errors.push(`stopped after ${clients}: p99 ${step.p99?.toFixed(0)} ms, ${step.errors} errors`);
        break;
      }
    }
  } catch (err) {
    errors.push(`n/a: ${String(err?.message ?? err).split('\n')[0]}`);
  } finally {
    await pool?.close().catch(() => pool.kill());
    await killGroups(procs);
  }
  const ok = values.steps.filter((s) => s.errors === 0 && s.p99 !== undefined && s.p99 <= base.targetP99Ms);
  const last = values.steps[values.steps.length - 1];
  values.ccuAtTarget = ok.length ? ok[ok.length - 1].clients : values.steps.length ? 0 : undefined;
  values.maxClients = last?.clients;
  values.p99AtMax = last?.p99;
  values.cpuAtMax = last?.gatewayCpu;
  values.kbPerClient = last?.kbPerClient;
  values.kbPerClientGc = last?.kbPerClientGc;
  values.rate = base.rate;
  if (values.steps.length) log(stepTable(values.steps, base));
  return { values, errors };
}

function stepTable(steps, base) {
  const f = (v, d = 1) => (v === undefined ? 'n/a' : v.toFixed(d));
  return [
    `    ccu steps (${base.rate} msg/s per client, ${base.windowMs / 1000} s window each):`,
    renderTable(
      [
        'clients',
        'msg/s',
        'p50 ms',
        'p99 ms',
        'max ms',
        'errors',
        'gateway CPU %',
        'gateway RSS MB',
        'KB/client',
        'RSS after GC MB',
        'KB/client after GC',
      ],
      steps.map((s) => [
        s.clients.toLocaleString('en-US'),
        f(s.msgPerSec, 0),
        f(s.p50, 2),
        f(s.p99, 2),
        f(s.max, 0),
        String(s.errors),
        f(s.gatewayCpu, 0),
        f(s.gatewayRssMb, 0),
        f(s.kbPerClient, 2),
        f(s.gatewayRssGcMb, 0),
        f(s.kbPerClientGc, 2),
      ]),
    ),
  ].join('\n');
}

export default {
  name: 'ccu',
  title: 'clients per gateway at 10 msg/s each (echo requests through login, gateway and a service), stepped up',
  runs: 1, // one run takes minutes
  defaults: {
    steps: [1000, 2000, 5000, 10_000, 15_000],
    rate: 10,
    payloadBytes: 64,
    rampPerSec: 500,
    maxPendingLogins: 64,
    requestTimeoutMs: 5000,
    reportIntervalMs: 500,
    settleMs: 2000,
    windowMs: 10_000,
    connectSlackMs: 20_000,
    targetP99Ms: 50,
    stopP99Ms: 500,
    budgetMs: 210_000,
  },
  columns: [
    { label: 'CCU p99≤50ms', field: 'ccuAtTarget', unit: 'count' },
    { label: 'largest step', field: 'maxClients', unit: 'count' },
    { label: 'p99 ms there', field: 'p99AtMax', unit: 'ms' },
    { label: 'gateway CPU % there', field: 'cpuAtMax', unit: 'ms' },
    { label: 'KB/client there', field: 'kbPerClient', unit: 'mbps' },
    { label: 'KB/client after GC', field: 'kbPerClientGc', unit: 'mbps' },
  ],
  rows: [{ label: 'xserver', kind: 'xserver', module: 'lib/orchestra.js', impl: 'ccu', needs: ['redis'] }],
  measure,
};
