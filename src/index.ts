/** Public API of xserver (server side). The client SDK is `xserver/client`. */
export { ClusterNode, type NodeOptions, type SendOptions } from './node/node.js';
export { toBytes } from './node/payload.js';
export type { ClientContext, ClientHandler, RelayHandler } from './node/relay.js';
export { Gateway } from './gateway/gateway.js';
export { LoginServer } from './login/login.js';
export { Peer, type IpKind } from './node/peer.js';
export type { Payload, RequestOptions, MessageContext, LeftReason, NodeEvents, RawHandler, TypedHandler } from './node/types.js';
export type { Strategy, SelectOptions } from './node/select.js';
export { MgrServer } from './mgr/mgr.js';
export { defineService, type ServiceDefinition } from './service.js';
export { startDevCluster, type DevCluster, type DevClusterOptions } from './dev.js';
/** What a `xserver bots` script gets besides the client (docs/bots.md). */
export type { BotContext } from './bots/script.js';
export {
  createRoleContext,
  startRole,
  stopInOrder,
  drainRoles,
  loadService,
  resolveType,
  type DrainState,
  type Role,
  type RoleContextOptions,
  type RoleKind,
  type StartRoleOptions,
  type StopStep,
} from './roles.js';
export { XError, ErrorCode, isXError, type ErrorCodeName } from './errors.js';
export {
  createStore,
  MemoryStore,
  RedisStore,
  type ClusterStore,
  type StoreLifecycle,
  type LeaseStore,
  type LeaseWatcher,
  type MirrorStore,
  type AccountStore,
  type SessionStore,
  type KvStore,
} from './store/index.js';
export { loadConfig, resolveConfig } from './config/load.js';
export { defaultConfig, SETTINGS, type XConfig } from './config/schema.js';
export { createLogger, silentLogger, type Logger } from './log.js';
export { Metrics } from './metrics.js';
export { NodeType, type RoleContext } from './context.js';
export { encode as proto, decode as unproto, protoCodec } from './wire/codec.js';
// Contracts: one declaration types the service and the client (the SDK exports the same).
export * from './protocol/contract.js';
