// @ts-check
/**
 * Vitest hooks for a test file that runs real process clusters (test/cluster, test/e2e):
 *
 * - beforeAll: takes the machine-wide lock (one such file at a time on the machine);
 * - afterEach: destroys everything the test tracked — SIGKILL of its process groups, deletion of
 *   its Redis keys — whether the test passed or not;
 * - afterAll: destroys leftovers, releases the lock, runs the file's own final cleanup.
 *
 * `track(resource, onFailure)` registers a resource of the running test; `onFailure` runs if the
 * test fails (before the teardown), to dump the children's output.
 *
 * Imports vitest: for test files only (benchmarks import ./index.js, which does not).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, onTestFailed } from 'vitest';
import { acquireMachineLock, releaseMachineLock } from './machine-lock.js';

/** Several other files may hold the lock before ours: each runs for a minute or two. */
export const LOCK_WAIT_MS = 300_000;
/** SIGKILL of a few process groups and a key scan take well under this. */
export const TEARDOWN_MS = 30_000;

/**
 * @typedef {object} Destroyable
 * @property {() => Promise<void>} destroy
 */

/**
 * @param {{ label?: string, afterAll?: () => Promise<void> }} [opts]
 *   label: when set, the file logs how long it waited for the lock and how long it ran.
 */
export function processSuite(opts = {}) {
  const { label, afterAll: finalCleanup } = opts;
  const token = `${process.pid}-${randomBytes(4).toString('hex')}`;
  /** @type {Destroyable[]} */
  const current = [];
  let startedAt = 0;

  const destroyAll = async () => {
    const errors = [];
    for (const r of current.splice(0)) {
      try {
        await r.destroy();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw errors[0];
  };

  beforeAll(async () => {
    const waited = await acquireMachineLock(token, LOCK_WAIT_MS);
    startedAt = Date.now();
    if (label && waited > 1000) console.log(`[${label}] waited ${(waited / 1000).toFixed(1)} s for the process-test lock`);
  }, LOCK_WAIT_MS + 10_000);

  afterEach(destroyAll, TEARDOWN_MS);

  afterAll(async () => {
    await destroyAll().catch(() => {});
    releaseMachineLock(token);
    await finalCleanup?.().catch(() => {});
    if (label && startedAt) console.log(`[${label}] ran in ${((Date.now() - startedAt) / 1000).toFixed(1)} s (after the lock)`);
  }, TEARDOWN_MS);

  return {
    /**
     * Registers a resource of the running test (destroyed after it) and a dump for its failure.
     * @template {Destroyable} R
     * @param {R} resource
     * @param {() => void} [onFailure]
     * @returns {R}
     */
    track(resource, onFailure) {
      current.push(resource);
      if (onFailure) onTestFailed(() => onFailure());
      return resource;
    },
  };
}
