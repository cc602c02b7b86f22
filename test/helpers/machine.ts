/**
 * What the process-level test helpers (cluster.ts, demo.ts) share: Redis key cleanup and the
 * machine-wide lock that runs process-cluster test files one at a time (timings need the cores).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';

/** SCAN MATCH `pattern` + DEL on the Redis at `url` (never FLUSHALL). */
export async function deleteKeys(url: string, pattern: string): Promise<number> {
  const r = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 2000 });
  r.on('error', () => {});
  let n = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) n += await r.del(...keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
  return n;
}

const LOCK_FILE = path.join(os.tmpdir(), 'xserver-cluster-tests.lock');

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the machine-wide test lock (a dead holder's lock is broken); returns how long it waited, in ms. */
export async function acquireLock(token: string, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    try {
      fs.writeFileSync(LOCK_FILE, JSON.stringify({ pid: process.pid, token }), { flag: 'wx' });
      return Date.now() - t0;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    try {
      const held = JSON.parse(fs.readFileSync(LOCK_FILE, 'utf8')) as { pid: number };
      if (!pidAlive(held.pid)) fs.rmSync(LOCK_FILE, { force: true });
    } catch {
      // Torn or vanished between our checks: try again.
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`test lock ${LOCK_FILE} still held after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function releaseLock(token: string): void {
  try {
    const held = JSON.parse(fs.readFileSync(LOCK_FILE, 'utf8')) as { token: string };
    if (held.token === token) fs.rmSync(LOCK_FILE, { force: true });
  } catch {
    /* not ours or gone */
  }
}
