/**
 * `xserver bots`, run as a child process (bin/xserver.js: `npm run build` first) against a small
 * cluster in this process (startDevCluster: mgr, login, gateway and a counting echo service on the
 * in-memory store). What the service received is compared with what the report says. The logins
 * go through the test kit's ACCEPT_VERIFIER.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCEPT_VERIFIER, type GroupProcess, REPO_ROOT, XSERVER_BIN, spawnGroup, waitFor, xserverEnv } from '../testkit/index.js';
import { startDevCluster, type DevCluster } from '../src/dev.js';
import { defineService } from '../src/service.js';
import type { BotsReport } from '../src/bots/report.js';
import { gatewayPidOnThisHost } from '../src/cli/bots.js';

const ECHO_TYPE = 4;
const ECHO = 1;
const NOTE = 2;
/** Start-up of the workers, the ramp and the stop, beyond --duration (a busy machine included). */
const RUN_SLACK_MS = 40_000;

let dev: DevCluster;
let tmp: string;
/** What the service saw: echo requests, and per account the ticks noted by the test scripts. */
const seen = { echo: 0, noted: new Map<string, { ticks: number; tags: Set<string> }>() };

beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'xserver-bots-'));
  dev = await startDevCluster({
    configure: (c) => {
      c.login.port = 0;
      // Any account with password "bot": a scrypt per login is not what these tests are about.
      c.login.verifier = ACCEPT_VERIFIER;
    },
    services: [
      defineService({
        type: ECHO_TYPE,
        name: 'echo',
        start(node) {
          node.handleClient(ECHO, (data) => {
            seen.echo++;
            return data;
          });
          node.handleClient(NOTE, (data, ctx) => {
            const note = JSON.parse(Buffer.from(data).toString()) as { tag: string };
            const s = seen.noted.get(ctx.account) ?? { ticks: 0, tags: new Set<string>() };
            s.ticks++;
            s.tags.add(note.tag);
            seen.noted.set(ctx.account, s);
            return JSON.stringify({ account: ctx.account });
          });
        },
      }),
    ],
  });
});

afterAll(async () => {
  await dev?.stop();
  if (tmp) await fsp.rm(tmp, { recursive: true, force: true });
});

/**
 * Runs `xserver bots <args>` to its end (`during` may act on it meanwhile); kills its process group
 * if it outlives the slack.
 */
