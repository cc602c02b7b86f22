/**
 * `xserver init`: scaffolds a project into a new directory (refusing a non-empty one) and runs its
 * `npm install`; then the project's README commands, `npm ci` and `npm test`, pass against this
 * checkout (the dependency is `file:<this repo>`, which npm links, so only typescript and
 * @types/node are installed, preferring the npm cache). Runs the built CLI (bin/xserver.js uses
 * dist/: `npm run build` first, as `npm test` does).
 */
import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, XSERVER_BIN, spawnGroup, xserverEnv } from '../testkit/index.js';
import { packageName } from '../src/cli/init.js';

/** The slowest step: the generated project's tsc and its test (a cold npm cache makes install slower). */
const STEP_TIMEOUT_MS = 120_000;

let tmp: string;
let project: string;

/** Runs a command to its end (killing its process group if it outlives `timeoutMs`); its exit code and output. */
async function run(label: string, command: string, args: string[], cwd: string) {
  const p = spawnGroup({
    label,
    command,
    args,
    cwd,
    env: xserverEnv({ npm_config_update_notifier: 'false', npm_config_prefer_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false' }),
    stdin: 'ignore',
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const exit = await Promise.race([
      p.exited,
      new Promise<never>(
        (_, reject) => (timer = setTimeout(() => reject(new Error(`${label} ran over ${STEP_TIMEOUT_MS} ms:\n${p.tail()}`)), STEP_TIMEOUT_MS)),
      ),
    ]);
    return { code: exit.code, out: p.lines.map((l) => l.line).join('\n') };
  } finally {
    clearTimeout(timer);
    await p.kill();
  }
}

beforeAll(async () => {
  if (!existsSync(path.join(REPO_ROOT, 'dist/cli/init.js'))) throw new Error('dist/ is not built: run `npm run build` first');
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'xserver-init-'));
  project = path.join(tmp, 'My Game');
});

afterAll(async () => {
  if (tmp) await fsp.rm(tmp, { recursive: true, force: true });
});

describe('xserver init', () => {
  it('writes the project with its lockfile, and refuses a directory that is not empty', async () => {
    const first = await run('init', process.execPath, [XSERVER_BIN, 'init', project, '--xserver', REPO_ROOT], tmp);
    expect(first.code, first.out).toBe(0);
    const files = (await fsp.readdir(project, { recursive: true })).map(String).sort();
    for (const f of [
      '.gitignore',
      'README.md',
      'package.json',
      'tsconfig.json',
      path.join('src', 'contracts.ts'),
      path.join('src', 'service.ts'),
      path.join('test', 'game.test.ts'),
    ]) {
      expect(files).toContain(f);
    }
    const pkg = JSON.parse(await fsp.readFile(path.join(project, 'package.json'), 'utf8')) as { name: string; dependencies: Record<string, string> };
    expect(pkg.name).toBe('my-game');
    expect(pkg.dependencies.xserver).toBe(`file:${REPO_ROOT}`);
    const readme = await fsp.readFile(path.join(project, 'README.md'), 'utf8');
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm ci && npm test');
    expect(readme).not.toMatch(/\{\{\w+\}\}/);

    const again = await run('init-again', process.execPath, [XSERVER_BIN, 'init', project], tmp);
    expect(again.code).toBe(1);
    expect(again.out).toMatch(/is not empty/);
  });

  it("the generated project's README commands pass: npm ci, then npm test running its one test", async () => {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const install = await run('npm-ci', npm, ['ci'], project);
    expect(install.code, install.out).toBe(0);
    const t = await run('npm-test', npm, ['test'], project);
    expect(t.code, t.out).toBe(0);
    // The generated test ran (not zero tests), and it is the one the template wrote.
    expect(t.out).toMatch(/^ok 1 - game: a player scores, gets the milestone push and tops the board$/m);
    expect(t.out).toMatch(/^# pass 1$/m);
    expect(t.out).toMatch(/^# fail 0$/m);
  });

  it('packageName', () => {
    expect(packageName('My Game!')).toBe('my-game');
    expect(packageName('--')).toBe('game-backend');
    expect(packageName('a.b_c')).toBe('a.b_c');
  });
});
