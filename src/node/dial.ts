/**
 * How the node runtime opens a link: `Link.dial` in production. PeerLink and MgrClient take a
 * dialer so their unit tests can hand them fake links (no sockets, fake timers).
 */
import { Link, type LinkIdentity, type LinkOptions } from '../link/link.js';

export type LinkDialer = (host: string, port: number, self: LinkIdentity, expect: { type: number; id: string }, opts: LinkOptions) => Promise<Link>;

export const dialLink: LinkDialer = (host, port, self, expect, opts) => Link.dial(host, port, self, expect, opts);
