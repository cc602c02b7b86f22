// Builds the examples, after the package (they import it by name, as a user's project does):
//   examples/tsconfig.json       the services and their contracts -> dist/examples/
//   examples/chat/tsconfig.json  the chat page -> dist/examples/web/, plus its index.html
// `xserver up` runs the services from dist/examples/ and serves dist/examples/web/ as the page.
// Run: npm run build (tsc -p tsconfig.json first, then this).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const WEB = path.join(ROOT, 'dist/examples/web');

for (const project of ['examples/tsconfig.json', 'examples/chat/tsconfig.json']) {
  try {
    execFileSync(process.execPath, [tsc, '-p', path.join(ROOT, project)], { stdio: 'inherit' });
  } catch {
    // tsc printed its diagnostics.
    console.error(`build-examples: ${project} does not compile`);
    process.exit(1);
  }
}
fs.copyFileSync(path.join(ROOT, 'examples/chat/index.html'), path.join(WEB, 'index.html'));
