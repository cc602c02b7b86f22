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

/** Tries of freePortPair() before it gives up. */
const PAIR_TRIES = 20;

/**
 * A free loopback port N whose neighbour N + 1 is free too (for `xserver up --admin-port N`, whose
 * second mgr listens on N + 1). Both are checked by binding them; another process may still take
 * either after they are released, as with freePort().
 */
export async function freePortPair() {
  for (let i = 0; i < PAIR_TRIES; i++) {
    const port = await freePort();
    if (port < 65535 && (await canListen(port + 1))) return port;
  }
  throw new Error(`no free pair of neighbouring loopback ports in ${PAIR_TRIES} tries`);
}

/** @param {number} port */
function canListen(port) {
  return /** @type {Promise<boolean>} */ (
    new Promise((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
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
