/**
 * Peer: a handle on one member of the cluster, with the same getters as the node itself and a
 * send (the seed's `GetNodeOne(t).SendMsg(...)`). Handles are stable per id; their info follows
 * the membership table and keeps the last known values after the peer left.
 */
import type { NodeInfo } from '../gen/xserver/v1/cluster_pb.js';
import type { Payload, RequestOptions } from './payload.js';

export interface PeerHost {
  infoOf(id: string): NodeInfo | undefined;
  sendById(id: string, cmd: number, payload: Payload): boolean;
  request(id: string, cmd: number, payload: Payload, opts?: RequestOptions): Promise<Uint8Array>;
}

export type IpKind = 'inner' | 'outer';

export class Peer {
  readonly #host: PeerHost;
  #last: NodeInfo;

  constructor(host: PeerHost, last: NodeInfo) {
    this.#host = host;
    this.#last = last;
  }

  /** The latest info (from the membership table while listed). */
  get info(): NodeInfo {
    const now = this.#host.infoOf(this.#last.id);
    if (now) this.#last = now;
    return this.#last;
  }

  get id(): string {
    return this.#last.id;
  }

  get type(): number {
    return this.#last.type;
  }

  get name(): string {
    return this.#last.name;
  }

  get version(): string {
    return this.info.version;
  }

  /** Still a member? */
  get listed(): boolean {
    return this.#host.infoOf(this.#last.id) !== undefined;
  }

  ip(kind: IpKind = 'inner'): string {
    return kind === 'outer' ? this.info.outerIp : this.info.innerIp;
  }

  port(i = 0): number {
    return this.info.ports[i] ?? 0;
  }

  overload(i = 0): number {
    return this.info.overload[i] ?? 0;
  }

  send(cmd: number, payload: Payload): boolean {
    return this.#host.sendById(this.#last.id, cmd, payload);
  }

  request(cmd: number, payload: Payload, opts?: RequestOptions): Promise<Uint8Array> {
    return this.#host.request(this.#last.id, cmd, payload, opts);
  }

  toJSON(): Record<string, unknown> {
    return infoToJson(this.info);
  }
}

export function infoToJson(i: NodeInfo): Record<string, unknown> {
  return {
    id: i.id,
    type: i.type,
    name: i.name,
    addrs: { inner: i.innerIp, outer: i.outerIp },
    ports: [...i.ports],
    version: i.version,
    overload: [...i.overload],
    startedAt: Number(i.startedAt),
    pid: i.pid,
    host: i.host,
    draining: i.draining,
    ...(i.publicUrl ? { publicUrl: i.publicUrl } : {}),
    ...(i.publicTcp ? { publicTcp: i.publicTcp } : {}),
    listeners: i.listeners.map((l) => ({ name: l.name, bind: l.bind, advertised: l.advertised })),
    ...(i.contractHash === '' ? {} : { contractHash: i.contractHash }),
  };
}
