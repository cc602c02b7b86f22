/**
 * mgr.joinBatchMs (src/mgr/mgr.ts): in a join storm the mgr sends the JOINED of one window together.
 * Every member still learns of every other exactly once, never of itself, and a member's JOINED
 * always comes before its LEFT. In process, real links, real Redis.
 */
import { randomUUID } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { afterAll, describe, expect, it } from 'vitest';
import { linkOptions } from '../src/context.js';
import { JoinedBatchSchema, JoinedSchema, NodeInfoSchema, RegisterSchema } from '../src/gen/xserver/v1/cluster_pb.js';
import { Link } from '../src/link/link.js';
import { silentLogger } from '../src/log.js';
import { ClusterNode } from '../src/node/node.js';
import { Cmd, NodeType } from '../src/protocol/commands.js';
import { decode, encode } from '../src/wire/codec.js';
import { startCluster, waitUntil } from './helpers/inproc.js';

const NODES = 30;
let c: Awaited<ReturnType<typeof startCluster>> | undefined;

afterAll(async () => {
  await c?.cleanup();
});

describe('JOINED in batches during a join storm', () => {
  it('every node hears of every other once, never of itself, and of a member joining before it leaving', async () => {
    c = await startCluster((cfg) => {
      cfg.mgr.joinBatchMs = 50;
    });
    const seen = new Map<ClusterNode, string[]>();
    const nodes = Array.from({ length: NODES }, (_, i) => {
      const n = c!.own(new ClusterNode(c!.ctx, { type: 4, name: `storm-${i}` }));
      const events: string[] = [];
      seen.set(n, events);
      n.on('joined', (p) => events.push(`joined ${p.id}`));
      n.on('left', (p) => events.push(`left ${p.id}`));
      return n;
    });
    await Promise.all(nodes.map((n) => n.start()));
    await Promise.all(nodes.map((n) => n.ready(5000)));
    await waitUntil(() => nodes.every((n) => seen.get(n)!.length === NODES - 1), 5000, 'every node heard of every other');
    for (const n of nodes) {
      const joined = seen
        .get(n)!
        .filter((e) => e.startsWith('joined'))
        .sort();
      const others = nodes
        .filter((o) => o !== n)
        .map((o) => `joined ${o.id}`)
        .sort();
      expect(joined, n.id).toEqual(others);
    }
    const [gone, late] = [nodes[0]!, nodes[NODES - 1]!];
    await gone.stop();
    await waitUntil(() => nodes.slice(1).every((n) => seen.get(n)!.includes(`left ${gone.id}`)), 5000, 'every node saw it leave');
    for (const n of nodes.slice(1)) {
      const ev = seen.get(n)!;
      expect(ev.indexOf(`joined ${gone.id}`), n.id).toBeLessThan(ev.indexOf(`left ${gone.id}`));
    }
    expect(seen.get(late)!.filter((e) => e === `joined ${late.id}`)).toEqual([]);
  });

  it('a member that leaves while its JOINED waits in the window is never listed: the JOINED goes first', async () => {
    const d = await startCluster((cfg) => {
      cfg.mgr.joinBatchMs = 20_000; // far longer than the whole sequence below
    });
    try {
      // Settled first: the settled snapshot would tell the watcher of everyone anyway.
      await waitUntil(() => !d.mgr.isSettling, 5000, 'the mgr settled');
      const watcher = d.own(new ClusterNode(d.ctx, { type: 4, name: 'watcher' }));
      await watcher.start();
      await watcher.ready(5000);
      const events: string[] = [];
      watcher.on('joined', (p) => events.push(`joined ${p.name}`));
      watcher.on('left', (p) => events.push(`left ${p.name}`));
      const opener = d.own(new ClusterNode(d.ctx, { type: 4, name: 'opener' })); // the watcher's JOINED opened the window: this one waits
      await opener.start();
      await opener.ready(5000);
      const brief = new ClusterNode(d.ctx, { type: 4, name: 'brief' }); // its JOINED waits in the window
      await brief.start();
      await brief.ready(5000);
      await brief.stop();
      await waitUntil(() => events.includes('left brief'), 5000, 'the watcher hears brief left');
      expect(events).toEqual(['joined opener', 'joined brief', 'left brief']);
      expect(
        watcher
          .list(4)
          .map((p) => p.name)
          .sort(),
      ).toEqual(['opener', 'watcher']);
    } finally {
      await d.cleanup();
    }
  });

  it('a member that asks for JOINED_BATCH gets a window as one frame; one that does not (an older node) gets JOINED frames', async () => {
    const d = await startCluster((cfg) => {
      cfg.mgr.joinBatchMs = 100;
      cfg.mgr.checkAdvertised = false; // the two watchers below are bare links with no listener to dial back
    });
    const links: Link[] = [];
    try {
      await waitUntil(() => !d.mgr.isSettling, 5000, 'the mgr settled');
      const lease = (await d.store.readLease())!;
      const watch = async (joinedBatches: boolean) => {
        const id = randomUUID();
        const link = await Link.dial(
          '127.0.0.1',
          lease.port,
          { type: 4, id },
          { type: NodeType.MGR, id: lease.instanceId },
          linkOptions(d.config, silentLogger()),
        );
        links.push(link);
        const frames: { cmd: number; ids: string[] }[] = [];
        link.onFrame = (f) => {
          if (f.cmd === Cmd.JOINED) frames.push({ cmd: f.cmd, ids: [decode(JoinedSchema, f.body).info!.id] });
          if (f.cmd === Cmd.JOINED_BATCH) frames.push({ cmd: f.cmd, ids: decode(JoinedBatchSchema, f.body).members.map((m) => m.id) });
        };
        link.start();
        const info = create(NodeInfoSchema, { id, type: 4, name: 'watcher', innerIp: '127.0.0.1', ports: [1] });
        await link.request(Cmd.REGISTER, encode(RegisterSchema, { info, joinedBatches }), 3000);
        return frames;
      };
      const batched = await watch(true);
      const single = await watch(false);
      const storm = Array.from({ length: 12 }, (_, i) => d.own(new ClusterNode(d.ctx, { type: 4, name: `s-${i}` })));
      await Promise.all(storm.map((n) => n.start()));
      const ids = storm.map((n) => n.id).sort();
      const inStorm = new Set(ids);
      const heard = (frames: { ids: string[] }[]) => frames.flatMap((f) => f.ids).filter((id) => inStorm.has(id));
      await waitUntil(() => heard(batched).length >= ids.length && heard(single).length >= ids.length, 5000, 'both watchers heard of the storm');
      expect([...heard(batched)].sort()).toEqual(ids);
      expect([...heard(single)].sort()).toEqual(ids);
      expect(batched.some((f) => f.cmd === Cmd.JOINED_BATCH && f.ids.length > 1)).toBe(true);
      expect(single.every((f) => f.cmd === Cmd.JOINED)).toBe(true);
      expect(heard(batched)).toEqual(heard(single)); // registration order either way
    } finally {
      for (const l of links) l.close();
      await d.cleanup();
    }
  });
});
