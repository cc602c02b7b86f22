/**
 * Rolling restart (SPEC §12) of the demo cluster in real processes on Redis, under bot load:
 * `Roll` (src/cli/roll.ts, the procedure behind `xserver roll`) replaces processes one at a
 * time while bots — SDK clients logged in through login — world-chat numbered messages and make
 * requests. Every bot checks the sequence it received from every other bot (no loss, no
 * duplicate, in order, gateway moves included), every request is answered or fails with a
 * typed error, and no lobby reports an account lost.
 *
 * Every role rolls: the mgrs (standby first), login, then each gateway (its clients move to the
 * other one with GOING_AWAY, no login) and each lobby (its accounts and their role in game move
 * to the other lobby through onAccountExport/onAccountImport), then match.
 *
 * Run: npm run build && npx vitest run test/cluster/roll.test.ts
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createStore } from '../../src/store/index.js';
import { defaultConfig } from '../../src/config/schema.js';
import { silentLogger } from '../../src/log.js';
import { Roll, rollCluster, type RollEvent } from '../../src/cli/roll.js';
import { ClientError } from '../../dist/client/index.js';
import { RoleList, WorldMessage } from '../../examples/contracts.js';
import { REDIS_URL, demoSuite, tag, type Demo, type Player, type Proc } from '../helpers/demo.js';
import { freePort, freePortPair, spawnXserver, xserverCommand } from '../../testkit/index.js';

const { newDemo } = demoSuite('cluster/roll');

/** Every step of the demo's plan (clusterPlan() names). */
const ROLLED = ['mgr-1', 'mgr-2', 'login', 'gateway-1', 'gateway-2', 'lobby-1', 'lobby-2', 'match'];

const BOTS = 6;
/** Pacing of each bot's load (not a condition: the waits below are on what arrived). */
const CHAT_EVERY_MS = 150;
const REQUEST_EVERY = 2;

interface Bot {
  index: number;
  player: Player;
  /** Numbered world chat messages sent (send() returned). */
  sent: number;
  /** Wall ms at which message n was sent, at index n - 1. */
  sentAt: number[];
  /** World chat the SDK refused at once, by code (not promised, so not expected anywhere). */
  refused: Record<string, number>;
  requests: { issued: number; ok: number; typed: Record<string, number>; untyped: string[] };
}

/** The world chat numbers `receiver` got from `sender`, in arrival order. */
function seqFrom(receiver: Bot, sender: Bot): number[] {
  const out: number[] = [];
  for (const m of receiver.player.inbox) {
    if (m.name !== WorldMessage.name || m.body.from !== sender.player.role) continue;
    const [who, n] = String(m.body.text).split(':');
    if (who === `bot${sender.index}`) out.push(Number(n));
  }
  return out;
}

