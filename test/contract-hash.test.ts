/**
 * Contract hash: a stable, order-independent hash of a set of contracts; services publish theirs
 * in NodeInfo, the SDK sends its per-type hashes in AUTH, and a gateway refuses a client whose
 * hash differs with CONTRACT_MISMATCH {type, client, server} (the SDK raises its own event).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XClient, command, contractHash, contractHashes, contractSet, empty, fnv1a64, jsonCodec } from '../src/client/index.js';
import { Gateway } from '../src/gateway/gateway.js';
import { KickAccountSchema } from '../src/gen/xserver/v1/relay_pb.js';
import { NodeInfoSchema } from '../src/gen/xserver/v1/cluster_pb.js';
import { runtimeOf } from '../src/node/internal.js';
import { ClusterNode } from '../src/node/node.js';
import { parseAuth } from '../src/protocol/client-messages.js';
import { toBytes } from '../src/protocol/bytes.js';
import { protoCodec } from '../src/wire/codec.js';
import { issueLogin, startCluster, waitUntil } from './helpers/inproc.js';

// ---- a contracts module ----
const Echo = command({ type: 4, cmd: 1, name: 'lobby.echo', request: jsonCodec<{ text: string }>(), response: jsonCodec<{ text: string }>() });
const Ping = command({ type: 4, cmd: 2, name: 'lobby.ping', request: empty });
const Sum = command({ type: 5, cmd: 1, name: 'match.sum', request: jsonCodec<number[]>(), response: jsonCodec<number>() });
const Contracts = { Echo, Ping, Sum };

describe('contractHash', () => {
  it('is FNV-1a 64 (the published test vectors)', () => {
    expect(fnv1a64('')).toBe('cbf29ce484222325');
    expect(fnv1a64('a')).toBe('af63dc4c8601ec8c');
    expect(fnv1a64('foobar')).toBe('85944171f73967e8');
  });

  it('does not depend on the order of declaration or on duplicates; an empty set is ""', () => {
    const h = contractHash([Echo, Ping, Sum]);
    expect(h).toMatch(/^[0-9a-f]{16}$/);
    expect(contractHash([Sum, Ping, Echo])).toBe(h);
    expect(contractHash([Ping, Sum, Echo, Ping])).toBe(h);
    expect(contractHash(contractSet(Contracts))).toBe(h);
    expect(contractHash([])).toBe('');
    expect(contractHash([Sum], 4)).toBe('');
  });

  it('changes when the type, cmd, name, kind or a codec changes', () => {
    const base = contractHash([Echo]);
    const variants = [
      command({ type: 6, cmd: 1, name: 'lobby.echo', request: jsonCodec<{ text: string }>(), response: jsonCodec<{ text: string }>() }),
      command({ type: 4, cmd: 9, name: 'lobby.echo', request: jsonCodec<{ text: string }>(), response: jsonCodec<{ text: string }>() }),
      command({ type: 4, cmd: 1, name: 'lobby.echo2', request: jsonCodec<{ text: string }>(), response: jsonCodec<{ text: string }>() }),
      command({ type: 4, cmd: 1, name: 'lobby.echo', request: jsonCodec<{ text: string }>() }),
      command({ type: 4, cmd: 1, name: 'lobby.echo', request: jsonCodec<{ text: string }>('echo@2'), response: jsonCodec<{ text: string }>() }),
      command({ type: 4, cmd: 1, name: 'lobby.echo', request: jsonCodec<{ text: string }>(), response: empty }),
      command({ type: 4, cmd: 1, name: 'lobby.echo', request: protoCodec(KickAccountSchema), response: jsonCodec<{ text: string }>() }),
    ];
    const hashes = variants.map((v) => contractHash([v]));
    for (const h of hashes) expect(h).not.toBe(base);
    expect(new Set(hashes).size).toBe(hashes.length);
    // The same declaration made again hashes the same (nothing but the declaration counts).
    expect(contractHash([command({ type: 4, cmd: 1, name: 'lobby.echo', request: jsonCodec(), response: jsonCodec() })])).toBe(base);
  });

  it('a protobuf codec names its type and field layout', () => {
    const kind = protoCodec(KickAccountSchema).kind;
    expect(kind).toMatch(/^proto:xserver\.v1\.KickAccount\{1:account:s9,/);
    expect(protoCodec(NodeInfoSchema).kind).toContain('15:contract_hash:s9');
    expect(protoCodec(NodeInfoSchema).kind).toContain('6:ports:list<s13>');
  });

  it('per type: contractHashes() is what AUTH carries, and equals contractHash(set, type)', () => {
    const set = contractSet(Contracts);
    expect(contractHashes(set)).toEqual({ '4': contractHash(set, 4), '5': contractHash(set, 5) });
    expect(contractHash(set, 4)).toBe(contractHash([Ping, Echo]));
  });

  it('AUTH "contracts" is parsed strictly', () => {
    expect(parseAuth(toBytes(JSON.stringify({ token: 't', contracts: { '4': 'ab12' } })))).toEqual({ token: 't', contracts: { '4': 'ab12' } });
    for (const contracts of [[], 'x', { lobby: 'ab' }, { '4': 'XYZ' }, { '4': 7 }]) {
      expect(() => parseAuth(toBytes(JSON.stringify({ token: 't', contracts })))).toThrow(/contracts/);
    }
  });
});

describe('contract check at the gateway', () => {
  type Cluster = Awaited<ReturnType<typeof startCluster>>;
  let c: Cluster;
  let gw: Gateway;
  let lobby: ClusterNode;

  beforeAll(async () => {
    c = await startCluster();
    lobby = c.own(new ClusterNode(c.ctx, { type: 4, name: 'lobby' }));
    lobby.useContracts(contractSet(Contracts));
    lobby.enableRelay();
    lobby.handleClient(Echo, (req) => ({ text: req.text.toUpperCase() }));
    gw = c.own(new Gateway(c.ctx));
    await Promise.all([lobby.start(), gw.start()]);
    await Promise.all([lobby.ready(5000), gw.node.ready(5000)]);
    await waitUntil(() => gw.node.has(lobby.id), 5000, 'gateway sees the lobby');
  });

  afterAll(async () => {
    await c?.cleanup();
  });

  const loginResult = (account: string) => issueLogin(c.store, gw, account, { '4': lobby.id });

  it('the service publishes the hash of its own type in NodeInfo', () => {
    expect(gw.node.get(lobby.id)?.info.contractHash).toBe(contractHash([Echo, Ping]));
    expect(() => lobby.useContracts([Echo])).toThrow(/before start/);
  });

  it('a client built with the same contracts logs in and talks to the service', async () => {
    const client = new XClient({ transport: 'tcp', contracts: contractSet(Contracts) });
    const mismatches: unknown[] = [];
    client.on('contract-mismatch', (m) => mismatches.push(m));
    await client.connect(await loginResult('same'));
    expect(await client.request(Echo, { text: 'hi' })).toEqual({ text: 'HI' });
    expect(mismatches).toEqual([]);
    await client.close();
  });

  it('a client with other contracts of the type is refused with CONTRACT_MISMATCH, both hashes and the SDK event', async () => {
    const Echo2 = command({
      type: 4,
      cmd: 1,
      name: 'lobby.echo',
      request: jsonCodec<{ text: string }>('echo@2'),
      response: jsonCodec<{ text: string }>(),
    });
    const contracts = [Echo2, Ping, Sum];
    const client = new XClient({ transport: 'ws', reconnect: false, contracts });
    const seen: { type: number; client: string; server: string }[] = [];
    client.on('contract-mismatch', (m) => seen.push(m));
    await expect(client.connect(await loginResult('other'))).rejects.toMatchObject({ code: 'CONTRACT_MISMATCH' });
    expect(seen).toEqual([{ type: 4, client: contractHash(contracts, 4), server: contractHash([Echo, Ping]) }]);
    expect(seen[0]!.client).not.toBe(seen[0]!.server);
  });

  it('every listed node of the type must agree; a draining one is not asked', async () => {
    const Echo2 = command({
      type: 4,
      cmd: 1,
      name: 'lobby.echo',
      request: jsonCodec<{ text: string }>('echo@2'),
      response: jsonCodec<{ text: string }>(),
    });
    const newer = c.own(new ClusterNode(c.ctx, { type: 4, name: 'lobby' }));
    newer.useContracts([Echo2, Ping]);
    await newer.start();
    await newer.ready(5000);
    await waitUntil(() => gw.node.has(newer.id), 5000, 'gateway sees the newer lobby');
    const seen: { type: number; client: string; server: string }[] = [];
    const client = new XClient({ transport: 'tcp', reconnect: false, contracts: contractSet(Contracts) });
    client.on('contract-mismatch', (m) => seen.push(m));
    await expect(client.connect(await loginResult('during-update'))).rejects.toMatchObject({ code: 'CONTRACT_MISMATCH' });
    expect(seen).toEqual([{ type: 4, client: contractHash([Echo, Ping]), server: contractHash([Echo2, Ping]) }]);
    runtimeOf(newer).startDraining();
    await waitUntil(() => gw.node.get(newer.id)?.info.draining, 5000, 'gateway sees the newer lobby draining');
    const again = new XClient({ transport: 'tcp', contracts: contractSet(Contracts) });
    expect((await again.connect(await loginResult('after-drain'))).account).toBe('after-drain');
    await again.close();
    await newer.stop();
    await waitUntil(() => !gw.node.has(newer.id), 5000, 'the newer lobby left');
  });

  it('no contracts on the client (the numeric API) or a type without a registered hash: not checked', async () => {
    const plain = new XClient({ transport: 'tcp' });
    expect((await plain.connect(await loginResult('plain'))).account).toBe('plain');
    await plain.close();
    // Type 5 has no node here: nothing to compare its hash with.
    const other = new XClient({ transport: 'tcp', contracts: [Echo, Ping, command({ type: 5, cmd: 3, request: empty })] });
    expect((await other.connect(await loginResult('type5'))).account).toBe('type5');
    await other.close();
  });
});
