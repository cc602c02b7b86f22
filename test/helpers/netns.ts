/**
 * Several "hosts" on one machine, for the multi-host tests (test/cluster/multihost.test.ts): one
 * Linux network namespace per host, each with its own address on one bridge, and the faults a real
 * network has between them.
 *
 * - `Topology.create(n)`: a bridge `xbr<suffix>` with 10.213.<k>.254/24 in the test's own
 *   namespace (the test process and a private redis-server reach the hosts through it), and hosts
 *   `xs-<suffix>-<i>` at 10.213.<k>.<10+i>, each on a veth. `<suffix>` is random, `<k>` a /24 no
 *   interface of this machine uses.
 * - `partition(a, b)` drops every packet between two hosts (both directions; iptables inside both
 *   namespaces, else blackhole routes), `heal()` lifts every partition.
 * - `lossy(host, p)` drops incoming packets of a host at random with probability p (iptables
 *   statistic); delay comes from a userspace proxy (`LatencyProxy` of cluster.ts) listening on an
 *   extra bridge address (`alias(i)`): the kernel here has no netem.
 * - `spawnPrefix(host)` is the command prefix that runs a child inside a host.
 * - `destroy()` removes namespaces, veths and the bridge; it runs synchronously, so the process
 *   'exit' guard registered here also removes whatever a failed or interrupted test left.
 *
 * `netnsUnavailable()` says why the tests must be skipped (not root, no `ip netns`).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export interface Host {
  readonly index: number;
  readonly ns: string;
  readonly ip: string;
}

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function tryRun(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Why network-namespace tests cannot run here, or null when they can. */
export function netnsUnavailable(): string | null {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (process.getuid?.() !== 0) return 'not root (ip netns needs CAP_NET_ADMIN)';
  if (!tryRun('ip', ['netns', 'list'])) return '`ip netns` is not available';
  const probe = `xs-probe-${randomBytes(3).toString('hex')}`;
  if (!tryRun('ip', ['netns', 'add', probe])) return '`ip netns add` failed';
  tryRun('ip', ['netns', 'del', probe]);
  return null;
}

let iptablesChecked: boolean | undefined;

/** True when iptables works inside a namespace (used for partitions and random loss). */
function iptablesWorks(): boolean {
  if (iptablesChecked !== undefined) return iptablesChecked;
  iptablesChecked = false;
  const probe = `xs-probe-${randomBytes(3).toString('hex')}`;
  if (!tryRun('ip', ['netns', 'add', probe])) return false;
  try {
    iptablesChecked = tryRun('ip', ['netns', 'exec', probe, 'iptables', '-L', 'INPUT', '-n']);
    return iptablesChecked;
  } finally {
    tryRun('ip', ['netns', 'del', probe]);
  }
}

const live = new Set<Topology>();
let guarded = false;

/** Last resort: a test process that exits (or is interrupted) removes what it created. */
function guard(): void {
  if (guarded) return;
  guarded = true;
  process.on('exit', () => {
    for (const t of live) t.destroy();
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const t of live) t.destroy();
      process.kill(process.pid, sig);
    });
  }
}

export class Topology {
  readonly hosts: Host[] = [];
  readonly bridge: string;
  /** The bridge's own address, in the test's namespace. */
  readonly hostSideIp: string;
  readonly iptables: boolean;
  private readonly aliases: string[] = [];
  private readonly blackholes: [Host, string][] = [];
  private destroyed = false;

  private constructor(
    readonly suffix: string,
    readonly subnet: number,
  ) {
    this.bridge = `xbr${suffix}`;
    this.hostSideIp = `10.213.${subnet}.254`;
    this.iptables = iptablesWorks();
  }

  /** True when iptables works inside namespaces here (random loss needs it). */
  static iptablesAvailable(): boolean {
    return iptablesWorks();
  }

