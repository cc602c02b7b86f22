/**
 * Authorization per framework command (src/node/authorization.ts): knowing the secret makes a
 * process a peer, not a gateway. Real links to a real node of an in-process cluster.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { linkOptions } from '../src/context.js';
import { RegisterSchema } from '../src/gen/xserver/v1/cluster_pb.js';
import { AccountLostSchema } from '../src/gen/xserver/v1/relay_pb.js';
import { Link } from '../src/link/link.js';
import { silentLogger } from '../src/log.js';
import { SYSTEM_SENDERS, SystemFrameGate, typeMaySend } from '../src/node/authorization.js';
import { ClusterNode } from '../src/node/node.js';
import { runtimeOf } from '../src/node/internal.js';
import { Cmd, NodeType } from '../src/protocol/commands.js';
import type { Frame } from '../src/protocol/frame.js';
import { encode } from '../src/wire/codec.js';
import { startCluster, waitUntil } from './helpers/inproc.js';

type Cluster = Awaited<ReturnType<typeof startCluster>>;

let c: Cluster;
let lobby: ClusterNode;
let other: ClusterNode;
const lost: string[] = [];

beforeAll(async () => {
  c = await startCluster((cfg) => {
    cfg.node.unlistedHoldMs = 300;
  });
  lobby = c.own(new ClusterNode(c.ctx, { type: 4, name: 'lobby' }));
  other = c.own(new ClusterNode(c.ctx, { type: 5, name: 'match' }));
  lobby.onAccountLost((a) => lost.push(a));
  lobby.enableRelay();
  await Promise.all([lobby.start(), other.start()]);
  await Promise.all([lobby.ready(5000), other.ready(5000)]);
  await waitUntil(() => other.has(lobby.id), 5000, 'match lists the lobby');
});

afterAll(async () => {
  await c?.cleanup();
});

/** A link to the lobby from a process that knows the secret and claims `type`/`id`. */
async function dialLobby(type: number, id = randomUUID()): Promise<{ link: Link; closed: Promise<string | undefined> }> {
  const link = await Link.dial('127.0.0.1', lobby.port(0), { type, id }, { type: 4, id: lobby.id }, linkOptions(c.ctx.config, silentLogger()));
  const closed = new Promise<string | undefined>((r) => (link.onClose = (err) => r(err?.code)));
  link.start();
  return { link, closed };
}

const lostFrame = (account: string) => encode(AccountLostSchema, { account, generation: 99n });

async function forbiddenCount(cmd: string): Promise<number> {
  const m = new RegExp(`node_forbidden_total\\{cmd="${cmd}"\\} (\\d+)`).exec(await c.ctx.metrics.text());
  return m ? Number(m[1]) : 0;
}

describe('framework commands from processes that know the secret', () => {
  it('a tool link (type 0) forging ACCOUNT_LOST is closed with FORBIDDEN; the account is not lost', async () => {
    const before = await forbiddenCount('ACCOUNT_LOST');
    const { link, closed } = await dialLobby(NodeType.CLIENT);
    link.send(Cmd.ACCOUNT_LOST, lostFrame('victim-1'));
    expect(await closed).toBe('FORBIDDEN');
    expect(lost).not.toContain('victim-1');
    expect(await forbiddenCount('ACCOUNT_LOST')).toBe(before + 1);
  });

  it('a link claiming to be a gateway that never registered is held, then refused', async () => {
    const { link, closed } = await dialLobby(NodeType.GATEWAY);
    const t0 = performance.now();
    link.send(Cmd.ACCOUNT_LOST, lostFrame('victim-2'));
    expect(await closed).toBe('FORBIDDEN');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(250); // node.unlistedHoldMs = 300
    expect(lost).not.toContain('victim-2');
  });

  it('a user request from a service node that is not listed (never registered, or evicted) is not served: held, then refused', async () => {
    const before = await forbiddenCount('user');
    const { link, closed } = await dialLobby(5);
    const reply = link.request(77, Uint8Array.of(1), 5000).then(
      () => 'answered',
      (e: { code?: string }) => e.code,
    );
    expect(await closed).toBe('FORBIDDEN');
    // Served, it would have been answered at once with NO_HANDLER (the lobby has no handler for 77).
    expect(await reply).not.toMatch(/^(answered|NO_HANDLER)$/);
    expect(await forbiddenCount('user')).toBe(before + 1);
  });

  it('a registered service node may not send a gateway command (no forged ACCOUNT_LOST between services)', async () => {
    const closedBefore = await forbiddenCount('ACCOUNT_LOST');
    runtimeOf(other).sendSystem(lobby.id, Cmd.ACCOUNT_LOST, lostFrame('victim-3'));
    await expect.poll(() => forbiddenCount('ACCOUNT_LOST'), { timeout: 3000 }).toBe(closedBefore + 1);
    expect(lost).not.toContain('victim-3');
  });
});

