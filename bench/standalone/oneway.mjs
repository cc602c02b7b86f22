// The `tcp-oneway` xserver roles (bench/xserver/oneway.js) in two processes, without the harness:
// a receiver (with its mgr) that exits when stdin closes, and a sender that runs the given body
// sizes one after another in the same processes, as the harness does (see README.md).
//   node bench/standalone/oneway.mjs server <cluster> < <(sleep 30) &
//   node bench/standalone/oneway.mjs client <cluster> 64,1024,1024
import roles from '../xserver/oneway.js';

const [role, cluster, sizes = '1024'] = process.argv.slice(2);
if (role === 'server') {
  await roles.server({ namespace: cluster }, { now: () => performance.now() });
  console.log('ready');
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
} else if (role === 'client') {
  for (const size of sizes.split(',').map(Number)) {
    const r = await roles.client({ namespace: cluster, payloadBytes: size, warmupMs: 500, durationMs: 2000 });
    console.log(`${size} B: ${(r.rate / 1e6).toFixed(2)} M msg/s, ${r.mbps.toFixed(0)} MB/s`);
  }
  process.exit(0);
} else {
  console.error('usage: oneway.mjs server <cluster> | client <cluster> [sizes, e.g. 64,1024]');
  process.exit(2);
}
