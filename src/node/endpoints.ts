/**
 * Where clients reach a gateway, from its membership info: the public URL and TCP address it
 * advertises (gateway.publicUrl / gateway.publicTcp), else its outer address and client ports.
 * What login hands out and what it probes are the same values.
 */
import type { NodeInfo } from '../gen/xserver/v1/cluster_pb.js';
import { parseHostPort } from '../config/addresses.js';

export interface ClientEndpoints {
  /** TCP clients: host and port (port 0 = no TCP listener). */
  host: string;
  tcpPort: number;
  /** WebSocket clients ("" = no WebSocket listener). */
  wsUrl: string;
  /** The client ports speak TLS (TLS over TCP, wss://). */
  tls: boolean;
}

export function clientEndpoints(info: NodeInfo): ClientEndpoints {
  const tcp = info.publicTcp ? parseHostPort(info.publicTcp) : undefined;
  const host = tcp?.host ?? info.outerIp;
  const tcpPort = tcp?.port ?? info.ports[1] ?? 0;
  const wsPort = info.ports[2] ?? 0;
  const wsUrl = info.publicUrl || (wsPort > 0 ? `${info.clientTls ? 'wss' : 'ws'}://${bracketed(info.outerIp)}:${wsPort}/` : '');
  return { host, tcpPort, wsUrl, tls: info.clientTls };
}

/** The host:port a client connection goes to first: TCP when there is a TCP listener, else the WebSocket URL's. */
export function probeTarget(e: ClientEndpoints): { host: string; port: number } | undefined {
  if (e.tcpPort > 0) return { host: e.host, port: e.tcpPort };
  if (e.wsUrl === '') return undefined;
  const u = new URL(e.wsUrl);
  return { host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(u.port) || (u.protocol === 'wss:' ? 443 : 80) };
}

function bracketed(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
