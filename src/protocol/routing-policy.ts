/**
 * Canary routing by account cohort (SPEC §12, docs/operations.md "Canary"): the pure decisions
 * every side applies the same way. The mgr validates and holds one policy per service type; login,
 * the gateway and a node's one()/sendOne() choose among a type's nodes with `routeCandidates()`.
 *
 * An account is in a policy's cohort when it is listed, or when its bucket — a fixed hash of the
 * account name (FNV-1a, then the murmur3 finaliser to spread similar names), mod 10,000 — is below
 * the policy's basis points (20% = 2000). The bucket depends on the name only: the same accounts
 * are in the cohort of every type, at every process, across restarts; raising the share only adds
 * accounts (bucket < 2000 stays in at 3000).
 */

/** Buckets of the cohort hash; a policy's share is given in these (hundredths of a percent). */
export const COHORT_BUCKETS = 10_000;

/** What a decision needs of a policy (the generated RoutingPolicy has these fields). */
export interface CohortPolicy {
  version: string;
  basisPoints: number;
  accounts: readonly string[];
}

/** The account's bucket, 0..COHORT_BUCKETS-1: FNV-1a over the UTF-16 code units, murmur3 fmix32. */
export function cohortBucket(account: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < account.length; i++) {
    h ^= account.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) % COHORT_BUCKETS;
}

/** True when `account` gets the policy's version: listed, or its bucket below the share. */
export function inCohort(policy: CohortPolicy, account: string): boolean {
  return policy.accounts.includes(account) || cohortBucket(account) < policy.basisPoints;
}

/**
 * A session's routing decision for one type: the policy's version and whether the account is in
 * the cohort (null: no policy, any node). Taken once per session and type, so a policy change
 * never moves a running session.
 */
export interface CohortDecision {
  version: string;
  canary: boolean;
}

export function decide(policy: CohortPolicy | undefined, account: string | undefined): CohortDecision | null {
  if (!policy) return null;
  return { version: policy.version, canary: account !== undefined && inCohort(policy, account) };
}

/**
 * The candidates a decision allows: in the cohort, the nodes of the policy's version; outside it
 * (and without an account), the nodes of any other version. When none of those lives the whole
 * list is returned with `fallback` set (the caller logs it once): a canary that has no node must
 * not make its accounts' requests fail, nor a fleet that is all on the new version.
 */
export function routeCandidates<T>(
  decision: CohortDecision | null,
  list: readonly T[],
  versionOf: (c: T) => string,
): { list: readonly T[]; fallback: boolean } {
  if (decision === null || list.length === 0) return { list, fallback: false };
  const wanted = list.filter((c) => (versionOf(c) === decision.version) === decision.canary);
  return wanted.length > 0 ? { list: wanted, fallback: false } : { list, fallback: true };
}

/** Limits of a policy, from the mgr's settings. */
export interface PolicyLimits {
  maxAccounts: number;
}

/** Why a policy is refused, or null when it is valid (the mgr checks every CANARY_SET). */
export function policyProblem(p: CohortPolicy & { type: number }, limits: PolicyLimits, firstServiceType: number): string | null {
  if (!Number.isInteger(p.type) || p.type < firstServiceType) {
    return `type ${p.type} is not a service type (expected a number >= ${firstServiceType}; 0-3 are client, mgr, login, gateway)`;
  }
  if (p.version.trim() === '') return 'the version is empty: give the version the cohort goes to (--version)';
  if (!Number.isInteger(p.basisPoints) || p.basisPoints < 0 || p.basisPoints > COHORT_BUCKETS) {
    return `the share must be 0..100 percent in steps of 0.01 (got ${p.basisPoints / 100}%)`;
  }
  if (p.basisPoints === 0 && p.accounts.length === 0) return 'the cohort is empty: give --percent above 0 or --accounts';
  if (p.accounts.length > limits.maxAccounts) {
    return `${p.accounts.length} listed accounts is more than mgr.canaryMaxAccounts (${limits.maxAccounts}); use a percentage`;
  }
  if (p.accounts.some((a) => a.trim() === '')) return 'an empty account name is listed';
  return null;
}

/** "1.4.0 for 20% + 2 listed account(s)"; "1.4.0 for no account (rolled back)" */
export function describePolicy(p: CohortPolicy): string {
  if (p.basisPoints === 0 && p.accounts.length === 0) return `${p.version} for no account (rolled back)`;
  const parts: string[] = [];
  if (p.basisPoints > 0) parts.push(`${p.basisPoints / 100}%`);
  if (p.accounts.length > 0) parts.push(`${p.accounts.length} listed account(s)`);
  return `${p.version} for ${parts.join(' + ')}`;
}
