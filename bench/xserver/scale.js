// Roles for the `scale` scenario (scenarios/8-scale.js).
// - nodes: one mgr process; `prepare` builds opts.count ClusterNodes per process (not started), `go`
//   starts them all at once. Each node counts its view (its 'joined' minus 'left' events; the
//   snapshot's members arrive as 'joined' too); the process emits 'registered' when all its nodes are
//   registered and 'converged' when every one of them lists opts.total - 1 peers.
// - idle: mgr + Gateway in one process; client processes open authenticated, silent WebSocket
//   connections; the gateway reports its RSS (after a forced GC) before and after.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { roleContext, startMgr, mgrMemberCount, gcMemory, fdLimit, sleep, ClusterNode, Gateway, T_ECHO } from './_common.js';
import { gatewayConfig, openClients } from './ws.js';

let mgr;
let mgrCtx;
const metricsOf = () => mgrCtx.metrics.text();
let gateway;
const nodes = []; // { node, view, converged, registered }
const held = []; // idle client connections (kept referenced until the process is killed)
const diag = { mgrLost: {}, left: {} }; // why views shrank, for the log line
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
/** CPU time of this process from the start of its part (mgr: started; nodes: go), user + system ms. */
let cpuFrom;
const cpuMs = () => {
  const u = process.cpuUsage(cpuFrom);
  return (u.user + u.system) / 1000;
};

export default {
  name: 'xserver',
  scenario: 'scale',
  needs: ['redis'],
  options: { parts: ['nodes', 'idle'] },

  // ------------------------------------------------------------------ 1,000 nodes

  async mgr(opts, ctx) {
    const rctx = roleContext(opts, (c) => {
      c.mgr.maxMembers = Math.max(c.mgr.maxMembers, opts.total * 2);
    });
    mgrCtx = rctx;
    mgr = await startMgr(rctx);
    cpuFrom = process.cpuUsage();
    loopDelay.enable();
    let reported = false;
    const timer = setInterval(() => {
      if (!reported && mgrMemberCount(mgr) >= opts.total) {
        reported = true;
        ctx.emit({ type: 'mgr-members', n: mgrMemberCount(mgr) });
        clearInterval(timer);
      }
    }, 5);
    return { instanceId: mgr.instanceId, rss: process.memoryUsage().rss };
  },

  async mgrStats() {
    const raw = process.memoryUsage();
    const members = mgrMemberCount(mgr);
    const events = (await metricsOf(mgr)).split('\n').filter((l) => l.startsWith('xserver_mgr_membership_events_total'));
    const gc = await gcMemory();
    return { maxLoopDelayMs: loopDelay.max / 1e6, cpuMs: cpuMs(), members, rss: raw.rss, rssAfterGc: gc.rss, heapUsed: gc.heapUsed, events };
  },

  async prepare(opts) {
    const rctx = roleContext(opts);
    await rctx.store.ready(5000);
    for (let i = 0; i < opts.count; i++) {
      const node = new ClusterNode(rctx, { type: T_ECHO, name: `s${opts.index}-${i}` });
      nodes.push({ node, view: 0, converged: false, registered: false });
    }
    return { count: nodes.length, rss: process.memoryUsage().rss };
  },

  async go(opts, ctx) {
    cpuFrom = process.cpuUsage();
    loopDelay.enable();
    const want = opts.total - 1;
    let registered = 0;
    let converged = 0;
    for (const rec of nodes) {
      const check = () => {
        if (!rec.converged && rec.view >= want) {
          rec.converged = true;
          if (++converged === nodes.length) ctx.emit({ type: 'converged', n: converged });
        }
      };
      rec.node.on('joined', () => {
        rec.view++;
        check();
      });
      rec.node.on('left', (_p, reason) => {
        rec.view--;
        diag.left[reason] = (diag.left[reason] ?? 0) + 1;
      });
      rec.node.on('mgr-lost', (why) => {
        const k = String(why)
          .replace(/[0-9a-f]{8}.*$/, '')
          .slice(0, 60);
        diag.mgrLost[k] = (diag.mgrLost[k] ?? 0) + 1;
      });
      rec.node.once('mgr-connected', () => {
        rec.registered = true;
        if (++registered === nodes.length) ctx.emit({ type: 'registered', n: registered });
      });
    }
    await Promise.all(nodes.map((r) => r.node.start()));
    return { started: nodes.length };
  },

  /** Views of this process's nodes: min/max of the counted views, and a few nodes' own membership size. */
  async views() {
    const views = nodes.map((r) => r.view + 1);
    const sample = [0, Math.floor(nodes.length / 2), nodes.length - 1].map((i) => nodes[i].node.all().length);
    return {
      min: Math.min(...views),
      max: Math.max(...views),
      registered: nodes.filter((r) => r.node.mgrConnected).length,
      converged: nodes.filter((r) => r.converged).length,
      sample,
      rss: process.memoryUsage().rss,
      diag,
      maxLoopDelayMs: loopDelay.max / 1e6,
      cpuMs: cpuMs(),
    };
  },

  // ------------------------------------------------------------------ idle client connections

  async idleServer(opts) {
    const rctx = roleContext(opts, (c) => {
      gatewayConfig(c);
      c.gateway.idleTimeoutMs = 3_600_000; // silent clients: no pings needed during the test
      c.gateway.maxConnections = Math.max(c.gateway.maxConnections, opts.connections * 2);
    });
    await startMgr(rctx);
    gateway = new Gateway(rctx);
    await gateway.start();
    await gateway.node.ready();
    await sleep(200);
    const mem = await gcMemory();
    return {
      host: '127.0.0.1',
      gatewayId: gateway.node.id,
      wsPort: gateway.wsPort,
      fdLimit: fdLimit(),
      rssBefore: mem.rss,
      heapBefore: mem.heapUsed,
    };
  },

  async idleServerMem() {
    const mem = await gcMemory();
    return { connections: gateway.connectionCount, rss: mem.rss, heapUsed: mem.heapUsed };
  },

  async idleClients(opts) {
    const rctx = roleContext(opts);
    await rctx.store.ready(5000);
    const conns = await openClients(rctx.store, opts.server, 'ws', opts.count, 1, opts.parallelism ?? 100);
    held.push(...conns);
    return { opened: conns.length };
  },
};
