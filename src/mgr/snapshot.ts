/**
 * Membership messages built from members' encoded infos, so a member's NodeInfo is encoded once
 * (its session keeps the bytes until its info changes) instead of once per registration:
 *
 *   SNAPSHOT  the other fields, then each member as a length-delimited field 1 — the same
 *             message to any protobuf decoder (a repeated field may come in any place, fields in
 *             any order). In a join storm of N nodes: N encodes instead of N²/2.
 *   JOINED    the member as field 1.
 *   JOINED_BATCH  several JOINED bodies back to back (JoinedBatch.members is field 1 too), so
 *             any run of them from one start is a JoinedBatch of its own.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { SnapshotSchema, type MgrInfo, type RoutingPolicy } from '../gen/xserver/v1/cluster_pb.js';
import { varintSize, writeVarint } from '../wire/varint.js';

/** Snapshot.members and Joined.info are both field 1, length-delimited: tag (1 << 3) | 2. */
const FIELD_1_LEN = 0x0a;

const fieldSize = (b: Uint8Array): number => 1 + varintSize(b.length) + b.length;

function writeField(out: Uint8Array, at: number, b: Uint8Array): number {
  out[at++] = FIELD_1_LEN;
  at = writeVarint(out, at, b.length);
  out.set(b, at);
  return at + b.length;
}

export function encodeSnapshot(members: readonly Uint8Array[], rest: { mgr: MgrInfo; provisional: boolean; policies: RoutingPolicy[] }): Uint8Array {
  const head = toBinary(SnapshotSchema, create(SnapshotSchema, { members: [], ...rest }));
  let size = head.length;
  for (const m of members) size += fieldSize(m);
  const out = new Uint8Array(size);
  out.set(head, 0);
  let at = head.length;
  for (const m of members) at = writeField(out, at, m);
  return out;
}

/** Joined {info} from the member's encoded NodeInfo. */
export function encodeJoined(info: Uint8Array): Uint8Array {
  const out = new Uint8Array(fieldSize(info));
  writeField(out, 0, info);
  return out;
}

/** JOINED bodies back to back (a JoinedBatch), and where each starts (offsets[bodies.length] is the end). */
export function encodeJoinedBatch(bodies: readonly Uint8Array[]): { bytes: Uint8Array; offsets: number[] } {
  const offsets = [0];
  for (const b of bodies) offsets.push(offsets[offsets.length - 1]! + b.length);
  const bytes = new Uint8Array(offsets[bodies.length]!);
  bodies.forEach((b, k) => bytes.set(b, offsets[k]));
  return { bytes, offsets };
}
