/**
 * MgrClient (src/node/mgr-client.ts) alone: the memory store holds the lease and carries the
 * takeover announcements, a fake dialer stands in for the mgr, fake timers drive the backoff.
 * Discovery backoff, the announcement that cuts the wait short, registration, and the
 * re-registration after the mgr link is lost.
 */
import { create } from '@bufbuild/protobuf';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { NodeType } from '../src/context.js';
import { XError } from '../src/errors.js';
import { JoinedSchema, NodeInfoSchema, RegisterSchema, SnapshotSchema, type NodeInfo, type Snapshot } from '../src/gen/xserver/v1/cluster_pb.js';
import type { LinkOptions } from '../src/link/link.js';
import { silentLogger } from '../src/log.js';
import { MgrClient, type MgrClientHost, type MgrClientOptions } from '../src/node/mgr-client.js';
import { MemoryStore } from '../src/store/memory-store.js';
import type { LeaseRecord } from '../src/store/store.js';
import { decode, encode } from '../src/wire/codec.js';
import { Cmd } from '../src/protocol/commands.js';
import { FakeDialer, type FakeLink } from './helpers/fake-link.js';

const OPTS: MgrClientOptions = { minBackoffMs: 100, maxBackoffMs: 800, registerTimeoutMs: 1000, maxMembers: 1000 };
const SELF = { type: 4, id: 'node-1' };
const MGR_LEASE = { instanceId: 'mgr-1', addr: '10.0.0.2', port: 7100 };

interface Recorded {
  events: string[];
  snapshots: Snapshot[];
  joined: NodeInfo[];
  connected: { at: number; lease: LeaseRecord }[];
  lost: { at: number; reason: string }[];
}

let store: MemoryStore;
let dialer: FakeDialer;
let rec: Recorded;
let client: MgrClient;
let readsAt: number[];

function newClient(opts: MgrClientOptions = OPTS): MgrClient {
  const host: MgrClientHost = {
    selfInfo: () => create(NodeInfoSchema, { id: SELF.id, type: SELF.type, name: 'lobby', ports: [7200] }),
    onSnapshot: (s) => {
      rec.events.push('snapshot');
      rec.snapshots.push(s);
    },
    onJoined: (j) => {
      rec.events.push('joined');
      rec.joined.push(j);
    },
    onLeft: () => rec.events.push('left'),
    onDrainRequested: () => rec.events.push('drain'),
    onPolicies: () => rec.events.push('policies'),
    countAccounts: () => [],
    onUpdated: () => rec.events.push('updated'),
    onConnected: (lease) => {
      rec.events.push('connected');
      rec.connected.push({ at: performance.now(), lease });
    },
    onLost: (reason) => {
      rec.events.push('lost');
      rec.lost.push({ at: performance.now(), reason });
    },
  };
  client = new MgrClient(store, SELF, {} as LinkOptions, opts, host, silentLogger(), dialer.dial);
  return client;
}

/** Answers the REGISTER on `link` with a snapshot listing `members` ids. */
function answerRegister(link: FakeLink, members: string[] = []): void {
  const req = link.requests.find((r) => r.cmd === Cmd.REGISTER);
  if (!req) throw new Error('no REGISTER sent');
  req.answer(encode(SnapshotSchema, { members: members.map((id) => ({ id, type: 5 })) }));
}

/** The mgr takes the lease and says so, as MgrServer does after a takeover. */
async function mgrTakesOver(lease = MGR_LEASE): Promise<LeaseRecord> {
  const held = await store.acquireLease(lease, 60_000);
  if (!held) throw new Error('lease already held');
  await store.announceLease(held);
  return held;
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.spyOn(Math, 'random').mockReturnValue(1); // every backoff delay is its ceiling
  store = new MemoryStore('mgr-client-test');
  readsAt = [];
  const read = store.readLease.bind(store);
  vi.spyOn(store, 'readLease').mockImplementation(() => {
    readsAt.push(performance.now());
    return read();
  });
  dialer = new FakeDialer();
  rec = { events: [], snapshots: [], joined: [], connected: [], lost: [] };
});

afterEach(async () => {
  const stopped = client?.stop(50);
  await vi.advanceTimersByTimeAsync(50);
  await stopped;
  await store.close();
  vi.restoreAllMocks();
  vi.useRealTimers();
});

