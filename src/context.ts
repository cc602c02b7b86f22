/** What every role (mgr, node, gateway, login) is started with. */
import type { Logger } from 'pino';
import type { XConfig } from './config/schema.js';
import { createIdentity, type NodeIdentity } from './link/identity.js';
import { tlsMaterialFor } from './tls.js';
import type { LinkOptions } from './link/link.js';
import type { Metrics } from './metrics.js';
import type { ClusterStore } from './store/store.js';

export interface RoleContext {
  config: XConfig;
  store: ClusterStore;
  logger: Logger;
  metrics: Metrics;
}

/** The link settings of one role instance; each gets its own identity key pair unless one is passed. */
export function linkOptions(config: XConfig, logger: Logger, identity: NodeIdentity = createIdentity()): LinkOptions {
  const tls = config.link.tls ? tlsMaterialFor(config.tls, logger) : undefined;
  return {
    cluster: config.cluster,
    secret: config.secret,
    maxFrame: config.link.maxFrame,
    handshakeTimeoutMs: config.link.handshakeTimeoutMs,
    heartbeatIntervalMs: config.link.heartbeatIntervalMs,
    heartbeatTimeoutMs: config.link.heartbeatTimeoutMs,
    maxOutboundBytes: config.link.maxOutboundBytes,
    listenBacklog: config.link.listenBacklog,
    logger,
    identity,
    ...(tls ? { tls } : {}),
  };
}

export { NodeType } from './protocol/commands.js';
