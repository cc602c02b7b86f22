/**
 * The `xserver` command line. Every command takes the common config flags; values resolve
 * CLI > XSERVER_* env > TOML file > defaults (docs/configuration.md).
 */
import { Command } from 'commander';
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { configSources, parseSetOption, redactedConfig, type LoadOptions } from '../config/load.js';
import { renderConfigDocs } from '../config/docs.js';
import type { RoleContext } from '../context.js';
import { XError } from '../errors.js';
import { MgrServer } from '../mgr/mgr.js';
import { ClusterNode } from '../node/node.js';
import type { ServiceDefinition } from '../service.js';
import { loadOrExit, makeLogger, openStore, runProcess, type Role } from './process.js';
import { fetchStatus, formatStatus } from './status.js';
import { runUp } from './up.js';

interface CommonFlags {
  config?: string;
  set?: Record<string, string>;
  redis?: string;
  cluster?: string;
  adminPort?: string;
  port?: string;
  logLevel?: string;
}

function withCommon(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'TOML config file (else $XSERVER_CONFIG)')
    .option('--set <key=value>', 'set any config key, e.g. --set link.heartbeatTimeoutMs=5000 (repeatable)', parseSetOption, {})
    .option('--redis <url>', 'store URL (redisUrl)')
    .option('--cluster <name>', 'cluster name (cluster)')
    .option('--admin-port <port>', 'admin HTTP port (adminPort)')
    .option('--log-level <level>', 'log level (log.level)');
}

function loadOptions(flags: CommonFlags, portKey?: string): LoadOptions {
  const overrides: Record<string, unknown> = { ...(flags.set ?? {}) };
  if (flags.redis !== undefined) overrides.redisUrl = flags.redis;
  if (flags.cluster !== undefined) overrides.cluster = flags.cluster;
  if (flags.adminPort !== undefined) overrides.adminPort = flags.adminPort;
  if (flags.logLevel !== undefined) overrides['log.level'] = flags.logLevel;
  if (portKey && flags.port !== undefined) overrides[portKey] = flags.port;
  return { file: flags.config, overrides };
}

export function mgrRole(mgr: MgrServer): Role {
  return {
    ready: () => mgr.isActive,
    stop: () => mgr.stop(),
    routes: {
      '/api/cluster': () => {
        const s = mgr.status();
        return { mgr: { ...s.mgr, epoch: Number(s.mgr.epoch) }, members: s.members.map((m) => nodeJson(m)) };
      },
    },
  };
}

export function nodeRole(node: ClusterNode, service?: ServiceDefinition): Role {
  return {
    ready: () => node.mgrConnected,
    stop: async () => {
      await service?.stop?.(node);
      await node.stop();
    },
    routes: { '/api/self': () => node.selfJson(), '/api/peers': () => node.peersJson() },
  };
}

function nodeJson(m: import('../gen/xserver/v1/cluster_pb.js').NodeInfo) {
  return {
    id: m.id,
    type: m.type,
    name: m.name,
    addrs: { inner: m.innerIp, outer: m.outerIp },
    ports: [...m.ports],
    version: m.version,
    overload: [...m.overload],
    startedAt: Number(m.startedAt),
    pid: m.pid,
    host: m.host,
  };
}

export async function loadService(entry: string): Promise<ServiceDefinition> {
  const url = entry.startsWith('file:') ? entry : pathToFileURL(path.resolve(entry)).href;
  const mod = (await import(url)) as { default?: ServiceDefinition; service?: ServiceDefinition };
  const def = mod.default ?? mod.service;
  if (!def || typeof def.start !== 'function' || def.type === undefined) {
    throw new XError('CONFIG', `${entry} must export (default or "service") an object with { type, start(node) }`);
  }
  return def;
}

