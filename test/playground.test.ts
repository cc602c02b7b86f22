/**
 * The playground's contract list: what a service publishes in its NodeInfo (bounded in count and
 * bytes), what login makes of the membership, and that /playground exists only with
 * login.playground. The page itself runs in headless Chromium in test/e2e/playground.test.ts.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { startDevCluster, type DevCluster } from '../src/dev.js';
import { ContractInfoSchema, NodeInfoSchema } from '../src/gen/xserver/v1/cluster_pb.js';
import { playgroundListing, type PlaygroundListing } from '../src/login/playground.js';
import { publishedContracts } from '../src/node/contract-info.js';
import { command, contractHash, empty, jsonCodec } from '../src/protocol/contract.js';
import { defineService } from '../src/service.js';

const T = 7;
const Echo = command({
  type: T,
  cmd: 1,
  name: 'pg.echo',
  request: jsonCodec<{ text: string }>('echo@1'),
  response: jsonCodec<{ text: string }>(),
  example: { text: 'hi' },
});
const News = command({ type: T, cmd: 2, name: 'pg.news', request: jsonCodec<{ headline: string }>() });
const Ping = command({ type: T, cmd: 3, name: 'pg.ping', request: empty, response: empty });
/** Another type's contract in the same module: not this service's to publish. */
const Other = command({ type: T + 1, cmd: 1, name: 'other.thing', request: jsonCodec<unknown>() });
const CONTRACTS = [News, Other, Ping, Echo];

const ALL = { maxCount: 64, maxBytes: 8192 };

describe('publishedContracts (what a service lists in its NodeInfo)', () => {
  it("lists the node's own type only, in command order, with the JSON example as text", () => {
    const pub = publishedContracts(CONTRACTS, T, ALL);
    expect(pub.infos.map((i) => [i.name, i.cmd, i.requestKind, i.responseKind, i.oneWay, i.example])).toEqual([
      ['pg.echo', 1, 'json:echo@1', 'json', false, '{"text":"hi"}'],
      ['pg.news', 2, 'json', '', true, ''],
      ['pg.ping', 3, 'empty', 'empty', false, ''],
    ]);
    expect(pub.unlisted).toEqual([]);
    expect(pub.examplesDropped).toEqual([]);
  });

  it('an example is published only for a JSON codec', () => {
    const raw = { kind: 'proto:x.v1.Thing', encode: () => new Uint8Array([1]), decode: () => 'x' };
    const c = command({ type: T, cmd: 9, name: 'pg.proto', request: raw, example: 'anything' });
    expect(publishedContracts([c], T, ALL).infos[0]!.example).toBe('');
  });

  it('stops at maxCount and names the contracts it left out', () => {
    const many = Array.from({ length: 10 }, (_, i) => command({ type: T, cmd: i, name: `pg.c${i}`, request: jsonCodec<unknown>() }));
    const pub = publishedContracts(many, T, { maxCount: 4, maxBytes: 8192 });
    expect(pub.infos.map((i) => i.cmd)).toEqual([0, 1, 2, 3]);
    expect(pub.unlisted).toEqual(['pg.c4', 'pg.c5', 'pg.c6', 'pg.c7', 'pg.c8', 'pg.c9']);
  });

  it('stays within maxBytes: an example that does not fit goes first, then the contract', () => {
    const big = command({ type: T, cmd: 1, name: 'pg.big', request: jsonCodec<{ s: string }>(), example: { s: 'x'.repeat(500) } });
    const next = command({ type: T, cmd: 2, name: 'pg.next', request: jsonCodec<unknown>() });
    const bare = toBinary(
      ContractInfoSchema,
      create(ContractInfoSchema, { name: 'pg.big', type: T, cmd: 1, requestKind: 'json', oneWay: true }),
    ).length;
    // Room for the big one without its example, and for nothing else.
    const pub = publishedContracts([big, next], T, { maxCount: 64, maxBytes: bare + 5 });
    expect(pub.infos.map((i) => [i.name, i.example])).toEqual([['pg.big', '']]);
    expect(pub.examplesDropped).toEqual(['pg.big']);
    expect(pub.unlisted).toEqual(['pg.next']);
    const total = pub.infos.reduce((n, i) => n + toBinary(ContractInfoSchema, i).length, 0);
    expect(total).toBeLessThanOrEqual(bare + 5);
    expect(publishedContracts([big, next], T, { maxCount: 64, maxBytes: 0 }).infos).toEqual([]);
  });

  it('command() refuses an example its request codec cannot encode', () => {
    expect(() => command({ type: T, cmd: 1, name: 'pg.bad', request: jsonCodec<unknown>(), example: { n: 1n } })).toThrow(
      /example of pg\.bad does not encode/,
    );
  });

  it('the example is not part of the contract hash', () => {
    const without = command({
      type: T,
      cmd: 1,
      name: 'pg.echo',
      request: jsonCodec<{ text: string }>('echo@1'),
      response: jsonCodec<{ text: string }>(),
    });
    expect(contractHash([Echo], T)).toBe(contractHash([without], T));
  });
});

