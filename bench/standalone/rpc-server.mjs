import { MgrServer, ClusterNode, createStore, defaultConfig, silentLogger, Metrics } from '../../dist/index.js';
const config = defaultConfig(); config.cluster = process.argv[2]; config.mgr.port = 0; config.bindHost = '127.0.0.1';
const ctx = { config, store: createStore('redis://127.0.0.1:6379', config.cluster), logger: silentLogger(), metrics: new Metrics() };
const mgr = new MgrServer(ctx); await mgr.start();
const n = new ClusterNode(ctx, { type: 4 }); n.handle(1, (b) => b); await n.start(); await n.ready();
console.log('ready');
process.stdin.on('end', () => process.exit(0)); process.stdin.resume();
