/**
 * The canary cohort decision (src/protocol/routing-policy.ts): pure, so tested over many accounts
 * without a cluster; and a node runtime's log-once fallback. The cluster behaviour is in
 * test/canary.test.ts (in-process, real TCP and Redis) and test/cluster/canary-cli.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../src/config/schema.js';
import { createLogger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';
import { NodeRuntime } from '../src/node/runtime.js';
import { NodeType } from '../src/protocol/commands.js';
import { createRoleContext } from '../src/roles.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { COHORT_BUCKETS, cohortBucket, decide, inCohort, policyProblem, routeCandidates } from '../src/protocol/routing-policy.js';

const accounts = Array.from({ length: 10_000 }, (_, i) => `player${i}`);
const limits = { maxAccounts: 1000 };

describe('cohort hash', () => {
  it('puts 20% of 10,000 accounts on the canary, within 18-22%', () => {
    const policy = { version: '1.4.0', basisPoints: 2000, accounts: [] };
    const share = accounts.filter((a) => inCohort(policy, a)).length / accounts.length;
    expect(share).toBeGreaterThanOrEqual(0.18);
    expect(share).toBeLessThanOrEqual(0.22);
  });

  it('spreads accounts over the buckets: 5% and 50% land near their share too', () => {
    for (const bp of [500, 5000]) {
      const share = accounts.filter((a) => cohortBucket(a) < bp).length / accounts.length;
      expect(Math.abs(share - bp / COHORT_BUCKETS)).toBeLessThan(0.02);
    }
  });

  it('is deterministic: the same account always has the same bucket, in 0..9999', () => {
    const first = accounts.map(cohortBucket);
    expect(accounts.map(cohortBucket)).toEqual(first);
    expect(first.every((b) => Number.isInteger(b) && b >= 0 && b < COHORT_BUCKETS)).toBe(true);
    // Fixed values: a change of the hash would move live accounts between versions.
    expect([cohortBucket('alice'), cohortBucket('bob'), cohortBucket('')]).toEqual([4078, 3430, 8923]);
    expect(new Set(first).size).toBeGreaterThan(6000);
  });

  it('keeps every account of a smaller share in a larger one (raising the share only adds accounts)', () => {
    const at20 = accounts.filter((a) => inCohort({ version: 'b', basisPoints: 2000, accounts: [] }, a));
    const at30 = new Set(accounts.filter((a) => inCohort({ version: 'b', basisPoints: 3000, accounts: [] }, a)));
    expect(at20.every((a) => at30.has(a))).toBe(true);
    expect(at30.size).toBeGreaterThan(at20.length);
  });

  it('always includes listed accounts, also at 0%, and only them', () => {
    const outside = accounts.filter((a) => cohortBucket(a) >= 2000).slice(0, 3);
    const policy = { version: '1.4.0', basisPoints: 0, accounts: outside };
    for (const a of outside) expect(inCohort(policy, a)).toBe(true);
    expect(accounts.filter((a) => inCohort(policy, a))).toEqual(outside);
    expect(inCohort({ ...policy, basisPoints: 2000 }, outside[0]!)).toBe(true);
  });
});

describe('routeCandidates', () => {
  const nodes = [
    { id: 'a1', version: '1.0.0' },
    { id: 'a2', version: '1.0.0' },
    { id: 'b1', version: '1.4.0' },
  ];
  const v = (n: { version: string }): string => n.version;

  it('sends the cohort to the policy version and everyone else to the rest', () => {
    const policy = { version: '1.4.0', basisPoints: 0, accounts: ['alice'] };
    expect(routeCandidates(decide(policy, 'alice'), nodes, v)).toEqual({ list: [nodes[2]], fallback: false });
    expect(routeCandidates(decide(policy, 'bob'), nodes, v)).toEqual({ list: [nodes[0], nodes[1]], fallback: false });
    // Work without an account is not canary traffic.
    expect(routeCandidates(decide(policy, undefined), nodes, v).list).toEqual([nodes[0], nodes[1]]);
  });

  it('falls back to every node when none of the wanted version lives, and says so', () => {
    const canary = { version: '2.0.0', canary: true };
    expect(routeCandidates(canary, nodes, v)).toEqual({ list: nodes, fallback: true });
    const rest = { version: '1.0.0', canary: false };
    const allOld = nodes.slice(0, 2);
    expect(routeCandidates(rest, allOld, v)).toEqual({ list: allOld, fallback: true });
  });

  it('leaves the list alone without a policy', () => {
    expect(decide(undefined, 'alice')).toBeNull();
    expect(routeCandidates(null, nodes, v)).toEqual({ list: nodes, fallback: false });
  });
});

describe('policyProblem', () => {
  const ok = { type: 4, version: '1.4.0', basisPoints: 2000, accounts: [] as string[] };

  it('accepts a share, a list, or both', () => {
    expect(policyProblem(ok, limits, NodeType.FIRST_SERVICE)).toBeNull();
    expect(policyProblem({ ...ok, basisPoints: 0, accounts: ['alice'] }, limits, NodeType.FIRST_SERVICE)).toBeNull();
    expect(policyProblem({ ...ok, basisPoints: 10_000, accounts: ['alice'] }, limits, NodeType.FIRST_SERVICE)).toBeNull();
  });

  it('names what is wrong', () => {
    expect(policyProblem({ ...ok, basisPoints: 15_000 }, limits, NodeType.FIRST_SERVICE)).toMatch(/0\.\.100 percent.*150%/);
    expect(policyProblem({ ...ok, version: ' ' }, limits, NodeType.FIRST_SERVICE)).toMatch(/version is empty/);
    expect(policyProblem({ ...ok, basisPoints: 0 }, limits, NodeType.FIRST_SERVICE)).toMatch(/cohort is empty/);
    expect(policyProblem({ ...ok, type: 3 }, limits, NodeType.FIRST_SERVICE)).toMatch(/not a service type/);
    expect(policyProblem({ ...ok, accounts: ['a', 'b'] }, { maxAccounts: 1 }, NodeType.FIRST_SERVICE)).toMatch(/mgr\.canaryMaxAccounts \(1\)/);
  });
});

describe('NodeRuntime.routed (a built runtime, not started)', () => {
  it('logs a fallback once per type and side until a node of the wanted version is back', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({
      level: 'warn',
      pretty: 'false',
      name: 'test',
      destination: { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) },
    });
    const store = new MemoryStore('routing-policy-test');
    const ctx = createRoleContext({ config: defaultConfig(), store, logger, metrics: new Metrics() });
    const rt = new NodeRuntime(ctx, { type: 4 }, { emit: () => true });
    const only = [{ id: 'a1', version: '1.0.0' }];
    const canary = { version: '1.4.0', canary: true };
    const warnings = (): Record<string, unknown>[] => lines.filter((l) => /no live node of type 5 runs canary version 1\.4\.0/.test(String(l.msg)));

    expect(rt.routed(5, canary, only, (n) => n.version)).toEqual(only);
    expect(rt.routed(5, canary, only, (n) => n.version)).toEqual(only);
    expect(warnings()).toHaveLength(1);
    // The canary node is back: no warning, and the next outage is logged again.
    const both = [...only, { id: 'b1', version: '1.4.0' }];
    expect(rt.routed(5, canary, both, (n) => n.version)).toEqual([both[1]]);
    rt.routed(5, canary, only, (n) => n.version);
    expect(warnings()).toHaveLength(2);
    await store.close();
  });
});
