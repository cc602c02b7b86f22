// One big frame arriving in 16 KiB chunks (as a socket delivers it), decoded in the harness's own
// process: MB/s of the least any decoder must do (keep the chunks, one concat) and of xserver's
// FrameDecoder, at 1, 4 and 16 MiB. Linear cost shows as MB/s that does not fall with the size.
import { chunkedFrame, decoders, medianDecodeMs } from '../lib/decode.js';

const MIB = 1024 * 1024;
const CHUNK_BYTES = 16 * 1024;
/** At least this many decodes per point, however long they take (the median is taken). */
const MIN_DECODES = 5;
const SIZES = [1, 4, 16];

async function measure(scenario, row, cfg) {
  const decode = decoders[row.options.decoder];
  const values = {};
  for (const mib of SIZES) {
    const input = chunkedFrame(mib * MIB, CHUNK_BYTES);
    const ms = medianDecodeMs(decode, input, { minRuns: MIN_DECODES, warmupMs: cfg.warmupMs, durationMs: cfg.durationMs });
    values[`${mib}MiB`] = { mbps: input.wireBytes / 1e6 / (ms / 1000), ms };
  }
  return { values, errors: [] };
}

export default {
  name: 'big-frames',
  title: `one frame of 1 / 4 / 16 MiB arriving in ${CHUNK_BYTES / 1024} KiB chunks, decoded (MB/s of the median decode)`,
  baseline: 'raw Node (chunks + one concat)',
  measure,
  defaults: {},
  points: [],
  columns: SIZES.flatMap((mib) => [{ label: `MB/s ${mib} MiB`, point: `${mib}MiB`, field: 'mbps', unit: 'mbps', ratio: true }]),
  rows: [
    { label: 'raw Node (chunks + one concat)', kind: 'ref', module: 'lib/decode.js', impl: 'reference', options: { decoder: 'reference' } },
    { label: 'xserver FrameDecoder', kind: 'xserver', module: 'lib/decode.js', impl: 'xserver', options: { decoder: 'xserver' } },
  ],
};
