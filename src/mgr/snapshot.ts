/**
 * SNAPSHOT bytes without re-encoding every member for every registration: a member's NodeInfo
 * is encoded once (its session keeps the bytes until its info changes), and the snapshot is the
 * other fields followed by each member as a length-delimited field 1 — the same message to any
 * protobuf decoder (a repeated field may come in any place, fields in any order). In a join storm
 * of N nodes this is N encodes instead of N²/2.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { SnapshotSchema, type MgrInfo, type RoutingPolicy } from '../gen/xserver/v1/cluster_pb.js';

/** Snapshot.members is field 1, length-delimited: tag (1 << 3) | 2. */
const MEMBERS_TAG = 0x0a;

export function encodeSnapshot(members: readonly Uint8Array[], rest: { mgr: MgrInfo; provisional: boolean; policies: RoutingPolicy[] }): Uint8Array {
  const head = toBinary(SnapshotSchema, create(SnapshotSchema, { members: [], ...rest }));
  let size = head.length;
  for (const m of members) size += 1 + varintSize(m.length) + m.length;
  const out = new Uint8Array(size);
  out.set(head, 0);
  let at = head.length;
  for (const m of members) {
    out[at++] = MEMBERS_TAG;
    let n = m.length;
    while (n >= 0x80) {
      out[at++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    out[at++] = n;
    out.set(m, at);
    at += m.length;
  }
  return out;
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n >>>= 7;
    size++;
  }
  return size;
}
