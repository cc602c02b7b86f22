// @ts-check
import net from 'node:net';
import { waitFor } from './wait.js';

/** Asks the kernel for a free loopback TCP port (for a server that cannot listen on port 0). */
export function freePort() {
  return /** @type {Promise<number>} */ (
    new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const { port } = /** @type {net.AddressInfo} */ (srv.address());
        srv.close(() => resolve(port));
      });
    })
  );
}

/**
 * Whether host:port accepts a TCP connection right now.
 * @param {string} host
 * @param {number} port
 * @returns {Promise<boolean>}
 */
export function acceptsConnections(host, port) {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Re-try interval of waitForPort: a refused connect costs next to nothing. */
const PORT_POLL_MS = 20;

/**
 * Resolves once host:port accepts a TCP connection (for servers that do not say they listen).
 * @param {string} host
 * @param {number} port
 * @param {number} timeoutMs
 */
export async function waitForPort(host, port, timeoutMs) {
  await waitFor(() => acceptsConnections(host, port), { timeoutMs, what: `${host}:${port} accepting connections`, pollMs: PORT_POLL_MS });
}
