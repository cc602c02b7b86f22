/**
 * Bind vs advertise: where a listener listens is not always where others reach it (Docker, NAT,
 * Kubernetes). Two pure pieces the loader applies:
 *
 * - `${NAME}` / `${NAME:-fallback}` in a setting's value is replaced by the environment variable
 *   (`innerIp = "${POD_IP}"`); `$${` is a literal `${`. An unset variable without a fallback is
 *   a configuration error, never an empty address.
 * - An empty advertised address is derived from the bind address: one address is advertised as
 *   is; a wildcard (0.0.0.0, ::, empty) advertises the host's first non-loopback IPv4 address
 *   (else IPv6), so two hosts never both advertise 127.0.0.1 by default.
 */
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { isLoopback } from './security.js';

const REFERENCE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

export type Expanded = { value: string } | { error: string };

/** Replaces `${NAME}` and `${NAME:-fallback}` from `env`; an empty variable counts as unset. */
export function expandEnv(text: string, env: NodeJS.ProcessEnv): Expanded {
  if (!text.includes('${')) return { value: text };
  const missing: string[] = [];
  const value = text.replace(REFERENCE, (whole, name: string | undefined, fallback: string | undefined) => {
    if (name === undefined) return '${';
    const v = env[name];
    if (v !== undefined && v !== '') return v;
    if (fallback !== undefined) return fallback;
    missing.push(name);
    return whole;
  });
  if (missing.length > 0) {
    return {
      error: `refers to environment variable ${missing.map((n) => '${' + n + '}').join(', ')}, which is not set (write \${NAME:-fallback} for a default)`,
    };
  }
  return { value };
}

/** True for addresses that mean "every interface". */
export function isWildcard(host: string): boolean {
  const h = host.trim();
  return h === '' || h === '0.0.0.0' || h === '::' || h === '[::]';
}

export interface Advertised {
  address: string;
  /** Set when no address other hosts could reach was found: the caller warns. */
  warning?: string;
}

/** What to advertise for a listener bound to `bind`, given the host's interfaces (os.networkInterfaces()). */
export function advertisedFor(bind: string, interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>): Advertised {
  if (!isWildcard(bind)) return { address: bind.trim() };
  const all = Object.values(interfaces).flatMap((list) => list ?? []);
  const usable = all.filter((i) => !i.internal && !isLoopback(i.address) && !(i.family === 'IPv6' && i.address.toLowerCase().startsWith('fe80:')));
  const v4 = usable.find((i) => i.family === 'IPv4');
  const pick = v4 ?? usable[0];
  if (pick) return { address: pick.address };
  return { address: '127.0.0.1', warning: `bound to ${bind || 'every interface'} but the host has no non-loopback address: advertising 127.0.0.1` };
}

/**
 * The advertised addresses of a config: loadConfig fills empty ones in already; a config built
 * in code (defaultConfig() and changes) may still hold '' and gets the same derivation here.
 */
export function advertisedAddresses(cfg: { innerIp: string; outerIp: string; bindHost: string; gateway: { host: string } }): {
  inner: string;
  outer: string;
} {
  const ifaces = cfg.innerIp === '' || cfg.outerIp === '' ? networkInterfaces() : {};
  return {
    inner: cfg.innerIp || advertisedFor(cfg.bindHost, ifaces).address,
    outer: cfg.outerIp || advertisedFor(cfg.gateway.host, ifaces).address,
  };
}

/** `host:port`, with an IPv6 host in brackets. */
export function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** `host:port` → parts; IPv6 hosts in brackets. Undefined when it is not of that form. */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}
