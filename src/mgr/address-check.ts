/**
 * The mgr's check of a registering member's advertised intranet address: every peer will dial
 * `innerIp:ports[0]`, so the mgr dials it first. A probe handshake (link/socket-handshake.ts)
 * must reach the process holding the member's identity key there; nothing else counts (a port
 * that happens to be open on the mgr's own host is not the member). A loopback address
 * advertised by a member that registered from another host is refused without a dial.
 *
 * Results are kept per member id for `xserver doctor`: the caller drops a member's result when
 * the member leaves; refusals are kept in a small ring of the most recent.
 */
import { create } from '@bufbuild/protobuf';
import { AddressCheckSchema, type AddressCheck, type NodeInfo } from '../gen/xserver/v1/cluster_pb.js';
import { isLoopback } from '../config/security.js';
import { XError } from '../errors.js';
import type { LinkIdentity, LinkOptions } from '../link/options.js';
import { probeHandshake } from '../link/socket-handshake.js';

/** Most refusals remembered for `xserver doctor` (members that never got in). */
const MAX_REFUSED = 64;

export interface AddressCheckOptions {
  enabled: boolean;
  timeoutMs: number;
  /** The mgr's identity as the dialler of the probe. */
  self: LinkIdentity;
  link: LinkOptions;
}

export function advertisedAddress(info: NodeInfo): string {
  return `${info.innerIp}:${info.ports[0] ?? 0}`;
}

export class AddressChecker {
  private readonly results = new Map<string, AddressCheck>();
  private readonly refused = new Map<string, AddressCheck>();

  constructor(private readonly opts: AddressCheckOptions) {}

  /** True when `info` needs no dial: checks are off, or this address of this member was reached before. */
  known(info: NodeInfo): boolean {
    if (!this.opts.enabled) return true;
    const prior = this.results.get(info.id);
    return prior !== undefined && prior.reached && prior.advertised === advertisedAddress(info);
  }

  /** Records a member admitted without a dial (checks off, or mirrored from the previous mgr). */
  skip(info: NodeInfo, seenFrom: string): void {
    if (this.results.get(info.id)?.advertised === advertisedAddress(info)) return;
    this.results.set(
      info.id,
      create(AddressCheckSchema, { id: info.id, advertised: advertisedAddress(info), seenFrom, reached: true, skipped: true }),
    );
  }

  /** Dials the member back; resolves with the result (also kept), never rejects. */
  async check(info: NodeInfo, seenFrom: string): Promise<AddressCheck> {
    const advertised = advertisedAddress(info);
    const result = create(AddressCheckSchema, { id: info.id, advertised, seenFrom });
    if (isLoopback(info.innerIp) && seenFrom !== '' && !isLoopback(seenFrom)) {
      result.error = `${info.innerIp} is a loopback address, and the member registered from another host`;
    } else {
      try {
        const expect = { type: info.type, id: info.id, publicKey: info.publicKey };
        const rtt = await probeHandshake(info.innerIp, info.ports[0] ?? 0, this.opts.self, expect, {
          ...this.opts.link,
          handshakeTimeoutMs: this.opts.timeoutMs,
        });
        result.reached = true;
        result.rttMs = Math.round(rtt);
      } catch (e) {
        result.error = (e as Error).message;
      }
    }
    this.keep(result);
    return result;
  }

  /** The refusal a member gets for a failed check. */
  static refusal(r: AddressCheck): XError {
    return new XError(
      'ADVERTISE_UNREACHABLE',
      `advertised ${r.advertised} is not reachable from the mgr (registration seen from ${r.seenFrom || 'unknown'}): ${r.error}; ` +
        'set innerIp to an address the mgr and the other members can dial (bindHost is where it listens)',
      { advertised: r.advertised, seenFrom: r.seenFrom },
    );
  }

  forget(id: string): void {
    this.results.delete(id);
  }

  clear(): void {
    this.results.clear();
    this.refused.clear();
  }

  /** Every result: members' first, then recent refusals of ids that are not members. */
  all(): AddressCheck[] {
    return [...this.results.values(), ...[...this.refused.values()].filter((r) => !this.results.has(r.id))];
  }

  private keep(r: AddressCheck): void {
    if (r.reached) {
      this.results.set(r.id, r);
      this.refused.delete(r.id);
      return;
    }
    this.refused.delete(r.id);
    this.refused.set(r.id, r);
    if (this.refused.size > MAX_REFUSED) this.refused.delete(this.refused.keys().next().value!);
  }
}