export function resolveType(def: ServiceDefinition, types: Record<string, number>): number {
  if (typeof def.type === 'number') return def.type;
  const t = types[def.type];
  if (t === undefined) throw new XError('CONFIG', `service type "${def.type}" is not in the types map (${Object.keys(types).join(', ')})`);
  return t;
}

export async function startService(ctx: RoleContext, def: ServiceDefinition): Promise<ClusterNode> {
  const type = resolveType(def, ctx.config.types);
  const node = new ClusterNode(ctx, { type, name: def.name, version: def.version });
  await def.start(node, ctx);
  await node.start();
  return node;
}

export function buildProgram(): Command {
  const program = new Command('xserver')
    .description('xserver: a game-server cluster — mgr discovery over Redis, direct node links, gateway, login')
    .showHelpAfterError();

  withCommon(program.command('mgr').description('run an mgr (a second one is a hot standby)'))
    .option('-p, --port <port>', 'listen port (mgr.port; 0 = any free port)')
    .action(async (flags: CommonFlags) => {
      const resolved = loadOrExit(loadOptions(flags, 'mgr.port'));
      await runProcess(resolved, 'mgr', async (ctx) => {
        const mgr = new MgrServer(ctx);
        await mgr.start();
        return [mgrRole(mgr)];
      });
    });

  withCommon(program.command('node').description('run a service node from a module'))
    .requiredOption('-e, --entry <module>', 'module exporting the service definition { type, start(node), stop? }')
    .option('-p, --port <port>', 'intranet port (node.port; 0 = any free port)')
    .action(async (flags: CommonFlags & { entry: string }) => {
      const resolved = loadOrExit(loadOptions(flags, 'node.port'));
      const def = await loadService(flags.entry);
      await runProcess(resolved, def.name ?? (typeof def.type === 'string' ? def.type : `node${def.type}`), async (ctx) => {
        const node = await startService(ctx, def);
        return [nodeRole(node, def)];
      });
    });

  withCommon(program.command('status').description('print the cluster as the active mgr sees it'))
    .option('--json', 'print JSON: {"mgr": {...}, "members": [...]}')
    .action(async (flags: CommonFlags & { json?: boolean }) => {
      const { config } = loadOrExit(loadOptions({ ...flags, logLevel: flags.logLevel ?? 'warn' }));
      const logger = makeLogger(config, 'status');
      const store = await openStore(config, logger);
      try {
        const s = await fetchStatus(config, store, logger);
        process.stdout.write((flags.json ? JSON.stringify(s, null, 2) : formatStatus(s)) + '\n');
      } catch (e) {
        process.stderr.write(`xserver status: ${(e as Error).message}\n`);
        process.exitCode = 1;
      } finally {
        await store.close();
      }
    });

  const config = program.command('config').description('configuration tools');
  withCommon(config.command('print').description('print the effective configuration (secrets masked) and where each value came from'))
    .option('--json', 'print the config as JSON')
    .action((flags: CommonFlags & { json?: boolean }) => {
      const resolved = loadOrExit(loadOptions(flags));
      if (flags.json) {
        process.stdout.write(JSON.stringify(redactedConfig(resolved.config, resolved.settings), null, 2) + '\n');
        return;
      }
      const rows = configSources(resolved);
      const w = Math.max(...rows.map((r) => r.key.length));
      for (const r of rows) process.stdout.write(`${r.key.padEnd(w)}  ${JSON.stringify(r.value)}  (${r.source})\n`);
      for (const warning of resolved.warnings) process.stderr.write(`warning: ${warning}\n`);
    });
  config
    .command('docs')
    .description('print docs/configuration.md')
    .action(() => {
      process.stdout.write(renderConfigDocs());
    });

  withCommon(program.command('up').description('run a whole cluster on this machine (all-in-one)'))
    .option('--memory', 'use the in-memory store and one process even if Redis is reachable')
    .action(async (flags: CommonFlags & { memory?: boolean }) => {
      await runUp(loadOptions(flags), { memory: flags.memory === true });
    });

  return program;
}

export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv);
}

