// Raw TCP one-way pipelined throughput: the client writes frames as fast as the socket drains,
// the server parses and counts them between a start and an end marker.
export default {
  name: 'tcp-oneway',
  title: 'raw TCP one-way pipelined frames of 64 B to 1 MiB, 1 connection (receiver-side msg/s, MB/s)',
  baseline: 'raw-tcp batched',
  defaults: {},
  points: [
    { id: '64B', opts: { payloadBytes: 64 } },
    { id: '1KiB', opts: { payloadBytes: 1024 } },
    { id: '64KiB', opts: { payloadBytes: 64 * 1024 } },
    { id: '1MiB', opts: { payloadBytes: 1024 * 1024 } },
  ],
  columns: [
    { label: 'msg/s 64 B', point: '64B', field: 'rate', unit: 'rate', ratio: true },
    { label: 'msg/s 1 KiB', point: '1KiB', field: 'rate', unit: 'rate', ratio: true },
    { label: 'MB/s 1 KiB', point: '1KiB', field: 'mbps', unit: 'mbps' },
    { label: 'MB/s 64 KiB', point: '64KiB', field: 'mbps', unit: 'mbps', ratio: true },
    { label: 'MB/s 1 MiB', point: '1MiB', field: 'mbps', unit: 'mbps', ratio: true },
  ],
  rows: [
    { label: 'raw-tcp batched', kind: 'ref', module: 'ref/tcp.js', impl: 'raw-tcp-oneway', options: { mode: 'batch' } },
    { label: 'raw-tcp write/frame', kind: 'ref', module: 'ref/tcp.js', impl: 'raw-tcp-oneway', options: { mode: 'direct' } },
  ],
};
