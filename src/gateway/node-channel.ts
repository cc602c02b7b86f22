/**
 * What the gateway's parts use of their cluster node: the framework's system channel (relay
 * commands in and out) and the member list, taken from the node's runtime (runtimeOf). Auth and
 * routing reach the node only through this type, so the gateway can hand them another object with
 * these members without touching them.
 */
import type { NodeRuntime } from '../node/internal.js';

export type NodeChannel = Pick<
  NodeRuntime,
  'id' | 'handleSystem' | 'sendSystem' | 'requestSystem' | 'has' | 'get' | 'one' | 'list' | 'isLinked' | 'routingDecision' | 'routed'
>;
