/**
 * `xserver canary set|show|rollback|clear` on real processes: the CLI talks to a real mgr over the
 * tool link, the mgr validates and stores the policy, and a standby that takes over after the
 * active mgr is killed (SIGKILL) serves it. Routing by the policy is tested in test/canary.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { clusterSuite, FAST } from '../helpers/cluster.js';

const { newCluster } = clusterSuite();

describe('xserver canary', () => {
  it('sets, shows, rolls back and clears a policy; status shows it; bad input is refused with a message', async () => {
    const c = newCluster({ env: FAST });
    const mgr = await c.startMgr();
    await c.mgrActive(mgr);

    const none = await c.cli(['canary', 'show']);
    expect(none.code, none.stderr).toBe(0);
    expect(none.stdout).toContain('canary: no routing policy');

    const set = await c.cli(['canary', 'set', '--type', 'lobby', '--version', '1.4.0', '--percent', '20']);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain('canary set; new sessions follow it, running sessions keep their nodes');
    expect(set.stdout).toMatch(/^4\s+1\.4\.0\s+20%\s+-\s+\d{4}-/m);

    const listed = await c.cli(['canary', 'set', '--type', '5', '--version', '2.0.0-rc1', '--accounts', 'alice, bob']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/^5\s+2\.0\.0-rc1\s+0%\s+alice,bob\s/m);

    const json = await c.cli(['canary', 'show', '--json']);
    expect(json.code, json.stderr).toBe(0);
    const shown = JSON.parse(json.stdout) as {
      policies: { type: number; version: string; percent: number; accounts: string[] }[];
      gatewaysCounted: number;
    };
    expect(shown.policies.map((p) => [p.type, p.version, p.percent, p.accounts])).toEqual([
      [4, '1.4.0', 20, []],
      [5, '2.0.0-rc1', 0, ['alice', 'bob']],
    ]);
    expect(shown.gatewaysCounted).toBe(0);

    const status = await c.cli(['status']);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/CANARY VERSION/);
    expect(status.stdout).toMatch(/accounts by version: none allocated \(0 gateway\(s\) counted\)/);

    const rb = await c.cli(['canary', 'rollback', '--type', 'lobby']);
    expect(rb.code, rb.stderr).toBe(0);
    expect(rb.stdout).toContain('canary rolled back: version 1.4.0 of type lobby gets no new sessions; running sessions keep their nodes');
    expect((await c.cli(['canary', 'show'])).stdout).toMatch(/^4\s+1\.4\.0\s+0% \(rolled back\)/m);

    const cleared = await c.cli(['canary', 'clear', '--type', 'lobby']);
    expect(cleared.code, cleared.stderr).toBe(0);
    expect(cleared.stdout).toContain('canary policy of type lobby cleared; 1 policy left');

    const refusals: [string[], RegExp][] = [
      [['--type', 'lobby', '--version', '1.4.0', '--percent', '150'], /0\.\.100 percent in steps of 0\.01 \(got 150%\)/],
      [['--type', 'lobby', '--version', '1.4.0', '--percent', 'lots'], /--percent must be a number 0\.\.100, got "lots"/],
      [['--type', 'lobby', '--version', '1.4.0', '--percent', '-5'], /--percent must be a number 0\.\.100, got "-5"/],
      [['--type', 'lobby', '--version', '1.4.0', '--percent', '0.001'], /--percent takes steps of 0\.01/],
      [['--type', 'lobby', '--version', '1.4.0'], /give the cohort: --percent/],
      [['--type', 'nosuch', '--version', '1.4.0', '--percent', '5'], /unknown type "nosuch" \(types: lobby=4, match=5/],
      [['--type', '2', '--version', '1.4.0', '--percent', '5'], /type 2 is not a service type/],
      [['--type', 'lobby', '--version', ' ', '--percent', '5'], /the version is empty/],
    ];
    for (const [args, message] of refusals) {
      const r = await c.cli(['canary', 'set', ...args]);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(/^xserver canary set: /);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
    const noPolicy = await c.cli(['canary', 'rollback', '--type', 'lobby']);
    expect(noPolicy.code).toBe(1);
    expect(noPolicy.stderr).toMatch(/type 4 has no canary policy \(policies: 5\)/);
    const missingFlag = await c.cli(['canary', 'set', '--version', '1.4.0', '--percent', '5']);
    expect(missingFlag.code).not.toBe(0);
    expect(missingFlag.stderr).toMatch(/required option '--type <type>'/);
  }, 180_000);

  it('a standby that takes over after the active mgr is killed serves the policy', async () => {
    const c = newCluster({ env: FAST });
    const first = await c.startMgr();
    await c.mgrActive(first);
    const second = await c.startMgr();
    const set = await c.cli(['canary', 'set', '--type', 'lobby', '--version', '1.4.0', '--percent', '5', '--accounts', 'alice']);
    expect(set.code, set.stderr).toBe(0);

    c.kill(first, 'SIGKILL');
    await c.mgrActive(second, 15_000);
    const shown = await c.pollUntil(
      'canary show from the new mgr',
      async () => {
        const r = await c.cli(['canary', 'show', '--json']);
        return r.code === 0 && (JSON.parse(r.stdout) as { policies: unknown[] });
      },
      15_000,
    );
    expect(shown.policies).toMatchObject([{ type: 4, version: '1.4.0', percent: 5, accounts: ['alice'] }]);
    expect(second.activeLog?.policies).toBe(1);
  }, 180_000);
});
