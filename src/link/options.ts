/** What a link is: who is at the other end, and the settings every link of a process shares. */
import type { Logger } from 'pino';

export interface LinkIdentity {
  type: number;
  id: string;
}

export interface LinkOptions {
  cluster: string;
  secret: string;
  maxFrame: number;
  handshakeTimeoutMs: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  maxOutboundBytes: number;
  logger: Logger;
}
