import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { NodeInfoSchema } from '../src/gen/xserver/v1/cluster_pb.js';
import { MembershipTable } from '../src/node/membership.js';
import { Selector } from '../src/node/select.js';

const info = (id: string, type = 4, over: MessageInitShape<typeof NodeInfoSchema> = {}) =>
  create(NodeInfoSchema, { id, type, innerIp: '127.0.0.1', ports: [1000], version: '1.0.0', ...over });

describe('MembershipTable', () => {
  it('indexes by id and type and removes cleanly', () => {
    const t = new MembershipTable();
    expect(t.upsert(info('a'))).toBe('added');
    expect(t.upsert(info('b', 5))).toBe('added');
    expect(t.upsert(info('c'))).toBe('added');
    expect(t.ofType(4).map((i) => i.id)).toEqual(['a', 'c']);
    expect(t.remove('a')?.id).toBe('a');
    expect(t.ofType(4).map((i) => i.id)).toEqual(['c']);
    expect(t.remove('a')).toBeUndefined();
    t.remove('b');
    expect(t.types()).toEqual([4]);
  });

  it('reports an update only when something observable changed', () => {
    const t = new MembershipTable();
    t.upsert(info('a'));
    expect(t.upsert(info('a'))).toBe('same');
    expect(t.upsert(info('a', 4, { version: '2.0.0' }))).toBe('updated');
  });

  it('reconciles a settled snapshot: joins, updates and leaves', () => {
    const t = new MembershipTable();
    t.upsert(info('a'));
    t.upsert(info('b'));
    const d = t.reconcile([info('b', 4, { overload: [5] }), info('c')], false);
    expect(d.joined.map((i) => i.id)).toEqual(['c']);
    expect(d.updated.map((i) => i.id)).toEqual(['b']);
    expect(d.left.map((i) => i.id)).toEqual(['a']);
    expect(
      t
        .all()
        .map((i) => i.id)
        .sort(),
    ).toEqual(['b', 'c']);
  });

  it('a provisional snapshot never removes a peer (it may still come back)', () => {
    const t = new MembershipTable();
    t.upsert(info('a'));
    const d = t.reconcile([info('b')], true);
    expect(d.left).toEqual([]);
    expect(t.has('a')).toBe(true);
  });
});

describe('Selector', () => {
  const nodes = [
    info('a', 4, { overload: [5], version: '1' }),
    info('b', 4, { overload: [1], version: '2' }),
    info('c', 4, { overload: [1], version: '2' }),
  ];

  it('round-robin cycles through all candidates', () => {
    const s = new Selector('round-robin');
    expect([0, 1, 2, 3].map(() => s.pick(4, nodes)!.id)).toEqual(['a', 'b', 'c', 'a']);
  });

  it('least-loaded picks among the lowest overload[0]', () => {
    const s = new Selector('least-loaded');
    const seen = new Set(Array.from({ length: 50 }, () => s.pick(4, nodes)!.id));
    expect([...seen].sort()).toEqual(['b', 'c']);
  });

  it('random covers every candidate', () => {
    const s = new Selector('random');
    const seen = new Set(Array.from({ length: 200 }, () => s.pick(4, nodes)!.id));
    expect(seen.size).toBe(3);
  });

  it('filters by version (exact or predicate) and excludes an id', () => {
    const s = new Selector('random');
    expect(new Set(Array.from({ length: 30 }, () => s.pick(4, nodes, { version: '1' })!.id))).toEqual(new Set(['a']));
    expect(s.pick(4, nodes, { version: (v) => v === '3' })).toBeUndefined();
    expect(new Set(Array.from({ length: 30 }, () => s.pick(4, nodes, { excludeId: 'a', version: '2' })!.id))).toEqual(new Set(['b', 'c']));
  });

  it('returns undefined when there is no candidate', () => {
    expect(new Selector().pick(4, [])).toBeUndefined();
  });
});
