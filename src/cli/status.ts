/** `xserver status`: asks the active mgr for the cluster, over an authenticated tool link (type 0). */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { XConfig } from '../config/schema.js';
import { linkOptions, NodeType } from '../context.js';
import { DrainReplySchema, DrainRequestSchema, StatusReplySchema, type RoutingPolicy } from '../gen/xserver/v1/cluster_pb.js';
import { XError } from '../errors.js';
import { Link } from '../link/link.js';
import { infoToJson } from '../node/peer.js';
import type { LeaseRecord, LeaseWatcher } from '../store/store.js';
import { decode, encode } from '../wire/codec.js';
import { Cmd } from '../protocol/commands.js';

export interface ClusterStatus {
  mgr: { instanceId: string; epoch: number; addr: string; port: number; settling: boolean };
  members: Record<string, unknown>[];
  /** The mgr's dial-back of each member's advertised address, and recent refusals. */
  checks: AddressCheckJson[];
  /** Canary routing policies in force (`xserver canary`). */
  policies: PolicyJson[];
  /** Accounts per service type and version, from the sessions of `gatewaysCounted` gateways. */
  accounts: { type: number; version: string; accounts: number }[];
  gatewaysCounted: number;
}

export interface PolicyJson {
  type: number;
  version: string;
  percent: number;
  accounts: string[];
  setAt: number;
}

export function policyToJson(p: RoutingPolicy): PolicyJson {
  return { type: p.type, version: p.version, percent: p.basisPoints / 100, accounts: [...p.accounts], setAt: Number(p.setAt) };
}

export interface AddressCheckJson {
  id: string;
  advertised: string;
  seenFrom: string;
  reached: boolean;
  skipped: boolean;
  rttMs: number;
  error: string;
}

/** How long `xserver status` waits for the mgr's answer: it is one request on a fresh link. */
const STATUS_TIMEOUT_MS = 3000;

/** `xserver drain <id|name>`: asks the active mgr to drain the matching members; resolves with their ids. */
export async function requestDrain(
  config: XConfig,
  store: LeaseWatcher,
  logger: Logger,
  target: string,
  timeoutMs = STATUS_TIMEOUT_MS,
): Promise<string[]> {
  const { link } = await toolLink(config, store, logger);
  try {
    return decode(DrainReplySchema, (await link.request(Cmd.DRAIN, encode(DrainRequestSchema, { target }), timeoutMs)).body).ids;
  } finally {
    link.close();
  }
}

/** An authenticated tool link (type 0) to the active mgr. */
export async function toolLink(config: XConfig, store: LeaseWatcher, logger: Logger): Promise<{ link: Link; lease: LeaseRecord }> {
  const lease = await store.readLease();
  if (!lease) throw new XError('NO_TARGET', `no active mgr in cluster "${config.cluster}" (no lease in the store)`);
  const link = await Link.dial(
    lease.addr,
    lease.port,
    { type: NodeType.CLIENT, id: `tool-${randomUUID()}` },
    { type: NodeType.MGR, id: lease.instanceId },
    linkOptions(config, logger),
  );
  return { link: link.start(), lease };
}

export async function fetchStatus(config: XConfig, store: LeaseWatcher, logger: Logger, timeoutMs = STATUS_TIMEOUT_MS): Promise<ClusterStatus> {
  const { link, lease } = await toolLink(config, store, logger);
  try {
    const reply = decode(StatusReplySchema, (await link.request(Cmd.STATUS, new Uint8Array(0), timeoutMs)).body);
    return {
      mgr: {
        instanceId: lease.instanceId,
        epoch: Number(reply.mgr?.epoch ?? lease.epoch),
        addr: lease.addr,
        port: lease.port,
        settling: reply.settling,
      },
      members: reply.members.map(infoToJson).sort((a, b) => Number(a.type) - Number(b.type) || String(a.id).localeCompare(String(b.id))),
      checks: reply.checks.map((c) => ({
        id: c.id,
        advertised: c.advertised,
        seenFrom: c.seenFrom,
        reached: c.reached,
        skipped: c.skipped,
        rttMs: c.rttMs,
        error: c.error,
      })),
      policies: reply.policies.map(policyToJson),
      accounts: reply.accounts.map((c) => ({ type: c.type, version: c.version, accounts: c.accounts })),
      gatewaysCounted: reply.gatewaysCounted,
    };
  } finally {
    link.close();
  }
}

