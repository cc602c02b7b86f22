/**
 * ClusterNode: the node API every service gets (the seed's INode, groups 1-5, plus
 * request/response, typed handlers, membership events and selection strategies).
 *
 * A thin facade: the membership, the links, the request plumbing and the framework's system
 * channel live in a NodeRuntime (runtime.ts) held in an ES private field. User code cannot reach
 * the system channel (it could forge ACCOUNT_LOST or relay frames); framework roles get the
 * runtime with runtimeOf() from internal.ts, which the package does not export.
 */
import { EventEmitter } from 'node:events';
import type { DescMessage } from '@bufbuild/protobuf';
import type { Logger } from 'pino';
import type { RoleContext } from '../context.js';
import { XError } from '../errors.js';
import { decode } from '../wire/codec.js';
import type { IpKind, Peer } from './peer.js';
import type { ClientContext, ClientHandler, RelayHandler } from './relay.js';
import { bindFacade, NodeRuntime } from './runtime.js';
import type { SelectOptions } from './select.js';
import type { MessageContext, NodeEvents, NodeOptions, Payload, RawHandler, RequestOptions, SendOptions, TypedHandler } from './types.js';
import { isCommand, type Codec, type Command, type RequestCommand } from '../protocol/contract.js';
import type { AccountExporter, AccountImporter } from './handoff.js';

export type { NodeOptions, SendOptions } from './types.js';

export class ClusterNode extends EventEmitter<NodeEvents> {
  readonly id: string;
  readonly type: number;
  readonly name: string;
  readonly log: Logger;

  readonly #rt: NodeRuntime;

