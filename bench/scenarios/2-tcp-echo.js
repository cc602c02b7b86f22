// Raw TCP request/response: one connection, N requests in flight, 64 B bodies echoed back.
export const inflightPoints = [
  { id: 'if1', opts: { inflight: 1 } },
  { id: 'if64', opts: { inflight: 64 } },
  { id: 'if1024', opts: { inflight: 1024 } },
];

export const inflightColumns = [
  { label: 'msg/s @1', point: 'if1', field: 'rate', unit: 'rate', ratio: true },
  { label: 'msg/s @64', point: 'if64', field: 'rate', unit: 'rate', ratio: true },
  { label: 'msg/s @1024', point: 'if1024', field: 'rate', unit: 'rate', ratio: true },
  { label: 'p50 µs @1', point: 'if1', field: 'p50', unit: 'us' },
  { label: 'p99 µs @64', point: 'if64', field: 'p99', unit: 'us' },
];

export default {
  name: 'tcp-echo',
  title: 'raw TCP request/response echo, 64 B body, 1 connection, in-flight 1/64/1024',
  baseline: 'raw-tcp batched',
  defaults: { payloadBytes: 64 },
  points: inflightPoints,
  columns: inflightColumns,
  rows: [
    { label: 'raw-tcp batched', kind: 'ref', module: 'ref/tcp.js', impl: 'raw-tcp-echo', options: { mode: 'batch' } },
    { label: 'raw-tcp write/frame', kind: 'ref', module: 'ref/tcp.js', impl: 'raw-tcp-echo', options: { mode: 'direct' } },
  ],
};
