/**
 * Contracts: a command declared once, in a module both the service and the client import, typing
 * both ends (docs/protocol.md, "Contracts"). A contract names the service type a client addresses,
 * the command number the service sees, and the codecs of the request (or pushed message) and of the
 * response. The numeric API stays for the seed's table; these overloads sit on top of it.
 *
 *   export const GetRoles = command({ type: 4, cmd: 1, name: 'lobby.getRoles', request: jsonCodec<Record<string, never>>(), response: jsonCodec<Role[]>() });
 *   node.handleClient(GetRoles, async (req, ctx) => roles(ctx.account));     // service
 *   const roles = await client.request(GetRoles, {});                          // client: Role[]
 *
 * Browser-safe: JSON codecs only here; a protobuf codec comes from the server package (`proto()`).
 */
import { parseJson, toBytes } from './bytes.js';

/**
 * Encodes and decodes one message type; `In` is what encode() takes (a protobuf init shape may be
 * looser than the decoded message). decode() throws a ContractError on bytes that are not one.
 */
export interface Codec<T, In = T> {
  /** "json", "proto:<type name>", ...: part of the contract hash. */
  readonly kind: string;
  encode(value: In): Uint8Array;
  decode(bytes: Uint8Array): T;
}

/** A body that does not decode with the contract's codec. */
export class ContractError extends Error {
  readonly code = 'BAD_PAYLOAD';
  constructor(message: string) {
    super(message);
    this.name = 'ContractError';
  }
}

/**
 * JSON with a TypeScript type. The type is the caller's word for what the bytes hold: decode()
 * checks only that they are JSON (validate with your own guard where the sender is not trusted).
 */
export function jsonCodec<T>(): Codec<T> {
  return {
    kind: 'json',
    encode: (value) => toBytes(JSON.stringify(value) ?? 'null'),
    decode: (bytes) => {
      try {
        return parseJson(bytes) as T;
      } catch (e) {
        throw new ContractError(`body is not JSON: ${(e as Error).message}`);
      }
    },
  };
}

/** No body at all (a ping, a "done"). */
export const empty: Codec<void> = {
  kind: 'empty',
  encode: () => new Uint8Array(0),
  decode: () => undefined,
};

export interface Command<Req, Res> {
  /** The service type a client's message goes to (client command = type * cmdOffset + cmd). */
  readonly type: number;
  /** The command number the service sees (below the gateway's cmdOffset for client commands). */
  readonly cmd: number;
  readonly name: string;
  /** The request, or for a one-way command (and a push to clients) the message. */
  readonly request: Codec<Req>;
  /** The response codec; undefined for one-way commands. */
  readonly response: Codec<Res> | undefined;
}

/** A command with a response: what request() takes. */
export interface RequestCommand<Req, Res> extends Command<Req, Res> {
  readonly response: Codec<Res>;
}

/** A one-way command, or a message a service pushes to clients: what send() and on() take. */
export interface MessageCommand<M> extends Command<M, never> {
  readonly response: undefined;
}

/** A command with a response. */
export function command<Req, Res>(def: {
  type: number;
  cmd: number;
  name?: string;
  request: Codec<Req>;
  response: Codec<Res>;
}): RequestCommand<Req, Res>;
/** A one-way command (or a message a service pushes to clients). */
export function command<Req>(def: { type: number; cmd: number; name?: string; request: Codec<Req> }): MessageCommand<Req>;
export function command<Req, Res>(def: { type: number; cmd: number; name?: string; request: Codec<Req>; response?: Codec<Res> }): Command<Req, Res> {
  if (!Number.isInteger(def.type) || def.type < 0 || !Number.isInteger(def.cmd) || def.cmd < 0) {
    throw new RangeError(`command(): type and cmd must be non-negative integers, got ${def.type}/${def.cmd}`);
  }
  return Object.freeze({ type: def.type, cmd: def.cmd, name: def.name ?? `${def.type}.${def.cmd}`, request: def.request, response: def.response });
}

/** True when `x` is a contract (the overloads that take one tell it from a command number this way). */
export function isCommand(x: unknown): x is Command<unknown, unknown> {
  return typeof x === 'object' && x !== null && 'request' in x && 'cmd' in x && 'type' in x;
}
