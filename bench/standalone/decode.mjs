// One big frame arriving in small chunks: the decoder's cost must be linear in the bytes.
//   npm run build && node bench/standalone/decode.mjs [frameMiB=4] [chunkKiB=16] [runs=15]
// Prints the median time of: the reference (raw Node: keep the chunks, one Buffer.concat at
// the end, the least any decoder must do), xserver's FrameDecoder, and a decoder that
// concatenates the pending bytes with every chunk (the algorithm xserver used before; quadratic).
// `npm run bench big-frames` measures the first two at several sizes in the harness.
import { chunkedFrame, decoders, medianDecodeMs } from '../lib/decode.js';

const [frameMiB = 4, chunkKiB = 16, runs = 15] = process.argv.slice(2).map(Number);
const input = chunkedFrame(frameMiB * 1024 * 1024, chunkKiB * 1024);
const ref = medianDecodeMs(decoders.reference, input, { minRuns: runs });
const rows = [
  ['raw Node (chunks + one concat)', ref],
  ['xserver FrameDecoder', medianDecodeMs(decoders.xserver, input, { minRuns: runs })],
  ['concat per chunk (pre-fix algorithm)', medianDecodeMs(decoders.concatPerChunk, input, { minRuns: runs })],
];
console.log(`${frameMiB} MiB frame in ${chunkKiB} KiB chunks (${input.chunks.length} chunks), median of ${runs} runs, Node ${process.version}`);
for (const [name, ms] of rows) console.log(`  ${name.padEnd(38)} ${ms.toFixed(2).padStart(9)} ms   ${(ms / ref).toFixed(2).padStart(7)}x reference`);
