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
