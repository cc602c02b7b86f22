/**
 * Login hands a client a gateway's public address; a gateway that advertises an address clients
 * cannot reach would take every login it is given and lose it. Before a gateway is handed out,
 * its public address must accept a TCP connection (the same address the client gets:
 * node/endpoints.ts). Results are cached per gateway and address: a fresh one is used as is, a
 * stale one is used while a new probe runs in the background, and only a gateway never probed
 * makes a login wait (at most `timeoutMs`).
 */
import net from 'node:net';
import type { Logger } from 'pino';
import { clientEndpoints, probeTarget } from '../node/endpoints.js';
import type { Peer } from '../node/peer.js';

export interface GatewayProbeOptions {
  enabled: boolean;
  timeoutMs: number;
  ttlMs: number;
}

interface Probe {
  address: string;
  ok: boolean;
  at: number;
  running: Promise<boolean> | null;
}

/** Resolves true when `host:port` accepts a TCP connection within `timeoutMs`. */
export function tcpReachable(host: string, port: number, timeoutMs: number): Promise<{ ok: boolean; error?: string }> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean, error?: string): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok, error });
    };
    const timer = setTimeout(() => done(false, `no connection within ${timeoutMs} ms`), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', (e) => done(false, e.message));
  });
}

export class GatewayProbe {
  private readonly probes = new Map<string, Probe>();

  constructor(
    private readonly opts: GatewayProbeOptions,
    private readonly log: Logger,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The gateways whose public address answers; forgets gateways that are no longer listed. */
  async reachable(gateways: Peer[]): Promise<Peer[]> {
    if (!this.opts.enabled) return gateways;
    const listed = new Set(gateways.map((g) => g.id));
    for (const id of this.probes.keys()) if (!listed.has(id)) this.probes.delete(id);
    const ok = await Promise.all(gateways.map((g) => this.check(g)));
    return gateways.filter((_, i) => ok[i]);
  }

  private check(g: Peer): Promise<boolean> {
    const target = probeTarget(clientEndpoints(g.info));
    if (!target) return Promise.resolve(false);
    const address = `${target.host}:${target.port}`;
    let p = this.probes.get(g.id);
    if (!p || p.address !== address) {
      p = { address, ok: false, at: -Infinity, running: null };
      this.probes.set(g.id, p);
    }
    const fresh = this.now() - p.at < this.opts.ttlMs;
    if (fresh) return Promise.resolve(p.ok);
    const first = p.at === -Infinity;
    const running = p.running ?? this.run(g.id, p, target.host, target.port);
    // A stale result stands while the new probe runs; only a first probe is waited for.
    return first ? running : Promise.resolve(p.ok);
  }

  private run(id: string, p: Probe, host: string, port: number): Promise<boolean> {
    p.running = tcpReachable(host, port, this.opts.timeoutMs).then((r) => {
      const was = p.at === -Infinity ? undefined : p.ok;
      p.ok = r.ok;
      p.at = this.now();
      p.running = null;
      if (!r.ok && was !== false) {
        this.log.warn(
          { gateway: id, address: p.address },
          `gateway ${id.slice(0, 8)} is not handed out: its public address ${p.address} does not answer (${r.error}); check gateway.publicTcp / gateway.publicUrl / outerIp`,
        );
      } else if (r.ok && was === false) this.log.info({ gateway: id, address: p.address }, 'gateway public address answers again');
      return r.ok;
    });
    return p.running;
  }
}
