#!/usr/bin/env node
// Entry point of the `xserver` command; the code lives in dist/ (npm run build).
import { main } from '../dist/cli/main.js';

// `xserver status | head` must not crash when the reader goes away.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

main(process.argv).catch((e) => {
  process.stderr.write(`xserver: ${e?.stack ?? e}\n`);
  process.exit(1);
});
