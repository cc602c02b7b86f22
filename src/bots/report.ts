/** The final report of `xserver bots`: JSON (docs/bots.md lists the fields) and a table. */
import os from 'node:os';
import type { PoolTotals } from './pool.js';
import { cpuPercent, type GatewaySample } from './gateway-probe.js';
import type { LatencyHistogram } from './histogram.js';

export interface Hardware {
  cpuModel: string;
  cores: number;
  ramBytes: number;
  /** 1, 5 and 15 minute load averages at the start: a busy machine shows here. */
  loadAvg: number[];
  platform: string;
  node: string;
}

export interface LatencyJson {
  count: number;
  p50Ms?: number;
  p90Ms?: number;
  p99Ms?: number;
  maxMs?: number;
  meanMs?: number;
}

export interface BotsReport {
  startedAt: string;
  elapsedMs: number;
  /** From the start to every bot connected (or the ramp's time limit); --duration runs after it. */
  rampMs: number;
  options: { clients: number; rate: number; rampPerSec: number; workers: number; transport: string; script: string; loginUrl: string };
  hardware: Hardware;
  ccu: { target: number; reached: number; atEnd: number };
  logins: { ok: number; failed: number; latencyMs: LatencyJson };
  messages: { total: number; answered: number; perSec: number; ticks: number; skippedTicks: number };
  latencyMs: LatencyJson;
  /** The --duration part after the ramp: its messages and latency alone. */
  fullLoad?: { ms: number; messages: number; perSec: number; latencyMs: LatencyJson };
  errors: { total: number; byCode: Record<string, number> };
  gateway:
    | { measured: true; source: string; rssBeforeBytes: number; rssBytes: number; rssPerClientBytes?: number; cpuPercent?: number }
    | { measured: false; note: string };
}

export function hardware(): Hardware {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    ramBytes: os.totalmem(),
    loadAvg: os.loadavg().map((v) => Math.round(v * 100) / 100),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
  };
}

const round = (v: number | undefined, digits = 3): number | undefined => (v === undefined ? undefined : Number(v.toFixed(digits)));

export function latencyJson(h: LatencyHistogram): LatencyJson {
  return {
    count: h.count,
    p50Ms: round(h.percentileMs(50)),
    p90Ms: round(h.percentileMs(90)),
    p99Ms: round(h.percentileMs(99)),
    maxMs: round(h.maxMs),
    meanMs: round(h.meanMs),
  };
}

export interface ReportInput {
  startedAt: Date;
  elapsedMs: number;
  rampMs: number;
  /** Time the messages were sent over: from the first connected bot to the end. */
  sendingMs: number;
  options: BotsReport['options'];
  hardware: Hardware;
  totals: PoolTotals;
  /** The totals when the ramp ended, and the time since. */
  fullLoad?: { since: PoolTotals; ms: number };
  gateway: { source: string; before: GatewaySample; after: GatewaySample } | { note: string };
}

export function buildReport(i: ReportInput): BotsReport {
  const t = i.totals;
  const errorsTotal = Object.values(t.errors).reduce((a, b) => a + b, 0);
  let gateway: BotsReport['gateway'];
  if ('note' in i.gateway) gateway = { measured: false, note: i.gateway.note };
  else {
    const { before, after, source } = i.gateway;
    gateway = {
      measured: true,
      source,
      rssBeforeBytes: before.rssBytes,
      rssBytes: after.rssBytes,
      ...(t.connected > 0 ? { rssPerClientBytes: Math.round((after.rssBytes - before.rssBytes) / t.connected) } : {}),
      ...(cpuPercent(before, after) === undefined ? {} : { cpuPercent: round(cpuPercent(before, after), 1) }),
    };
  }
  return {
    startedAt: i.startedAt.toISOString(),
    elapsedMs: Math.round(i.elapsedMs),
    rampMs: Math.round(i.rampMs),
    options: i.options,
    hardware: i.hardware,
    ccu: { target: i.options.clients, reached: t.peakConnected, atEnd: t.connected },
    logins: { ok: t.loginsOk, failed: t.loginsFailed, latencyMs: latencyJson(t.login) },
    messages: {
      total: t.messages,
      answered: t.ok,
      perSec: i.sendingMs > 0 ? Math.round((t.messages / i.sendingMs) * 1000 * 10) / 10 : 0,
      ticks: t.ticks,
      skippedTicks: t.skipped,
    },
    latencyMs: latencyJson(t.latency),
    ...(i.fullLoad && i.fullLoad.ms > 0
      ? {
          fullLoad: {
            ms: Math.round(i.fullLoad.ms),
            messages: t.messages - i.fullLoad.since.messages,
            perSec: Math.round(((t.messages - i.fullLoad.since.messages) / i.fullLoad.ms) * 1000 * 10) / 10,
            latencyMs: latencyJson(t.latency.minus(i.fullLoad.since.latency)),
          },
        }
      : {}),
    errors: { total: errorsTotal, byCode: Object.fromEntries(Object.entries(t.errors).sort(([a], [b]) => a.localeCompare(b))) },
    gateway,
  };
}

