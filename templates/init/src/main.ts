// `npm start`: the whole backend in this process on the in-memory store (mgr, login, gateway and
// the game service). Log in at http://127.0.0.1:7080/login with any account and password; try the
// commands by hand at http://127.0.0.1:7080/playground/.
import { createLogger, startDevCluster } from 'xserver';
import service from './service.js';

const dev = await startDevCluster({ services: [service], logger: createLogger({ level: 'info', pretty: 'auto', name: 'dev' }) });
process.stdout.write(
  `\n  game backend up: login at ${dev.loginUrl}/login (any account/password registers)\n` +
    `  playground: ${dev.playgroundUrl} (send the game's commands by hand); Ctrl-C stops it\n\n`,
);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void dev.stop().then(() => process.exit(0)));
}
