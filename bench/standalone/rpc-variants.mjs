// The caller side of the rpc probe in several forms, to see what a load driver costs a ~1M req/s
// caller: `node rpc-variants.mjs <cluster> <mode> [inflight]`, with
// rpc-server.mjs running. Modes:
//   promise    await node.request() in `inflight` loops
//   cb         node.requestCb(), no latency recorded
//   buffer     cb + every latency kept in a growing Float64Array (the harness's former recorder)
//   histogram  cb + latencies counted in bench/lib/stats.js Samples (the harness's recorder)
//   harness    bench/lib/load.js runWindow(), as the harness's rpc rows call it
import { ClusterNode, createStore, defaultConfig, silentLogger, Metrics } from '../../dist/index.js';
import { runWindow } from '../lib/load.js';
import { Samples } from '../lib/stats.js';

const [cluster, mode = 'cb', inflightArg = '1024'] = process.argv.slice(2);
const inflight = Number(inflightArg);
const DURATION_MS = 3000;
const config = defaultConfig();
config.cluster = cluster;
config.bindHost = '127.0.0.1';
const ctx = { config, store: createStore('redis://127.0.0.1:6379', config.cluster), logger: silentLogger(), metrics: new Metrics() };
const n = new ClusterNode(ctx, { type: 5 });
await n.start();
await n.ready();
while (!n.one(4)) await new Promise((r) => setTimeout(r, 10));
const target = n.one(4).id;
const body = new Uint8Array(64);
await n.request(target, 1, body); // the link is open before anything is measured

/** A growing buffer of every sample (what bench/lib/stats.js did before its histogram). */
class SampleBuffer {
  data = new Float64Array(1 << 16);
  length = 0;
  add(v) {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = v;
  }
}

/** `inflight` callback chains for DURATION_MS; `record(µs)` per answer when given. */
function chains(record) {
  let done = 0;
  const t0 = performance.now();
  const end = t0 + DURATION_MS;
  return new Promise((resolve) => {
    let running = inflight;
    const issue = () => {
      const start = performance.now();
      n.requestCb(target, 1, body, () => {
        done++;
        const now = performance.now();
        record?.((now - start) * 1000);
        if (now < end) issue();
        else if (--running === 0) resolve(done / ((performance.now() - t0) / 1000));
      });
    };
    for (let i = 0; i < inflight; i++) issue();
  });
}

let rate;
if (mode === 'promise') {
  let done = 0;
  const t0 = performance.now();
  const end = t0 + DURATION_MS;
  const loop = async () => {
    while (performance.now() < end) {
      await n.request(target, 1, body);
      done++;
    }
  };
  await Promise.all(Array.from({ length: inflight }, loop));
  rate = done / ((performance.now() - t0) / 1000);
} else if (mode === 'cb') rate = await chains();
else if (mode === 'buffer') {
  const b = new SampleBuffer();
  rate = await chains((v) => b.add(v));
} else if (mode === 'histogram') {
  const s = new Samples();
  rate = await chains((v) => s.add(v));
} else if (mode === 'harness') {
  const r = await runWindow({
    inflight,
    warmupMs: 500,
    durationMs: DURATION_MS,
    request(_slot, done) {
      n.requestCb(target, 1, body, (err) => done(err ?? undefined));
    },
  });
  rate = r.rate;
} else throw new Error(`unknown mode ${mode}`);
console.log(`${mode} @${inflight}: ${Math.round(rate)} req/s`);
process.exit(0);
