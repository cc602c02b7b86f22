/**
 * MembershipTable: a node's own view of the cluster, fed by the mgr's SNAPSHOT / JOINED / LEFT /
 * UPDATED. Kept across mgr outages; a snapshot from a new mgr is reconciled against it so live
 * peers see no spurious LEFT/JOINED.
 */
import type { NodeInfo } from '../gen/xserver/v1/cluster_pb.js';

export interface MembershipDiff {
  joined: NodeInfo[];
  left: NodeInfo[];
  updated: NodeInfo[];
}

export class MembershipTable {
  private readonly byId = new Map<string, NodeInfo>();
  private readonly byType = new Map<number, NodeInfo[]>();
  /** Position of each id in its type's array, so updates and removals are O(1). */
  private readonly slot = new Map<string, number>();

  get size(): number {
    return this.byId.size;
  }

  get(id: string): NodeInfo | undefined {
    return this.byId.get(id);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** Members of a type; the returned array is shared and must not be modified. */
  ofType(type: number): readonly NodeInfo[] {
    return this.byType.get(type) ?? EMPTY;
  }

  all(): NodeInfo[] {
    return [...this.byId.values()];
  }

  types(): number[] {
    return [...this.byType.keys()].sort((a, b) => a - b);
  }

  /** Adds or replaces; says which it was ("same" when nothing a peer can observe changed). */
  upsert(info: NodeInfo): 'added' | 'updated' | 'same' {
    const old = this.byId.get(info.id);
    this.byId.set(info.id, info);
    if (!old) {
      this.insert(info);
      return 'added';
    }
    if (old.type !== info.type) {
      this.detach(old);
      this.insert(info);
    } else {
      this.byType.get(old.type)![this.slot.get(old.id)!] = info;
    }
    return sameObservable(old, info) ? 'same' : 'updated';
  }

  /**
   * Applies a load/version change; undefined when the id is unknown. The info is replaced, not
   * changed: infos may be shared by the nodes of a process (see member-infos.ts).
   */
  update(id: string, overload: number[], version: string, draining: boolean): NodeInfo | undefined {
    const old = this.byId.get(id);
    if (!old) return undefined;
    const info: NodeInfo = { ...old, overload, version, draining };
    this.byId.set(id, info);
    this.byType.get(info.type)![this.slot.get(id)!] = info;
    return info;
  }

  remove(id: string): NodeInfo | undefined {
    const info = this.byId.get(id);
    if (!info) return undefined;
    this.byId.delete(id);
    this.detach(info);
    return info;
  }

  private insert(info: NodeInfo): void {
    let list = this.byType.get(info.type);
    if (!list) this.byType.set(info.type, (list = []));
    this.slot.set(info.id, list.length);
    list.push(info);
  }

  /** Swap-remove from its type's array (order within a type is not meaningful). */
  private detach(info: NodeInfo): void {
    const list = this.byType.get(info.type)!;
    const i = this.slot.get(info.id)!;
    const last = list.pop()!;
    if (last !== info) {
      list[i] = last;
      this.slot.set(last.id, i);
    }
    this.slot.delete(info.id);
    if (list.length === 0) this.byType.delete(info.type);
  }

  /**
   * Brings the table to `members`. A provisional snapshot (mgr still settling after a takeover)
   * only adds and updates: members missing from it may still be on their way back.
   */
  reconcile(members: NodeInfo[], provisional: boolean): MembershipDiff {
    const diff: MembershipDiff = { joined: [], left: [], updated: [] };
    const seen = new Set<string>();
    for (const m of members) {
      seen.add(m.id);
      const r = this.upsert(m);
      if (r === 'added') diff.joined.push(m);
      else if (r === 'updated') diff.updated.push(m);
    }
    if (!provisional) {
      for (const id of [...this.byId.keys()]) {
        if (!seen.has(id)) diff.left.push(this.remove(id)!);
      }
    }
    return diff;
  }
}

const EMPTY: readonly NodeInfo[] = Object.freeze([]);

function sameObservable(a: NodeInfo, b: NodeInfo): boolean {
  return (
    a.type === b.type &&
    a.innerIp === b.innerIp &&
    a.outerIp === b.outerIp &&
    a.version === b.version &&
    a.ports.join() === b.ports.join() &&
    a.overload.join() === b.overload.join()
  );
}
