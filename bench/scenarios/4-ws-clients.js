// Many ws clients against one echo server (the gateway comparison): each client keeps a window
// of WINDOW requests in flight.
const WINDOW = 8;

export default {
  name: 'ws-clients',
  title: `ws@8 echo, 64 B, 1/100/1000 client connections, each with ${WINDOW} in flight`,
  baseline: 'raw-ws',
  defaults: { payloadBytes: 64, window: WINDOW },
  points: [
    { id: 'c1', opts: { clients: 1 } },
    { id: 'c100', opts: { clients: 100 } },
    { id: 'c1000', opts: { clients: 1000 } },
  ],
  columns: [
    { label: 'msg/s 1 client', point: 'c1', field: 'rate', unit: 'rate', ratio: true },
    { label: 'msg/s 100 clients', point: 'c100', field: 'rate', unit: 'rate', ratio: true },
    { label: 'msg/s 1000 clients', point: 'c1000', field: 'rate', unit: 'rate', ratio: true },
    { label: 'p99 ms 1000 clients', point: 'c1000', field: 'p99', unit: 'ms', scale: 1e-3 },
  ],
  rows: [{ label: 'raw-ws', kind: 'ref', module: 'ref/ws.js', impl: 'raw-ws-echo' }],
};
