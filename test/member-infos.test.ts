/** src/node/member-infos.ts: the nodes of one process share each member's decoded info, and decode what protobuf-es decodes. */
import { create, equals, fromBinary, toBinary } from '@bufbuild/protobuf';
import { afterEach, describe, expect, it } from 'vitest';
import { MgrInfoSchema, NodeInfoSchema, RoutingPolicySchema, SnapshotSchema, type NodeInfo } from '../src/gen/xserver/v1/cluster_pb.js';
import { encodeJoined, encodeSnapshot } from '../src/mgr/snapshot.js';
import { decodeJoined, decodeJoinedBatch, decodeSnapshot, followMembership, forgetMember, sharedInfoCount } from '../src/node/member-infos.js';
import { MembershipTable } from '../src/node/membership.js';

const info = (i: number, version = 'v1'): NodeInfo =>
  create(NodeInfoSchema, {
    id: `n-${i}`,
    type: 4 + (i % 2),
    name: 'lobby',
    innerIp: '10.0.0.1',
    ports: [7000 + i],
    version,
    publicKey: new Uint8Array(32).fill(i),
    listeners: [{ name: 'intranet', bind: `10.0.0.1:${7000 + i}`, advertised: '' }],
  });
const bytesOf = (m: NodeInfo): Uint8Array => toBinary(NodeInfoSchema, m);
const mgr = create(MgrInfoSchema, { instanceId: 'm-1', epoch: 3n });
const policies = [create(RoutingPolicySchema, { type: 4, version: 'v2', basisPoints: 500 })];
const snapshotOf = (members: NodeInfo[], provisional = false): Uint8Array => encodeSnapshot(members.map(bytesOf), { mgr, provisional, policies });

const releases: (() => void)[] = [];
const follow = (n: number, capacity = 1000): void => {
  for (let i = 0; i < n; i++) releases.push(followMembership(capacity));
};
afterEach(() => {
  for (const r of releases.splice(0)) r();
});

