// Rolling restart under load (SPEC §9, §12): the demo cluster of `xserver up` (mgr ×2, login,
// gateway ×2, lobby ×2, match) on Redis with the default timings, `bots` SDK clients logged in
// through login; each world-chats a numbered message every `chatEveryMs` and sends a request
// (ROLE_LIST) every `requestEveryMs`. After `steadyMs`, `xserver roll` replaces every process
// (a full roll, every step); after it, `afterMs` more of the same.
//
// Reported: request latency p50/p99 before / during / after the roll (ms, answered requests only),
// requests failed (typed errors), world chat deliveries lost (a message promised by send() that a
// bot did not receive; a bot cut off from its gateway misses what was sent meanwhile) and
// duplicated, accounts the lobbies reported lost, and how long the roll took.
//
// A bot whose connection is gone for good (the SDK's resume failed) logs in again and enters the
// game with its role, as a game client would. Bounded: every wait has a deadline (SETUP_MS, ROLL_MS).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { freePort, spawnXserver, xserverCommand, xserverEnv, waitFor, REPO_ROOT } from '../../testkit/index.js';
import { targetRow, targetValues, percentile, sleep, noteOf, now } from '../lib/orchestra.js';

const SETUP_MS = 90_000;
/** The whole `xserver roll` (8 steps, each bounded by roll.stepTimeoutMs). */
const ROLL_MS = 240_000;
const LOBBY = 4;
const WORLD_CHAT = LOBBY * 1000 + 4;
const WORLD_MESSAGE = LOBBY * 1000 + 10;
const ROLE_LIST = LOBBY * 1000 + 1;
const CREATE_ROLE = LOBBY * 1000 + 2;
const ENTER_GAME = LOBBY * 1000 + 3;

async function sdk() {
  return import(pathToFileURL(path.join(REPO_ROOT, 'dist/client/index.js')).href);
}

/** One bot: logged in, in game, chatting and asking; comes back by a new login when cut off. */
function makeBot(index, loginUrl, client, samples) {
  const tagged = `${index}-${randomBytes(3).toString('hex')}`;
  const bot = { index, account: `rb${tagged}`, role: `rb_${tagged}`, sent: 0, got: new Map(), failed: {}, logins: 0, conn: null, running: true };
  const enc = (v) => JSON.stringify(v);
  const connect = async () => {
    const c = new client.XClient({ transport: 'tcp', requestTimeoutMs: 5000 });
    c.on(WORLD_MESSAGE, (data) => {
      const { from, text } = client.json(data);
      const [who, n] = String(text).split(':');
      if (!from?.startsWith('rb_') || !who.startsWith('bot')) return;
      const seqs = bot.got.get(who) ?? [];
      seqs.push(Number(n));
      bot.got.set(who, seqs);
    });
    c.on('disconnected', () => {
      if (bot.running) void reconnect();
    });
    const session = await client.login(loginUrl(), bot.account, `pw-${bot.account}`);
    await c.connect(session);
    bot.logins++;
    if (bot.logins === 1) await c.request(CREATE_ROLE, enc({ name: bot.role }));
    await c.request(ENTER_GAME, enc({ name: bot.role }));
    bot.conn = c;
  };
  const reconnect = async () => {
    bot.conn = null;
    for (let i = 0; bot.running && i < 50; i++) {
      try {
        return await connect();
      } catch {
        await sleep(200); // login restarting, or no gateway yet: try again
      }
    }
  };
  bot.start = connect;
  bot.chat = () => {
    try {
      bot.conn?.send(WORLD_CHAT, enc({ text: `bot${index}:${bot.sent + 1}` }));
      if (bot.conn) bot.sent++;
    } catch {
      // refused at once (not connected): not promised
    }
  };
  bot.ask = () => {
    const c = bot.conn;
    if (!c) return;
    const t0 = now();
    c.request(ROLE_LIST, '{}').then(
      () => samples.push({ t: t0, ms: now() - t0 }),
      (e) => (bot.failed[e.code ?? 'untyped'] = (bot.failed[e.code ?? 'untyped'] ?? 0) + 1),
    );
  };
  bot.stop = async () => {
    bot.running = false;
    await bot.conn?.close().catch(() => {});
  };
  return bot;
}

