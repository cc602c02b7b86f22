/**
 * The shared test kit (testkit/): the one wait for a condition, the process-group spawner, the
 * fast timings table, free ports and the machine lock.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SETTINGS, defaultConfig, envName } from '../src/config/schema.js';
import {
  ChangeFeed,
  FAST_TIMINGS,
  ProcessExitedError,
  WaitTimeoutError,
  acquireMachineLock,
  applyTimings,
  freePort,
  releaseMachineLock,
  settingEnvName,
  spawnGroup,
  timingsEnv,
  waitFor,
  type GroupProcess,
} from '../testkit/index.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('waitFor', () => {
  it('resolves with the first value that is not undefined, null or false', async () => {
    vi.useFakeTimers();
    const values: unknown[] = [undefined, null, false, 0, 'late'];
    const p = waitFor(() => values.shift() as number | undefined, { timeoutMs: 1000, what: 'a value', pollMs: 10 });
    await vi.advanceTimersByTimeAsync(30);
    await expect(p).resolves.toBe(0);
  });

  it('times out with an error naming what it waited for, the last value and the context', async () => {
    vi.useFakeTimers();
    const p = waitFor(() => false, { timeoutMs: 500, what: 'the mgr to be active', context: () => 'timeline here' });
    const seen = p.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(499);
    let settled = false;
    void p.catch(() => {}).finally(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const err = (await seen) as WaitTimeoutError;
    expect(err).toBeInstanceOf(WaitTimeoutError);
    expect(err.message).toBe('timed out after 500 ms waiting for: the mgr to be active (last: false)\ntimeline here');
  });

  it('fails at once when the condition throws, unless errors are retried', async () => {
    vi.useFakeTimers();
    const boom = new Error('boom');
    await expect(
      waitFor(
        () => {
          throw boom;
        },
        { timeoutMs: 1000, what: 'x' },
      ),
    ).rejects.toBe(boom);

    let calls = 0;
    const retried = waitFor(
      () => {
        if (++calls < 3) throw new Error(`not yet ${calls}`);
        return 'ok';
      },
      { timeoutMs: 1000, what: 'x', pollMs: 10, retryErrors: true },
    );
    await vi.advanceTimersByTimeAsync(20);
    await expect(retried).resolves.toBe('ok');

    const chosen = waitFor(
      () => {
        throw new ProcessExitedErrorLike();
      },
      { timeoutMs: 1000, what: 'x', retryErrors: (e) => !(e instanceof ProcessExitedErrorLike) },
    );
    await expect(chosen).rejects.toBeInstanceOf(ProcessExitedErrorLike);
  });

  it('with a wake feed and no polling, re-checks exactly when the feed reports a change', async () => {
    vi.useFakeTimers();
    const feed = new ChangeFeed();
    let state = 0;
    let checks = 0;
    const p = waitFor(
      () => {
        checks++;
        return state >= 2 ? state : undefined;
      },
      { timeoutMs: 10_000, what: 'state 2', wake: feed, pollMs: Infinity },
    );
    await vi.advanceTimersByTimeAsync(5000);
    expect(checks).toBe(1);
    state = 1;
    feed.changed();
    await vi.advanceTimersByTimeAsync(0);
    expect(checks).toBe(2);
    state = 2;
    feed.changed();
    await expect(p).resolves.toBe(2);
    feed.changed();
    expect(checks).toBe(3); // unsubscribed once settled
  });

  it('never runs an async condition twice at once; a change during a check runs one more check after it', async () => {
    vi.useFakeTimers();
    const feed = new ChangeFeed();
    let running = 0;
    let maxRunning = 0;
    let checks = 0;
    const p = waitFor(
      async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        checks++;
        await new Promise((r) => setTimeout(r, 100));
        running--;
        return checks >= 2 ? 'done' : undefined;
      },
      { timeoutMs: 10_000, what: 'two checks', wake: feed, pollMs: Infinity },
    );
    feed.changed();
    feed.changed();
    await vi.advanceTimersByTimeAsync(250);
    await expect(p).resolves.toBe('done');
    expect(maxRunning).toBe(1);
    expect(checks).toBe(2);
  });
});

class ProcessExitedErrorLike extends Error {}

describe('fast timings', () => {
  it('names only settings of the settings table, with values inside their limits', () => {
    for (const [key, value] of Object.entries(FAST_TIMINGS)) {
      const s = SETTINGS.find((x) => x.key === key);
      expect(s, `${key} is a setting`).toBeDefined();
      expect(s!.type).toBe('int');
      if (s!.min !== undefined) expect(value, key).toBeGreaterThanOrEqual(s!.min);
      if (s!.max !== undefined) expect(value, key).toBeLessThanOrEqual(s!.max);
    }
  });

  it('keeps the lease and heartbeat relations the defaults keep (refresh well under the TTL, timeout over the interval)', () => {
    expect(FAST_TIMINGS['mgr.leaseRefreshMs']! * 3).toBeLessThanOrEqual(FAST_TIMINGS['mgr.leaseTtlMs']!);
    expect(FAST_TIMINGS['link.heartbeatTimeoutMs']!).toBeGreaterThan(FAST_TIMINGS['link.heartbeatIntervalMs']! * 2);
  });

  it('maps to the env names the config loader reads, and into a config object', () => {
    for (const key of Object.keys(FAST_TIMINGS)) expect(settingEnvName(key)).toBe(envName(key));
    const env = timingsEnv();
    expect(env.XSERVER_MGR_LEASE_TTL_MS).toBe(String(FAST_TIMINGS['mgr.leaseTtlMs']));
    const c = applyTimings(defaultConfig());
    expect(c.mgr.leaseTtlMs).toBe(FAST_TIMINGS['mgr.leaseTtlMs']);
    expect(c.gateway.reconnectGraceMs).toBe(FAST_TIMINGS['gateway.reconnectGraceMs']);
    expect(() => applyTimings(defaultConfig(), { 'mgr.noSuchThing': 1 })).toThrow(/mgr.noSuchThing/);
  });
});

/** Whether `pid` is gone (a zombie waiting for a reaper counts as gone). */
function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') ?? false;
  } catch {
    return true;
  }
}

