/**
 * The playground's contract list (GET /playground/contracts.json, login.playground only): the
 * contracts the live service nodes publish in their NodeInfo (src/node/contract-info.ts), one
 * entry per service type. Nodes of one type may serve different contracts during a rolling
 * upgrade: the entry lists the union (first declaration of a command number wins) and every
 * contract hash seen, so the page can say so.
 */
import type { ContractInfo, NodeInfo } from '../gen/xserver/v1/cluster_pb.js';
import { NodeType } from '../protocol/commands.js';

export interface PlaygroundContract {
  name: string;
  type: number;
  cmd: number;
  /** What the client sends: type * cmdOffset + cmd. */
  clientCmd: number;
  requestKind: string;
  /** "" for one-way commands and pushes. */
  responseKind: string;
  oneWay: boolean;
  /** JSON text of the declared example request, when there is one. */
  example?: string;
}

export interface PlaygroundService {
  type: number;
  name: string;
  /** Live nodes of the type (draining ones included: they still answer). */
  nodes: number;
  /** The distinct contract hashes those nodes register ("" = a node declared none). */
  contractHashes: string[];
  contracts: PlaygroundContract[];
}

export interface PlaygroundListing {
  /** gateway.cmdOffset: what `new XClient({ cmdOffset })` needs. */
  cmdOffset: number;
  services: PlaygroundService[];
}

/**
 * The listing for the members `infos` (login's membership). At most `maxPerType` contracts per
 * type (node.maxPublishedContracts): a node of another version may publish more than this one would.
 */
export function playgroundListing(infos: Iterable<NodeInfo>, cmdOffset: number, maxPerType: number): PlaygroundListing {
  const byType = new Map<number, { name: string; nodes: number; hashes: Set<string>; contracts: Map<number, ContractInfo> }>();
  for (const info of infos) {
    if (info.type < NodeType.FIRST_SERVICE) continue;
    let entry = byType.get(info.type);
    if (!entry) byType.set(info.type, (entry = { name: info.name, nodes: 0, hashes: new Set(), contracts: new Map() }));
    entry.nodes += 1;
    entry.hashes.add(info.contractHash);
    for (const c of info.contracts) {
      // Only the node's own type: that is what its contract hash covers and what it serves.
      if (c.type === info.type && !entry.contracts.has(c.cmd) && entry.contracts.size < maxPerType) entry.contracts.set(c.cmd, c);
    }
  }
  const services = [...byType.entries()]
    .sort(([a], [b]) => a - b)
    .map(([type, e]) => ({
      type,
      name: e.name,
      nodes: e.nodes,
      contractHashes: [...e.hashes].sort(),
      contracts: [...e.contracts.values()]
        .sort((a, b) => a.cmd - b.cmd)
        .map((c) => ({
          name: c.name,
          type: c.type,
          cmd: c.cmd,
          clientCmd: c.type * cmdOffset + c.cmd,
          requestKind: c.requestKind,
          responseKind: c.responseKind,
          oneWay: c.oneWay,
          ...(c.example === '' ? {} : { example: c.example }),
        })),
    }));
  return { cmdOffset, services };
}
