import { ClusterNode, createStore, defaultConfig, silentLogger, Metrics } from '../../dist/index.js';
const config = defaultConfig();
config.cluster = process.argv[2];
config.bindHost = '127.0.0.1';
const ctx = { config, store: createStore('redis://127.0.0.1:6379', config.cluster), logger: silentLogger(), metrics: new Metrics() };
const n = new ClusterNode(ctx, { type: 5 });
await n.start();
await n.ready();
while (!n.one(4)) await new Promise((r) => setTimeout(r, 10));
const target = n.one(4).id;
const body = new Uint8Array(64);
const inflight = Number(process.argv[3] ?? 1024);
let done = 0;
const end = performance.now() + 4000;
async function worker() {
  while (performance.now() < end) {
    await n.request(target, 1, body);
    done++;
  }
}
const t0 = performance.now();
await Promise.all(Array.from({ length: inflight }, worker));
console.log(`rpc @${inflight}: ${Math.round(done / ((performance.now() - t0) / 1000))} req/s`);
process.exit(0);
