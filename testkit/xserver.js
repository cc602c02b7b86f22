// @ts-check
/**
 * Running xserver itself as a child: where it is, the environment a test cluster's processes get,
 * and `xserver status --json`.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnGroup } from './process-group.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The `xserver` command (runs from dist/: needs `npm run build`). */
export const XSERVER_BIN = path.join(REPO_ROOT, 'bin/xserver.js');

/**
 * This process's environment without any XSERVER_* variable (a developer's own settings must
 * not leak into a test cluster), with JSON logs, plus `vars`.
 * @param {Record<string, string>} [vars]
 * @returns {NodeJS.ProcessEnv}
 */
export function xserverEnv(vars = {}) {
  /** @type {NodeJS.ProcessEnv} */
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('XSERVER_')) env[k] = v;
  return { ...env, XSERVER_LOG_PRETTY: 'false', ...vars };
}

/**
 * Spawn options for `node bin/xserver.js <args>` from the repository root (for spawnGroup, or
 * for the constructor of a GroupProcess subclass).
 * @param {{ label: string, args: string[], env: NodeJS.ProcessEnv, clock?: () => number }} opts
 * @returns {import('./process-group.js').SpawnOptions}
 */
export function xserverSpawnOptions({ label, args, env, clock }) {
  return { label, command: process.execPath, args: [XSERVER_BIN, ...args], cwd: REPO_ROOT, env, clock };
}

/**
 * Spawns `node bin/xserver.js <args>` in its own process group.
 * @param {{ label: string, args: string[], env: NodeJS.ProcessEnv, clock?: () => number }} opts
 */
export function spawnXserver(opts) {
  return spawnGroup(xserverSpawnOptions(opts));
}

/**
 * `xserver status --json` with `env` (which names the cluster and its store).
 * @param {NodeJS.ProcessEnv} env
 * @param {number} timeoutMs
 * @returns {Promise<any>}
 */
export function xserverStatus(env, timeoutMs) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [XSERVER_BIN, 'status', '--json'], { cwd: REPO_ROOT, env, timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`xserver status failed: ${err.message}\n${stderr}`));
      try {
        resolve(JSON.parse(stdout));
      } catch (e) {
        reject(new Error(`xserver status printed no JSON (${/** @type {Error} */ (e).message}):\n${stdout}\n${stderr}`));
      }
    });
  });
}

/**
 * Runs one `xserver <args>` command to completion; resolves with its exit code and output (a
 * non-zero exit is a result, not an error).
 * @param {string[]} args
 * @param {NodeJS.ProcessEnv} env
 * @param {number} timeoutMs
 * @returns {Promise<{ code: number, stdout: string, stderr: string }>}
 */
export function xserverCommand(args, env, timeoutMs) {
  return new Promise((resolve) => {
    execFile(process.execPath, [XSERVER_BIN, ...args], { cwd: REPO_ROOT, env, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err
        ? typeof (/** @type {{ code?: unknown }} */ (err).code) === 'number'
          ? /** @type {number} */ (/** @type {{ code: number }} */ (err).code)
          : 1
        : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