async function measure(scenario, row, cfg, env, log) {
  if (row.kind === 'target') return targetValues(row);
  const o = { ...scenario.defaults, ...row.options };
  const client = await sdk();
  const [adminPort, loginPort] = [await freePort(), await freePort()];
  // Its own control socket, removed below even if up has to be killed.
  const socket = path.join(os.tmpdir(), `xserver-up-${env.namespace}.sock`);
  const upEnv = xserverEnv({ XSERVER_CLUSTER: env.namespace, XSERVER_REDIS_URL: env.redisUrl, XSERVER_ROLL_CONTROL_SOCKET: socket });
  const up = spawnXserver({ label: 'up', args: ['up', '--admin-port', String(adminPort), '--set', `login.port=${loginPort}`], env: upEnv });
  const samples = [];
  const bots = [];
  const timers = [];
  const values = {};
  const errors = [];
  try {
    await waitFor(
      () => {
        if (!up.alive) throw new Error(`xserver up exited: ${up.tail()}`);
        return up.hasLine(/xserver cluster ".*" is up/);
      },
      { timeoutMs: SETUP_MS, what: 'xserver up', pollMs: 200 },
    );
    const loginUrl = () => `http://127.0.0.1:${loginPort}`;
    for (let i = 0; i < o.bots; i++) {
      const b = makeBot(i, loginUrl, client, samples);
      await waitFor(
        () =>
          b.start().then(
            () => true,
            () => false,
          ),
        { timeoutMs: SETUP_MS, what: `bot ${i} in game`, pollMs: 200 },
      );
      bots.push(b);
    }
    for (const b of bots) timers.push(setInterval(b.chat, o.chatEveryMs), setInterval(b.ask, o.requestEveryMs));
    await sleep(o.steadyMs);
    const tRoll = now();
    const r = await xserverCommand(['roll'], upEnv, ROLL_MS);
    const tDone = now();
    if (r.code !== 0) errors.push(noteOf('roll', new Error(r.stderr.trim() || r.stdout.trim())));
    log(
      `    roll: ${r.stdout
        .split('\n')
        .filter((l) => l.startsWith('replaced'))
        .join('; ')}`,
    );
    await sleep(o.afterMs);
    for (const t of timers) clearInterval(t);
    await sleep(o.settleMs); // the last messages and requests in flight arrive
    const phase = (a, b) => samples.filter((s) => s.t >= a && s.t < b).map((s) => s.ms);
    for (const [name, xs] of [
      ['before', phase(0, tRoll)],
      ['during', phase(tRoll, tDone)],
      ['after', phase(tDone, Infinity)],
    ]) {
      values[`${name}P50`] = percentile(xs, 50);
      values[`${name}P99`] = percentile(xs, 99);
    }
    let lost = 0;
    let dup = 0;
    for (const rcv of bots) {
      for (const snd of bots) {
        if (rcv === snd) continue;
        const seqs = rcv.got.get(`bot${snd.index}`) ?? [];
        const set = new Set(seqs);
        dup += seqs.length - set.size;
        for (let n = 1; n <= snd.sent; n++) if (!set.has(n)) lost++;
      }
    }
    values.rollMs = tDone - tRoll;
    values.lost = lost;
    values.dup = dup;
    values.failed = bots.reduce((a, b) => a + Object.values(b.failed).reduce((x, y) => x + y, 0), 0);
    values.relogins = bots.reduce((a, b) => a + b.logins - 1, 0);
    values.accountsLost = up.lines.filter((l) => /"msg":"account lost/.test(l.line) && bots.some((b) => l.line.includes(b.account))).length;
    const codes = {};
    for (const b of bots) for (const [k, v] of Object.entries(b.failed)) codes[k] = (codes[k] ?? 0) + v;
    log(
      `    ${samples.length} requests answered, ${values.failed} failed ${JSON.stringify(codes)}; ${bots.reduce((a, b) => a + b.sent, 0)} world chat sent, ${lost} deliveries lost, ${dup} duplicated; ${values.relogins} new logins, ${values.accountsLost} accounts lost`,
    );
  } catch (err) {
    errors.push(noteOf('', err));
  } finally {
    for (const t of timers) clearInterval(t);
    await Promise.all(bots.map((b) => b.stop()));
    await up.kill();
    fs.rmSync(socket, { force: true });
  }
  return { values, errors };
}

export default {
  name: 'roll',
  title: 'rolling restart of every role of the demo cluster (`xserver up` + `xserver roll`) under bot load: request latency and lost messages',
  baseline: 'target (spec)',
  defaults: { bots: 20, chatEveryMs: 500, requestEveryMs: 250, steadyMs: 5000, afterMs: 5000, settleMs: 2000 },
  columns: [
    { label: 'roll ms', field: 'rollMs', unit: 'ms' },
    { label: 'p50 before ms', field: 'beforeP50', unit: 'ms' },
    { label: 'p99 before ms', field: 'beforeP99', unit: 'ms' },
    { label: 'p50 during ms', field: 'duringP50', unit: 'ms' },
    { label: 'p99 during ms', field: 'duringP99', unit: 'ms', ratio: true },
    { label: 'p99 after ms', field: 'afterP99', unit: 'ms' },
    { label: 'requests failed', field: 'failed', unit: 'count' },
    { label: 'chat lost', field: 'lost', unit: 'count' },
    { label: 'chat dup', field: 'dup', unit: 'count' },
    { label: 'accounts lost', field: 'accountsLost', unit: 'count' },
  ],
  rows: [
    targetRow('target (spec)', { lost: 0, dup: 0, accountsLost: 0 }),
    { label: 'xserver', kind: 'xserver', module: 'scenarios/9-roll.js', impl: 'roll', needs: ['redis'] },
  ],
  measure,
};
