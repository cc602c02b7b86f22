/**
 * `xserver canary set|show|rollback`: the active mgr's routing policies (docs/operations.md
 * "Canary"), over the same authenticated tool link as `xserver status` and `xserver drain`.
 */
import type { Logger } from 'pino';
import type { XConfig } from '../config/schema.js';
import { NodeType } from '../context.js';
import { CanaryTypeRequestSchema, RoutingPoliciesSchema, RoutingPolicySchema } from '../gen/xserver/v1/cluster_pb.js';
import { XError } from '../errors.js';
import { COHORT_BUCKETS } from '../protocol/routing-policy.js';
import { Cmd } from '../protocol/commands.js';
import type { LeaseWatcher } from '../store/store.js';
import { decode, encode } from '../wire/codec.js';
import { policyToJson, toolLink, type PolicyJson } from './status.js';

/** How long a canary command waits for the mgr: one request on a fresh link plus one store write. */
const CANARY_TIMEOUT_MS = 5000;

export interface CanarySetFlags {
  type: string;
  version: string;
  percent?: string;
  accounts?: string;
}

/** A type given by name (the `types` map) or number. */
export function resolveType(config: Pick<XConfig, 'types'>, t: string): number {
  const n = /^\d+$/.test(t) ? Number(t) : Object.hasOwn(config.types, t) ? config.types[t] : undefined;
  if (n === undefined) {
    const known = Object.entries(config.types).map(([name, num]) => `${name}=${num}`);
    throw new XError(
      'UNKNOWN_TYPE',
      `unknown type "${t}" (types: ${known.length ? known.join(', ') : 'none'}; or give a number >= ${NodeType.FIRST_SERVICE})`,
    );
  }
  return n;
}

/** "--percent 20" -> 2000 basis points; refuses what is not a number of at most two decimals. */
export function parsePercent(p: string): number {
  const v = Number(p);
  if (p.trim() === '' || !Number.isFinite(v) || v < 0) throw new XError('BAD_POLICY', `--percent must be a number 0..100, got "${p}"`);
  const bp = Math.round(v * (COHORT_BUCKETS / 100));
  if (Math.abs(bp - v * (COHORT_BUCKETS / 100)) > 1e-6) throw new XError('BAD_POLICY', `--percent takes steps of 0.01, got "${p}"`);
  return bp;
}

async function request(config: XConfig, store: LeaseWatcher, logger: Logger, cmd: number, body: Uint8Array): Promise<PolicyJson[]> {
  const { link } = await toolLink(config, store, logger);
  try {
    return decode(RoutingPoliciesSchema, (await link.request(cmd, body, CANARY_TIMEOUT_MS)).body).policies.map(policyToJson);
  } finally {
    link.close();
  }
}

/** `xserver canary set`: resolves with the policies in force afterwards. */
export async function requestCanarySet(config: XConfig, store: LeaseWatcher, logger: Logger, flags: CanarySetFlags): Promise<PolicyJson[]> {
  if (flags.percent === undefined && flags.accounts === undefined) {
    throw new XError('BAD_POLICY', 'give the cohort: --percent <0..100> and/or --accounts <a,b,...>');
  }
  const accounts = (flags.accounts ?? '')
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  const policy = {
    type: resolveType(config, flags.type),
    version: flags.version,
    basisPoints: flags.percent === undefined ? 0 : parsePercent(flags.percent),
    accounts,
  };
  return request(config, store, logger, Cmd.CANARY_SET, encode(RoutingPolicySchema, policy));
}

/** `xserver canary rollback` (the canary version gets no new sessions): resolves with the policies afterwards. */
export async function requestCanaryRollback(config: XConfig, store: LeaseWatcher, logger: Logger, type: string): Promise<PolicyJson[]> {
  return request(config, store, logger, Cmd.CANARY_ROLLBACK, encode(CanaryTypeRequestSchema, { type: resolveType(config, type) }));
}

/** `xserver canary clear` (the policy is removed): resolves with the policies left. */
export async function requestCanaryClear(config: XConfig, store: LeaseWatcher, logger: Logger, type: string): Promise<PolicyJson[]> {
  return request(config, store, logger, Cmd.CANARY_CLEAR, encode(CanaryTypeRequestSchema, { type: resolveType(config, type) }));
}