  constructor(ctx: RoleContext, opts: NodeOptions) {
    super();
    this.#rt = new NodeRuntime(ctx, opts, this);
    bindFacade(this, this.#rt);
    this.id = this.#rt.id;
    this.type = this.#rt.type;
    this.name = this.#rt.name;
    this.log = this.#rt.log;
  }

  /** A throwing event listener is the service's bug: log it, never let it break links or discovery. */
  override emit<K extends keyof NodeEvents>(event: K, ...args: NodeEvents[K]): boolean {
    try {
      return (super.emit as (e: string, ...a: unknown[]) => boolean).call(this, event, ...args);
    } catch (e) {
      this.log.error({ err: e, event }, 'an event listener threw');
      return true;
    }
  }

  // ================================================================ lifecycle

  /** Listens for peers and starts discovery. Use `ready()` to wait for the first registration. */
  start(): Promise<void> {
    return this.#rt.start();
  }

  /** Resolves once registered with an mgr (rejects after `timeoutMs`). */
  ready(timeoutMs?: number): Promise<void> {
    return this.#rt.ready(timeoutMs);
  }

  /** Graceful stop: LEAVE first (peers learn at once), drain, then close links. */
  stop(): Promise<void> {
    return this.#rt.stop();
  }

  // ================================================================ group 1: own info

  get mgrConnected(): boolean {
    return this.#rt.mgrConnected;
  }

  ip(kind: IpKind = 'inner'): string {
    return this.#rt.ip(kind);
  }

  /** ports[0] is the intranet port; roles add theirs after it. */
  port(i = 0): number {
    return this.#rt.port(i);
  }

  ports(): number[] {
    return this.#rt.ports();
  }

  overload(i = 0): number {
    return this.#rt.overload(i);
  }

  getVersion(): string {
    return this.#rt.getVersion();
  }

  /** Sets overload[i]; propagated to all peers through the mgr (rate-limited). */
  setOverload(i: number, value: number): void {
    this.#rt.setOverload(i, value);
  }

  setVersion(version: string): void {
    this.#rt.setVersion(version);
  }

  /**
   * Declares the contracts this service serves (usually its whole contracts module:
   * `node.useContracts(contractSet(Contracts))`). The hash of those of this node's type travels in
   * its NodeInfo; a gateway refuses a client whose AUTH names another hash for the type with
   * CONTRACT_MISMATCH. A node that declares none is not checked. Those of its type are also listed
   * in its NodeInfo for the login playground (bounded: node.maxPublishedContracts,
   * node.maxContractInfoBytes; a warning names any left out). Call before start().
   */
  useContracts(contracts: Iterable<Command<unknown, unknown>>): this {
    this.#rt.useContracts(contracts);
    return this;
  }

  // ================================================================ group 2: membership

  /** One node of `type`, by the selection strategy (random by default); undefined if none. */
  one(type: number, opts?: SelectOptions): Peer | undefined {
    return this.#rt.one(type, opts);
  }

  list(type: number): Peer[] {
    return this.#rt.list(type);
  }

  all(): Peer[] {
    return this.#rt.all();
  }

  get(id: string): Peer | undefined {
    return this.#rt.get(id);
  }

  has(id: string): boolean {
    return this.#rt.has(id);
  }

  /** Logs the members of one type (the seed's PrintNodeInfo). */
  printNodes(type: number, log: Logger = this.log): void {
    this.#rt.printNodes(type, log);
  }

  /** Logs every member (the seed's PrintAllNodeInfo). */
  printAllNodes(log: Logger = this.log): void {
    this.#rt.printAllNodes(log);
  }

  // ================================================================ group 3: sending

  /** Sends to one node of `type` chosen by the strategy. False at once when there is none. */
  sendOne(type: number, cmd: number, payload: Payload, opts?: SendOptions): boolean {
    return this.#rt.sendOne(type, cmd, payload, opts);
  }

  /** Sends to every node of `type`; returns how many were sent to. */
  sendByType(type: number, cmd: number, payload: Payload, excludeSelf = true): number {
    return this.#rt.sendByType(type, cmd, payload, excludeSelf);
  }

  /** Sends to one node by id. False at once when it is not listed, or its buffer is full. */
  sendById(id: string, cmd: number, payload: Payload): boolean {
    return this.#rt.sendById(id, cmd, payload);
  }

  /** Sends to every member; returns how many were sent to. */
  sendAll(cmd: number, payload: Payload, excludeSelf = true): number {
    return this.#rt.sendAll(cmd, payload, excludeSelf);
  }

  /** Request/response with one node by id; rejects with a typed XError (TIMEOUT, NO_TARGET, NO_HANDLER, ...). */
  request(id: string, cmd: number, payload: Payload, opts?: RequestOptions): Promise<Uint8Array>;
  /** A contract's request to node `id`, typed and coded by the contract (uses its `cmd`). */
  request<Req, Res>(id: string, command: RequestCommand<Req, Res>, request: Req, opts?: RequestOptions): Promise<Res>;
  request(id: string, a: number | Command<unknown, unknown>, payload: unknown, opts: RequestOptions = {}): Promise<unknown> {
    if (isCommand(a)) return this.#rt.request(id, a.cmd, encodeWith(a, payload), opts).then((b) => decodeResponse(a, b));
    return this.#rt.request(id, a, payload as Payload, opts);
  }

  /**
   * Callback form of request(), for high request rates (no promise per request). `done` is always
   * called exactly once, never synchronously.
   */
  requestCb(id: string, cmd: number, payload: Payload, done: (err: XError | null, body: Uint8Array | null) => void, opts: RequestOptions = {}): void {
    this.#rt.requestCb(id, cmd, payload, done, opts);
  }

  /** Request to one node of `type` chosen by the strategy. */
  requestOne(type: number, cmd: number, payload: Payload, opts?: RequestOptions & SelectOptions): Promise<Uint8Array>;
  /** A contract's request to one node of the contract's type. */
  requestOne<Req, Res>(command: RequestCommand<Req, Res>, request: Req, opts?: RequestOptions & SelectOptions): Promise<Res>;
  requestOne(a: number | Command<unknown, unknown>, b: unknown, c?: unknown, d?: unknown): Promise<unknown> {
    if (isCommand(a)) {
      const opts = (c ?? {}) as RequestOptions & SelectOptions;
      return this.#rt.requestOne(a.type, a.cmd, encodeWith(a, b), opts).then((bytes) => decodeResponse(a, bytes));
    }
    return this.#rt.requestOne(a, b as number, c as Payload, (d ?? {}) as RequestOptions & SelectOptions);
  }

  // ================================================================ group 4: relay through gateways

  /** Links this node to every gateway (now and as they join), so clients' messages reach it. */
  enableRelay(v = true): void {
    this.#rt.enableRelay(v);
  }

  /** The seed's RegisterFuncOnRelayMsg: catch-all for client messages without a handleClient handler. */
  onRelay(fn: RelayHandler): void {
    this.#rt.onRelay(fn);
  }

  /** Handles client command `cmd` (as the node sees it: cmd % cmdOffset). Returning a Payload answers a client request. */
  handleClient(cmd: number, handler: ClientHandler): this;
  /**
   * Handles a contract's client command: the request decoded by its codec (a body that does not
   * decode is answered with BAD_REQUEST), the returned value encoded as the response.
   */
  handleClient<Req, Res>(command: Command<Req, Res>, handler: (request: Req, ctx: ClientContext) => Res | Promise<Res> | void): this;
  handleClient(a: number | Command<unknown, unknown>, handler: unknown): this {
    if (isCommand(a)) {
      this.#rt.handleClient(a.cmd, contractHandler(a, handler as (r: unknown, ctx: ClientContext) => unknown));
      return this;
    }
    this.#rt.handleClient(a, handler as ClientHandler);
    return this;
  }

  /** The seed's SendClientMsgByRelay: to the account's client through its gateway. */
  sendToClient(account: string, cmd: number, payload: Payload): boolean;
  /** A contract's message to the account's client (the client handles it with `on(command)`). */
  sendToClient<M>(account: string, command: Command<M, unknown>, message: M): boolean;
  sendToClient(account: string, a: number | Command<unknown, unknown>, payload: unknown): boolean {
    if (isCommand(a)) return this.#rt.sendToClient(account, a.cmd, encodeWith(a, payload));
    return this.#rt.sendToClient(account, a, payload as Payload);
  }

  /** To every client on every gateway; returns the number of gateways sent to. */
  broadcastToClients(cmd: number, payload: Payload): number;
  broadcastToClients<M>(command: Command<M, unknown>, message: M): number;
  broadcastToClients(a: number | Command<unknown, unknown>, payload: unknown): number {
    if (isCommand(a)) return this.#rt.broadcastToClients(a.cmd, encodeWith(a, payload));
    return this.#rt.broadcastToClients(a, payload as Payload);
  }

  /** node -> gateway -> one node of `type` (or all with broadcast), for nodes without a direct link. */
  relayToType(type: number, cmd: number, payload: Payload, opts?: { broadcast?: boolean; excludeSelf?: boolean }): boolean {
    return this.#rt.relayToType(type, cmd, payload, opts);
  }

  /** node -> gateway -> node by id. */
  relayToId(id: string, cmd: number, payload: Payload): boolean {
    return this.#rt.relayToId(id, cmd, payload);
  }

  /** The account's gateway, if this node knows it. */
  gatewayOf(account: string): string | undefined {
    return this.#rt.gatewayOf(account);
  }

  /** Accounts allocated to this node (arrived and not lost). */
  accounts(): string[] {
    return this.#rt.accounts();
  }

  // ================================================================ group 5: lost account

  /** The seed's RegisterFuncOnLoseAccount: called when an account's client is gone for good. */
  onAccountLost(fn: (account: string) => void): this {
    return this.on('account-lost', fn);
  }

  // ================================================================ account handoff (SPEC §12)

  /**
   * When this stateful node drains, each bound account's state is handed to the next node of the
   * type: `fn` returns it (undefined: none, the account starts fresh there). It runs once the
   * gateway holds the account's messages and none of its handlers is running; the state goes
   * through the store (node.handoffMaxBytes, node.handoffStateTtlMs). Without this hook a drained
   * node's accounts start fresh on their next node. The account then leaves with 'account-moved'.
   */
  onAccountExport(fn: (account: string) => Uint8Array | undefined | Promise<Uint8Array | undefined>): this;
  /** The export hook with the state coded by `codec` (e.g. a contract's codec); undefined: no state. */
  onAccountExport<S>(codec: Codec<S>, fn: (account: string) => S | undefined | Promise<S | undefined>): this;
  onAccountExport(a: unknown, b?: unknown): this {
    if (typeof a === 'function') {
      this.#rt.onAccountExport(a as AccountExporter);
      return this;
    }
    const codec = a as Codec<unknown>;
    const fn = b as (account: string) => unknown;
    this.#rt.onAccountExport(async (account) => {
      const v = await fn(account);
      return v === undefined ? undefined : codec.encode(v);
    });
    return this;
  }

  /** Receives a handed-off account's state before the account's first message reaches this node. */
  onAccountImport(fn: (account: string, state: Uint8Array) => void | Promise<void>): this;
  /** The import hook with the state decoded by `codec`. */
  onAccountImport<S>(codec: Codec<S>, fn: (account: string, state: S) => void | Promise<void>): this;
  onAccountImport(a: unknown, b?: unknown): this {
    if (typeof a === 'function') {
      this.#rt.onAccountImport(a as AccountImporter);
      return this;
    }
    const codec = a as Codec<unknown>;
    const fn = b as (account: string, state: unknown) => void | Promise<void>;
    this.#rt.onAccountImport((account, bytes) => fn(account, codec.decode(bytes)));
    return this;
  }

  // ================================================================ handlers

  /**
   * Handles `cmd`: raw bytes, or decoded with a protobuf schema. For a request, the returned
   * Payload (or a resolved promise of one) is the reply; a thrown error becomes a typed error reply.
   */
  handle(cmd: number, handler: RawHandler): this;
  handle<D extends DescMessage>(cmd: number, schema: D, handler: TypedHandler<D>): this;
  /** Handles a contract's node-to-node command, typed and coded by it. */
  handle<Req, Res>(command: Command<Req, Res>, handler: (request: Req, ctx: MessageContext) => Res | Promise<Res> | void): this;
  handle(a: number | Command<unknown, unknown>, b: unknown, c?: unknown): this {
    if (isCommand(a)) {
      this.#rt.handle(a.cmd, contractHandler(a, b as (r: unknown, ctx: MessageContext) => unknown) as RawHandler);
      return this;
    }
    const cmd = a;
    if (c === undefined) {
      this.#rt.handle(cmd, b as RawHandler);
    } else {
      const schema = b as DescMessage;
      const typed = c as TypedHandler<DescMessage>;
      this.#rt.handle(cmd, (body, ctx) => typed(decode(schema, body), ctx));
    }
    return this;
  }

  /** Removes the handler of `cmd`. */
  unhandle(cmd: number): this {
    this.#rt.unhandle(cmd);
    return this;
  }
}

