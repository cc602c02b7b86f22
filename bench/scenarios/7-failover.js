// mgr failover and join latency, measured by the rows' own processes (scenario.measure).
//
// Failover: mgr1 (active) + mgr2 (standby) on cpu 0; members A, B, C (one process each, cpu 1);
// A sends `rate` requests/s to B over their direct link. After `steadyMs`, mgr1 gets kill -9. Measured
// from the signal: when mgr2 is active, when every member has re-registered (its 'mgr-connected'),
// how many of A's requests failed or never reached B, and how many LEFT events members saw (a
// failover must not look like peers leaving).
//
// Join latency: a fresh cluster with one mgr and joinProcesses × nodesPerProcess ClusterNodes, started
// one every staggerMs/joinProcesses ms. For node X: from X's registration (its own 'mgr-connected') to
// the moment the last node that was already registered before X started emitted 'joined' for X.
//
// A row module provides the roles: mgr({tag, standby}), member({who, type, echo}), startTraffic({target,
// rate}), stopTraffic(), stats(), members({index, count, offsetMs, staggerMs}), report().
import { Orchestra, targetRow, targetValues, percentile, sleep, noteOf, now, SERVER_CPU, CLIENT_CPU } from '../lib/orchestra.js';

const LEASE_TTL_MS = 3000;
const SETUP_MS = 30_000;

async function failover(o, base, values, log) {
  const m1 = await o.spawn('mgr1', SERVER_CPU);
  await m1.call('mgr', { ...base, tag: 'mgr1' }, SETUP_MS);
  const m2 = await o.spawn('mgr2', SERVER_CPU);
  await m2.call('mgr', { ...base, tag: 'mgr2', standby: true }, SETUP_MS);
  const members = {};
  for (const [who, type, echo] of [
    ['B', 4, true],
    ['A', 5, false],
    ['C', 6, false],
  ]) {
    members[who] = await o.spawn(who, CLIENT_CPU);
    members[who].info = await members[who].call('member', { ...base, who, type, echo }, SETUP_MS);
  }
  await members.A.call('startTraffic', { ...base, target: members.B.info.id }, SETUP_MS);
  // Steady state: traffic flowing, and the mgr's membership mirror written (the standby needs it).
  await sleep(base.steadyMs);

  const t0 = now();
  await o.kill(m1);
  const active = await o.wait((e) => e.type === 'active' && e.from === 'mgr2', 15_000, 'standby active');
  const regs = await Promise.all(
    ['A', 'B', 'C'].map((w) => o.wait((e) => e.type === 'mgr-connected' && e.from === w && e.t > t0, 15_000, `${w} re-registered`)),
  );
  await sleep(base.afterMs);
  const traffic = await members.A.call('stopTraffic', {}, SETUP_MS);
  const b = await members.B.call('stats', {}, SETUP_MS);

  values.active = active.t - t0;
  values.failover = Math.max(...regs.map((e) => e.t)) - t0;
  values.sent = traffic.sent;
  values.lost = Math.max(traffic.sent - traffic.ok, traffic.sent - b.distinct);
  values.leftEvents = o.events.filter((e) => e.type === 'left' && e.t > t0).length;
  values.maxLatencyMs = traffic.maxMs;
  const detail = `failover: active ${values.active.toFixed(0)} ms, re-registered ${regs.map((e) => `${e.from} ${(e.t - t0).toFixed(0)}`).join(' / ')} ms; A sent ${traffic.sent}, ok ${traffic.ok}, failed ${traffic.failed} ${JSON.stringify(traffic.codes)}, B got ${b.distinct} (+${b.duplicates} dup), max request ${traffic.maxMs.toFixed(0)} ms`;
  log(`    ${detail}`);
  return detail;
}

