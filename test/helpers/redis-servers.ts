/**
 * Private redis-server processes for the store's fault tests: a standalone server, or a Sentinel
 * set (master, replica, three sentinels). Each runs in its own process group (testkit) on a free
 * port with a temp dir and nothing persisted; `stop()` SIGKILLs every one and removes the dirs,
 * and the kit kills whatever is left when the test process exits.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { commandExists, freePort, killGroups, spawnGroup, waitFor, type GroupProcess } from '../../testkit/index.js';

export const HAVE_REDIS_SERVER = commandExists('redis-server');

/** How long a redis-server or sentinel gets to say it is ready. */
const START_TIMEOUT_MS = 10_000;

export class RedisServer {
  constructor(
    readonly proc: GroupProcess,
    readonly port: number,
    readonly args: string[],
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** Freezes the server (SIGSTOP): connections stay open, nothing is answered. */
  pause(): void {
    process.kill(this.pid, 'SIGSTOP');
  }

  resume(): void {
    process.kill(this.pid, 'SIGCONT');
  }
}

/** The processes a test started; `stop()` ends them all, also after a failed assertion. */
export class RedisServers {
  private readonly procs: GroupProcess[] = [];
  private readonly dirs: string[] = [];

  /** Starts a redis-server (no persistence) on a free port, or `port`, and waits until it is ready. */
  async server(label: string, extraArgs: string[] = [], port?: number): Promise<RedisServer> {
    const p = port ?? (await freePort());
    const dir = this.tempDir(label);
    const args = ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', dir, ...extraArgs];
    const proc = this.spawn(label, 'redis-server', args);
    await waitFor(() => proc.lines.some((l) => /Ready to accept connections/.test(l.line)) || exited(proc), {
      timeoutMs: START_TIMEOUT_MS,
      what: `${label} ready on ${p}`,
      wake: proc.changes,
    });
    return new RedisServer(proc, p, args);
  }

  /** Starts the same server again (same port and arguments, plus `extraArgs`) after it was killed. */
  async restart(label: string, old: RedisServer, extraArgs: string[] = []): Promise<RedisServer> {
    await old.proc.kill();
    const args = [...old.args, ...extraArgs];
    const proc = this.spawn(label, 'redis-server', args);
    await waitFor(() => proc.lines.some((l) => /Ready to accept connections/.test(l.line)) || exited(proc), {
      timeoutMs: START_TIMEOUT_MS,
      what: `${label} ready again on ${old.port}`,
      wake: proc.changes,
    });
    return new RedisServer(proc, old.port, args);
  }

