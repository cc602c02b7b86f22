// One big frame arriving in small chunks: the decoder's cost must be linear in the bytes.
//   npm run build && node bench/standalone/decode.mjs [frameMiB=4] [chunkKiB=16] [runs=15]
// Prints the median time of: the reference (raw Node: keep the chunks, one Buffer.concat at
// the end, the least any decoder must do), xserver's FrameDecoder, and a decoder that
// concatenates the pending bytes with every chunk (the algorithm xserver used before; quadratic).
import { FrameDecoder, encodeFrame } from '../../dist/protocol/frame.js';

const [frameMiB = 4, chunkKiB = 16, runs = 15] = process.argv.slice(2).map(Number);
const wire = encodeFrame(7, new Uint8Array(frameMiB * 1024 * 1024).fill(1));
const chunks = [];
for (let at = 0; at < wire.length; at += chunkKiB * 1024)
  chunks.push(Buffer.from(wire.buffer, wire.byteOffset + at, Math.min(chunkKiB * 1024, wire.length - at)));

function reference() {
  const parts = [];
  let n = 0;
  let need = -1;
  for (const c of chunks) {
    parts.push(c);
    n += c.length;
    if (need < 0 && n >= 4) need = 4 + parts[0].readUInt32BE(0);
    if (need >= 0 && n >= need) return Buffer.concat(parts, n).length;
  }
  throw new Error('incomplete');
}

function xserver() {
  let got = 0;
  const d = new FrameDecoder(frameMiB * 1024 * 1024, (f) => (got = f.body.length));
  for (const c of chunks) d.push(c);
  return got;
}

function concatPerChunk() {
  let pending = null;
  for (const c of chunks) {
    const buf = pending ? Buffer.concat([pending, c]) : c;
    if (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) return buf.length;
    pending = buf;
  }
  throw new Error('incomplete');
}

function median(fn) {
  const times = [];
  for (let i = 0; i < runs + 2; i++) {
    const t = performance.now();
    if (!fn()) throw new Error('nothing decoded');
    if (i >= 2) times.push(performance.now() - t); // two warm-up runs
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1];
}

const ref = median(reference);
const rows = [
  ['raw Node (chunks + one concat)', ref],
  ['xserver FrameDecoder', median(xserver)],
  ['concat per chunk (pre-fix algorithm)', median(concatPerChunk)],
];
console.log(`${frameMiB} MiB frame in ${chunkKiB} KiB chunks (${chunks.length} chunks), median of ${runs} runs, Node ${process.version}`);
for (const [name, ms] of rows) console.log(`  ${name.padEnd(38)} ${ms.toFixed(2).padStart(9)} ms   ${(ms / ref).toFixed(2).padStart(7)}x reference`);
