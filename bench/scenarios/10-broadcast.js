// Broadcast fan-out, measured by the rows' own processes (scenario.measure).
//
// One source process (xserver: mgr + a "world" node) sends a message at a fixed rate to two
// "gateway" processes; each writes it to every one of its clients. Clients (raw `ws` connections;
// xserver: authenticated with a token, so each is a full client session) are spread over
// `clientProcesses` processes and over both gateways. Points: 1,000 and 10,000 clients in total
// (the second point adds 9,000 connections to the first 1,000). Per point: `warmupMs`, then every
// receiver counts the messages it gets within a window of `durationMs` wall-clock time and their
// end-to-end latency (send timestamp in the message, now() = performance.timeOrigin +
// performance.now() on both sides). deliveries/s = all receivers' count ÷ the window.
//
// The raw reference (lib/ws-broadcast.js): two WebSocketServers fed by the source over one TCP
// connection each, writing each frame with ws.send() of the same Buffer to all their sockets.
// xserver (xserver/broadcast.js): broadcastToClients() → one RELAY_BROADCAST_CLIENTS frame per
// gateway → the gateway encodes the client frame once and hands the same bytes to every socket.
//
// Source and gateways on cpu 0, clients on cpu 1 (when pinning works). The connection count is
// capped by the gateways' RLIMIT_NOFILE (each holds half of the clients).
import { Orchestra, noteOf, now, sleep, SERVER_CPU, CLIENT_CPU } from '../lib/orchestra.js';

const SETUP_MS = 60_000;
/** After the window closes, what is still in flight gets this long to land before the tally is read. */
const DRAIN_MS = 500;
const GATEWAYS = 2;

/** p-th percentile of the receivers' merged quantiles, each weighted by its process's delivery count. */
function mergedPercentile(results, p) {
  const points = results.flatMap((r) => r.quantiles.map((v) => [v, r.deliveries / r.quantiles.length]));
  if (points.length === 0) return undefined;
  points.sort((a, b) => a[0] - b[0]);
  const total = points.reduce((n, [, w]) => n + w, 0);
  let seen = 0;
  for (const [v, w] of points) {
    seen += w;
    if (seen >= (p / 100) * total) return v;
  }
  return points[points.length - 1][0];
}

async function measure(scenario, row, cfg, env, log) {
  const base = { ...scenario.defaults, ...row.options, ...env };
  const values = {};
  const errors = [];
  const o = new Orchestra(row);
  try {
    const source = await o.spawn('source', SERVER_CPU);
    await source.call('source', base, SETUP_MS);
    const gateways = [];
    for (let i = 0; i < GATEWAYS; i++) gateways.push(await o.spawn(`gateway${i}`, SERVER_CPU));
    const servers = await Promise.all(gateways.map((g) => g.call('server', base, SETUP_MS)));
    await source.call('connectSource', { servers }, SETUP_MS);
    const clients = [];
    for (let i = 0; i < base.clientProcesses; i++) clients.push(await o.spawn(`clients${i}`, CLIENT_CPU));
    // Leave room for each gateway's other descriptors (listeners, Redis, links, stdio).
    const fdCap = Math.min(...servers.map((s) => (s.fdLimit ? Math.floor((s.fdLimit - 250) / 100) * 100 * GATEWAYS : Infinity)));

    for (const point of base.points) {
      const label = point.clients >= 1000 ? `${point.clients / 1000}k` : String(point.clients);
      try {
        const n = Math.min(point.clients, fdCap);
        const per = clients.map((_, i) => Math.floor(n / clients.length) + (i < n % clients.length ? 1 : 0));
        const t0 = now();
        await Promise.all(clients.map((c, i) => c.call('clients', { ...base, servers, count: per[i] }, base.connectTimeoutMs)));
        const connectMs = now() - t0;
        const open = (await Promise.all(gateways.map((g) => g.call('serverClients', {}, SETUP_MS)))).reduce((a, s) => a + s.connections, 0);
        const from = now() + cfg.warmupMs;
        const to = from + cfg.durationMs;
        await Promise.all(clients.map((c) => c.call('collect', { from, to }, SETUP_MS)));
        await source.call('start', { rate: point.rate, payloadBytes: base.payloadBytes }, SETUP_MS);
        await sleep(to - now() + DRAIN_MS);
        const { sent } = await source.call('stop', {}, SETUP_MS);
        const results = await Promise.all(clients.map((c) => c.call('results', {}, SETUP_MS)));
        const after = (await Promise.all(gateways.map((g) => g.call('serverClients', {}, SETUP_MS)))).reduce((a, s) => a + s.connections, 0);
        const deliveries = results.reduce((a, r) => a + r.deliveries, 0);
        values[`dps${label}`] = deliveries / (cfg.durationMs / 1000);
        values[`p50${label}`] = mergedPercentile(results, 50);
        values[`p99${label}`] = mergedPercentile(results, 99);
        log(
          `    ${label}: ${open} connections (${n < point.clients ? `capped from ${point.clients} by RLIMIT_NOFILE; ` : ''}opened in ${(connectMs / 1000).toFixed(1)} s), ` +
            `${point.rate} msg/s offered (${sent} sent), ${deliveries} deliveries in ${cfg.durationMs} ms ` +
            `(${((deliveries / (n * point.rate * (cfg.durationMs / 1000))) * 100).toFixed(0)}% of offered), ` +
            `p50 ${values[`p50${label}`]?.toFixed(1)} ms, p99 ${values[`p99${label}`]?.toFixed(1)} ms; ${after} connections open after`,
        );
      } catch (err) {
        errors.push(noteOf(label, err));
        break;
      }
    }
  } catch (err) {
    errors.push(noteOf('setup', err));
  } finally {
    await o.close();
  }
  return { values, errors };
}

export default {
  name: 'broadcast',
  title: 'world chat: one node → every client of two gateways (1,000 and 10,000 WebSocket clients), same bytes to every socket',
  baseline: 'raw ws@8',
  defaults: {
    // Offered rates: 1,000 × 100/s and 10,000 × 20/s deliveries/s (what both rows keep up with on an
    // idle 2-core machine is the question; a row that falls behind shows fewer deliveries and a
    // growing p99).
    points: [
      { clients: 1000, rate: 100 },
      { clients: 10_000, rate: 20 },
    ],
    payloadBytes: 64,
    clientProcesses: 2,
    connectTimeoutMs: 120_000,
  },
  columns: [
    { label: 'deliveries/s @1k', field: 'dps1k', unit: 'rate', ratio: true },
    { label: 'p99 ms @1k', field: 'p991k', unit: 'ms' },
    { label: 'deliveries/s @10k', field: 'dps10k', unit: 'rate', ratio: true },
    { label: 'p50 ms @10k', field: 'p5010k', unit: 'ms' },
    { label: 'p99 ms @10k', field: 'p9910k', unit: 'ms', ratio: true },
  ],
  rows: [
    {
      label: 'raw ws@8',
      kind: 'peer',
      module: 'lib/ws-broadcast.js',
      impl: 'raw-ws-broadcast',
    },
    {
      label: 'raw ws@8 corked',
      kind: 'peer',
      module: 'lib/ws-broadcast.js',
      impl: 'raw-ws-broadcast',
      options: { batch: true },
    },
  ],
  measure,
};
