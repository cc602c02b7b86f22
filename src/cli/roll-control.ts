/**
 * `xserver roll` against a cluster of `xserver up`: up owns its processes, so it is the one that
 * can start their replacements the same way; it listens on a Unix socket (roll.controlSocket)
 * for roll requests and runs the roll (./roll.ts) on its own children.
 *
 * Protocol on the socket, one JSON object per line:
 *   client -> up:  {"roll": true}
 *   up -> client:  {"event": RollEvent}*  then  {"done": [{name, oldPid, newPid, ms}]}  or  {"error", "code"}
 * One roll at a time (RollLock, shared with `up --watch`); a second request while one runs gets an
 * error at once.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { XConfig } from '../config/schema.js';
import { XError, isXError } from '../errors.js';
import type { Logger } from '../log.js';
import { createStore } from '../store/index.js';
import { Roll, rollCluster, rollOptions, type PlanStep, type RollEvent, type RollHost, type RollProcess } from './roll.js';

/** Where up listens for `xserver roll` (roll.controlSocket, else one per cluster in the temp directory). */
export function controlSocketPath(config: XConfig): string {
  return config.roll.controlSocket || path.join(os.tmpdir(), `xserver-up-${config.cluster}.sock`);
}

type Reply = { event: RollEvent } | { done: { name: string; oldPid?: number; newPid?: number; ms: number }[] } | { error: string; code: string };

/** up's side: serves roll requests on the control socket until `close()`. */
/**
 * One roll at a time on a cluster: `xserver roll` and the replacements of `up --watch` use the
 * same steps on the same processes, so they take turns.
 */
export class RollLock {
  private tail: Promise<unknown> = Promise.resolve();
  private running = 0;

  get busy(): boolean {
    return this.running > 0;
  }

  /** Runs `fn` after every earlier one settled. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    this.running++;
    const r = this.tail.then(fn).finally(() => this.running--);
    this.tail = r.catch(() => {});
    return r;
  }
}

export async function serveRollControl<P extends RollProcess>(
  config: XConfig,
  host: RollHost<P>,
  log: Logger,
  lock: RollLock,
): Promise<{ path: string; close(): Promise<void> }> {
  const file = controlSocketPath(config);
  await removeStaleSocket(file);
  const server = net.createServer((sock) => {
    sock.on('error', () => {}); // the client went away: the roll goes on, its output is in up's log
    const send = (r: Reply): void => void (sock.writable && sock.write(JSON.stringify(r) + '\n'));
    const lines = createInterface({ input: sock });
    lines.on('error', () => {});
    lines.once('line', () => {
      if (lock.busy) {
        send({ error: 'a roll (or an `up --watch` restart) is already running on this cluster', code: 'ROLL_FAILED' });
        sock.end();
        return;
      }
      void lock
        .run(() => runRoll(config, host, log, { onEvent: (e) => send({ event: e }) }))
        .then(
          (done) => send({ done }),
          (e: unknown) => send({ error: (e as Error).message, code: isXError(e) ? e.code : 'INTERNAL' }),
        )
        .finally(() => sock.end());
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(file, () => resolve());
  });
  log.info({ socket: file }, 'rolling restarts: `xserver roll` talks to this process');
  // However up ends (process.exit after Ctrl-C included), the socket file goes with it.
  const unlink = (): void => fs.rmSync(file, { force: true });
  process.once('exit', unlink);
  return {
    path: file,
    close: () =>
      new Promise<void>((r) => {
        process.off('exit', unlink);
        server.close(() => r());
      }),
  };
}

/** Rolls the processes of `host` (those `only` picks), each step logged and passed to `onEvent`. */
export async function runRoll<P extends RollProcess>(
  config: XConfig,
  host: RollHost<P>,
  log: Logger,
  opts: { onEvent?: (e: RollEvent) => void; only?: (step: PlanStep) => boolean } = {},
): Promise<{ name: string; oldPid?: number; newPid?: number; ms: number }[]> {
  const store = createStore(config.redisUrl, config.cluster, { logger: log, opTimeoutMs: config.storeOpTimeoutMs });
  try {
    await store.ready(config.storeConnectTimeoutMs);
    const roll = new Roll(
      host,
      rollCluster(config, store, log),
      rollOptions(config, {
        onEvent: (e) => {
          log.info({ step: e.name, state: e.state, detail: e.detail }, `roll: ${e.name} ${e.state}`);
          opts.onEvent?.(e);
        },
        ...(opts.only ? { only: opts.only } : {}),
      }),
    );
    const r = await roll.run();
    return r.replaced.map((x) => ({ name: x.name, oldPid: x.old.pid, newPid: x.replacement.pid, ms: x.ms }));
  } finally {
    await store.close().catch(() => {});
  }
}

/** A socket file left by an up that died: nobody answers on it, so it goes. One that answers is an error. */
async function removeStaleSocket(file: string): Promise<void> {
  if (!fs.existsSync(file)) return;
  const alive = await new Promise<boolean>((resolve) => {
    const c = net.connect(file);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (alive) throw new XError('CONFIG', `another \`xserver up\` listens on ${file} (the same cluster name?); stop it or set roll.controlSocket`);
  fs.rmSync(file, { force: true });
}

/** `xserver roll`'s side: asks up to roll, calls `onEvent` per step change; resolves with what was replaced. */
export function requestRoll(
  config: XConfig,
  onEvent: (e: RollEvent) => void,
): Promise<{ name: string; oldPid?: number; newPid?: number; ms: number }[]> {
  const file = controlSocketPath(config);
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      fn();
    };
    const sock = net.connect(file);
    sock.once('error', (e: NodeJS.ErrnoException) =>
      finish(() =>
        reject(
          e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
            ? new XError(
                'NO_TARGET',
                `no \`xserver up\` of cluster "${config.cluster}" runs on this host (nothing listens on ${file}). ` +
                  '`xserver roll` replaces the processes of an `xserver up`; under Kubernetes a rolling update does the same (docs/operations.md, "Rolling upgrades").',
              )
            : e,
        ),
      ),
    );
    sock.once('connect', () => {
      sock.write(JSON.stringify({ roll: true }) + '\n');
      const lines = createInterface({ input: sock });
      lines.on('error', () => {}); // the socket's own error handler above says what happened
      lines.on('line', (line) => {
        let r: Reply;
        try {
          r = JSON.parse(line) as Reply;
        } catch {
          return finish(() => reject(new XError('INTERNAL', `${file} answered something that is not a roll reply: ${line.slice(0, 80)}`)));
        }
        if ('event' in r) onEvent(r.event);
        else if ('done' in r) finish(() => resolve(r.done));
        else finish(() => reject(new XError(r.code === 'ROLL_FAILED' ? 'ROLL_FAILED' : 'INTERNAL', r.error)));
      });
    });
    sock.once('close', () =>
      finish(() => reject(new XError('ROLL_FAILED', `\`xserver up\` closed ${file} before the roll finished; see its output`))),
    );
  });
}
