/**
 * The contracts a service publishes in its NodeInfo (`contracts`, field 19), so the login
 * playground can list them. Every member's NodeInfo travels in every membership snapshot and in
 * the mgr's store mirror, so the list is bounded twice: at most `maxCount` entries and at most
 * `maxBytes` of encoded ContractInfo in all. Entries go in command order; an example that does
 * not fit is left out before the contract itself is.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { ContractInfoSchema, type ContractInfo } from '../gen/xserver/v1/cluster_pb.js';
import type { Command } from '../protocol/contract.js';

export interface ContractInfoLimits {
  /** node.maxPublishedContracts */
  maxCount: number;
  /** node.maxContractInfoBytes */
  maxBytes: number;
}

export interface PublishedContracts {
  infos: ContractInfo[];
  /** Contracts of the type left out of the list (over a limit), by name. */
  unlisted: string[];
  /** Listed contracts whose example was left out to stay within maxBytes, by name. */
  examplesDropped: string[];
}

/** True for the codec kinds the playground edits as JSON text ("json", "json:<schema>"). */
export function isJsonKind(kind: string): boolean {
  return kind === 'json' || kind.startsWith('json:');
}

/** The ContractInfo of one contract, with its example as JSON text when its codec is JSON. */
export function contractInfoOf(c: Command<unknown, unknown>): ContractInfo {
  const example = c.example !== undefined && isJsonKind(c.request.kind) ? (JSON.stringify(c.example) ?? '') : '';
  return create(ContractInfoSchema, {
    name: c.name,
    type: c.type,
    cmd: c.cmd,
    requestKind: c.request.kind,
    responseKind: c.response?.kind ?? '',
    oneWay: c.response === undefined,
    example,
  });
}

/** The bounded list of the contracts of `type` among `contracts` (one entry per command number). */
export function publishedContracts(contracts: Iterable<Command<unknown, unknown>>, type: number, limits: ContractInfoLimits): PublishedContracts {
  const byCmd = new Map<number, Command<unknown, unknown>>();
  for (const c of contracts) if (c.type === type && !byCmd.has(c.cmd)) byCmd.set(c.cmd, c);
  const out: PublishedContracts = { infos: [], unlisted: [], examplesDropped: [] };
  let bytes = 0;
  for (const c of [...byCmd.values()].sort((a, b) => a.cmd - b.cmd)) {
    if (out.infos.length >= limits.maxCount) {
      out.unlisted.push(c.name);
      continue;
    }
    const info = contractInfoOf(c);
    let size = toBinary(ContractInfoSchema, info).length;
    if (bytes + size > limits.maxBytes && info.example !== '') {
      info.example = '';
      size = toBinary(ContractInfoSchema, info).length;
      if (bytes + size <= limits.maxBytes) out.examplesDropped.push(c.name);
    }
    if (bytes + size > limits.maxBytes) {
      out.unlisted.push(c.name);
      continue;
    }
    bytes += size;
    out.infos.push(info);
  }
  return out;
}
