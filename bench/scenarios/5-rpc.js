// Request/response across frameworks: raw TCP (baseline) vs pinus-rpc and Moleculer, 64 B payloads.
import { inflightPoints, inflightColumns } from './2-tcp-echo.js';

const peer = (label, module, impl, options, needs = []) => ({
  label,
  kind: 'peer',
  module,
  impl,
  options,
  needs: ['peers', ...needs],
});

export default {
  name: 'rpc',
  title: 'request/response, 64 B payload, 1 client process, in-flight 1/64/1024',
  baseline: 'raw-tcp batched',
  defaults: { payloadBytes: 64 },
  points: inflightPoints,
  columns: inflightColumns,
  rows: [
    { label: 'raw-tcp batched', kind: 'ref', module: 'ref/tcp.js', impl: 'raw-tcp-echo', options: { mode: 'batch' } },
    peer('pinus-rpc tcp', 'peers/pinus.js', 'pinus-rpc', { mailbox: 'tcp' }),
    peer('pinus-rpc mqtt', 'peers/pinus.js', 'pinus-rpc', { mailbox: 'mqtt' }),
    peer('moleculer tcp', 'peers/moleculer.js', 'moleculer-rpc', { transport: 'tcp' }),
    peer('moleculer redis', 'peers/moleculer.js', 'moleculer-rpc', { transport: 'redis' }, ['redis']),
  ],
};
