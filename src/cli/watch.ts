/**
 * Watch mode of `xserver up` (SPEC §13, "Dev watch"): when a file of a service changes, its
 * processes are replaced one at a time with the rolling upgrade's surge step (src/cli/roll.ts; up
 * runs it, taking turns with `xserver roll`): the new process starts and is listed, then the old
 * one is drained through the mgr and leaves. The gateway never loses a
 * client: it re-binds the old process's accounts to the new one when the old one leaves, holding
 * their frames in order meanwhile, and nobody is reported lost. A replacement that does not start
 * (a syntax error, a throw in start()) is killed and the old process keeps serving.
 *
 *   file change --delay--> [build] --> for each affected process: spawn new --listed--> DRAIN old
 *          ^                                                          |
 *          +------ changes during a restart are kept and run after it -+
 *
 * Which services a change restarts: those whose entry directory holds the changed file; a change
 * anywhere else under the watched paths (a shared contracts module) restarts every service.
 * This file is the decision and its timing; the processes are the host's (src/cli/up.ts).
 */
import fs from 'node:fs';
import path from 'node:path';

/** One service of the plan, as the watcher sees it. */
export interface WatchedService {
  /** The names of its processes (e.g. lobby-1, lobby-2): replaced one at a time. */
  processes: string[];
  /** The directory of its entry module. */
  dir: string;
}

export interface WatchHost {
  /** Runs the build command; resolves false (after logging why) when it failed. */
  build(): Promise<boolean>;
  /** Replaces one process: start the new one, wait until ready, drain the old one. */
  replace(processName: string): Promise<void>;
  log(msg: string): void;
}

export interface WatchOptions {
  services: WatchedService[];
  /** How long the files must be quiet before a restart (editors write a file in several steps). */
  delayMs: number;
  /** A build runs before each restart (the watched paths are then sources, not the entries). */
  build: boolean;
}

/** Directories and files no change in which restarts anything. */
const IGNORED = /(^|[\\/])(node_modules|\.git)([\\/]|$)/;

/** Decides which processes a batch of changed files restarts; pure. */
export function affectedProcesses(services: WatchedService[], files: Iterable<string>): string[] {
  const hit = new Set<WatchedService>();
  for (const f of files) {
    const owners = services.filter((s) => isInside(s.dir, f));
    for (const s of owners.length > 0 ? owners : services) hit.add(s);
  }
  return services.filter((s) => hit.has(s)).flatMap((s) => s.processes);
}

function isInside(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/**
 * Collects file changes and restarts what they touch, one restart at a time: a change while a
 * restart runs is kept and starts the next one once it is done (never two at once).
 */
export class ServiceWatcher {
  private readonly pending = new Set<string>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly opts: WatchOptions,
    private readonly host: WatchHost,
  ) {}

  /** A file changed (an absolute path). */
  changed(file: string): void {
    if (this.stopped || IGNORED.test(file)) return;
    this.pending.add(file);
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.kick();
    }, this.opts.delayMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pending.clear();
  }

  private kick(): void {
    if (this.running || this.pending.size === 0 || this.stopped) return;
    const files = [...this.pending];
    this.pending.clear();
    this.running = this.restart(files).finally(() => {
      this.running = null;
      this.kick();
    });
  }

  private async restart(files: string[]): Promise<void> {
    const names = affectedProcesses(this.opts.services, files);
    const shown = files.length === 1 ? path.basename(files[0]!) : `${files.length} files`;
    if (names.length === 0) return;
    this.host.log(`${shown} changed: restarting ${names.join(', ')}`);
    if (this.opts.build && !(await this.host.build())) {
      this.host.log('the build failed: nothing restarted, the running processes keep serving');
      return;
    }
    for (const name of names) {
      if (this.stopped) return;
      await this.host.replace(name);
    }
  }
}

/**
 * Watches `dirs` (recursively) and calls `onChange` with the absolute path of each changed file.
 * Returns a function that stops watching.
 */
export function watchDirs(dirs: string[], onChange: (file: string) => void): () => void {
  const watchers = dirs.map((dir) =>
    fs.watch(dir, { recursive: true }, (_event, name) => {
      if (name) onChange(path.resolve(dir, name.toString()));
    }),
  );
  return () => {
    for (const w of watchers) w.close();
  };
}