  /** Creates `n` hosts on a fresh bridge. */
  static create(n: number): Topology {
    guard();
    const used = ip(['-o', '-4', 'addr', 'show']);
    let subnet = 0;
    for (let tries = 0; tries < 50 && subnet === 0; tries++) {
      const k = 1 + (randomBytes(1)[0]! % 250);
      if (!used.includes(`10.213.${k}.`)) subnet = k;
    }
    if (subnet === 0) throw new Error('no free 10.213.x.0/24 for the test bridge');
    const t = new Topology(randomBytes(3).toString('hex'), subnet);
    live.add(t);
    try {
      ip(['link', 'add', t.bridge, 'type', 'bridge']);
      ip(['addr', 'add', `${t.hostSideIp}/24`, 'dev', t.bridge]);
      ip(['link', 'set', t.bridge, 'up']);
      for (let i = 0; i < n; i++) {
        const host: Host = { index: i, ns: `xs-${t.suffix}-${i}`, ip: `10.213.${subnet}.${10 + i}` };
        const outer = `xv${t.suffix}${i}`;
        const inner = `xi${t.suffix}${i}`;
        ip(['netns', 'add', host.ns]);
        t.hosts.push(host);
        ip(['link', 'add', outer, 'type', 'veth', 'peer', 'name', inner]);
        ip(['link', 'set', inner, 'netns', host.ns]);
        ip(['link', 'set', outer, 'master', t.bridge, 'up']);
        ip(['-n', host.ns, 'link', 'set', 'lo', 'up']);
        ip(['-n', host.ns, 'link', 'set', inner, 'name', 'eth0']);
        ip(['-n', host.ns, 'addr', 'add', `${host.ip}/24`, 'dev', 'eth0']);
        ip(['-n', host.ns, 'link', 'set', 'eth0', 'up']);
      }
    } catch (e) {
      t.destroy();
      throw e;
    }
    return t;
  }

  host(i: number): Host {
    const h = this.hosts[i];
    if (!h) throw new Error(`no host ${i} (topology has ${this.hosts.length})`);
    return h;
  }

  /** The command prefix that runs a program inside `host`'s namespace. */
  spawnPrefix(host: Host): string[] {
    return ['ip', 'netns', 'exec', host.ns];
  }

  /** An extra address of the bridge (test side) for a delay proxy, e.g. 10.213.k.(100+i). */
  alias(i: number): string {
    const a = `10.213.${this.subnet}.${100 + i}`;
    if (!this.aliases.includes(a)) {
      ip(['addr', 'add', `${a}/24`, 'dev', this.bridge]);
      this.aliases.push(a);
    }
    return a;
  }

  private inNs(host: Host, cmd: string, args: string[]): void {
    execFileSync('ip', ['netns', 'exec', host.ns, cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  }

  /** Drops every packet between `a` and `b`, both ways. Established connections hang, new ones time out. */
  partition(a: Host, b: Host): void {
    for (const [x, y] of [
      [a, b],
      [b, a],
    ] as const) {
      if (this.iptables) {
        this.inNs(x, 'iptables', ['-I', 'INPUT', '-s', y.ip, '-j', 'DROP']);
        this.inNs(x, 'iptables', ['-I', 'OUTPUT', '-d', y.ip, '-j', 'DROP']);
      } else {
        ip(['-n', x.ns, 'route', 'add', 'blackhole', `${y.ip}/32`]);
        this.blackholes.push([x, y.ip]);
      }
    }
  }

  /** Drops incoming packets of `host` at random with probability `p` (needs iptables). */
  lossy(host: Host, p: number): void {
    if (!this.iptables) throw new Error('random loss needs iptables inside the namespaces');
    this.inNs(host, 'iptables', ['-A', 'INPUT', '-m', 'statistic', '--mode', 'random', '--probability', String(p), '-j', 'DROP']);
  }

  /** Lifts every partition and loss rule. */
  heal(): void {
    if (this.iptables) for (const h of this.hosts) this.inNs(h, 'iptables', ['-F']);
    for (const [x, addr] of this.blackholes.splice(0)) tryRun('ip', ['-n', x.ns, 'route', 'del', 'blackhole', `${addr}/32`]);
  }

  /** Removes the namespaces (their veth ends go with them) and the bridge. Safe to call twice. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    for (const h of this.hosts) tryRun('ip', ['netns', 'del', h.ns]);
    for (let i = 0; i < 16; i++) tryRun('ip', ['link', 'del', `xv${this.suffix}${i}`]);
    tryRun('ip', ['link', 'del', this.bridge]);
  }

  /** Interfaces and namespaces of this topology still present (for the cleanup assertion). */
  leftovers(): string[] {
    const out: string[] = [];
    const ns = ip(['netns', 'list']);
    for (const h of this.hosts) if (ns.includes(h.ns)) out.push(h.ns);
    const links = ip(['-o', 'link', 'show']);
    if (links.includes(this.bridge)) out.push(this.bridge);
    if (links.includes(`xv${this.suffix}`)) out.push(`xv${this.suffix}*`);
    return out;
  }
}