export function formatStatus(s: ClusterStatus): string {
  const lines = [`mgr ${s.mgr.addr}:${s.mgr.port}  epoch ${s.mgr.epoch}  instance ${s.mgr.instanceId}${s.mgr.settling ? '  (settling)' : ''}`, ''];
  const rows = s.members.map((m) => [
    String(m.type),
    String(m.name),
    String(m.id),
    `${(m.addrs as { inner: string }).inner}:${(m.ports as number[]).join(',')}`,
    String(m.version),
    (m.overload as number[]).join(',') || '-',
    m.draining === true ? 'draining' : 'up',
  ]);
  const head = ['TYPE', 'NAME', 'ID', 'ADDR:PORTS', 'VERSION', 'OVERLOAD', 'STATE'];
  lines.push(...table(head, rows), '', `${s.members.length} member(s)`, '', ...formatCanary(s));
  return lines.join('\n');
}

/** The canary part of `xserver status` and `xserver canary show`: each policy, then accounts per version. */
export function formatCanary(s: Pick<ClusterStatus, 'policies' | 'accounts' | 'gatewaysCounted'>): string[] {
  return [...formatPolicies(s.policies), '', ...formatAccountCounts(s.accounts, s.gatewaysCounted)];
}

export function formatPolicies(policies: PolicyJson[]): string[] {
  if (policies.length === 0) return ['canary: no routing policy (every version gets new sessions)'];
  const rows = policies.map((p) => [
    String(p.type),
    p.version,
    p.percent === 0 && p.accounts.length === 0 ? '0% (rolled back)' : `${p.percent}%`,
    p.accounts.length ? p.accounts.join(',') : '-',
    new Date(p.setAt).toISOString(),
  ]);
  return table(['TYPE', 'CANARY VERSION', 'SHARE', 'LISTED ACCOUNTS', 'SET AT'], rows);
}

function formatAccountCounts(accounts: ClusterStatus['accounts'], gateways: number): string[] {
  if (accounts.length === 0) return [`accounts by version: none allocated (${gateways} gateway(s) counted)`];
  return [
    ...table(
      ['TYPE', 'VERSION', 'ACCOUNTS'],
      accounts.map((c) => [String(c.type), c.version, String(c.accounts)]),
    ),
    `(allocated accounts of live sessions, from ${gateways} gateway(s))`,
  ];
}

/**
 * `xserver doctor`: per member, what each listener binds and advertises and whether the mgr
 * reached the advertised intranet address; then registrations the mgr refused for it.
 */
export function formatDoctor(s: ClusterStatus): { text: string; problems: number } {
  const checks = new Map(s.checks.map((c) => [c.id, c]));
  const verdict = (c: AddressCheckJson | undefined): string => {
    if (!c) return '?';
    if (!c.reached) return `NO: ${c.error}`;
    return c.skipped ? 'listed (not dialled)' : `yes (${c.rttMs} ms)`;
  };
  const rows: string[][] = [];
  for (const m of s.members) {
    const listeners = (m.listeners as { name: string; bind: string; advertised: string }[] | undefined) ?? [];
    const c = checks.get(String(m.id));
    for (const l of listeners) {
      rows.push([
        `${String(m.name)} ${String(m.id).slice(0, 8)}`,
        l.name,
        l.bind,
        l.advertised || '-',
        l.name === 'intranet' ? verdict(c) : '',
        l.name === 'intranet' ? (c?.seenFrom ?? '') : '',
      ]);
    }
  }
  const head = ['MEMBER', 'LISTENER', 'BINDS', 'ADVERTISES', 'MGR REACHED', 'REGISTERED FROM'];
  const members = new Set(s.members.map((m) => String(m.id)));
  const refused = s.checks.filter((c) => !c.reached && !members.has(c.id));
  const lines = [`mgr ${s.mgr.addr}:${s.mgr.port}  instance ${s.mgr.instanceId}`, '', ...table(head, rows)];
  if (refused.length > 0) {
    lines.push('', 'refused registrations (ADVERTISE_UNREACHABLE):');
    for (const c of refused) lines.push(`  ${c.id}  advertised ${c.advertised}, registered from ${c.seenFrom || '?'}: ${c.error}`);
  }
  const problems = refused.length + s.checks.filter((c) => !c.reached && members.has(c.id)).length;
  lines.push('', problems === 0 ? `${s.members.length} member(s), every advertised address reached` : `${problems} problem(s)`);
  return { text: lines.join('\n'), problems };
}

function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]): string =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [fmt(head), ...rows.map(fmt)];
}
