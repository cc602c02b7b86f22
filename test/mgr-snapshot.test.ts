/** src/mgr/snapshot.ts: messages built from members encoded once are byte-for-byte what protobuf-es would write. */
import { create, equals, fromBinary, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import {
  JoinedBatchSchema,
  JoinedSchema,
  MgrInfoSchema,
  NodeInfoSchema,
  RoutingPolicySchema,
  SnapshotSchema,
} from '../src/gen/xserver/v1/cluster_pb.js';
import { encodeJoined, encodeJoinedBatch, encodeSnapshot } from '../src/mgr/snapshot.js';

describe('encodeSnapshot', () => {
  it('decodes equal to the whole message encoded by protobuf-es, for 0, 1 and many members of every size', () => {
    const mgr = create(MgrInfoSchema, { instanceId: 'm-1', epoch: 7n });
    const policies = [create(RoutingPolicySchema, { type: 4, version: 'b', basisPoints: 2000, accounts: ['a'] })];
    for (const count of [0, 1, 300]) {
      const members = Array.from({ length: count }, (_, i) =>
        create(NodeInfoSchema, { id: `n-${i}`, type: 4 + (i % 3), name: 'x'.repeat(i), innerIp: '10.0.0.1', ports: [7000 + i, i], version: `v${i}` }),
      );
      for (const provisional of [false, true]) {
        const bytes = encodeSnapshot(
          members.map((m) => toBinary(NodeInfoSchema, m)),
          { mgr, provisional, policies },
        );
        const expected = create(SnapshotSchema, { members, mgr, provisional, policies });
        expect(equals(SnapshotSchema, fromBinary(SnapshotSchema, bytes), expected), `${count} members, provisional ${provisional}`).toBe(true);
        expect(bytes.length).toBe(toBinary(SnapshotSchema, expected).length);
      }
    }
  });

  it('encodeJoined is the Joined message protobuf-es encodes, for short and long infos', () => {
    for (const name of ['', 'lobby', 'x'.repeat(300)]) {
      const info = create(NodeInfoSchema, { id: 'n-1', type: 4, name, ports: [7000] });
      expect(Buffer.from(encodeJoined(toBinary(NodeInfoSchema, info)))).toEqual(Buffer.from(toBinary(JoinedSchema, create(JoinedSchema, { info }))));
    }
  });

  it('encodeJoinedBatch is the JoinedBatch protobuf-es encodes, and every suffix from an offset is one too', () => {
    const infos = ['a', 'b'.repeat(200), 'c'].map((name, i) => create(NodeInfoSchema, { id: `n-${i}`, type: 4, name, ports: [7000 + i] }));
    const { bytes, offsets } = encodeJoinedBatch(infos.map((info) => encodeJoined(toBinary(NodeInfoSchema, info))));
    expect(Buffer.from(bytes)).toEqual(Buffer.from(toBinary(JoinedBatchSchema, create(JoinedBatchSchema, { members: infos }))));
    expect(offsets).toHaveLength(infos.length + 1);
    for (let k = 0; k < infos.length; k++) {
      const suffix = fromBinary(JoinedBatchSchema, bytes.subarray(offsets[k]));
      expect(suffix.members.map((m) => m.id)).toEqual(infos.slice(k).map((m) => m.id));
    }
  });
});
