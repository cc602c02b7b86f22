// Scale, measured by the rows' own processes (scenario.measure).
//
// nodes: one mgr (cpu 0) and `nodes` ClusterNodes spread over `nodeProcesses` processes (not pinned
// unless pinNodes), built first and then started all at once. Measured from the start signal: when
// every node is registered, and when every node's view lists all `nodes` members (1,000 × 1,000
// entries in total); then the mgr's member count and RSS, a few nodes' own membership sizes, and the
// LEFT events the nodes saw meanwhile (a node evicted by the mgr's heartbeat timeout and
// re-registering shows up there; expected 0).
//
// idle: one server process (cpu 0) and `clientProcesses` client processes (cpu 1) that open
// `connections` silent WebSocket connections in total (xserver: each one authenticated with a token,
// so it is a full client session). Memory per connection = (server RSS after − before) / connections,
// both after a forced GC. The connection count is capped by the server's open-file limit
// (RLIMIT_NOFILE; a process cannot raise it above the hard limit without CAP_SYS_RESOURCE).
//
// Row roles: nodes part — mgr({total}), mgrStats(), prepare({index, count}), go({total}), views();
// idle part — idleServer({connections}), idleServerMem(), idleClients({server, count}).
// row.options.parts says which parts a row has.
import { Orchestra, targetRow, targetValues, sleep, noteOf, now, SERVER_CPU, CLIENT_CPU } from '../lib/orchestra.js';

const SETUP_MS = 60_000;
const KB = 1000;
const MB = 1e6;

async function nodesPart(o, base, values, log) {
  const total = base.nodes;
  const perProcess = Math.ceil(total / base.nodeProcesses);
  const m = await o.spawn('mgr', SERVER_CPU);
  await m.call('mgr', { ...base, total }, SETUP_MS);
  const procs = [];
  const cpu = base.pinNodes ? CLIENT_CPU : undefined;
  for (let i = 0; i < base.nodeProcesses; i++) procs.push(await o.spawn(`nodes${i}`, cpu));
  const counts = procs.map((_, i) => Math.max(0, Math.min(perProcess, total - i * perProcess)));
  await Promise.all(procs.map((p, i) => p.call('prepare', { ...base, index: i, count: counts[i] }, SETUP_MS)));

  const t0 = now();
  await Promise.all(procs.map((p) => p.call('go', { ...base, total }, SETUP_MS)));
  const timeout = base.convergeTimeoutMs;
  const of = (type) => Promise.all(procs.map((p) => o.wait((e) => e.type === type && e.from === p.name, timeout, `${p.name} ${type}`)));
  let failure;
  try {
    const [reg, conv, members] = await Promise.all([
      of('registered'),
      of('converged'),
      o.wait((e) => e.type === 'mgr-members', timeout, 'mgr member count'),
    ]);
    values.registered = Math.max(...reg.map((e) => e.t)) - t0;
    values.converged = Math.max(...conv.map((e) => e.t)) - t0;
    values.mgrAllMembers = members.t - t0;
  } catch (err) {
    failure = err;
  }
  const stats = await m.call('mgrStats', {}, SETUP_MS);
  const views = await Promise.all(procs.map((p) => p.call('views', {}, SETUP_MS)));
  values.nodes = total;
  values.mgrMembers = stats.members;
  values.mgrRssMb = stats.rss / MB;
  const detail =
    `nodes: ${total} in ${procs.length} processes; registered ${values.registered?.toFixed(0)} ms, mgr saw all ${values.mgrAllMembers?.toFixed(0)} ms, ` +
    `converged ${values.converged?.toFixed(0)} ms; mgr members ${stats.members}, RSS ${(stats.rss / MB).toFixed(0)} MB (${(stats.rssAfterGc / MB).toFixed(0)} MB after GC, heap ${(stats.heapUsed / MB).toFixed(0)} MB); ` +
    `views min ${Math.min(...views.map((v) => v.min))} max ${Math.max(...views.map((v) => v.max))}, sampled ${views.flatMap((v) => v.sample).join('/')}; ` +
    `node process RSS ${views.map((v) => (v.rss / MB).toFixed(0)).join('/')} MB; ` +
    `max event-loop delay: mgr ${stats.maxLoopDelayMs?.toFixed(0)} ms, node processes ${views.map((v) => v.maxLoopDelayMs?.toFixed(0)).join('/')} ms; ` +
    `CPU (user + system, until the views were read): mgr ${(stats.cpuMs / 1000).toFixed(1)} s, node processes ${(views.reduce((n, v) => n + v.cpuMs, 0) / 1000).toFixed(1)} s`;
  const leftTotal = views.reduce((n, v) => n + Object.values(v.diag.left).reduce((a, b) => a + b, 0), 0);
  if (leftTotal)
    log(
      `    churn: mgr ${stats.events?.map((l) => l.replace(/^xserver_mgr_membership_events_total/, '')).join(', ')}; LEFT seen by nodes ${views.map((v) => JSON.stringify(v.diag.left)).join(' ')}`,
    );
  values.churn = leftTotal;
  log(`    ${detail}`);
  if (failure) throw failure;
}

