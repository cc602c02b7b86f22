/**
 * AccountHandoff (src/node/handoff.ts) alone: a fake host whose gateway requests wait for the
 * test's answer, an in-memory store, fake timers for the node.handoffTimeoutMs bounds.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AccountExportedSchema, AccountImportSchema, AccountReboundSchema } from '../src/gen/xserver/v1/relay_pb.js';
import { XError } from '../src/errors.js';
import type { Link } from '../src/link/link.js';
import { silentLogger } from '../src/log.js';
import { AccountHandoff, type HandoffHost, type HandoffResult } from '../src/node/handoff.js';
import { Cmd } from '../src/protocol/commands.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { decode, encode } from '../src/wire/codec.js';

const TIMEOUT_MS = 1000;
const MAX_BYTES = 16;

interface GatewayRequest {
  gatewayId: string;
  cmd: number;
  body: Uint8Array;
  answer(body?: Uint8Array): void;
  fail(err: XError): void;
}

const stores: MemoryStore[] = [];

function fakeNode(bound: string[], concurrency = 4) {
  const store = new MemoryStore('handoff-unit');
  stores.push(store);
  const requests: GatewayRequest[] = [];
  const results: HandoffResult[] = [];
  const released: { account: string; to: string }[] = [];
  const adopted: string[] = [];
  const accounts = new Map(bound.map((a) => [a, { gatewayId: 'gw', generation: 7 }]));
  const host: HandoffHost = {
    type: 4,
    log: silentLogger(),
    settings: { maxBytes: MAX_BYTES, stateTtlMs: 60_000, timeoutMs: TIMEOUT_MS, concurrency },
    store,
    accounts: () => [...accounts.keys()],
    entry: (a) => accounts.get(a),
    whenIdle: () => Promise.resolve(),
    request: (gatewayId, cmd, body) =>
      new Promise((resolve, reject) => requests.push({ gatewayId, cmd, body, answer: (b = new Uint8Array(0)) => resolve(b), fail: reject })),
    release: (account, _gen, to) => {
      accounts.delete(account);
      released.push({ account, to });
    },
    adopt: (a) => void adopted.push(a),
    counted: (r) => void results.push(r),
  };
  return { host, store, requests, results, released, adopted, handoff: new AccountHandoff(host) };
}

const rebound = (nodeId: string, imported = true) => encode(AccountReboundSchema, { account: '', nodeId, imported });

/** Lets pending promise callbacks run (no timer moves). */
const settle = () => vi.advanceTimersByTimeAsync(0);

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'Date'] });
});
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

