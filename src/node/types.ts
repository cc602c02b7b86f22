/** Public types of the node API. */
import type { DescMessage } from '@bufbuild/protobuf';
import type { XError } from '../errors.js';
import type { Payload } from './payload.js';
import type { Peer } from './peer.js';
import type { SelectOptions } from './select.js';

/** Payload and RequestOptions live with toBytes(); Peer needs them without this file's Peer import. */
export type { Payload, RequestOptions } from './payload.js';

export interface NodeOptions {
  /** Node type (>= 2; 0 and 1 are reserved for clients and the mgr). */
  type: number;
  /** Human name of the type, e.g. "lobby". */
  name?: string;
  version?: string;
  /** Extra ports to advertise after the intranet port (ports[1..]), e.g. a gateway's client ports. */
  extraPorts?: number[];
  overload?: number[];
}

/** Options of sendOne(): the selection options, nothing more yet. */
export type SendOptions = SelectOptions;

export type LeftReason = 'graceful' | 'lost' | 'timeout';

export interface MessageContext {
  cmd: number;
  /** Sender id (this node's own id for local delivery). */
  fromId: string;
  fromType: number;
  /** Sender handle; undefined if the sender is not (yet) in this node's membership. */
  from: Peer | undefined;
  /** True when the sender awaits a reply: return a Payload from the handler or call reply(). */
  isRequest: boolean;
  reply(payload?: Payload): void;
  replyError(err: XError): void;
}

export type HandlerResult = void | Payload | Promise<void | Payload>;
export type RawHandler = (body: Uint8Array, ctx: MessageContext) => HandlerResult;
export type TypedHandler<D extends DescMessage> = (msg: import('@bufbuild/protobuf').MessageShape<D>, ctx: MessageContext) => HandlerResult;

export interface NodeEvents {
  joined: [peer: Peer];
  left: [peer: Peer, reason: LeftReason];
  updated: [peer: Peer];
  'mgr-connected': [mgr: { instanceId: string; epoch: number; addr: string; port: number }];
  'mgr-lost': [reason: string];
  /**
   * A gateway says this account's client arrived and this node is allocated to it. Again, with the
   * same generation and the new gateway, when the session moved off a draining gateway (no
   * 'account-lost' comes for that move).
   */
  'account-arrived': [account: string, gatewayId: string, generation: number];
  /** The account's client is gone for good (the seed's lose-account callback). */
  'account-lost': [account: string];
  /** The account was handed off to node `nodeId` (this node drains); it is not lost, only no longer here. */
  'account-moved': [account: string, nodeId: string];
  /** An operator asked this member to drain (`xserver drain`); `xserver` processes drain as on SIGTERM. */
  'drain-requested': [];
}
