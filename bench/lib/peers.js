// On-demand installation of the peer frameworks (bench/peers has its own lockfile).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const PEERS_DIR = fileURLToPath(new URL('../peers/', import.meta.url));

let status; // memoized: undefined | { ok: true } | { ok: false, reason }

/** Runs `npm ci` in bench/peers when its node_modules is absent. Never throws. */
export function ensurePeers() {
  if (status) return status;
  if (existsSync(`${PEERS_DIR}node_modules`)) return (status = { ok: true });
  process.stderr.write(`bench: installing peers (npm ci --prefix ${PEERS_DIR}) ...\n`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const res = spawnSync(npm, ['ci', '--prefix', PEERS_DIR, '--no-audit', '--no-fund'], {
    stdio: ['ignore', process.stderr, process.stderr],
  });
  status = res.status === 0 ? { ok: true } : { ok: false, reason: `peer install failed (npm ci exit ${res.status ?? res.error?.message})` };
  return status;
}