  /**
   * A master, a replica of it, and three sentinels watching it as `masterName` (quorum 2, the
   * master is down after `downAfterMs`). Resolves once every sentinel knows the replica and the
   * other sentinels, i.e. a failover can happen.
   */
  async sentinelSet(masterName: string, downAfterMs: number): Promise<SentinelSet> {
    const master = await this.server('redis-master');
    const replica = await this.server('redis-replica', ['--replicaof', '127.0.0.1', String(master.port)]);
    const sentinelPorts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const dir = this.tempDir(`sentinel-${i}`);
      const conf = path.join(dir, 'sentinel.conf');
      fs.writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${masterName} 127.0.0.1 ${master.port} 2`,
          `sentinel down-after-milliseconds ${masterName} ${downAfterMs}`,
          `sentinel failover-timeout ${masterName} 10000`,
          `sentinel parallel-syncs ${masterName} 1`,
          '',
        ].join('\n'),
      );
      const proc = this.spawn(`sentinel-${i}`, 'redis-server', [conf, '--sentinel']);
      await waitFor(() => proc.lines.some((l) => /\+monitor master/.test(l.line)) || exited(proc), {
        timeoutMs: START_TIMEOUT_MS,
        what: `sentinel-${i} monitoring ${masterName}`,
        wake: proc.changes,
      });
      sentinelPorts.push(port);
    }
    const set = new SentinelSet(masterName, master, replica, sentinelPorts);
    await waitFor(
      async () => {
        for (const port of sentinelPorts) {
          const info = await set.sentinelCommand(port, ['SENTINEL', 'MASTER', masterName]);
          const fields = pairs(info as string[]);
          if (Number(fields['num-slaves']) < 1 || Number(fields['num-other-sentinels']) < 2) return false;
        }
        return true;
      },
      { timeoutMs: 20_000, what: 'every sentinel to know the replica and the other sentinels', pollMs: 100 },
    );
    return set;
  }

  /**
   * A Redis Cluster of `masters` masters with one replica each (redis-cli --cluster create), every
   * node on a free port and a free cluster-bus port, a node counted failing after `nodeTimeoutMs`.
   * Resolves once every node reports cluster_state:ok and knows all the others.
   */
  async cluster(masters: number, nodeTimeoutMs: number): Promise<RedisClusterSet> {
    const nodes: RedisServer[] = [];
    for (let i = 0; i < masters * 2; i++) {
      const busPort = await freePort();
      nodes.push(
        await this.server(`redis-cluster-${i}`, [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-node-timeout',
          String(nodeTimeoutMs),
          '--cluster-port',
          String(busPort),
        ]),
      );
    }
    const create = this.spawn('redis-cli-cluster-create', 'redis-cli', [
      '--cluster',
      'create',
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas',
      '1',
      '--cluster-yes',
    ]);
    await waitFor(() => create.exitInfo !== null, { timeoutMs: 30_000, what: 'redis-cli --cluster create to finish', wake: create.changes });
    if (create.exitInfo?.code !== 0) throw new Error(`redis-cli --cluster create failed: ${create.lines.map((l) => l.line).join('\n')}`);
    const set = new RedisClusterSet(nodes);
    await set.healthy(30_000);
    return set;
  }

  async stop(): Promise<void> {
    await killGroups(this.procs.splice(0));
    for (const d of this.dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  }

  private spawn(label: string, command: string, args: string[]): GroupProcess {
    const proc = spawnGroup({ label, command, args, stdin: 'ignore' });
    this.procs.push(proc);
    return proc;
  }

  private tempDir(label: string): string {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), `xs-${label}-`));
    this.dirs.push(d);
    return d;
  }
}

export class SentinelSet {
  constructor(
    readonly masterName: string,
    /** The servers as the test last arranged them; after a failover the test swaps them. */
    public master: RedisServer,
    public replica: RedisServer,
    readonly sentinelPorts: number[],
  ) {}

  /** Resolves once `replica` is in sync with the master and every sentinel counts it as a healthy replica. */
  async replicaReady(timeoutMs: number): Promise<void> {
    await waitFor(
      async () => {
        const info = String(await this.sentinelCommand(this.replica.port, ['INFO', 'replication']));
        if (!/master_link_status:up/.test(info)) return false;
        for (const port of this.sentinelPorts) {
          const replicas = (await this.sentinelCommand(port, ['SENTINEL', 'REPLICAS', this.masterName])) as string[][];
          const mine = replicas.map(pairs).find((r) => Number(r.port) === this.replica.port);
          if (!mine || /s_down|o_down|disconnected/.test(mine.flags)) return false;
        }
        return true;
      },
      { timeoutMs, what: `replica ${this.replica.port} in sync and known to every sentinel`, pollMs: 100, retryErrors: true },
    );
  }

  get url(): string {
    return `redis-sentinel://${this.sentinelPorts.map((p) => `127.0.0.1:${p}`).join(',')}/${this.masterName}`;
  }

  /** The master's port as the first sentinel reports it. */
  async masterPort(): Promise<number> {
    const [, port] = (await this.sentinelCommand(this.sentinelPorts[0], ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.masterName])) as string[];
    return Number(port);
  }