describe('playgroundListing (login: the contracts of the live services)', () => {
  const info = (id: string, type: number, hash: string, contracts: ReturnType<typeof publishedContracts>['infos']) =>
    create(NodeInfoSchema, { id, type, name: `svc${type}`, contractHash: hash, contracts });

  it('one entry per service type: the union of its nodes, every hash seen, client command numbers', () => {
    const v1 = publishedContracts([Echo], T, ALL).infos;
    const v2 = publishedContracts([Echo, News], T, ALL).infos;
    const l = playgroundListing([info('a', T, 'h1', v1), info('b', T, 'h2', v2), info('gw', 3, '', []), info('c', 4, '', [])], 1000, 64);
    expect(l.cmdOffset).toBe(1000);
    expect(l.services.map((s) => [s.type, s.nodes, s.contractHashes, s.contracts.map((c) => [c.name, c.clientCmd])])).toEqual([
      [4, 1, [''], []],
      [
        T,
        2,
        ['h1', 'h2'],
        [
          ['pg.echo', T * 1000 + 1],
          ['pg.news', T * 1000 + 2],
        ],
      ],
    ]);
    expect(l.services[1]!.contracts[0]!.example).toBe('{"text":"hi"}');
  });

  it('caps each type at maxPerType and ignores entries of another type than the node', () => {
    const many = Array.from({ length: 10 }, (_, i) => command({ type: T, cmd: i, name: `pg.c${i}`, request: jsonCodec<unknown>() }));
    const foreign = publishedContracts([Other], T + 1, ALL).infos;
    const l = playgroundListing([info('a', T, 'h', [...publishedContracts(many, T, ALL).infos, ...foreign])], 1000, 3);
    expect(l.services[0]!.contracts.map((c) => c.name)).toEqual(['pg.c0', 'pg.c1', 'pg.c2']);
  });
});

describe('/playground on the login service', () => {
  const service = defineService({ type: T, name: 'pg', contracts: CONTRACTS, start: (node) => void node.handleClient(Echo, (req) => req) });

  async function withCluster(playground: boolean | undefined, fn: (dev: DevCluster) => Promise<void>): Promise<void> {
    const dev = await startDevCluster({
      services: [service],
      configure: (c) => {
        c.login.port = 0;
        if (playground !== undefined) c.login.playground = playground;
      },
    });
    try {
      await fn(dev);
    } finally {
      await dev.stop();
    }
  }

  it('with login.playground (on in startDevCluster): the page, and the contracts the live service publishes', async () => {
    await withCluster(undefined, async (dev) => {
      expect(dev.playgroundUrl).toBe(`${dev.loginUrl}/playground/`);
      const page = await fetch(dev.playgroundUrl!);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      expect(await page.text()).toContain('<title>xserver playground</title>');
      const redirect = await fetch(`${dev.loginUrl}/playground`, { redirect: 'manual' });
      expect([redirect.status, redirect.headers.get('location')]).toEqual([301, '/playground/']);
      expect((await fetch(`${dev.loginUrl}/playground/app.js`)).headers.get('content-type')).toMatch(/^text\/javascript/);

      const r = await fetch(`${dev.loginUrl}/playground/contracts.json`);
      expect(r.headers.get('cache-control')).toBe('no-store');
      const l = (await r.json()) as PlaygroundListing;
      expect(l.cmdOffset).toBe(dev.config.gateway.cmdOffset);
      expect(l.services).toHaveLength(1);
      const s = l.services[0]!;
      expect([s.type, s.name, s.nodes, s.contractHashes]).toEqual([T, 'pg', 1, [contractHash(CONTRACTS, T)]]);
      expect(s.contracts).toEqual([
        {
          name: 'pg.echo',
          type: T,
          cmd: 1,
          clientCmd: T * l.cmdOffset + 1,
          requestKind: 'json:echo@1',
          responseKind: 'json',
          oneWay: false,
          example: '{"text":"hi"}',
        },
        { name: 'pg.news', type: T, cmd: 2, clientCmd: T * l.cmdOffset + 2, requestKind: 'json', responseKind: '', oneWay: true },
        { name: 'pg.ping', type: T, cmd: 3, clientCmd: T * l.cmdOffset + 3, requestKind: 'empty', responseKind: 'empty', oneWay: false },
      ]);
    });
  });

  it('node.maxPublishedContracts bounds what a live service lists', async () => {
    const many = Array.from({ length: 20 }, (_, i) => command({ type: T, cmd: i, name: `pg.c${i}`, request: jsonCodec<unknown>() }));
    const dev = await startDevCluster({
      services: [defineService({ type: T, name: 'pg', contracts: many, start: () => {} })],
      configure: (c) => {
        c.login.port = 0;
        c.node.maxPublishedContracts = 5;
      },
    });
    try {
      const l = (await (await fetch(`${dev.loginUrl}/playground/contracts.json`)).json()) as PlaygroundListing;
      expect(l.services[0]!.contracts.map((c) => c.cmd)).toEqual([0, 1, 2, 3, 4]);
      // The hash still covers all twenty: the gateway checks what is served, not what is listed.
      expect(l.services[0]!.contractHashes).toEqual([contractHash(many, T)]);
    } finally {
      await dev.stop();
    }
  });

  it('is 404 with login.playground off (the default outside startDevCluster), the page and the list alike', async () => {
    await withCluster(false, async (dev) => {
      expect(dev.playgroundUrl).toBeNull();
      for (const p of ['/playground', '/playground/', '/playground/app.js', '/playground/contracts.json']) {
        const r = await fetch(`${dev.loginUrl}${p}`, { redirect: 'manual' });
        expect(r.status, p).toBe(404);
        const b = (await r.json()) as { error: { code: string; message: string } };
        expect(b.error.code).toBe('NOT_FOUND');
        expect(b.error.message).toMatch(/the playground is off \(login\.playground/);
      }
    });
  });
});
