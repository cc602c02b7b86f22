/**
 * The gateway's memory and CPU as the load generator reports them: from its admin /metrics
 * (`xserver_process_resident_memory_bytes`, `xserver_process_cpu_seconds_total`, the Node process
 * metrics every `xserver <role>` process exposes), or from /proc/<pid> on this host.
 */
import { readFile } from 'node:fs/promises';
import { ClientError } from '../client/errors.js';

export type GatewaySource = { kind: 'admin'; url: string } | { kind: 'pid'; pid: number };

export interface GatewaySample {
  rssBytes: number;
  cpuSeconds: number;
  /** performance.now() when taken. */
  at: number;
}

/** How long one /metrics scrape may take. */
const SCRAPE_TIMEOUT_MS = 3000;
/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on every Linux build that matters). */
const USER_HZ = 100;

/** `--gateway <admin URL | pid>`. */
export function parseGatewaySource(v: string): GatewaySource {
  if (/^\d+$/.test(v)) return { kind: 'pid', pid: Number(v) };
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new ClientError('BAD_COMMAND', `--gateway wants the gateway's admin URL (http://host:adminPort) or its pid, got "${v}"`);
  }
  if (!/\/metrics\/?$/.test(u.pathname)) u.pathname = u.pathname.replace(/\/*$/, '/metrics');
  return { kind: 'admin', url: u.toString() };
}

export function describeSource(s: GatewaySource): string {
  return s.kind === 'admin' ? s.url : `pid ${s.pid}`;
}

export async function sampleGateway(s: GatewaySource): Promise<GatewaySample> {
  return s.kind === 'admin' ? scrape(s.url) : readProc(s.pid);
}

/** The value of the first sample of `name` (any labels) in a Prometheus text exposition. */
export function metricValue(text: string, name: string): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) return v;
  }
  return undefined;
}

async function scrape(url: string): Promise<GatewaySample> {
  const res = await fetch(url, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
  if (!res.ok) throw new ClientError('BAD_COMMAND', `${url}: HTTP ${res.status}`);
  const text = await res.text();
  const rss = metricValue(text, 'xserver_process_resident_memory_bytes');
  const cpu = metricValue(text, 'xserver_process_cpu_seconds_total');
  if (rss === undefined || cpu === undefined) {
    throw new ClientError(
      'BAD_COMMAND',
      `${url} has no xserver_process_resident_memory_bytes / xserver_process_cpu_seconds_total (is it an xserver process's admin port?)`,
    );
  }
  return { rssBytes: rss, cpuSeconds: cpu, at: performance.now() };
}

async function readProc(pid: number): Promise<GatewaySample> {
  const [status, stat] = await Promise.all([readFile(`/proc/${pid}/status`, 'utf8'), readFile(`/proc/${pid}/stat`, 'utf8')]);
  const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1]);
  // Fields after the command name (which may contain spaces): state is field 3, utime 14, stime 15.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(rest[11]) + Number(rest[12]);
  if (!Number.isFinite(kb) || !Number.isFinite(ticks))
    throw new ClientError('BAD_COMMAND', `cannot read the memory and CPU of pid ${pid} from /proc`);
  return { rssBytes: kb * 1024, cpuSeconds: ticks / USER_HZ, at: performance.now() };
}

/** CPU use between two samples, in % of one core. */
export function cpuPercent(a: GatewaySample, b: GatewaySample): number | undefined {
  const dt = (b.at - a.at) / 1000;
  return dt > 0 ? ((b.cpuSeconds - a.cpuSeconds) / dt) * 100 : undefined;
}
