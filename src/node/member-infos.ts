/**
 * The members' infos in the mgr's SNAPSHOT, JOINED and JOINED_BATCH frames, decoded once per process.
 *
 * A process normally runs one node, and then this is a plain decode. When several nodes of one
 * process follow a cluster (tests, simulations of hundreds of nodes per process), every one of
 * them receives every member's info: N nodes × M members decodes and objects, where one real
 * node costs M. Here the nodes of a process share one decoded NodeInfo per member (keyed by its
 * exact bytes), so N simulated nodes cost what N real ones cost each on its own host.
 *
 * Shared infos are never changed in place (MembershipTable replaces an info on UPDATED). Entries
 * are dropped when their member leaves or its info changes; a process holds at most `maxEntries`
 * (the largest mgr.maxMembers of its followers), and starts over beyond that.
 */
import { JoinedBatchSchema, JoinedSchema, NodeInfoSchema, SnapshotSchema, type NodeInfo, type Snapshot } from '../gen/xserver/v1/cluster_pb.js';
import { decode } from '../wire/codec.js';
import { FieldReader } from '../wire/field-reader.js';

/** Snapshot.members, Joined.info and JoinedBatch.members are field 1. */
const MEMBER_FIELD = 1;

let followers = 0;
let maxEntries = 0;
/** Exact bytes (latin1) -> the decoded info. */
const byBytes = new Map<string, NodeInfo>();
/** Member id -> its entry's key, to drop it when the member leaves or changes. */
const keyOf = new Map<string, string>();

/** A node following the mgr's membership; the returned function ends it. */
export function followMembership(capacity: number): () => void {
  followers++;
  maxEntries = Math.max(maxEntries, capacity);
  let done = false;
  return () => {
    if (done) return;
    done = true;
    if (--followers === 0) {
      byBytes.clear();
      keyOf.clear();
      maxEntries = 0;
    }
  };
}

/** A SNAPSHOT body; the members' infos shared when other nodes of this process follow too. */
export function decodeSnapshot(body: Uint8Array): Snapshot {
  if (followers < 2) return decode(SnapshotSchema, body);
  const members: NodeInfo[] = [];
  const rest: Uint8Array[] = [];
  const r = new FieldReader(body, 'Snapshot');
  while (r.next()) {
    if (r.n === MEMBER_FIELD && r.isBytes) members.push(sharedInfo(r.bytes));
    else rest.push(body.subarray(r.start, r.pos));
  }
  const snap = decode(SnapshotSchema, rest.length === 1 ? rest[0]! : Buffer.concat(rest));
  snap.members = members;
  return snap;
}

/** A JOINED body's info (undefined when it has none). */
export function decodeJoined(body: Uint8Array): NodeInfo | undefined {
  if (followers < 2) return decode(JoinedSchema, body).info;
  return sharedMembers(body, 'Joined').pop();
}

/** A JOINED_BATCH body's infos, in order. */
export function decodeJoinedBatch(body: Uint8Array): NodeInfo[] {
  if (followers < 2) return decode(JoinedBatchSchema, body).members;
  return sharedMembers(body, 'JoinedBatch');
}

/** The shared infos of a message whose only field is its members (field 1: Joined, JoinedBatch). */
function sharedMembers(body: Uint8Array, what: string): NodeInfo[] {
  const members: NodeInfo[] = [];
  const r = new FieldReader(body, what);
  while (r.next()) if (r.n === MEMBER_FIELD && r.isBytes) members.push(sharedInfo(r.bytes));
  return members;
}

/** A member left: its entry is not needed any more. */
export function forgetMember(id: string): void {
  const key = keyOf.get(id);
  if (key === undefined) return;
  keyOf.delete(id);
  byBytes.delete(key);
}

function sharedInfo(bytes: Uint8Array): NodeInfo {
  const key = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  let info = byBytes.get(key);
  if (info) return info;
  info = decode(NodeInfoSchema, bytes);
  const old = keyOf.get(info.id);
  if (old !== undefined) byBytes.delete(old);
  else if (keyOf.size >= maxEntries) {
    byBytes.clear();
    keyOf.clear();
  }
  byBytes.set(key, info);
  keyOf.set(info.id, key);
  return info;
}

/** Entries held now (for tests). */
export function sharedInfoCount(): number {
  return byBytes.size;
}