async function idlePart(o, base, values, log) {
  const g = await o.spawn('server', SERVER_CPU);
  const info = await g.call('idleServer', { ...base, connections: base.connections }, SETUP_MS);
  // Leave room for the server's other descriptors (listeners, Redis, links, stdio).
  const fdCap = info.fdLimit ? Math.floor((info.fdLimit - 250) / 100) * 100 : Infinity;
  const n = Math.min(base.connections, fdCap);
  const clients = [];
  for (let i = 0; i < base.clientProcesses; i++) clients.push(await o.spawn(`clients${i}`, CLIENT_CPU));
  const per = clients.map((_, i) => Math.floor(n / clients.length) + (i < n % clients.length ? 1 : 0));
  const t0 = now();
  await Promise.all(clients.map((c, i) => c.call('idleClients', { ...base, server: info, count: per[i] }, base.connectTimeoutMs)));
  const connectMs = now() - t0;
  await sleep(base.settleMs);
  const after = await g.call('idleServerMem', {}, SETUP_MS);
  values.idleConns = after.connections;
  values.rssDeltaMb = (after.rss - info.rssBefore) / MB;
  values.kbPerConn = after.connections ? (after.rss - info.rssBefore) / after.connections / KB : undefined;
  const detail =
    `idle: ${after.connections} connections${n < base.connections ? ` (capped from ${base.connections} by RLIMIT_NOFILE ${info.fdLimit})` : ''} opened in ${(connectMs / 1000).toFixed(1)} s; ` +
    `server RSS ${(info.rssBefore / MB).toFixed(0)} → ${(after.rss / MB).toFixed(0)} MB, heap ${(info.heapBefore / MB).toFixed(0)} → ${(after.heapUsed / MB).toFixed(0)} MB ` +
    `(${((after.heapUsed - info.heapBefore) / after.connections / KB).toFixed(2)} KB/conn heap, ${values.kbPerConn?.toFixed(2)} KB/conn RSS)`;
  log(`    ${detail}`);
  if (after.connections < n) throw new Error(`only ${after.connections} of ${n} connections open on the server`);
}

/** BENCH_SCALE_NODES=<n> (e.g. 5000 to see how cost grows), BENCH_SCALE_PARTS=nodes|idle (one part only). */
function fromEnv() {
  const o = {};
  if (process.env.BENCH_SCALE_NODES) o.nodes = Number(process.env.BENCH_SCALE_NODES);
  if (process.env.BENCH_SCALE_PARTS) o.onlyParts = process.env.BENCH_SCALE_PARTS.split(',');
  return o;
}

async function measure(scenario, row, cfg, env, log) {
  if (row.kind === 'target') return targetValues(row);
  const base = { ...scenario.defaults, ...row.options, ...env, ...fromEnv() };
  const values = {};
  const errors = [];
  const parts = { nodes: nodesPart, idle: idlePart };
  const names = (base.parts ?? Object.keys(parts)).filter((n) => !base.onlyParts || base.onlyParts.includes(n));
  for (const name of names) {
    const o = new Orchestra(row);
    try {
      await parts[name](o, base, values, log);
    } catch (err) {
      errors.push(noteOf(name, err));
    } finally {
      await o.close();
    }
  }
  return { values, errors };
}

export default {
  name: 'scale',
  title: '1,000 nodes on one mgr (4 processes × 250) and 20,000 idle WebSocket clients on one gateway',
  baseline: 'target (spec)',
  defaults: {
    nodes: 1000,
    nodeProcesses: 4,
    pinNodes: false, // node processes may use both cores (the mgr stays pinned to cpu 0)
    convergeTimeoutMs: 60_000,
    connections: 20_000,
    clientProcesses: 2,
    connectTimeoutMs: 300_000,
    settleMs: 2000,
  },
  columns: [
    { label: 'nodes', field: 'nodes', unit: 'count' },
    { label: 'all registered ms', field: 'registered', unit: 'ms' },
    { label: 'converged ms', field: 'converged', unit: 'ms', ratio: true },
    { label: 'LEFT events', field: 'churn', unit: 'count' },
    { label: 'mgr members', field: 'mgrMembers', unit: 'count' },
    { label: 'mgr RSS MB', field: 'mgrRssMb', unit: 'mbps' },
    { label: 'idle conns', field: 'idleConns', unit: 'count' },
    { label: 'RSS Δ MB', field: 'rssDeltaMb', unit: 'mbps' },
    { label: 'KB/conn', field: 'kbPerConn', unit: 'mbps', ratio: true },
  ],
  rows: [
    targetRow('target (spec)', { nodes: 1000, converged: 5000, churn: 0, idleConns: 20_000, kbPerConn: 10 }),
    {
      label: 'raw ws@8',
      kind: 'peer', // so the second table shows xserver ÷ raw ws
      module: 'lib/ws-idle.js',
      impl: 'raw-ws-idle',
      options: { parts: ['idle'] },
    },
  ],
  measure,
};
