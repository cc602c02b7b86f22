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
 * The type is invisible at run time, so it is not in the contract hash; name a schema version
 * (`jsonCodec<Role[]>('roles@2')`) and bump it when the shape changes to make the hash change.
 */
export function jsonCodec<T>(schema?: string): Codec<T> {
  if (schema !== undefined && (schema === '' || /[|\n]/.test(schema))) {
    throw new RangeError(`jsonCodec(): the schema name must be non-empty, without "|" or newlines, got ${JSON.stringify(schema)}`);
  }
  return {
    kind: schema === undefined ? 'json' : `json:${schema}`,
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
  /**
   * A sample request (or message), shown by the login playground as the body to start from. Not
   * part of the contract hash. Only JSON codecs publish it (docs/protocol.md, "Contracts").
   */
  readonly example?: Req;
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
  example?: Req;
}): RequestCommand<Req, Res>;
/** A one-way command (or a message a service pushes to clients). */
export function command<Req>(def: { type: number; cmd: number; name?: string; request: Codec<Req>; example?: Req }): MessageCommand<Req>;
export function command<Req, Res>(def: {
  type: number;
  cmd: number;
  name?: string;
  request: Codec<Req>;
  response?: Codec<Res>;
  example?: Req;
}): Command<Req, Res> {
  if (!Number.isInteger(def.type) || def.type < 0 || !Number.isInteger(def.cmd) || def.cmd < 0) {
    throw new RangeError(`command(): type and cmd must be non-negative integers, got ${def.type}/${def.cmd}`);
  }
  const name = def.name ?? `${def.type}.${def.cmd}`;
  // Encoded once here, so an example the codec cannot take fails where it is declared.
  if (def.example !== undefined) {
    try {
      def.request.encode(def.example);
    } catch (e) {
      throw new TypeError(`command(): the example of ${name} does not encode with its request codec: ${(e as Error).message}`);
    }
  }
  return Object.freeze({
    type: def.type,
    cmd: def.cmd,
    name,
    request: def.request,
    response: def.response,
    ...(def.example === undefined ? {} : { example: def.example }),
  });
}

/** True when `x` is a contract (the overloads that take one tell it from a command number this way). */
export function isCommand(x: unknown): x is Command<unknown, unknown> {
  return typeof x === 'object' && x !== null && 'request' in x && 'cmd' in x && 'type' in x;
}

// ================================================================ contract hash

/**
 * The canonical line of one contract in the hash: type, cmd, name, kind (a request with a
 * response, or a one-way message) and the codec kinds. Everything a client and a service must
 * agree on, nothing else (handlers, order of declaration).
 */
function canonicalLine(c: Command<unknown, unknown>): string {
  const kind = c.response ? 'request' : 'message';
  return [c.type, c.cmd, c.name, kind, c.request.kind, c.response ? c.response.kind : '-'].join('|');
}

const FNV64_OFFSET = 0xcbf29ce484222325n;
const FNV64_PRIME = 0x100000001b3n;
const MASK64 = 0xffffffffffffffffn;

/** FNV-1a, 64 bits, over the UTF-8 bytes of `s`: 16 lowercase hex digits. */
export function fnv1a64(s: string): string {
  let h = FNV64_OFFSET;
  for (const b of new TextEncoder().encode(s)) {
    h ^= BigInt(b);
    h = (h * FNV64_PRIME) & MASK64;
  }
  return h.toString(16).padStart(16, '0');
}

/**
 * The hash of a set of contracts (docs/protocol.md, "Contract hash"): FNV-1a 64 over the sorted
 * canonical lines, so the order of declaration does not matter; a contract listed twice counts
 * once. With `type`, only the contracts of that service type count: that is what a service of the
 * type registers and what the client sends for it. An empty set hashes to "" (nothing to check).
 */
export function contractHash(contracts: Iterable<Command<unknown, unknown>>, type?: number): string {
  const lines = new Set<string>();
  for (const c of contracts) {
    if (!isCommand(c)) throw new TypeError('contractHash(): every entry must be a contract made by command()');
    if (type === undefined || c.type === type) lines.add(canonicalLine(c));
  }
  if (lines.size === 0) return '';
  return fnv1a64(['xserver-contracts/1', ...[...lines].sort()].join('\n'));
}

/** Per service type, the hash of that type's contracts: what the SDK sends in AUTH. */
export function contractHashes(contracts: Iterable<Command<unknown, unknown>>): Record<string, string> {
  const list = [...contracts];
  const out: Record<string, string> = {};
  for (const t of [...new Set(list.map((c) => c.type))].sort((a, b) => a - b)) out[String(t)] = contractHash(list, t);
  return out;
}

/**
 * A module's contracts as one list (what the service passes to `node.useContracts()` and the
 * client to `new XClient({ contracts })`). Accepts contracts and objects of them, e.g. the
 * namespace of a contracts module: `contractSet(Contracts)` after `import * as Contracts`.
 */
export function contractSet(...items: (Command<unknown, unknown> | Record<string, unknown>)[]): readonly Command<unknown, unknown>[] {
  const out: Command<unknown, unknown>[] = [];
  for (const item of items) {
    if (isCommand(item)) out.push(item);
    else for (const v of Object.values(item)) if (isCommand(v)) out.push(v);
  }
  return Object.freeze(out);
}
