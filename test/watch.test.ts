/**
 * ServiceWatcher (src/cli/watch.ts), the decision and timing of `xserver up --watch`, with fake
 * timers and a fake host: which processes a change restarts, the quiet time, one restart at a
 * time, a failed build restarts nothing.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ServiceWatcher, affectedProcesses, type WatchHost, type WatchedService } from '../src/cli/watch.js';

const services: WatchedService[] = [
  { processes: ['lobby-1', 'lobby-2'], dir: '/game/lobby' },
  { processes: ['match'], dir: '/game/match' },
];

function fakeHost(buildOk = true): WatchHost & { replaced: string[]; builds: number; hold: boolean; release: () => void; logs: string[] } {
  let gate: (() => void) | null = null;
  const h = {
    replaced: [] as string[],
    builds: 0,
    logs: [] as string[],
    hold: false,
    release: () => gate?.(),
    build: async () => {
      h.builds++;
      return buildOk;
    },
    replace: async (name: string) => {
      h.replaced.push(name);
      if (h.hold) await new Promise<void>((r) => (gate = r));
    },
    log: (m: string) => void h.logs.push(m),
  };
  return h;
}

describe('affectedProcesses', () => {
  it('restarts the service whose directory holds the file, each of its processes in order', () => {
    expect(affectedProcesses(services, ['/game/lobby/rooms/chat.js'])).toEqual(['lobby-1', 'lobby-2']);
    expect(affectedProcesses(services, ['/game/match/service.js'])).toEqual(['match']);
  });

  it('a file outside every service directory (a shared module) restarts every service', () => {
    expect(affectedProcesses(services, ['/game/contracts.js'])).toEqual(['lobby-1', 'lobby-2', 'match']);
  });

  it('a directory whose name only starts like a service directory is not inside it', () => {
    expect(affectedProcesses(services, ['/game/lobby-old/x.js'])).toEqual(['lobby-1', 'lobby-2', 'match']);
  });
});

describe('ServiceWatcher', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('waits for the files to be quiet, then restarts once for a burst of changes', async () => {
    const host = fakeHost();
    const w = new ServiceWatcher({ services, delayMs: 200, build: false }, host);
    w.changed('/game/match/service.js');
    await vi.advanceTimersByTimeAsync(150);
    w.changed('/game/match/service.js'); // the editor's second write
    await vi.advanceTimersByTimeAsync(150);
    expect(host.replaced).toEqual([]);
    await vi.advanceTimersByTimeAsync(100);
    expect(host.replaced).toEqual(['match']);
  });

  it('never runs two restarts at once: a change during a restart runs after it', async () => {
    const host = fakeHost();
    host.hold = true;
    const w = new ServiceWatcher({ services, delayMs: 10, build: false }, host);
    w.changed('/game/match/service.js');
    await vi.advanceTimersByTimeAsync(10);
    expect(host.replaced).toEqual(['match']);
    w.changed('/game/lobby/service.js');
    await vi.advanceTimersByTimeAsync(50);
    expect(host.replaced).toEqual(['match']); // still replacing match
    host.hold = false;
    host.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(host.replaced).toEqual(['match', 'lobby-1', 'lobby-2']);
  });

  it('builds first when told to; a failed build restarts nothing', async () => {
    const ok = fakeHost(true);
    new ServiceWatcher({ services, delayMs: 10, build: true }, ok).changed('/game/lobby/a.ts');
    await vi.advanceTimersByTimeAsync(10);
    expect([ok.builds, ok.replaced]).toEqual([1, ['lobby-1', 'lobby-2']]);

    const failing = fakeHost(false);
    new ServiceWatcher({ services, delayMs: 10, build: true }, failing).changed('/game/lobby/a.ts');
    await vi.advanceTimersByTimeAsync(10);
    expect([failing.builds, failing.replaced]).toEqual([1, []]);
    expect(failing.logs.at(-1)).toMatch(/the build failed: nothing restarted/);
  });

  it('ignores node_modules and .git, and nothing after stop()', async () => {
    const host = fakeHost();
    const w = new ServiceWatcher({ services, delayMs: 10, build: false }, host);
    w.changed('/game/lobby/node_modules/x/index.js');
    w.changed('/game/.git/index');
    await vi.advanceTimersByTimeAsync(20);
    w.changed('/game/lobby/service.js');
    w.stop();
    await vi.advanceTimersByTimeAsync(20);
    expect(host.replaced).toEqual([]);
  });
});
