/**
 * `xserver up --watch` on real processes and Redis: editing a service's file replaces its process
 * while a client keeps talking to it — the client stays connected, every request is answered,
 * the account is bound to the new process, and nobody is reported lost. A replacement that does
 * not start leaves the old process serving.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { XClient, login, text } from '../../dist/client/index.js';
import { REPO_ROOT, clusterKeyPatterns, deleteKeys, freePort, sleep, spawnXserver, timingsEnv, waitFor, xserverEnv } from '../../testkit/index.js';
import { processSuite } from '../../testkit/suite.js';

const { track } = processSuite();
const REDIS_URL = 'redis://127.0.0.1:6379';
const TYPE = 7;
const CMD = TYPE * 1000 + 1;
/** The client's pace: well under the gateway's rate limit, as a game client would be. */
const REQUEST_GAP_MS = 5;

/** A stateful service answering its version; it appends every account reported lost to a file. */
function serviceSource(version: string, lostFile: string): string {
  const xserver = pathToFileURL(path.join(REPO_ROOT, 'dist/index.js')).href;
  return `import fs from 'node:fs';
import { defineService } from ${JSON.stringify(xserver)};
export default defineService({
  type: ${TYPE},
  name: 'svc',
  start(node) {
    node.enableRelay();
    node.handleClient(1, () => new TextEncoder().encode(${JSON.stringify(version)}));
    node.onAccountLost((account) => fs.appendFileSync(${JSON.stringify(lostFile)}, account + '\\n'));
  },
});
`;
}

describe('xserver up --watch', () => {
  it('replaces a service when its file changes: the client stays connected and every request is answered', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xs-watch-'));
    const entry = path.join(dir, 'svc', 'service.js');
    const lostFile = path.join(dir, 'lost.txt');
    fs.mkdirSync(path.dirname(entry));
    fs.writeFileSync(entry, serviceSource('v1', lostFile));
    const cluster = `watch-${randomBytes(4).toString('hex')}`;
    const loginPort = await freePort();
    const up = spawnXserver({
      label: 'up',
      args: [
        'up',
        '--watch',
        '--watch-delay',
        '100',
        '--service',
        entry,
        '--set',
        `statefulTypes=${TYPE}`,
        '--set',
        `login.port=${loginPort}`,
        '--set',
        `adminPort=${await freePort()}`,
      ],
      env: xserverEnv({ ...timingsEnv(), XSERVER_CLUSTER: cluster, XSERVER_REDIS_URL: REDIS_URL }),
    });
    track(
      {
        destroy: async () => {
          await up.kill();
          await deleteKeys(REDIS_URL, clusterKeyPatterns(cluster));
          fs.rmSync(dir, { recursive: true, force: true });
        },
      },
      () => fs.writeFileSync(path.join(os.tmpdir(), `${cluster}.log`), up.lines.map((l) => l.line).join('\n')),
    );
    await up.waitForLog(/^watching /, { timeoutMs: 30_000 });

    const client = new XClient({ requestTimeoutMs: 10_000 });
    const events: string[] = [];
    for (const ev of ['reconnecting', 'disconnected', 'kicked'] as const) client.on(ev, () => events.push(ev));
    await client.connect(await login(`http://127.0.0.1:${loginPort}`, 'alice', 'pw'));
    const ask = async (): Promise<string> => text(await client.request(CMD, new Uint8Array(0)));
    await waitFor(async () => (await ask()) === 'v1', { timeoutMs: 10_000, what: 'the first version answers' });

    // Requests keep flowing while the process is replaced; each must be answered.
    const answers: string[] = [];
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        const t = Date.now();
        try {
          answers.push(await ask());
        } catch (e) {
          answers.push(`error ${(e as Error).message} sent ${t}`);
        }
        await sleep(REQUEST_GAP_MS);
      }
    })();
    fs.writeFileSync(entry, serviceSource('v2', lostFile));
    await up.waitForLog(/^service restarted/, { timeoutMs: 30_000 });
    await waitFor(() => answers.at(-1) === 'v2', { timeoutMs: 15_000, what: 'the new version answers' }).catch((e) => {
      throw new Error(`${(e as Error).message}; answers: ${answers.filter((a) => a.startsWith('error')).join('; ')} ${answers.length}`);
    });
    stop = true;
    await loop;
    expect(new Set(answers)).toEqual(new Set(['v1', 'v2']));
    // The account moved once, from the old process to the new one: never back.
    expect(answers.indexOf('v1') < answers.indexOf('v2') && answers.lastIndexOf('v1') < answers.indexOf('v2')).toBe(true);

    // A replacement that throws at load is killed; the running process keeps answering.
    fs.writeFileSync(entry, 'throw new Error("broken on purpose");\n');
    await up.waitForLog(/the new process did not start/, { timeoutMs: 30_000 });
    expect(await ask()).toBe('v2');

    expect(events).toEqual([]);
    expect(client.state).toBe('open');
    expect(fs.existsSync(lostFile) ? fs.readFileSync(lostFile, 'utf8') : '').toBe('');
    await client.close();
  }, 120_000);
});
