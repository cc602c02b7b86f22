/** encodeSnapshot (src/mgr/snapshot.ts): members encoded once and appended decode as the same Snapshot protobuf-es would write. */
import { create, equals, fromBinary, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { MgrInfoSchema, NodeInfoSchema, RoutingPolicySchema, SnapshotSchema } from '../src/gen/xserver/v1/cluster_pb.js';
import { encodeSnapshot } from '../src/mgr/snapshot.js';

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
});
