/**
 * The `xserver` command line. Every command takes the common config flags; values resolve
 * CLI > XSERVER_* env > TOML file > defaults (docs/configuration.md).
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { configSources, parseSetOption, redactedConfig, type LoadOptions } from '../config/load.js';
import { renderConfigDocs } from '../config/docs.js';
import { MIN_SECRET_BITS } from '../config/security.js';
import { loadService, startRole } from '../roles.js';
import { runAccountCommand } from './account.js';
import { BotsUsageError, gatewayPidOnThisHost, planBots, runBots, type BotsFlags } from './bots.js';
import { NodeType } from '../protocol/commands.js';
import { loadOrExit, makeLogger, openStore, runProcess } from './process.js';
import { fetchStatus, formatCanary, formatDoctor, formatPolicies, formatStatus, requestDrain } from './status.js';
import { requestCanaryClear, requestCanaryRollback, requestCanarySet, resolveType, type CanarySetFlags } from './canary.js';
import { runInit } from './init.js';
import { DEFAULT_WATCH_DELAY_MS, runUp } from './up.js';
import { requestRoll } from './roll-control.js';
import type { XConfig } from '../config/schema.js';
import { XError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ClusterStore } from '../store/store.js';

/** `xserver secret`: exactly what the secure-default rule asks for. */
const SECRET_BYTES = MIN_SECRET_BITS / 8;

interface CommonFlags {
  config?: string;
  set?: Record<string, string>;
  redis?: string;
  cluster?: string;
  adminPort?: string;
  port?: string;
  logLevel?: string;
}

interface UpFlags {
  memory?: boolean;
  service?: string[];
  watch?: boolean;
  watchPath?: string[];
  build?: string;
  watchDelay?: number;
}

function parseNonNegativeInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a whole number of milliseconds >= 0, got "${v}"`);
  return n;
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

/**
 * A tool command against a running cluster (status, doctor, drain): loads the config, opens the
 * store, runs, prints a failure as `xserver <name>: <message>` with exit code 1, closes the store.
 */
async function runTool(
  name: string,
  flags: CommonFlags,
  run: (config: XConfig, store: ClusterStore, logger: Logger) => Promise<void>,
): Promise<void> {
  const { config } = loadOrExit(loadOptions({ ...flags, logLevel: flags.logLevel ?? 'warn' }));
  const logger = makeLogger(config, name);
  const store = await openStore(config, logger);
  try {
    await run(config, store, logger);
  } catch (e) {
    process.stderr.write(`xserver ${name}: ${(e as Error).message}\n`);
    process.exitCode = 1;
  } finally {
    await store.close();
  }
}

/** `--param key=value` (repeatable) for bot scripts. */
function parseParam(arg: string, previous: Record<string, string>): Record<string, string> {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`expected key=value, got "${arg}"`);
  return { ...previous, [arg.slice(0, eq)]: arg.slice(eq + 1) };
}

export function buildProgram(): Command {
  const program = new Command('xserver')
    .description('xserver: a game-server cluster — mgr discovery over Redis, direct node links, gateway, login')
    .showHelpAfterError();

  withCommon(program.command('mgr').description('run an mgr (a second one is a hot standby)'))
    .option('-p, --port <port>', 'listen port (mgr.port; 0 = any free port)')
    .action(async (flags: CommonFlags) => {
      const resolved = loadOrExit(loadOptions(flags, 'mgr.port'));
      await runProcess(resolved, 'mgr', async (ctx) => [await startRole('mgr', ctx)]);
    });

  withCommon(program.command('node').description('run a service node from a module'))
    .requiredOption('-e, --entry <module>', 'module exporting the service definition { type, start(node), stop? }')
    .option('-p, --port <port>', 'intranet port (node.port; 0 = any free port)')
    .action(async (flags: CommonFlags & { entry: string }) => {
      const resolved = loadOrExit(loadOptions(flags, 'node.port'));
      const def = await loadService(flags.entry);
      await runProcess(resolved, def.name ?? (typeof def.type === 'string' ? def.type : `node${def.type}`), async (ctx) => [
        await startRole('node', ctx, { service: def }),
      ]);
    });

  withCommon(program.command('gateway').description('run a gateway: clients over TCP and WebSocket, relayed to service nodes'))
    .option('--tcp-port <port>', 'client TCP port (gateway.tcpPort)')
    .option('--ws-port <port>', 'client WebSocket port (gateway.wsPort)')
    .action(async (flags: CommonFlags & { tcpPort?: string; wsPort?: string }) => {
      const lo = loadOptions(flags);
      if (flags.tcpPort !== undefined) lo.overrides!['gateway.tcpPort'] = flags.tcpPort;
      if (flags.wsPort !== undefined) lo.overrides!['gateway.wsPort'] = flags.wsPort;
      const resolved = loadOrExit(lo);
      await runProcess(resolved, 'gateway', async (ctx) => [await startRole('gateway', ctx)]);
    });

  withCommon(program.command('status').description('print the cluster as the active mgr sees it'))
    .option('--json', 'print JSON: {"mgr": {...}, "members": [...], "checks": [...], "policies": [...], "accounts": [...]}')
    .action((flags: CommonFlags & { json?: boolean }) =>
      runTool('status', flags, async (config, store, logger) => {
        const s = await fetchStatus(config, store, logger);
        process.stdout.write((flags.json ? JSON.stringify(s, null, 2) : formatStatus(s)) + '\n');
      }),
    );

  withCommon(program.command('doctor').description('per member: what it binds, what it advertises, and whether the mgr reached it there'))
    .option('--json', 'print JSON: {"mgr": {...}, "members": [...], "checks": [...]}')
    .action((flags: CommonFlags & { json?: boolean }) =>
      runTool('doctor', flags, async (config, store, logger) => {
        const s = await fetchStatus(config, store, logger);
        const d = formatDoctor(s);
        process.stdout.write((flags.json ? JSON.stringify(s, null, 2) : d.text) + '\n');
        if (d.problems > 0) process.exitCode = 1;
      }),
    );

  withCommon(
    program
      .command('drain <target>')
      .description('drain the member(s) with this id or name: no new work, stop once nothing is bound (drainTimeoutMs)'),
  ).action((target: string, flags: CommonFlags) =>
    runTool('drain', flags, async (config, store, logger) => {
      const ids = await requestDrain(config, store, logger, target);
      process.stdout.write(`draining ${ids.length} member(s): ${ids.join(', ')}\n`);
    }),
  );

  const canary = program.command('canary').description('route a share of accounts (a stable cohort) to one version of a service type');
  withCommon(canary.command('set').description('new sessions of the cohort go to --version; everyone else to the other versions'))
    .requiredOption('--type <type>', 'service type, by name (types) or number')
    .requiredOption('--version <version>', 'the version the cohort gets (NodeInfo.version, node.version)')
    .option('--percent <percent>', 'share of accounts, 0..100 in steps of 0.01 (a fixed hash of the account name)')
    .option('--accounts <list>', 'comma-separated accounts that are always in the cohort')
    .action((flags: CommonFlags & CanarySetFlags) =>
      runTool('canary set', flags, async (config, store, logger) => {
        const policies = await requestCanarySet(config, store, logger, flags);
        process.stdout.write(`canary set; new sessions follow it, running sessions keep their nodes\n${formatPolicies(policies).join('\n')}\n`);
      }),
    );
  withCommon(canary.command('show').description('the routing policies and how many accounts each version holds'))
    .option('--json', 'print JSON: {"policies": [...], "accounts": [...], "gatewaysCounted": n}')
    .action((flags: CommonFlags & { json?: boolean }) =>
      runTool('canary show', flags, async (config, store, logger) => {
        const { policies, accounts, gatewaysCounted } = await fetchStatus(config, store, logger);
        const out = flags.json
          ? JSON.stringify({ policies, accounts, gatewaysCounted }, null, 2)
          : formatCanary({ policies, accounts, gatewaysCounted }).join('\n');
        process.stdout.write(out + '\n');
      }),
    );
  withCommon(canary.command('rollback').description("the type's canary version gets no new sessions; running sessions keep their nodes"))
    .requiredOption('--type <type>', 'service type, by name (types) or number')
    .action((flags: CommonFlags & { type: string }) =>
      runTool('canary rollback', flags, async (config, store, logger) => {
        const policies = await requestCanaryRollback(config, store, logger, flags.type);
        const p = policies.find((x) => x.type === resolveType(config, flags.type));
        process.stdout.write(
          `canary rolled back: version ${p?.version ?? '?'} of type ${flags.type} gets no new sessions; running sessions keep their nodes\n`,
        );
      }),
    );
  withCommon(canary.command('clear').description("remove the type's policy: new sessions go to any version"))
    .requiredOption('--type <type>', 'service type, by name (types) or number')
    .action((flags: CommonFlags & { type: string }) =>
      runTool('canary clear', flags, async (config, store, logger) => {
        const left = await requestCanaryClear(config, store, logger, flags.type);
        process.stdout.write(`canary policy of type ${flags.type} cleared; ${left.length} polic${left.length === 1 ? 'y' : 'ies'} left\n`);
      }),
    );
  withCommon(
    program
      .command('roll')
      .description(
        'rolling restart of a cluster run by `xserver up` on this host: each process replaced by a new one, one at a time (docs/operations.md)',
      ),
  ).action(async (flags: CommonFlags) => {
    const { config } = loadOrExit(loadOptions(flags));
    try {
      const done = await requestRoll(config, (e) => process.stdout.write(`${e.name}: ${e.state}${e.detail ? ` (${e.detail})` : ''}\n`));
      for (const d of done) process.stdout.write(`replaced ${d.name}: pid ${d.oldPid} -> ${d.newPid} in ${(d.ms / 1000).toFixed(1)} s\n`);
    } catch (e) {
      process.stderr.write(`xserver roll: ${(e as Error).message}\n`);
      process.exitCode = 1;
    }
  });

  // ---- login service and account administration (src/login) ----
  withCommon(program.command('login').description('run the login service (HTTP POST /login; allocates a gateway and stateful nodes)'))
    .option('-p, --port <port>', 'HTTP port (login.port; 0 = any free port)')
    .option('--static <dir>', 'also serve this directory at / (login.staticDir)')
    .action(async (flags: CommonFlags & { static?: string }) => {
      const opts = loadOptions(flags, 'login.port');
      if (flags.static !== undefined) opts.overrides = { ...opts.overrides, 'login.staticDir': flags.static };
      await runProcess(loadOrExit(opts), 'login', async (ctx) => [await startRole('login', ctx)]);
    });
  const account = program.command('account').description('manage login accounts in the store');
  const pwHelp = 'password (else $XSERVER_ACCOUNT_PASSWORD, else one line of stdin); visible to other users in `ps`';
  withCommon(account.command('add <name>').description('create an account'))
    .option('--password <password>', pwHelp)
    .action((name: string, flags: CommonFlags & { password?: string }) => runAccountCommand('add', name, flags.password, loadOptions(flags)));
  withCommon(account.command('passwd <name>').description("change an account's password"))
    .option('--password <password>', pwHelp)
    .action((name: string, flags: CommonFlags & { password?: string }) => runAccountCommand('passwd', name, flags.password, loadOptions(flags)));
  withCommon(account.command('del <name>').description('delete an account')).action((name: string, flags: CommonFlags) =>
    runAccountCommand('del', name, undefined, loadOptions(flags)),
  );
  // ---- end login ----

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

  program
    .command('secret')
    .description(`print a fresh cluster secret (${SECRET_BYTES} random bytes, base64) for XSERVER_SECRET or \`secret\` in the config file`)
    .action(() => {
      process.stdout.write(`${randomBytes(SECRET_BYTES).toString('base64')}\n`);
    });

  withCommon(program.command('up').description('run a whole cluster on this machine (all-in-one)'))
    .option('--memory', 'use the in-memory store and one process even if Redis is reachable')
    .option('--service <entry...>', "run these service modules (one process each) behind a mgr, login and gateway, instead of the demo's")
    .option('--watch', "replace a service's processes when its files change; clients stay connected (needs Redis)")
    .option('--watch-path <dir...>', "with --watch: watch these directories (default: each service entry's directory)")
    .option('--build <command>', 'with --watch: run this shell command before each restart (e.g. "npm run -s build"); a failure restarts nothing')
    .option(
      '--watch-delay <ms>',
      `with --watch: quiet time after a change before the restart (default ${DEFAULT_WATCH_DELAY_MS})`,
      parseNonNegativeInt,
    )
    .action(async (flags: CommonFlags & UpFlags) => {
      try {
        await runUp(loadOptions(flags), {
          memory: flags.memory === true,
          services: flags.service,
          watch: flags.watch === true,
          watchPaths: flags.watchPath,
          build: flags.build,
          watchDelayMs: flags.watchDelay,
        });
      } catch (e) {
        if (!(e instanceof XError)) throw e;
        process.stderr.write(`xserver up: ${e.message}\n`);
        process.exit(2);
      }
    });

  withCommon(
    program
      .command('bots')
      .description('load generator: simulated clients over worker processes, logging in and talking through the client SDK (docs/bots.md)'),
  )
    .option('-n, --clients <n>', 'simulated clients (bots) in total')
    .option('-r, --rate <r>', 'script ticks (messages) per second per client; 0 = idle clients', '1')
    .option('-d, --duration <time>', 'run time, e.g. 30s, 500ms, 2m; the run stops by itself then', '30s')
    .option('--ramp <n>', 'new logins per second, all workers together (bots.rampPerSec)')
    .option('-w, --workers <n>', 'worker processes (default: the number of cores)')
    .option('-s, --script <module>', 'script module: default export (client, ctx) called per tick, or session(client, ctx) (docs/bots.md)')
    .option('-t, --type <n>', 'built-in script: echo requests to this service type')
    .option('--cmd <sub>', "built-in script: the command's number within the type", '1')
    .option('--payload <bytes>', 'built-in script: request body size', '64')
    .option('--login <url>', 'login service URL (default http://127.0.0.1:<login.port>)')
    .option('--account-prefix <prefix>', 'bot accounts are <prefix><n>, n = 0 .. clients - 1', 'bot-')
    .option('--password <password>', 'password of every bot account', 'bot')
    .option('--transport <kind>', 'ws or tcp', 'ws')
    .option('--param <key=value>', 'passed to the script as ctx.params (repeatable)', parseParam, {})
    .option(
      '--gateway <admin-url|pid|auto>',
      "the gateway's admin URL (its /metrics) or pid, or auto (the cluster's one gateway on this host, from the mgr): RSS per client and CPU in the report",
    )
    .option('--json [file]', 'write the report as JSON to <file> (the table still goes to stdout), or without <file> print JSON instead of the table')
    .exitOverride((err) => {
      // Commander printed the problem already; a usage error is exit code 2 like our own checks.
      process.exit(err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? 0 : 2);
    })
    .action(async (flags: CommonFlags & BotsFlags) => {
      const { config } = loadOrExit(loadOptions({ ...flags, logLevel: flags.logLevel ?? 'warn' }));
      try {
        if (flags.gateway === 'auto') {
          const logger = makeLogger(config, 'bots');
          const store = await openStore(config, logger);
          try {
            flags.gateway = String(gatewayPidOnThisHost((await fetchStatus(config, store, logger)).members, NodeType.GATEWAY));
          } catch (e) {
            throw e instanceof BotsUsageError ? e : new BotsUsageError(`--gateway auto: ${(e as Error).message}`);
          } finally {
            await store.close();
          }
        }
        process.exitCode = await runBots(planBots(flags, config));
      } catch (e) {
        if (!(e instanceof BotsUsageError)) throw e;
        process.stderr.write(`xserver bots: ${e.message}\n`);
        process.exitCode = 2;
      }
    });

  program
    .command('init <dir>')
    .description('write a new game backend into <dir> (new or empty): contracts, a service, npm start and a test')
    .option('--xserver <spec>', 'the xserver dependency: a path to a checkout (written as file:<path>) or a version (default: this version)')
    .option('--name <name>', 'package name (default: the directory name)')
    .option('--no-install', 'do not run npm install in the new project')
    .action(async (dir: string, flags: { xserver?: string; name?: string; install: boolean }) => {
      try {
        const r = await runInit(dir, flags);
        const near = path.relative(process.cwd(), r.dir);
        const rel = near === '' ? '.' : near.startsWith('..') ? r.dir : near;
        process.stdout.write(
          [
            `wrote ${r.files.length} files to ${rel}:`,
            ...r.files.map((f) => `  ${f}`),
            '',
            'next:',
            `  cd ${rel}`,
            ...(r.installed ? [] : ['  npm install']),
            '  npm start    # the backend on the in-memory store',
            '  npm test     # starts it and plays through the client SDK',
            '',
          ].join('\n'),
        );
      } catch (e) {
        process.stderr.write(`xserver init: ${(e as Error).message}\n`);
        process.exitCode = 1;
      }
    });

  return program;
}

export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv);
}