  async sentinelCommand(port: number, args: string[]): Promise<unknown> {
    const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      await c.connect();
      return await c.call(args[0], ...args.slice(1));
    } finally {
      c.disconnect();
    }
  }
}

function exited(proc: GroupProcess): false {
  if (proc.exitInfo) throw new Error(`${proc.label} exited before it was ready: ${proc.lines.map((l) => l.line).join('\n')}`);
  return false;
}

function pairs(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]] = flat[i + 1];
  return out;
}

/** One node of a Redis Cluster as CLUSTER NODES reports it. */
export interface ClusterNodeView {
  id: string;
  port: number;
  role: 'master' | 'replica';
  /** The master's node id, for a replica. */
  masterId?: string;
  failing: boolean;
  /** Slot ranges [from, to] served, for a master. */
  slots: [number, number][];
}

export class RedisClusterSet {
  constructor(
    /** Every node started; a test that restarts one puts the new RedisServer in its place. */
    readonly nodes: RedisServer[],
  ) {}

  get url(): string {
    return `redis-cluster://${this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`;
  }

  /** Runs one command on the node at `port` (its own short-lived connection). */
  async command(port: number, args: (string | number)[]): Promise<unknown> {
    const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
    c.on('error', () => {});
    try {
      await c.connect();
      return await c.call(String(args[0]), ...args.slice(1).map(String));
    } finally {
      c.disconnect();
    }
  }

  /** The topology as the node at `port` sees it. */
  async view(port: number): Promise<ClusterNodeView[]> {
    const text = String(await this.command(port, ['CLUSTER', 'NODES']));
    return text
      .trim()
      .split('\n')
      .map((line) => {
        const [id, addr, flags, master, , , , , ...slots] = line.split(' ');
        return {
          id,
          port: Number(/:(\d+)@/.exec(addr)![1]),
          role: flags.includes('master') ? 'master' : 'replica',
          masterId: master === '-' ? undefined : master,
          failing: /fail/.test(flags),
          slots: slots
            .filter((r) => !r.startsWith('['))
            .map((r) => {
              const [a, b = a] = r.split('-');
              return [Number(a), Number(b)] as [number, number];
            }),
        };
      });
  }

  /** The port of the master serving `slot`, as the node at `viaPort` sees it (undefined: none). */
  async masterOf(slot: number, viaPort: number): Promise<number | undefined> {
    const nodes = await this.view(viaPort);
    return nodes.find((n) => n.role === 'master' && !n.failing && n.slots.some(([a, b]) => slot >= a && slot <= b))?.port;
  }

  async keySlot(key: string): Promise<number> {
    return Number(await this.command(this.nodes[0].port, ['CLUSTER', 'KEYSLOT', key]));
  }

  /**
   * Resolves once every live node (all but `except`) reports cluster_state:ok, no node it knows is
   * failing, every replica is in sync and (with nobody excepted) every master has a replica.
   */
  async healthy(timeoutMs: number, except: number[] = []): Promise<void> {
    await waitFor(
      async () => {
        for (const n of this.nodes) {
          if (except.includes(n.port)) continue;
          const info = String(await this.command(n.port, ['CLUSTER', 'INFO']));
          if (!/cluster_state:ok/.test(info) || Number(/cluster_known_nodes:(\d+)/.exec(info)?.[1]) !== this.nodes.length) return false;
          const view = await this.view(n.port);
          if (view.some((v) => v.failing && !except.includes(v.port))) return false;
          // A replica counts once it is in sync (a master lists it in ROLE, WAIT can count it).
          const replication = String(await this.command(n.port, ['INFO', 'replication']));
          if (/role:slave/.test(replication) && !/master_link_status:up/.test(replication)) return false;
          if (/role:master/.test(replication) && !/connected_slaves:[1-9]/.test(replication) && !except.length) return false;
        }
        return true;
      },
      { timeoutMs, what: 'every Redis Cluster node to report cluster_state:ok', pollMs: 100, retryErrors: true },
    );
  }
}