describe('the table', () => {
  it('gateway commands only from gateways, relay-out commands only from services', () => {
    expect(typeMaySend(Cmd.ACCOUNT_LOST, NodeType.GATEWAY)).toBe(true);
    for (const t of [NodeType.CLIENT, NodeType.MGR, NodeType.LOGIN, 4, 9]) expect(typeMaySend(Cmd.ACCOUNT_LOST, t)).toBe(false);
    expect(typeMaySend(Cmd.RELAY_TO_CLIENT, 4)).toBe(true);
    for (const t of [NodeType.CLIENT, NodeType.MGR, NodeType.LOGIN, NodeType.GATEWAY]) expect(typeMaySend(Cmd.RELAY_TO_CLIENT, t)).toBe(false);
    // Session handoff: gateway <-> gateway, except the fence a service node sends its old gateway.
    expect(typeMaySend(Cmd.HANDOFF_STATE, NodeType.GATEWAY)).toBe(true);
    expect(typeMaySend(Cmd.HANDOFF_STATE, 4)).toBe(false);
    expect(typeMaySend(Cmd.HANDOFF_FENCE, 4)).toBe(true);
    expect(typeMaySend(Cmd.HANDOFF_FENCE, NodeType.GATEWAY)).toBe(false);
    // Every relay command is in the table.
    for (const name of Object.keys(Cmd).filter(
      (k) => k.startsWith('RELAY_') || k.startsWith('ACCOUNT_') || k.startsWith('HANDOFF_') || k === 'KICK_ACCOUNT',
    )) {
      expect(SYSTEM_SENDERS.has(Cmd[name as keyof typeof Cmd]), name).toBe(true);
    }
  });
});

describe('SystemFrameGate (fake timers)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  function fakeLink(type: number, id: string) {
    return { remote: { type, id }, isOpen: true } as unknown as Link;
  }
  const frame = (cmd: number, b: number): Frame => ({ cmd, flags: 0, rid: 0, body: Uint8Array.of(b) });

  it('holds frames from a sender not listed yet and delivers them in order when its JOINED arrives', () => {
    vi.useFakeTimers();
    const members = new Map<string, number>();
    const delivered: number[] = [];
    const forbidden: string[] = [];
    const gate = new SystemFrameGate(
      { isMember: (r) => members.get(r.id) === r.type, deliver: (f) => delivered.push(f.body[0]!), forbid: (_l, _c, why) => forbidden.push(why) },
      1000,
      10,
    );
    const gw = fakeLink(NodeType.GATEWAY, 'gw-1');
    gate.receive(frame(Cmd.ACCOUNT_ARRIVED, 1), gw);
    gate.receive(frame(Cmd.RELAY_FROM_CLIENT, 2), gw);
    expect(delivered).toEqual([]);
    expect(gate.heldCount).toBe(2);
    vi.advanceTimersByTime(500);
    members.set('gw-1', NodeType.GATEWAY);
    gate.memberJoined('gw-1');
    gate.receive(frame(Cmd.RELAY_FROM_CLIENT, 3), gw);
    expect(delivered).toEqual([1, 2, 3]);
    vi.advanceTimersByTime(5000);
    expect(forbidden).toEqual([]);
  });

  it('refuses after the hold time, or when more than the limit wait', () => {
    vi.useFakeTimers();
    const forbidden: string[] = [];
    const gate = new SystemFrameGate(
      { isMember: () => false, deliver: () => {}, forbid: (l, _c, why) => forbidden.push(`${l.remote.id}: ${why}`) },
      1000,
      2,
    );
    gate.receive(frame(Cmd.ACCOUNT_LOST, 1), fakeLink(NodeType.GATEWAY, 'late'));
    vi.advanceTimersByTime(999);
    expect(forbidden).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(forbidden).toEqual(['late: late (type 3) is not a registered member']);
    const busy = fakeLink(NodeType.GATEWAY, 'busy');
    for (let i = 0; i < 3; i++) gate.receive(frame(Cmd.ACCOUNT_LOST, i), busy);
    expect(forbidden.at(-1)).toMatch(/^busy: busy is not a registered member \(2 frames held\)/);
    expect(gate.heldCount).toBe(0);
  });

  it('frames outside the table pass untouched; a type that may never send a command is refused at once', () => {
    const delivered: number[] = [];
    const forbidden: string[] = [];
    const gate = new SystemFrameGate(
      { isMember: () => false, deliver: (f) => delivered.push(f.cmd), forbid: (_l, _c, why) => forbidden.push(why) },
      1000,
      10,
    );
    gate.receive(frame(Cmd.STATUS, 0), fakeLink(NodeType.CLIENT, 'tool'));
    expect(delivered).toEqual([Cmd.STATUS]);
    gate.receive(frame(Cmd.RELAY_TO_CLIENT, 0), fakeLink(NodeType.GATEWAY, 'gw'));
    expect(forbidden).toEqual(['type 3 may not send RELAY_TO_CLIENT']);
  });
});