describe('process groups', () => {
  const spawned: GroupProcess[] = [];
  afterEach(async () => {
    for (const p of spawned.splice(0)) await p.kill();
  });

  const node = (label: string, script: string): GroupProcess => {
    const p = spawnGroup({ label, command: process.execPath, args: ['-e', script] });
    spawned.push(p);
    return p;
  };

  it('captures JSON log lines and waits for one; kill() takes the whole group, grandchildren included', async () => {
    const p = node(
      'parent',
      `const { spawn } = require('node:child_process');
       const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
       console.log('plain text');
       console.log(JSON.stringify({ level: 30, time: Date.now(), msg: 'grandchild started', pid: c.pid }));
       setInterval(() => {}, 1000);`,
    );
    const line = await p.waitForLog('grandchild started', { timeoutMs: 10_000 });
    const grandchild = line.pid as number;
    expect(p.hasLine(/^plain text$/)).toBe(true);
    expect(p.logs.map((l) => l.msg)).toEqual(['grandchild started']);
    expect(processGone(grandchild)).toBe(false);
    await p.kill();
    expect(p.exitInfo?.signal).toBe('SIGKILL');
    await waitFor(() => processGone(grandchild), { timeoutMs: 5000, what: 'the grandchild gone' });
  });

  it('a wait for a log line fails at once when the process exits first, quoting its output', async () => {
    const p = node('quitter', `console.error('bad config'); process.exit(3);`);
    const err = await p.waitForLog('never', { timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProcessExitedError);
    expect((err as Error).message).toMatch(/quitter exited \(code 3, signal null\)/);
    expect((err as Error).message).toContain('[stderr] bad config');
  });

  it('a command that does not exist ends as an exit with the spawn error, not a hang', async () => {
    const p = spawnGroup({ label: 'ghost', command: 'no-such-command-xserver-test' });
    const info = await p.exited;
    expect(info.error?.message).toMatch(/ENOENT/);
    expect(p.alive).toBe(false);
  });
});

describe('free ports and the machine lock', () => {
  it('freePort returns a port this process can listen on', async () => {
    const port = await freePort();
    const srv = net.createServer();
    await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(port, '127.0.0.1', () => resolve()));
    srv.close();
  });

  it('the lock admits one holder at a time and breaks the lock of a dead holder', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'xs-lock-')), 'lock');
    await acquireMachineLock('a', 1000, file);
    await expect(acquireMachineLock('b', 300, file)).rejects.toThrow(/still held/);
    releaseMachineLock('b', file); // not the holder: no effect
    await expect(acquireMachineLock('b', 300, file)).rejects.toThrow(/still held/);
    releaseMachineLock('a', file);
    await acquireMachineLock('b', 1000, file);
    // A holder whose process is gone: pid 2^22 + 1 is above Linux's pid limit.
    fs.writeFileSync(file, JSON.stringify({ pid: 4_194_305, token: 'dead' }));
    await acquireMachineLock('c', 1000, file);
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).token).toBe('c');
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  });
});