/** Runs the bots' load until `stop()`; resolves when every bot's last request settled. */
function load(bots: Bot[]): { stop(): Promise<void> } {
  let running = true;
  const loops = bots.map(async (b) => {
    const next = bots[(b.index + 1) % bots.length]!;
    const inFlight: Promise<unknown>[] = [];
    for (let i = 0; running; i++) {
      try {
        const at = Date.now();
        b.player.worldChat(`bot${b.index}:${b.sent + 1}`);
        b.sent++; // promised: send() took it
        b.sentAt.push(at);
      } catch (e) {
        // Not promised: the SDK refused it at once (not connected, queue full), with its code.
        const code = e instanceof ClientError ? e.code : String(e);
        b.refused[code] = (b.refused[code] ?? 0) + 1;
      }
      if (i % REQUEST_EVERY === 0) {
        b.requests.issued++;
        const ask = i % (2 * REQUEST_EVERY) === 0 ? b.player.ask(RoleList, undefined) : b.player.whisper(next.player.role, `hi ${i}`);
        inFlight.push(
          ask.then(
            () => b.requests.ok++,
            (e: unknown) => {
              if (e instanceof ClientError) b.requests.typed[e.code] = (b.requests.typed[e.code] ?? 0) + 1;
              else b.requests.untyped.push(String(e));
            },
          ),
        );
      }
      await new Promise((r) => setTimeout(r, CHAT_EVERY_MS));
    }
    await Promise.all(inFlight);
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** Waits until every bot received at least `n` messages from every other bot. */
async function everyoneHeardEveryone(demo: Demo, bots: Bot[], n: (sender: Bot) => number, what: string): Promise<void> {
  await demo.until(what, () => bots.every((r) => bots.every((s) => r === s || seqFrom(r, s).length >= n(s))), 30_000, 50);
}

describe('xserver roll', () => {
  it('rolls every role under chatting bots: clients move between gateways, accounts between lobbies; world chat exactly once, no account lost, every request answered', async () => {
    const demo = newDemo();
    await demo.start();
    const bots: Bot[] = [];
    for (let i = 0; i < BOTS; i++) {
      const player = await demo.player(`roll${i}-${tag()}`);
      await player.enter(`bot${i}_${tag()}`);
      bots.push({ index: i, player, sent: 0, sentAt: [], refused: {}, requests: { issued: 0, ok: 0, typed: {}, untyped: [] } });
    }
    const traffic = load(bots);
    await everyoneHeardEveryone(demo, bots, () => 3, 'steady world chat between every pair of bots');

    const config = defaultConfig();
    config.cluster = demo.name;
    config.redisUrl = REDIS_URL;
    const store = createStore(REDIS_URL, demo.name);
    const events: RollEvent[] = [];
    const before = new Set(demo.procs.filter((p) => p.alive));
    let result;
    let activeAtStart;
    try {
      await store.ready(5000);
      activeAtStart = (await store.readLease())?.instanceId;
      const roll = new Roll(demo.rollHost(), rollCluster(config, store, silentLogger()), {
        stepTimeoutMs: 30_000,
        pollMs: 100,
        onEvent: (e) => events.push(e),
        only: (step) => ROLLED.includes(step.name),
      });
      result = await roll.run();
    } finally {
      await store.close();
    }

    // Roll order: the standby mgr, then the active one, then login, then gateways and services.
    const names = result.replaced.map((r) => r.name);
    expect(new Set(names)).toEqual(new Set(ROLLED));
    expect(names.slice(2, 3)).toEqual(['login']);
    const mgrId = (p: Proc): unknown => p.log('mgr started')?.instanceId;
    expect(mgrId(result.replaced[0]!.old)).not.toBe(activeAtStart);
    expect(mgrId(result.replaced[1]!.old)).toBe(activeAtStart);
    expect(events.filter((e) => e.state === 'failed')).toEqual([]);
    // Every old process of those steps exited by itself (drained), with code 0; the rest run on.
    for (const r of result.replaced) expect((await r.old.exited).code, r.name).toBe(0);
    expect([...before].filter((p) => !result.replaced.some((r) => r.old === p))).toEqual([]);
    // The gateways moved their clients, the lobbies handed their accounts over (with their role).
    const old = (name: string): Proc => result.replaced.find((r) => r.name === name)!.old;
    for (const g of ['gateway-1', 'gateway-2']) expect(old(g).log('draining: clients asked to move to another gateway'), g).toBeDefined();
    const handedOff = ['lobby-1', 'lobby-2'].flatMap((l) => old(l).logsMatching(/^account handed off/));
    expect(handedOff.length).toBeGreaterThan(0);
    expect(handedOff.every((l) => l.result === 'moved')).toBe(true);

    // Load goes on after the roll, then stops; everything sent arrives exactly once, in order.
    const sentAtRoll = new Map(bots.map((b) => [b, b.sent]));
    await everyoneHeardEveryone(demo, bots, (s) => sentAtRoll.get(s)! + 3, 'world chat after the roll');
    await traffic.stop();
    // World chat is a broadcast: it reaches every bot once and in order, moves included.
    const expected = (s: Bot): number[] => Array.from({ length: s.sent }, (_, i) => i + 1);
    const missing = (): string[] =>
      bots.flatMap((r) =>
        bots.flatMap((s) =>
          r === s
            ? []
            : expected(s)
                .filter((n) => !seqFrom(r, s).includes(n))
                .map((n) => `bot${r.index} misses bot${s.index}:${n} (sent ${new Date(s.sentAt[n - 1]!).toISOString()})`),
        ),
      );
    await demo
      .until("every bot's messages, everywhere", () => missing().length === 0, 30_000, 50)
      .catch((e: Error) => {
        const steps = events.map((x) => `${new Date(x.t).toISOString()} ${x.name} ${x.state}`);
        throw new Error(`${e.message}\n${missing().slice(0, 20).join('\n')}\nroll steps:\n${steps.join('\n')}`);
      });
    for (const r of bots) for (const s of bots) if (r !== s) expect(seqFrom(r, s), `bot${r.index} from bot${s.index}`).toEqual(expected(s));
    for (const b of bots) {
      expect(b.requests.untyped, `bot${b.index}: requests failed without a typed error`).toEqual([]);
      expect(b.requests.ok + Object.values(b.requests.typed).reduce((a, n) => a + n, 0)).toBe(b.requests.issued);
      expect(b.requests.typed, `bot${b.index}: request errors`).toEqual({});
      expect(b.refused, `bot${b.index}: world chat refused by the SDK`).toEqual({});
      expect(b.player.event('disconnected'), `bot${b.index} stayed connected`).toBeUndefined();
    }
    expect(demo.lost().filter((l) => bots.some((b) => b.player.account === l.account))).toEqual([]);

    // The new login serves: a new player logs in through it and hears the bots.
    const late = await demo.player(`late-${tag()}`);
    await late.enter(`late_${tag()}`);
    late.worldChat('late:1');
    await bots[0]!.player.waitMessage(WorldMessage, (m) => m.text === 'late:1', 'world chat from the player who logged in after the roll', 10_000);
  }, 180_000);

  it('`xserver roll` replaces every process of an `xserver up`, one at a time, and the cluster is whole afterwards', async () => {
    const demo = newDemo(); // its name, env and cleanup; the processes are up's
    // The dashboards of `up --admin-port N`: N and N + 1.
    const [adminPort, loginPort] = [await freePortPair(), await freePort()];
    // Its own control socket, removed even when the cleanup SIGKILLs up.
    const socket = path.join(os.tmpdir(), `xserver-up-${demo.name}.sock`);
    onTestFinished(() => fs.rmSync(socket, { force: true }));
    const env = { ...demo.childEnv(), XSERVER_ROLL_CONTROL_SOCKET: socket };
    const up = spawnXserver({ label: 'up', args: ['up', '--admin-port', String(adminPort), '--set', `login.port=${loginPort}`], env });
    demo.others.push(up);
    // Eight processes start at once: on a busy machine that takes a while.
    await demo.until('`xserver up` prints its banner', () => up.hasLine(/xserver cluster ".*" is up/) || (!up.alive && up.tail()), 60_000, 100);
    expect(up.alive, up.tail()).toBe(true);
    const listed = async () => (await demo.status()).members;
    const before = await demo.untilAsync(
      'the 6 members of the plan listed (mgrs are not members)',
      async () => {
        const m = await listed();
        return m.length === 6 ? m : undefined;
      },
      60_000,
      200,
    );

    const r = await xserverCommand(['roll'], env, 120_000);
    expect(r.code, r.stderr).toBe(0);
    const replaced = [...r.stdout.matchAll(/^replaced (\S+): pid (\d+) -> (\d+)/gm)].map((m) => m[1]);
    expect(new Set(replaced.slice(0, 2))).toEqual(new Set(['mgr-1', 'mgr-2']));
    expect(replaced.slice(2)).toEqual(['login', 'gateway-1', 'gateway-2', 'lobby-1', 'lobby-2', 'match']);
    const after = await listed();
    expect(after.length).toBe(6);
    expect(after.filter((m) => before.some((b) => b.pid === m.pid))).toEqual([]);
    expect(after.filter((m) => m.draining === true)).toEqual([]);
    expect(up.alive).toBe(true);

    // Nothing to roll for a cluster without an `xserver up` here: a clear error.
    const none = await xserverCommand(['roll', '--cluster', `${demo.name}-none`], demo.childEnv(), 20_000);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no `xserver up` of cluster .* runs on this host/);
  }, 180_000);
});