describe('registration without the secret', () => {
  it('a fake gateway or lobby that does not know the secret cannot even open a link to the mgr', async () => {
    const lease = (await c.store.readLease())!;
    for (const type of [NodeType.GATEWAY, 4]) {
      await expect(
        Link.dial(
          '127.0.0.1',
          lease.port,
          { type, id: randomUUID() },
          { type: NodeType.MGR, id: lease.instanceId },
          {
            ...linkOptions(c.ctx.config, silentLogger()),
            secret: 'guessed-secret',
          },
        ),
      ).rejects.toMatchObject({ code: 'AUTH_FAILED' });
    }
    expect(lobby.list(NodeType.GATEWAY)).toHaveLength(0);
  });
});

describe('per-node identity', () => {
  it('a link claiming a live member id with another key is refused (it cannot replace that member)', async () => {
    // Knows the secret, claims the match node's id, but holds a key of its own.
    await expect(
      Link.dial('127.0.0.1', lobby.port(0), { type: 5, id: other.id }, { type: 4, id: lobby.id }, linkOptions(c.ctx.config, silentLogger())),
    ).rejects.toMatchObject({ code: 'FORBIDDEN' });
    // The real match node still reaches the lobby.
    lobby.handle(90, (body) => body);
    const reply = await other.request(lobby.id, 90, 'still me', { timeoutMs: 3000 });
    expect(Buffer.from(reply).toString()).toBe('still me');
  });

  it('the mgr refuses a second registration of a live id with another key', async () => {
    const info = runtimeOf(other).info();
    const lease = (await c.store.readLease())!;
    const link = await Link.dial(
      '127.0.0.1',
      lease.port,
      { type: info.type, id: info.id },
      { type: NodeType.MGR, id: lease.instanceId },
      linkOptions(c.ctx.config, silentLogger()),
    );
    link.start();
    const attempt = link.request(Cmd.REGISTER, encode(RegisterSchema, { info }), 3000);
    await expect(attempt).rejects.toMatchObject({ code: 'FORBIDDEN' });
    link.close();
    // The member is still listed with its own key.
    await waitUntil(() => lobby.has(other.id), 1000, 'match still listed');
  });

  it('membership carries each member key, and links prove it', async () => {
    const listed = runtimeOf(lobby).info();
    expect(listed.publicKey).toHaveLength(32);
    const seenByOther = runtimeOf(other).peersJson();
    expect(seenByOther.length).toBeGreaterThan(0);
  });
});