describe('AccountHandoff', () => {
  it('holds, exports to the store, then rebinds: the account is released to the new node only after the gateway answers', async () => {
    const n = fakeNode(['alice']);
    n.handoff.setExporter(() => new Uint8Array([1, 2, 3]));
    n.handoff.startDraining();
    await settle();
    expect(n.requests.map((r) => r.cmd)).toEqual([Cmd.ACCOUNT_HANDOFF]);
    n.requests[0]!.answer();
    await settle();
    expect(n.requests.map((r) => r.cmd)).toEqual([Cmd.ACCOUNT_HANDOFF, Cmd.ACCOUNT_EXPORTED]);
    const exported = decode(AccountExportedSchema, n.requests[1]!.body);
    expect(exported).toMatchObject({ account: 'alice', type: 4, generation: 7n, hasState: true });
    expect(n.released).toEqual([]);
    n.requests[1]!.answer(rebound('node-b'));
    await settle();
    expect(n.released).toEqual([{ account: 'alice', to: 'node-b' }]);
    expect(n.results).toEqual(['moved']);
    expect([...(await n.store.takeHandoffState('alice', exported.handoffId))!]).toEqual([1, 2, 3]);
  });

  it('without an export hook nothing is handed off', async () => {
    const n = fakeNode(['alice']);
    n.handoff.setImporter(() => {});
    n.handoff.startDraining();
    await settle();
    expect(n.requests).toEqual([]);
    expect(n.handoff.inProgress).toBe(0);
  });

  it('an export hook that never answers is cut at node.handoffTimeoutMs: the account moves without state', async () => {
    const n = fakeNode(['alice']);
    n.handoff.setExporter(() => new Promise<Uint8Array>(() => {}));
    n.handoff.startDraining();
    await settle();
    n.requests[0]!.answer();
    await vi.advanceTimersByTimeAsync(TIMEOUT_MS - 1);
    expect(n.requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(decode(AccountExportedSchema, n.requests[1]!.body).hasState).toBe(false);
    n.requests[1]!.answer(rebound('node-b'));
    await settle();
    expect(n.results).toEqual(['export_failed']);
    expect(n.released).toHaveLength(1);
  });

  it('a state over node.handoffMaxBytes is not stored: the account moves fresh, counted too_large', async () => {
    const n = fakeNode(['alice']);
    n.handoff.setExporter(() => new Uint8Array(MAX_BYTES + 1));
    n.handoff.startDraining();
    await settle();
    n.requests[0]!.answer();
    await settle();
    const exported = decode(AccountExportedSchema, n.requests[1]!.body);
    expect(exported.hasState).toBe(false);
    n.requests[1]!.answer(rebound('node-b'));
    await settle();
    expect(n.results).toEqual(['too_large']);
    expect(await n.store.takeHandoffState('alice', exported.handoffId)).toBeNull();
  });

  it('a refused hold leaves the account here without exporting; a refused rebind keeps it too', async () => {
    const n = fakeNode(['alice', 'bob']);
    const exported: string[] = [];
    n.handoff.setExporter((a) => void exported.push(a));
    n.handoff.startDraining();
    await settle();
    n.requests[0]!.fail(new XError('HANDOFF_FAILED', 'not bound here'));
    n.requests[1]!.answer();
    await settle();
    expect(exported).toEqual(['bob']);
    n.requests[2]!.fail(new XError('HANDOFF_FAILED', 'no other node'));
    await settle();
    expect(n.results).toEqual(['kept', 'kept']);
    expect(n.released).toEqual([]);
  });

  it('hands off at most node.handoffConcurrency accounts at once, and an account that arrives while draining after them', async () => {
    const n = fakeNode(['a1', 'a2', 'a3', 'a4', 'a5'], 2);
    n.handoff.setExporter(() => undefined);
    n.handoff.startDraining();
    await settle();
    expect(n.requests).toHaveLength(2);
    expect(n.handoff.inProgress).toBe(5);
    for (let done = 0; done < 5; done++) {
      const hold = n.requests.find((r) => r.cmd === Cmd.ACCOUNT_HANDOFF && !('done' in r))!;
      Object.assign(hold, { done: true });
      hold.answer();
      await settle();
      const exp = n.requests.find((r) => r.cmd === Cmd.ACCOUNT_EXPORTED && !('done' in r))!;
      Object.assign(exp, { done: true });
      exp.answer(rebound('node-b'));
      await settle();
      expect(n.requests.filter((r) => !('done' in r)).length).toBeLessThanOrEqual(2);
    }
    expect(n.released.map((r) => r.account).sort()).toEqual(['a1', 'a2', 'a3', 'a4', 'a5']);
    expect(n.results).toEqual(['fresh', 'fresh', 'fresh', 'fresh', 'fresh']);
    expect(n.handoff.inProgress).toBe(0);
  });

  it('imports before adopting and answering; a state that expired is reported as not imported', async () => {
    const n = fakeNode([]);
    const order: string[] = [];
    n.handoff.setImporter(async (a, s) => {
      order.push(`import ${a} ${s.length}`);
      await new Promise((r) => setTimeout(r, 10));
    });
    n.host.adopt = (a) => void order.push(`adopt ${a}`);
    const replies: Uint8Array[] = [];
    const link = { reply: (_f: unknown, b: Uint8Array) => (order.push('reply'), replies.push(b), true) } as unknown as Link;
    const frame = (handoffId: string) => ({
      cmd: Cmd.ACCOUNT_IMPORT,
      flags: 0,
      rid: 1,
      body: encode(AccountImportSchema, { account: 'alice', generation: 7n, gatewayId: 'gw', type: 4, fromNode: 'a', handoffId, hasState: true }),
    });
    await n.store.putHandoffState('alice', 'h1', new Uint8Array(5), 60_000);
    n.handoff.onImport(frame('h1'), link);
    await vi.advanceTimersByTimeAsync(10);
    expect(order).toEqual(['import alice 5', 'adopt alice', 'reply']);
    expect(decode(AccountReboundSchema, replies[0]!).imported).toBe(true);

    n.handoff.onImport(frame('gone'), link);
    await settle();
    expect(decode(AccountReboundSchema, replies[1]!).imported).toBe(false);
    expect(order.slice(3)).toEqual(['adopt alice', 'reply']);
  });
});