async function joinLatency(o, base, values, log) {
  const cluster = `${base.namespace}j`;
  const m = await o.spawn('join mgr', SERVER_CPU);
  await m.call('mgr', { ...base, cluster, tag: 'join' }, SETUP_MS);
  const procs = [];
  for (let i = 0; i < base.joinProcesses; i++) procs.push(await o.spawn(`join g${i}`, CLIENT_CPU));
  const spacing = base.staggerMs / base.joinProcesses;
  await Promise.all(
    procs.map((p, i) =>
      p.call('members', { ...base, cluster, index: i, count: base.nodesPerProcess, offsetMs: i * spacing, staggerMs: base.staggerMs }, 120_000),
    ),
  );
  await sleep(500);
  const nodes = (await Promise.all(procs.map((p) => p.call('report', {}, SETUP_MS)))).flatMap((r) => r.nodes);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const seenAt = new Map(); // `${observer} ${subject}` -> t
  for (const n of nodes) for (const [peer, t] of n.seen) seenAt.set(`${n.id} ${peer}`, t);
  const fromReg = [];
  const fromStart = [];
  let missing = 0;
  for (const x of nodes) {
    // Observers: nodes registered before x started (they learn of x by JOINED, not by their snapshot).
    const observers = nodes.filter((y) => y !== x && y.regAt > 0 && y.regAt < x.startAt);
    if (observers.length === 0) continue;
    let last = -Infinity;
    for (const y of observers) {
      const t = seenAt.get(`${y.id} ${x.id}`);
      if (t === undefined) missing++;
      else last = Math.max(last, t);
    }
    if (last === -Infinity) continue;
    fromReg.push(Math.max(0, last - x.regAt));
    fromStart.push(last - x.startAt);
  }
  values.joinP50 = percentile(fromReg, 50);
  values.joinP99 = percentile(fromReg, 99);
  values.joinStartP99 = percentile(fromStart, 99);
  values.joinNodes = byId.size;
  const detail = `join: ${byId.size} nodes, ${fromReg.length} measured, register→all seen p50 ${values.joinP50?.toFixed(1)} / p99 ${values.joinP99?.toFixed(1)} / max ${Math.max(...fromReg).toFixed(1)} ms, start→all seen p50 ${percentile(fromStart, 50)?.toFixed(1)} / p99 ${values.joinStartP99?.toFixed(1)} ms${missing ? `, ${missing} JOINED never seen` : ''}`;
  log(`    ${detail}`);
  if (missing) throw new Error(`${missing} JOINED events never seen`);
}

async function measure(scenario, row, cfg, env, log) {
  if (row.kind === 'target') return targetValues(row);
  const base = { ...scenario.defaults, ...row.options, ...env };
  const values = {};
  const errors = [];
  for (const [name, step] of [
    ['failover', failover],
    ['join', joinLatency],
  ]) {
    const o = new Orchestra(row);
    try {
      await step(o, base, values, log);
    } catch (err) {
      errors.push(noteOf(name, err));
    } finally {
      await o.close();
    }
  }
  return { values, errors };
}

export default {
  name: 'failover',
  title: `mgr failover (kill -9 of the active mgr; lease TTL ${LEASE_TTL_MS / 1000} s, A→B requests flowing) and join latency with 50 nodes`,
  baseline: 'target (spec)',
  defaults: { leaseTtlMs: LEASE_TTL_MS, rate: 2000, steadyMs: 2000, afterMs: 1000, joinProcesses: 5, nodesPerProcess: 10, staggerMs: 100 },
  columns: [
    { label: 'standby active ms', field: 'active', unit: 'ms' },
    { label: 'all re-registered ms', field: 'failover', unit: 'ms', ratio: true },
    { label: 'A→B sent', field: 'sent', unit: 'count' },
    { label: 'A→B lost/failed', field: 'lost', unit: 'count' },
    { label: 'LEFT events', field: 'leftEvents', unit: 'count' },
    { label: 'join p50 ms', field: 'joinP50', unit: 'ms' },
    { label: 'join p99 ms', field: 'joinP99', unit: 'ms', ratio: true },
    { label: 'start→seen p99 ms', field: 'joinStartP99', unit: 'ms' },
  ],
  rows: [targetRow('target (spec)', { failover: LEASE_TTL_MS + 1000, lost: 0, leftEvents: 0, joinP99: 20 })],
  measure,
};
