// Executes one scenario: for every run and row, starts the row's processes, measures, kills them,
// then reduces the runs to medians per column.
import { startChild, killChildren, SERVER_CPU, CLIENT_CPU } from './proc.js';
import { EventLog } from './events.js';
import { ensurePeers } from './peers.js';
import { checkRedis, REDIS_URL } from './redis.js';
import { median } from './stats.js';
import { now } from './impl.js';

const SETUP_TIMEOUT_MS = 60_000; // server start, 1000 ws connections, broker discovery ...
const CLIENT_SLACK_MS = 60_000; // beyond warm-up + duration
const JOIN_TIMEOUT_MS = 30_000;
const GONE_TIMEOUT_MS = Number(process.env.BENCH_GONE_TIMEOUT_MS ?? 15_000); // 5× the scenario's 3 s heartbeat timeout

/**
 * cfg: { runs, durationMs, warmupMs, token }. log(line) reports progress.
 * Returns { name, title, baseline, columns, rows: [{ label, kind, values, runs, notes }], elapsedMs, runs }.
 */
export async function runScenario(scenario, rows, cfg, log) {
  const started = now();
  const results = rows.map((row) => ({ row, runs: [], notes: new Set() }));
  for (const r of results) {
    const missing = await unmetNeed(r.row);
    if (missing) r.unavailable = missing;
  }
  // A scenario may fix its number of runs (one run of `ccu` takes minutes).
  const runs = scenario.runs ?? cfg.runs;
  for (let run = 0; run < runs; run++) {
    for (const [i, r] of results.entries()) {
      if (r.unavailable) continue;
      // Unique per scenario too: rows with the same index in two scenarios must not share a cluster.
      const env = { namespace: `${cfg.token}${scenario.name}r${run}i${i}`, redisUrl: REDIS_URL };
      const t = now();
      // A scenario may bring its own orchestration (several processes per row, see lib/orchestra.js).
      const measure =
        typeof scenario.measure === 'function'
          ? (s, row, c, e) => scenario.measure(s, row, c, e, log)
          : scenario.kind === 'discovery'
            ? measureDiscovery
            : measureLoop;
      const { values, errors } = await measure(scenario, r.row, cfg, env);
      r.runs.push(values);
      for (const e of errors) r.notes.add(e);
      const summary = scenario.columns.map((c) => `${c.label}=${fmtLog(cellValue(c, values))}`).join(' ');
      log(`[${scenario.name}] run ${run + 1}/${runs} ${r.row.label}: ${summary} (${((now() - t) / 1000).toFixed(1)} s)`);
      for (const e of errors) log(`    ${e}`);
    }
  }
  return {
    name: scenario.name,
    title: scenario.title,
    baseline: scenario.baseline,
    columns: scenario.columns,
    rows: results.map((r) => ({
      label: r.row.label,
      kind: r.row.kind,
      values: Object.fromEntries(scenario.columns.map((c) => [c.label, median(r.runs.map((v) => cellValue(c, v)))])),
      runs: r.runs,
      notes: r.unavailable ? [r.unavailable] : [...r.notes],
    })),
    elapsedMs: now() - started,
    runs,
  };
}

/** A column's value in one run's measurements ({ [pointId]: clientResult } or discovery fields). */
export function cellValue(column, values) {
  const v = column.point ? values[column.point]?.[column.field] : values[column.field];
  return typeof v === 'number' ? v * (column.scale ?? 1) : undefined;
}

function fmtLog(v) {
  return v === undefined ? 'n/a' : Number(v.toPrecision(4)).toString();
}

async function unmetNeed(row) {
  for (const need of row.needs) {
    const status = need === 'peers' ? ensurePeers() : need === 'redis' ? await checkRedis() : { ok: true };
    if (!status.ok) return `n/a: ${status.reason}`;
  }
  return undefined;
}

function note(prefix, err) {
  const msg = String(err?.message ?? err)
    .split('\n')[0]
    .replace(/^n\/a:\s*/, '');
  return `n/a${prefix ? ` (${prefix})` : ''}: ${msg.length > 160 ? `${msg.slice(0, 157)}...` : msg}`;
}

