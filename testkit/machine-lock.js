// @ts-check
/**
 * The machine-wide lock that runs process-cluster test files one at a time: their timings need
 * the machine's cores, and several engineers' test runs share them. A file in the temp dir holds
 * the owner's pid and token; a lock whose owner is dead is broken.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sleep } from './wait.js';

/** The file name is shared with every checkout on the machine; do not change it. */
export const LOCK_FILE = path.join(os.tmpdir(), 'xserver-cluster-tests.lock');
/** How often a waiter looks at the lock again. */
const LOCK_POLL_MS = 100;

/** @param {number} pid */
function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return /** @type {NodeJS.ErrnoException} */ (err).code === 'EPERM';
  }
}

/**
 * Takes the lock; returns how long it waited, in ms.
 * @param {string} token identifies this holder (release checks it)
 * @param {number} timeoutMs
 * @param {string} [file] the lock file (another one only in the kit's own tests)
 */
export async function acquireMachineLock(token, timeoutMs, file = LOCK_FILE) {
  const t0 = Date.now();
  for (;;) {
    try {
      fs.writeFileSync(file, JSON.stringify({ pid: process.pid, token }), { flag: 'wx' });
      return Date.now() - t0;
    } catch (err) {
      if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'EEXIST') throw err;
    }
    try {
      const held = JSON.parse(fs.readFileSync(file, 'utf8'));
      if (!pidAlive(held.pid)) fs.rmSync(file, { force: true });
    } catch {
      // Torn or vanished between our checks: try again.
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`test lock ${file} still held after ${timeoutMs} ms`);
    await sleep(LOCK_POLL_MS);
  }
}

/**
 * Releases the lock if `token` holds it.
 * @param {string} token
 * @param {string} [file]
 */
export function releaseMachineLock(token, file = LOCK_FILE) {
  try {
    const held = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (held.token === token) fs.rmSync(file, { force: true });
  } catch {
    // not ours, or gone
  }
}
