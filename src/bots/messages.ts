/**
 * The messages between the bot pool (parent) and its worker processes, over the fork() IPC channel.
 * One definition for both sides.
 *
 *   parent                          worker
 *     init {options}        ──▶
 *                           ◀──     ready | fatal {message}
 *     target {clients}      ──▶     (grows to that many bots, logging in at its share of the ramp)
 *                           ◀──     stats {stats}        every bots.reportIntervalMs
 *     quiesce               ──▶     (no new ticks or logins; waits for the ticks in flight)
 *                           ◀──     quiesced {stats}     final counts, clients still connected
 *     close                 ──▶     (closes its clients)
 *                           ◀──     closed               then it exits
 *
 * A worker whose parent goes away (IPC disconnect) exits at once.
 */
import type { HistogramJson } from './histogram.js';
import type { EchoOptions } from './script.js';

export interface WorkerOptions {
  /** This worker's number and how many there are: its bots are index, index + workers, ... */
  worker: number;
  workers: number;
  loginUrl: string;
  accountPrefix: string;
  password: string;
  transport: 'ws' | 'tcp';
  /** Ticks per second per bot; 0 = idle bots (connected, no script calls). */
  rate: number;
  /** This worker's share of bots.rampPerSec and bots.maxPendingLogins. */
  rampPerSec: number;
  maxPendingLogins: number;
  /** file: URL of the script module; none = the built-in echo script with `echo`. */
  scriptUrl?: string;
  echo: EchoOptions;
  params: Record<string, string>;
  loginTimeoutMs: number;
  requestTimeoutMs: number;
  reportIntervalMs: number;
  stopTimeoutMs: number;
}

/** A worker's running totals since it started (the parent keeps the latest of each worker). */
export interface WorkerStats {
  /** Bots whose client is connected now. */
  connected: number;
  /** Wall-clock ms (Date.now()) when its first bot got connected; null before. */
  firstOpenAt: number | null;
  /** Bots this worker has (its share of the target). */
  bots: number;
  loginsOk: number;
  loginsFailed: number;
  /** Messages sent: ctx.request() and ctx.send() calls. */
  messages: number;
  /** Requests answered. */
  ok: number;
  ticks: number;
  /** Ticks not run because the bot's previous one was still running. */
  skipped: number;
  /** `stage:CODE` -> count, stage being login, request, send, script or session (at most 100 keys). */
  errors: Record<string, number>;
  /** Round trips of ctx.request() (and ctx.record()). */
  latency: HistogramJson;
  /** Login + connect (HTTP login through WELCOME). */
  login: HistogramJson;
}

export type ToWorker = { t: 'init'; options: WorkerOptions } | { t: 'target'; clients: number } | { t: 'quiesce' } | { t: 'close' };

export type FromWorker =
  { t: 'ready' } | { t: 'fatal'; message: string } | { t: 'stats'; stats: WorkerStats } | { t: 'quiesced'; stats: WorkerStats } | { t: 'closed' };
