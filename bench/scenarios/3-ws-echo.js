// Raw ws@8 echo: one connection, N binary 64 B messages in flight.
import { inflightPoints, inflightColumns } from './2-tcp-echo.js';

export default {
  name: 'ws-echo',
  title: 'ws@8 binary echo, 64 B, 1 connection, in-flight 1/64/1024',
  baseline: 'raw-ws',
  defaults: { payloadBytes: 64, clients: 1 },
  points: inflightPoints,
  columns: inflightColumns,
  rows: [{ label: 'raw-ws', kind: 'ref', module: 'ref/ws.js', impl: 'raw-ws-echo' }],
};