describe('member infos', () => {
  it('a lone node decodes plainly and keeps nothing', () => {
    follow(1);
    const members = [info(1), info(2)];
    const snap = decodeSnapshot(snapshotOf(members));
    expect(equals(SnapshotSchema, snap, create(SnapshotSchema, { members, mgr, provisional: false, policies }))).toBe(true);
    expect(decodeJoined(encodeJoined(bytesOf(info(3))))?.id).toBe('n-3');
    expect(decodeJoinedBatch(Buffer.concat([encodeJoined(bytesOf(info(4))), encodeJoined(bytesOf(info(5)))])).map((m) => m.id)).toEqual([
      'n-4',
      'n-5',
    ]);
    expect(sharedInfoCount()).toBe(0);
  });

  it('nodes of one process get the same info object from SNAPSHOT and JOINED, equal to what protobuf-es decodes', () => {
    follow(3);
    const members = Array.from({ length: 50 }, (_, i) => info(i));
    const body = snapshotOf(members, true);
    const a = decodeSnapshot(body);
    const b = decodeSnapshot(Uint8Array.prototype.slice.call(body)); // another node's copy of the frame
    expect(equals(SnapshotSchema, a, fromBinary(SnapshotSchema, body))).toBe(true);
    expect(a.provisional).toBe(true);
    expect(a.mgr?.epoch).toBe(3n);
    expect(a.policies[0]?.basisPoints).toBe(500);
    expect(a.members.every((m, i) => m === b.members[i])).toBe(true);
    const joined = decodeJoined(encodeJoined(bytesOf(info(7))));
    expect(joined).toBe(a.members[7]);
    const batch = decodeJoinedBatch(Buffer.concat([8, 9, 10].map((i) => encodeJoined(bytesOf(info(i))))));
    expect(batch).toEqual([a.members[8], a.members[9], a.members[10]]);
    expect(batch[1]).toBe(a.members[9]);
    expect(sharedInfoCount()).toBe(50);
  });

  it('reads members in any place among the other fields (what any protobuf encoder may write)', () => {
    follow(2);
    const members = [info(1), info(2), info(3)];
    const body = toBinary(SnapshotSchema, create(SnapshotSchema, { members, mgr, provisional: true, policies }));
    const snap = decodeSnapshot(body);
    expect(equals(SnapshotSchema, snap, fromBinary(SnapshotSchema, body))).toBe(true);
    // Members before, between and after the other fields.
    const mgrField = toBinary(SnapshotSchema, create(SnapshotSchema, { mgr }));
    const polField = toBinary(SnapshotSchema, create(SnapshotSchema, { policies }));
    const m = members.map((x) => toBinary(SnapshotSchema, create(SnapshotSchema, { members: [x] })));
    const mixed = Buffer.concat([m[0]!, mgrField, m[1]!, polField, m[2]!]);
    const again = decodeSnapshot(mixed);
    expect(again.members.map((x) => x.id)).toEqual(['n-1', 'n-2', 'n-3']);
    expect(again.members[1]).toBe(snap.members[1]);
    expect(again.mgr?.instanceId).toBe('m-1');
    expect(again.policies).toHaveLength(1);
  });

  it('a changed info is a new object and replaces the old entry; a member that left is forgotten', () => {
    follow(2);
    const v1 = decodeJoined(encodeJoined(bytesOf(info(1, 'v1'))))!;
    const v2 = decodeJoined(encodeJoined(bytesOf(info(1, 'v2'))))!;
    expect(v2).not.toBe(v1);
    expect([v1.version, v2.version]).toEqual(['v1', 'v2']);
    expect(sharedInfoCount()).toBe(1);
    forgetMember('n-1');
    expect(sharedInfoCount()).toBe(0);
    forgetMember('n-unknown');
  });

  it('holds at most the capacity, and nothing once the last follower stops', () => {
    follow(2, 10);
    for (let i = 0; i < 25; i++) decodeJoined(encodeJoined(bytesOf(info(i))));
    expect(sharedInfoCount()).toBeLessThanOrEqual(10);
    expect(sharedInfoCount()).toBeGreaterThan(0);
    for (const r of releases.splice(0)) r();
    expect(sharedInfoCount()).toBe(0);
  });

  it('malformed bytes are a BAD_FRAME naming the message, with or without sharing', () => {
    const bad = new Uint8Array([0x0a, 0x05, 0x01]); // field 1, 5 bytes announced, 1 there
    follow(1);
    expect(() => decodeSnapshot(bad)).toThrow(expect.objectContaining({ code: 'BAD_FRAME' }));
    follow(1);
    expect(() => decodeSnapshot(bad)).toThrow(expect.objectContaining({ code: 'BAD_FRAME' }));
    expect(() => decodeJoined(bad)).toThrow(expect.objectContaining({ code: 'BAD_FRAME' }));
    expect(() => decodeJoined(new Uint8Array([0x0a, 0x02, 0xff, 0xff]))).toThrow(expect.objectContaining({ code: 'BAD_FRAME' }));
    expect(decodeJoined(new Uint8Array(0))).toBeUndefined();
  });

  it('an UPDATED replaces the info in the table instead of changing the shared object', () => {
    follow(2);
    const shared = decodeJoined(encodeJoined(bytesOf(info(1))))!;
    const a = new MembershipTable();
    const b = new MembershipTable();
    a.upsert(shared);
    b.upsert(shared);
    const next = a.update('n-1', [5], 'v9', true)!;
    expect([shared.version, shared.overload, shared.draining]).toEqual(['v1', [], false]);
    expect([next.version, next.overload, next.draining]).toEqual(['v9', [5], true]);
    expect(a.get('n-1')).toBe(next);
    expect(a.ofType(5)).toContain(next);
    expect(b.get('n-1')).toBe(shared);
  });
});
