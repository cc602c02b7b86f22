// Membership: how long until an observer sees a node join, and sees it gone after kill -9 / SIGSTOP.
export default {
  name: 'discovery',
  kind: 'discovery',
  title: 'discovery / failure detection, heartbeat 1 s, timeout 3 s (ms, lower is better)',
  defaults: { heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 3000 },
  columns: [
    { label: 'join ms (spawn→seen)', field: 'join', unit: 'ms', ratio: true },
    { label: 'kill -9 → gone ms', field: 'kill', unit: 'ms', ratio: true },
    { label: 'SIGSTOP → gone ms', field: 'stop', unit: 'ms', ratio: true },
  ],
  rows: [
    {
      label: 'moleculer tcp',
      kind: 'peer',
      module: 'peers/moleculer.js',
      impl: 'moleculer-discovery',
      options: { transport: 'tcp' },
      needs: ['peers'],
    },
    {
      label: 'moleculer redis',
      kind: 'peer',
      module: 'peers/moleculer.js',
      impl: 'moleculer-discovery',
      options: { transport: 'redis' },
      needs: ['peers', 'redis'],
    },
  ],
};
