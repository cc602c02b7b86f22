/**
 * A service module for `xserver node --entry <module>`: its default export (or `service` export)
 * says which type it is and what to do with the node once it runs.
 */
import type { RoleContext } from './context.js';
import type { ClusterNode } from './node/node.js';
import type { Command } from './protocol/contract.js';

export interface ServiceDefinition {
  /** Type number (>= 4) or a name from the `types` config map. */
  type: number | string;
  /** Defaults to the type's name in the `types` map. */
  name?: string;
  version?: string;
  /** The contracts it serves (see ClusterNode.useContracts); declared before the node starts. */
  contracts?: Iterable<Command<unknown, unknown>>;
  /** Register handlers and event listeners here; the node starts right after. */
  start(node: ClusterNode, ctx: RoleContext): void | Promise<void>;
  /** Called on shutdown, before the node leaves the cluster. */
  stop?(node: ClusterNode): void | Promise<void>;
}

/** Identity function that gives service modules type checking. */
export function defineService(def: ServiceDefinition): ServiceDefinition {
  return def;
}