function encodeWith(c: Command<unknown, unknown>, value: unknown): Uint8Array {
  return c.request.encode(value);
}

/**
 * A raw handler for a contract's typed one: the body decoded by the request codec, the returned
 * value (or what its promise resolves to) encoded by the response codec; nothing for one-way.
 */
function contractHandler<Ctx>(
  c: Command<unknown, unknown>,
  typed: (request: unknown, ctx: Ctx) => unknown,
): (body: Uint8Array, ctx: Ctx) => Payload | undefined | Promise<Payload | undefined> {
  const encode = (v: unknown): Payload | undefined => (c.response && v !== undefined ? c.response.encode(v) : undefined);
  return (body, ctx) => {
    const out = typed(decodeRequest(c, body), ctx);
    return out instanceof Promise ? out.then(encode) : encode(out);
  };
}

/** A request body under a contract, or BAD_REQUEST (answered to the sender) when it does not decode. */
function decodeRequest(c: Command<unknown, unknown>, body: Uint8Array): unknown {
  try {
    return c.request.decode(body);
  } catch (e) {
    throw new XError('BAD_REQUEST', `${c.name}: ${(e as Error).message}`);
  }
}

/** A response under a contract, or BAD_FRAME when it does not decode (a typed runtime error, not garbage). */
function decodeResponse(c: Command<unknown, unknown>, body: Uint8Array): unknown {
  if (!c.response) return undefined;
  try {
    return c.response.decode(body);
  } catch (e) {
    throw new XError('BAD_FRAME', `${c.name}: cannot decode the response: ${(e as Error).message}`);
  }
}
