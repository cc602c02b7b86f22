// Loopback helpers of the peer plug-ins; free ports and port waits are the test kit's.
import { freePort, waitForPort as waitForPortWithin } from '../../testkit/index.js';

export { freePort };

export const LOOPBACK = '127.0.0.1';

/** How long a peer server may take to accept connections after it was started. */
const PORT_WAIT_MS = 10_000;

/** Resolves once host:port accepts a TCP connection (for servers that do not report 'listening'). */
export function waitForPort(host, port, timeoutMs = PORT_WAIT_MS) {
  return waitForPortWithin(host, port, timeoutMs);
}
