/**
 * Selection strategies for "one node of a type" (SPEC §4): random (default), round-robin,
 * least-loaded (lowest overload[0], ties at random), with an optional version filter for gray
 * releases. Pure functions over the membership list; the canary policy narrows that list first
 * (NodeRuntime.one, protocol/routing-policy.ts).
 */
import type { NodeInfo } from '../gen/xserver/v1/cluster_pb.js';

export type Strategy = 'random' | 'round-robin' | 'least-loaded';

export interface SelectOptions {
  strategy?: Strategy;
  /** Exact version, or a predicate over the version string. */
  version?: string | ((version: string) => boolean);
  /** Leave this id out (e.g. self). */
  excludeId?: string;
  /** Also pick members that are draining (default false: a draining member gets no new work). */
  includeDraining?: boolean;
  /**
   * The account the work is for: with a canary policy on the type (`xserver canary`), an account in
   * the cohort gets a node of the policy's version, any other account (or none given) a node of
   * another version. Ignored when `version` is given.
   */
  account?: string;
}

export class Selector {
  private readonly cursors = new Map<number, number>();

  constructor(
    private readonly defaultStrategy: Strategy = 'random',
    private readonly random: () => number = Math.random,
  ) {}

  pick(type: number, candidates: readonly NodeInfo[], opts: SelectOptions = {}): NodeInfo | undefined {
    const list = filter(candidates, opts);
    if (list.length === 0) return undefined;
    if (list.length === 1) return list[0];
    switch (opts.strategy ?? this.defaultStrategy) {
      case 'round-robin': {
        const i = (this.cursors.get(type) ?? 0) % list.length;
        this.cursors.set(type, i + 1);
        return list[i];
      }
      case 'least-loaded': {
        let best: NodeInfo[] = [];
        let bestLoad = Infinity;
        for (const n of list) {
          const load = n.overload[0] ?? 0;
          if (load < bestLoad) {
            bestLoad = load;
            best = [n];
          } else if (load === bestLoad) best.push(n);
        }
        return best[Math.floor(this.random() * best.length)];
      }
      default:
        return list[Math.floor(this.random() * list.length)];
    }
  }
}

function filter(candidates: readonly NodeInfo[], opts: SelectOptions): readonly NodeInfo[] {
  const { version, excludeId, includeDraining } = opts;
  const skipDraining = includeDraining !== true && candidates.some((n) => n.draining);
  if (version === undefined && excludeId === undefined && !skipDraining) return candidates;
  const match = typeof version === 'function' ? version : version === undefined ? () => true : (v: string) => v === version;
  return candidates.filter((n) => n.id !== excludeId && match(n.version) && !(skipDraining && n.draining));
}
