/** What a link is: who is at the other end, and the settings every link of a process shares. */
import type { Logger } from 'pino';
import type { TlsMaterial } from '../tls.js';
import type { NodeIdentity } from './identity.js';

export interface LinkIdentity {
  type: number;
  id: string;
  /** The remote's identity key, verified in the handshake (absent for our own identity). */
  publicKey?: Uint8Array;
}

export interface LinkOptions {
  cluster: string;
  secret: string;
  maxFrame: number;
  handshakeTimeoutMs: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  maxOutboundBytes: number;
  /** listen(2) backlog of the intranet listeners (link.listenBacklog; Node's 511 when absent). */
  listenBacklog?: number;
  logger: Logger;
  /** This process's identity key pair (one per role instance and start). */
  identity: NodeIdentity;
  /** With link.tls: the certificate, key and cluster CA of mutual TLS under every link. */
  tls?: TlsMaterial;
}
