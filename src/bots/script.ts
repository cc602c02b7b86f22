/**
 * What a bot script is (`xserver bots --script <module>`, docs/bots.md), and the built-in one.
 *
 * A script module exports one of:
 *
 *   export default async function (client, ctx) { ... }   // called every tick: --rate times a second
 *   export async function session(client, ctx) {          // called once per connected bot
 *     while (await ctx.next()) { ... }                    //   ctx.next() paces it at --rate
 *   }
 *
 * `client` is the SDK's XClient, already connected. Requests made with `ctx.request()` are timed
 * (the report's latency) and counted; `ctx.send()` counts a one-way message. A tick that is still
 * running when the next one is due makes that one skipped (counted), so a bot never has more than
 * one tick in flight.
 */
import type { XClient } from '../client/client.js';
import { ClientError } from '../client/errors.js';
import type { LoginResult } from '../client/login.js';

export interface BotContext {
  /** The bot's number, 0 .. clients - 1, across all workers. */
  readonly index: number;
  /** Its account name (`<account prefix><index>`). */
  readonly account: string;
  /** What the login service answered for this connection. */
  readonly login: LoginResult;
  /** Ticks of this bot so far (per-tick scripts: the current one, from 0). */
  readonly tick: number;
  /** `--param key=value` flags. */
  readonly params: Readonly<Record<string, string>>;
  /** Aborted when the run stops; pass it on to waits of your own. */
  readonly signal: AbortSignal;
  /** A timed request through the client: counted as a message, its round trip goes into the latency. */
  request(cmd: number, data?: Uint8Array | string, opts?: { timeoutMs?: number }): Promise<Uint8Array>;
  /** A one-way message through the client, counted. */
  send(cmd: number, data?: Uint8Array | string): void;
  /** Resolves at this bot's next tick (true), or false once the run stops. For session scripts. */
  next(): Promise<boolean>;
  /** Adds a latency the script measured itself (ms). */
  record(ms: number): void;
  /** Counts an error under `code` (shown as script:<code>) without throwing. */
  fail(code: string): void;
}

export type TickScript = (client: XClient, ctx: BotContext) => unknown;

/** A loaded script: how the worker calls it. */
export type Script = { kind: 'tick'; run: TickScript } | { kind: 'session'; run: TickScript };

/** Options of the built-in script: a request to `cmd(type, sub)` with `bytes` bytes, answered by the same bytes. */
export interface EchoOptions {
  type: number;
  sub: number;
  bytes: number;
}

/** The built-in script: one echo request per tick, and the reply must be the bytes sent. */
export function echoScript(opts: EchoOptions): Script {
  const body = new Uint8Array(opts.bytes);
  for (let i = 0; i < body.length; i++) body[i] = (i * 31 + 7) & 0xff;
  return {
    kind: 'tick',
    run: async (client, ctx) => {
      const reply = await ctx.request(client.cmd(opts.type, opts.sub), body);
      if (reply.length !== body.length) ctx.fail('BAD_REPLY');
    },
  };
}

/** Loads a script module (a file path or a file: URL, resolved by the caller). */
export async function loadScript(url: string): Promise<Script> {
  const mod = (await import(url)) as { default?: unknown; session?: unknown };
  if (typeof mod.session === 'function') return { kind: 'session', run: mod.session as TickScript };
  if (typeof mod.default === 'function') return { kind: 'tick', run: mod.default as TickScript };
  throw new ClientError(
    'BAD_COMMAND',
    'a bot script must export a default function (client, ctx) called per tick, or a `session(client, ctx)` function',
  );
}
