/** `xserver status`: asks the active mgr for the cluster, over an authenticated tool link (type 0). */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { XConfig } from '../config/schema.js';
import { linkOptions, NodeType } from '../context.js';
import { DrainReplySchema, DrainRequestSchema, StatusReplySchema } from '../gen/xserver/v1/cluster_pb.js';
import { XError } from '../errors.js';
import { Link } from '../link/link.js';
import { infoToJson } from '../node/peer.js';
import type { LeaseWatcher } from '../store/store.js';
import { decode, encode } from '../wire/codec.js';
import { Cmd } from '../protocol/commands.js';

export interface ClusterStatus {
  mgr: { instanceId: string; epoch: number; addr: string; port: number; settling: boolean };
  members: Record<string, unknown>[];
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
  const link = await toolLink(config, store, logger);
  try {
    return decode(DrainReplySchema, (await link.request(Cmd.DRAIN, encode(DrainRequestSchema, { target }), timeoutMs)).body).ids;
  } finally {
    link.close();
  }
}

/** An authenticated tool link (type 0) to the active mgr. */
async function toolLink(config: XConfig, store: LeaseWatcher, logger: Logger): Promise<Link> {
  const lease = await store.readLease();
  if (!lease) throw new XError('NO_TARGET', `no active mgr in cluster "${config.cluster}" (no lease in the store)`);
  const link = await Link.dial(
    lease.addr,
    lease.port,
    { type: NodeType.CLIENT, id: `tool-${randomUUID()}` },
    { type: NodeType.MGR, id: lease.instanceId },
    linkOptions(config, logger),
  );
  return link.start();
}

export async function fetchStatus(config: XConfig, store: LeaseWatcher, logger: Logger, timeoutMs = STATUS_TIMEOUT_MS): Promise<ClusterStatus> {
  const lease = await store.readLease();
  if (!lease) throw new XError('NO_TARGET', `no active mgr in cluster "${config.cluster}" (no lease in the store)`);
  const link = (
    await Link.dial(
      lease.addr,
      lease.port,
      { type: NodeType.CLIENT, id: `status-${randomUUID()}` },
      { type: NodeType.MGR, id: lease.instanceId },
      linkOptions(config, logger),
    )
  ).start();
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
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  lines.push(fmt(head), ...rows.map(fmt), '', `${s.members.length} member(s)`);
  return lines.join('\n');
}