async function bots(args: string[], during?: (p: GroupProcess) => Promise<void>, timeoutMs = RUN_SLACK_MS) {
  const p = spawnGroup({
    label: 'bots',
    command: process.execPath,
    args: [XSERVER_BIN, 'bots', ...args],
    cwd: REPO_ROOT,
    env: xserverEnv(),
    stdin: 'ignore',
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await during?.(p);
    const exit = await Promise.race([
      p.exited,
      new Promise<never>(
        (_, reject) => (timer = setTimeout(() => reject(new Error(`xserver bots ran over ${timeoutMs} ms:\n${p.tail()}`)), timeoutMs)),
      ),
    ]);
    const of = (stream: string) =>
      p.lines
        .filter((l) => l.stream === stream)
        .map((l) => l.line)
        .join('\n');
    return { code: exit.code, stdout: of('stdout'), stderr: of('stderr') };
  } finally {
    clearTimeout(timer);
    await p.kill();
  }
}

async function readReport(file: string): Promise<BotsReport> {
  return JSON.parse(await fsp.readFile(file, 'utf8')) as BotsReport;
}

describe('xserver bots', () => {
  it('20 clients at 5 msg/s for 3 s with the built-in echo script: all connect, the service got what the report counts, no errors', async () => {
    const file = path.join(tmp, `echo-${randomBytes(3).toString('hex')}.json`);
    const before = seen.echo;
    const r = await bots([
      '--clients',
      '20',
      '--rate',
      '5',
      '--duration',
      '3s',
      '--workers',
      '2',
      '--login',
      dev.loginUrl,
      '--type',
      String(ECHO_TYPE),
      '--cmd',
      String(ECHO),
      '--gateway',
      String(process.pid),
      '--json',
      file,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const report = await readReport(file);
    const received = seen.echo - before;

    expect(report.ccu).toEqual({ target: 20, reached: 20, atEnd: 20 });
    expect(report.logins.ok).toBe(20);
    expect(report.errors).toEqual({ total: 0, byCode: {} });
    // Every request the report counts reached the service (at most one tick per client apart).
    expect(report.messages.total).toBeGreaterThan(0);
    expect(Math.abs(received - report.messages.total)).toBeLessThanOrEqual(20);
    expect(report.messages.answered).toBe(report.messages.total);

    const l = report.latencyMs;
    expect(l.count).toBe(report.messages.answered);
    expect(l.p50Ms).toBeGreaterThan(0);
    expect(l.p50Ms!).toBeLessThanOrEqual(l.p99Ms!);
    expect(l.p99Ms!).toBeLessThanOrEqual(l.maxMs! * 1.04); // a percentile is its bucket's midpoint
    expect(l.maxMs!).toBeLessThan(5000); // below bots.requestTimeoutMs: nothing timed out

    expect(report.hardware.cores).toBeGreaterThan(0);
    expect(report.hardware.node).toBe(process.version);
    expect(report.options.workers).toBe(2);
    if (!report.gateway.measured) throw new Error(`gateway not measured: ${report.gateway.note}`);
    expect(report.gateway.rssBytes).toBeGreaterThan(0);
    expect(Number.isFinite(report.gateway.rssPerClientBytes)).toBe(true);

    // The live line and the table.
    expect(r.stderr).toMatch(/connected \d+\/20 .* msg\/s .* p50 .* p99 .* errors 0/);
    expect(r.stdout).toMatch(/CCU reached\s+\| 20 of 20/);
  });

  it('a script module is called per tick with the connected client and its context', async () => {
    const file = path.join(tmp, `script-${randomBytes(3).toString('hex')}.json`);
    const prefix = `s${randomBytes(3).toString('hex')}-`;
    const r = await bots([
      '-n',
      '6',
      '-r',
      '4',
      '-d',
      '2s',
      '--login',
      dev.loginUrl,
      '--account-prefix',
      prefix,
      '--script',
      'test/fixtures/bot-script.js',
      '--param',
      'tag=hello',
      '--json',
      file,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const report = await readReport(file);
    const mine = [...seen.noted].filter(([account]) => account.startsWith(prefix));
    expect(mine.map(([a]) => a).sort()).toEqual([0, 1, 2, 3, 4, 5].map((i) => `${prefix}${i}`).sort());
    for (const [, s] of mine) expect([...s.tags]).toEqual(['hello']);
    expect(mine.reduce((n, [, s]) => n + s.ticks, 0)).toBe(report.messages.answered);
    expect(report.errors.total).toBe(0); // no WRONG_ACCOUNT: each bot talks as its own account
    expect(report.gateway.measured).toBe(false);
  });

  it('a session script runs once per bot, paced by ctx.next()', async () => {
    const file = path.join(tmp, `session-${randomBytes(3).toString('hex')}.json`);
    const prefix = `q${randomBytes(3).toString('hex')}-`;
    const r = await bots([
      '-n',
      '4',
      '-r',
      '5',
      '-d',
      '2s',
      '--login',
      dev.loginUrl,
      '--account-prefix',
      prefix,
      '--script',
      'test/fixtures/bot-session.js',
      '--json',
      file,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const report = await readReport(file);
    const mine = [...seen.noted].filter(([account]) => account.startsWith(prefix));
    expect(mine).toHaveLength(4);
    for (const [, s] of mine) expect([...s.tags]).toEqual(['session']);
    expect(mine.reduce((n, [, s]) => n + s.ticks, 0)).toBe(report.messages.answered);
    expect(report.errors.total).toBe(0);
  });

  it('Ctrl-C (SIGINT to the process group) ends the run early with its report, and no worker outlives it', async () => {
    const file = path.join(tmp, `sigint-${randomBytes(3).toString('hex')}.json`);
    let pgid = 0;
    const r = await bots(['-n', '4', '-r', '2', '-d', '10m', '--login', dev.loginUrl, '--type', String(ECHO_TYPE), '--json', file], async (p) => {
      pgid = p.pid!;
      await waitFor(() => p.hasLine(/connected 4\/4 /) || !p.alive, { timeoutMs: RUN_SLACK_MS, what: 'all 4 bots connected', wake: p.changes });
      p.signal('SIGINT');
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/bots: stopping/);
    const report = await readReport(file);
    expect(report.ccu.reached).toBe(4);
    expect(report.errors.total).toBe(0);
    expect(report.elapsedMs).toBeLessThan(10 * 60_000);
    // The workers were in the bots process's group; the group is empty now.
    const groupAlive = (): boolean => {
      try {
        process.kill(-pgid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await waitFor(() => !groupAlive(), { timeoutMs: 5000, what: 'no process left in the bots process group' });
  });

  it('bad flags: a clear message and exit code 2', async () => {
    const bad = await bots(['--clients', 'many', '--type', '4', '--login', dev.loginUrl]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--clients wants an integer from 1 to 100000, got "many"/);

    const noScript = await bots(['--clients', '3', '--login', dev.loginUrl]);
    expect(noScript.code).toBe(2);
    expect(noScript.stderr).toMatch(/give --script <module>, or --type <n>/);

    const unknown = await bots(['--clients', '3', '--type', '4', '--bogus']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown option '--bogus'/);

    const missing = await bots(['--clients', '3', '--script', path.join(tmp, 'no-such-script.js'), '--login', dev.loginUrl]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot load the script .*no-such-script\.js/);
  });
});

describe('--gateway auto', () => {
  const here = os.hostname();
  it("takes the pid of the cluster's one gateway on this host, and refuses none or several", () => {
    const members = [
      { id: 'g1', type: 3, host: here, pid: 111 },
      { id: 'g2', type: 3, host: 'elsewhere', pid: 222 },
      { id: 'n1', type: 4, host: here, pid: 333 },
    ];
    expect(gatewayPidOnThisHost(members, 3)).toBe(111);
    expect(() => gatewayPidOnThisHost(members.slice(1), 3)).toThrow(/exactly one gateway .* the mgr lists g2 on elsewhere \(pid 222\)/);
    expect(() => gatewayPidOnThisHost([...members, { id: 'g3', type: 3, host: here, pid: 444 }], 3)).toThrow(/exactly one gateway/);
    expect(() => gatewayPidOnThisHost([], 3)).toThrow(/lists none/);
  });
});