describe('MgrClient discovery', () => {
  it('looks for the lease with exponential backoff (capped) while the store has none, dialling nothing', async () => {
    await newClient().start();
    await vi.advanceTimersByTimeAsync(100 + 200 + 400 + 800 + 800);
    const gaps = readsAt.slice(1).map((t, i) => t - readsAt[i]!);
    expect(gaps).toEqual([100, 200, 400, 800, 800]);
    expect(dialer.attempts).toEqual([]);
  });

  it('a takeover announcement cuts the wait short: the node dials the announced mgr at once, not at its next poll', async () => {
    await newClient({ ...OPTS, minBackoffMs: 5000, maxBackoffMs: 5000 }).start();
    await vi.advanceTimersByTimeAsync(200);
    expect(readsAt).toHaveLength(1); // sleeping until t = 5000
    const announcedAt = performance.now();
    await mgrTakesOver();
    await vi.advanceTimersByTimeAsync(0);
    expect(dialer.attempts).toHaveLength(1);
    expect(dialer.last.at).toBe(announcedAt);
    // It dials what the lease names, and only accepts that mgr instance on the other end.
    expect(dialer.last).toMatchObject({ host: MGR_LEASE.addr, port: MGR_LEASE.port, expect: { type: NodeType.MGR, id: MGR_LEASE.instanceId } });
  });

  it('registers with its own info, applies the snapshot, then reports connected with the lease', async () => {
    const held = await mgrTakesOver();
    await newClient().start();
    await vi.advanceTimersByTimeAsync(0);
    const link = dialer.last.accept();
    await vi.advanceTimersByTimeAsync(0);
    const register = link.requests.find((r) => r.cmd === Cmd.REGISTER)!;
    expect(register.timeoutMs).toBe(OPTS.registerTimeoutMs);
    expect(decode(RegisterSchema, register.body).info).toMatchObject({ id: SELF.id, type: SELF.type });
    expect(client.connected).toBe(false); // not before the snapshot

    answerRegister(link, ['node-2']);
    await vi.advanceTimersByTimeAsync(0);
    expect(rec.events).toEqual(['snapshot', 'connected']);
    expect(rec.snapshots[0]!.members.map((m) => m.id)).toEqual(['node-2']);
    expect(rec.connected[0]!.lease).toEqual(held);
    expect(client.connected).toBe(true);
    expect(client.mgr).toEqual(held);
  });

  it('membership frames that arrive before the registration snapshot are applied after it', async () => {
    await mgrTakesOver();
    await newClient().start();
    await vi.advanceTimersByTimeAsync(0);
    const link = dialer.last.accept();
    await vi.advanceTimersByTimeAsync(0);
    link.receive(Cmd.JOINED, encode(JoinedSchema, { info: { id: 'node-3', type: 5 } }));
    expect(rec.events).toEqual([]);
    answerRegister(link);
    await vi.advanceTimersByTimeAsync(0);
    expect(rec.events).toEqual(['snapshot', 'joined', 'connected']);
    expect(rec.joined[0]!.id).toBe('node-3');
  });

  it('a refused dial (a stale lease naming another process) backs off and tries again', async () => {
    await store.acquireLease(MGR_LEASE, 60_000); // a lease, but no announcement to wake anyone
    dialer.respond = (a) => a.refuse(new XError('WRONG_TARGET', 'not the expected mgr'));
    await newClient().start();
    await vi.advanceTimersByTimeAsync(100 + 200 + 400);
    expect(dialer.gaps()).toEqual([100, 200, 400]);
    expect(rec.connected).toEqual([]);
  });
});

describe('MgrClient after losing the mgr', () => {
  it('reports the loss, then looks again at once (no backoff) and re-registers on a new link', async () => {
    await mgrTakesOver();
    await newClient().start();
    await vi.advanceTimersByTimeAsync(0);
    const first = dialer.last.accept();
    await vi.advanceTimersByTimeAsync(0);
    answerRegister(first);
    await vi.advanceTimersByTimeAsync(0);
    expect(rec.connected).toHaveLength(1);

    const lostAt = performance.now();
    first.drop(new XError('HEARTBEAT_TIMEOUT', 'no traffic from the mgr for 1000 ms'));
    await vi.advanceTimersByTimeAsync(0);
    expect(rec.lost).toEqual([{ at: lostAt, reason: 'no traffic from the mgr for 1000 ms' }]);
    expect(client.connected).toBe(false);
    expect(dialer.attempts).toHaveLength(2);
    expect(dialer.last.at).toBe(lostAt);

    const second = dialer.last.accept();
    await vi.advanceTimersByTimeAsync(0);
    expect(second.requests.filter((r) => r.cmd === Cmd.REGISTER)).toHaveLength(1);
    answerRegister(second);
    await vi.advanceTimersByTimeAsync(0);
    expect(rec.events).toEqual(['snapshot', 'connected', 'lost', 'snapshot', 'connected']);
    expect(client.connected).toBe(true);
  });

  it('re-registers with the standby that took over: the announcement wakes it while the old mgr is gone', async () => {
    const old = await mgrTakesOver();
    await newClient().start();
    await vi.advanceTimersByTimeAsync(0);
    const first = dialer.last.accept();
    await vi.advanceTimersByTimeAsync(0);
    answerRegister(first);
    await vi.advanceTimersByTimeAsync(0);

    // The old mgr dies: its lease stays until the TTL, so the node's dials to it fail meanwhile.
    dialer.respond = (a) => a.refuse(new XError('LINK_CLOSED', 'connection refused'));
    first.drop();
    await vi.advanceTimersByTimeAsync(100 + 200 + 400);
    const failedDials = dialer.attempts.length;
    expect(dialer.attempts.every((a) => a.expect.id === old.instanceId)).toBe(true);

    // The standby takes over (the old lease expired) and announces itself.
    dialer.respond = () => {};
    await store.releaseLease(old.instanceId);
    const takeoverAt = performance.now();
    const standby = await mgrTakesOver({ instanceId: 'mgr-2', addr: '10.0.0.3', port: 7101 });
    await vi.advanceTimersByTimeAsync(0);
    expect(dialer.attempts).toHaveLength(failedDials + 1);
    expect(dialer.last).toMatchObject({ at: takeoverAt, expect: { id: 'mgr-2' } });
    const second = dialer.last.accept();
    await vi.advanceTimersByTimeAsync(0);
    answerRegister(second);
    await vi.advanceTimersByTimeAsync(0);
    expect(rec.connected.map((c) => c.lease.instanceId)).toEqual(['mgr-1', 'mgr-2']);
    expect(client.mgr).toEqual(standby);
  });
});
