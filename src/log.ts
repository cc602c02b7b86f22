/**
 * Process logger: pino, JSON lines by default, human-readable via pino-pretty when asked.
 *
 * Both outputs write synchronously in-process. pino's worker-thread transports buffer lines in
 * another thread, and a child process that exits (or is killed by a test) loses its last lines,
 * which are exactly the ones explaining why it stopped.
 */
import { hostname } from 'node:os';
import pino, { type DestinationStream, type Logger as PinoLogger } from 'pino';
import pretty from 'pino-pretty';

export type Logger = PinoLogger;

export interface LoggerOptions {
  /** pino level: trace, debug, info, warn, error, fatal, silent. */
  level: string;
  /** auto = pretty when stdout is a terminal. */
  pretty: 'auto' | 'true' | 'false';
  /** Logged as `name`, e.g. the role ("mgr", "gateway"). */
  name: string;
  /** Extra fields on every line, e.g. { cluster, nodeId }. */
  base?: object;
  /** Where lines go; stdout when absent. Tests pass a stream to capture output. */
  destination?: DestinationStream;
}

export function createLogger(opts: LoggerOptions): Logger {
  const isTTY = process.stdout.isTTY === true;
  const usePretty = opts.pretty === 'true' || (opts.pretty === 'auto' && isTTY);
  const options = {
    level: opts.level,
    name: opts.name,
    base: { pid: process.pid, hostname: hostname(), ...opts.base },
  };
  const stream: DestinationStream = usePretty
    ? pretty({
        sync: true,
        colorize: isTTY && opts.destination === undefined,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname',
        ...(opts.destination ? { destination: opts.destination } : {}),
      })
    : (opts.destination ?? pino.destination({ dest: 1, sync: true }));
  return pino(options, stream);
}

/** A logger that drops everything; for tests and library use without logging. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * At most one line per key and interval: for warnings an outsider can trigger at will (refused
 * connections), so a flood costs a line per second, not a line per attempt. The next line that
 * passes says how many were held back.
 */
export class LogThrottle {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly intervalMs: number,
    /** Distinct keys kept; beyond it the oldest is forgotten (keys are error codes, a handful). */
    private readonly maxKeys = 64,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Calls `log(suppressed)` unless `key` was logged within the interval. */
  run(key: string, log: (suppressed: number) => void): void {
    const t = this.now();
    const e = this.last.get(key);
    if (e && t - e.at < this.intervalMs) {
      e.suppressed++;
      return;
    }
    const suppressed = e?.suppressed ?? 0;
    this.last.delete(key);
    this.last.set(key, { at: t, suppressed: 0 });
    if (this.last.size > this.maxKeys) this.last.delete(this.last.keys().next().value!);
    log(suppressed);
  }
}
