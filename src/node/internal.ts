/**
 * The framework's way behind a ClusterNode: roles (gateway, login, mgr tooling, the CLI and the
 * admin routes) take the node's runtime here to use the system channel, links and JSON views.
 * src/index.ts does not export this module, so services importing `xserver` cannot.
 */
import { XError } from '../errors.js';
import type { ClusterNode } from './node.js';
import { runtimeBehind, type NodeRuntime } from './runtime.js';

export type { NodeRuntime, SystemFrameHandler } from './runtime.js';

export function runtimeOf(node: ClusterNode): NodeRuntime {
  const rt = runtimeBehind(node);
  if (!rt) throw new XError('CONFIG', 'not a ClusterNode: it has no runtime');
  return rt;
}