const ms = (v: number | undefined): string => (v === undefined ? 'n/a' : v >= 100 ? `${Math.round(v)} ms` : `${v.toFixed(2)} ms`);
const mb = (b: number): string => `${(b / 1e6).toFixed(1)} MB`;
const n = (v: number): string => Math.round(v).toLocaleString('en-US');

/** The report as a two-column table (Markdown, pasteable). */
export function formatReport(r: BotsReport): string {
  const rows: [string, string][] = [
    ['hardware', `${r.hardware.cpuModel}, ${r.hardware.cores} cores, ${(r.hardware.ramBytes / 2 ** 30).toFixed(1)} GiB RAM`],
    ['load average at start', r.hardware.loadAvg.join(' / ')],
    ['node', `${r.hardware.node} (${r.hardware.platform})`],
    [
      'run',
      `${(r.elapsedMs / 1000).toFixed(1)} s (ramp ${(r.rampMs / 1000).toFixed(1)} s), ${r.options.workers} worker(s), ${r.options.transport}, script ${r.options.script}`,
    ],
    ['CCU reached', `${n(r.ccu.reached)} of ${n(r.ccu.target)} (${n(r.ccu.atEnd)} at the end)`],
    ['logins', `${n(r.logins.ok)} ok, ${n(r.logins.failed)} failed; p50 ${ms(r.logins.latencyMs.p50Ms)}, p99 ${ms(r.logins.latencyMs.p99Ms)}`],
    ['messages', `${n(r.messages.total)} sent, ${n(r.messages.answered)} answered, ${n(r.messages.perSec)}/s (${r.options.rate}/s per client asked)`],
    ['ticks', `${n(r.messages.ticks)} run, ${n(r.messages.skippedTicks)} skipped (previous still running)`],
    ['latency', `p50 ${ms(r.latencyMs.p50Ms)}, p90 ${ms(r.latencyMs.p90Ms)}, p99 ${ms(r.latencyMs.p99Ms)}, max ${ms(r.latencyMs.maxMs)}`],
    ...(r.fullLoad
      ? ([
          [
            'at full load',
            `${(r.fullLoad.ms / 1000).toFixed(1)} s: ${n(r.fullLoad.perSec)} msg/s, p50 ${ms(r.fullLoad.latencyMs.p50Ms)}, p99 ${ms(r.fullLoad.latencyMs.p99Ms)}`,
          ],
        ] as [string, string][])
      : []),
    [
      'errors',
      r.errors.total === 0
        ? '0'
        : `${n(r.errors.total)}: ${Object.entries(r.errors.byCode)
            .map(([k, v]) => `${k} ${n(v)}`)
            .join(', ')}`,
    ],
  ];
  if (r.gateway.measured) {
    const g = r.gateway;
    rows.push(
      ['gateway RSS', `${mb(g.rssBeforeBytes)} before, ${mb(g.rssBytes)} at the end (${g.source})`],
      ['gateway RSS per client', g.rssPerClientBytes === undefined ? 'n/a' : `${(g.rssPerClientBytes / 1000).toFixed(2)} KB`],
      ['gateway CPU', g.cpuPercent === undefined ? 'n/a' : `${g.cpuPercent}% of one core over the run`],
    );
  } else rows.push(['gateway', r.gateway.note]);
  const w = Math.max(...rows.map(([k]) => k.length));
  const v = Math.max(...rows.map(([, x]) => x.length));
  return [
    `| ${'xserver bots'.padEnd(w)} | ${''.padEnd(v)} |`,
    `|:${'-'.repeat(w + 1)}|:${'-'.repeat(v + 1)}|`,
    ...rows.map(([k, x]) => `| ${k.padEnd(w)} | ${x.padEnd(v)} |`),
  ].join('\n');
}

/** The live line: one per report interval, on stderr. */
export function liveLine(elapsedMs: number, now: PoolTotals, prev: PoolTotals, target: number): string {
  const dt = Math.max(1, now.at - prev.at) / 1000;
  const win = now.latency.minus(prev.latency);
  const errs = Object.values(now.errors).reduce((a, b) => a + b, 0);
  const rate = (now.messages - prev.messages) / dt;
  return (
    `bots ${(elapsedMs / 1000).toFixed(0).padStart(4)} s  connected ${n(now.connected)}/${n(target)}  ` +
    `${n(rate)} msg/s  p50 ${ms(win.percentileMs(50))}  p99 ${ms(win.percentileMs(99))}  errors ${n(errs)}`
  );
}