/** Client/server scenarios: one server process (cpu 0), one client process (cpu 1), one call per point. */
async function measureLoop(scenario, row, cfg, env) {
  const base = { ...scenario.defaults, ...row.options, ...env };
  const spec = { module: row.module, impl: row.impl };
  const values = {};
  const errors = [];
  let server;
  let client;
  let info;
  try {
    for (const point of scenario.points) {
      try {
        if (!server) {
          server = await startChild({ ...spec, label: `${row.label} server`, cpu: SERVER_CPU });
          info = await server.call('server', base, SETUP_TIMEOUT_MS);
          client = await startChild({ ...spec, label: `${row.label} client`, cpu: CLIENT_CPU });
        }
      } catch (err) {
        // The row cannot run at all: same reason for every remaining point.
        errors.push(note('', err));
        break;
      }
      try {
        const opts = { ...base, ...point.opts, server: info, warmupMs: cfg.warmupMs, durationMs: cfg.durationMs };
        values[point.id] = await client.call('client', opts, cfg.warmupMs + cfg.durationMs + CLIENT_SLACK_MS);
        if (values[point.id]?.errors > 0) errors.push(`${point.id}: ${values[point.id].errors} requests failed`);
      } catch (err) {
        errors.push(note(point.id, err));
        await killChildren([client, server]); // fresh processes for the next point
        server = client = undefined;
      }
    }
  } finally {
    await killChildren([client, server]);
  }
  return { values, errors };
}

/**
 * Discovery scenarios: an observer process (plus an optional `server` process, e.g. a registry)
 * watches nodes that are started, killed with SIGKILL, and frozen with SIGSTOP.
 */
async function measureDiscovery(scenario, row, cfg, env) {
  const base = { ...scenario.defaults, ...row.options, ...env };
  const spec = { module: row.module, impl: row.impl };
  const values = {};
  const errors = [];
  const children = [];
  const spawn = async (label, cpu) => {
    const child = await startChild({ ...spec, label: `${row.label} ${label}`, cpu });
    children.push(child);
    return child;
  };

  try {
    const observer = await spawn('observer', SERVER_CPU);
    const log = new EventLog();
    observer.onEvent((event, t) => log.push({ ...event, t }));
    let server;
    if (observer.roles.includes('server')) {
      server = await (await spawn('server', SERVER_CPU)).call('server', base, SETUP_TIMEOUT_MS);
    }
    const obs = await observer.call('observer', { ...base, server }, SETUP_TIMEOUT_MS);

    const startNode = async (nodeId) => {
      const t0 = now(); // "process start": just before the spawn
      const child = await spawn(`node ${nodeId}`, CLIENT_CPU);
      const started = child.call('node', { ...base, server, observer: obs, nodeId }, SETUP_TIMEOUT_MS);
      started.catch(() => {}); // a failure is observed through the race below
      const up = log.wait((e) => e.type === 'up' && e.node === nodeId, JOIN_TIMEOUT_MS, 'join');
      await Promise.race([up, started.then(() => up)]);
      return { child, join: (await up).t - t0 };
    };
    const gone = async (child, nodeId, signal) => {
      const t0 = now();
      child.signal(signal);
      const down = await log.wait((e) => e.type === 'down' && e.node === nodeId && e.t >= t0, GONE_TIMEOUT_MS, `loss after ${signal}`);
      return down.t - t0;
    };

    const steps = [
      [
        'join',
        async () => {
          const id = `${env.namespace}-n1`;
          const n = await startNode(id);
          values.join = n.join;
          values.kill = await gone(n.child, id, 'SIGKILL');
        },
      ],
      [
        'stop',
        async () => {
          const id = `${env.namespace}-n2`;
          const n = await startNode(id);
          values.join2 = n.join;
          try {
            values.stop = await gone(n.child, id, 'SIGSTOP');
          } finally {
            n.child.signal('SIGCONT');
            await n.child.kill();
          }
        },
      ],
    ];
    for (const [name, step] of steps) {
      try {
        await step();
      } catch (err) {
        errors.push(note(name, err));
      }
    }
  } catch (err) {
    errors.push(note('', err));
  } finally {
    await killChildren(children);
  }
  return { values, errors };
}
