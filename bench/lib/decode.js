// One big frame arriving in small chunks, decoded in this process (no network): what the
// `big-frames` scenario and bench/standalone/decode.mjs measure. A decoder's cost must be linear in
// the bytes: its MB/s must not fall as the frame grows.
import { FrameDecoder, encodeFrame } from '../../dist/protocol/frame.js';

/** The frame `frameBytes` long (body of 1s) cut into `chunkBytes` views of one buffer. */
export function chunkedFrame(frameBytes, chunkBytes) {
  const wire = encodeFrame(7, new Uint8Array(frameBytes).fill(1));
  const chunks = [];
  for (let at = 0; at < wire.length; at += chunkBytes) {
    chunks.push(Buffer.from(wire.buffer, wire.byteOffset + at, Math.min(chunkBytes, wire.length - at)));
  }
  return { chunks, wireBytes: wire.length, frameBytes };
}

/** The decoders, each returning the body length it decoded from the chunks. */
export const decoders = {
  /** The least any decoder must do: keep the chunks, one Buffer.concat once the frame is whole. */
  reference({ chunks }) {
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
  },
  /** xserver's FrameDecoder (src/protocol/frame.ts), as every link and the SDK's TCP transport use it. */
  xserver({ chunks, frameBytes }) {
    let got = 0;
    const d = new FrameDecoder(frameBytes, (f) => (got = f.body.length));
    for (const c of chunks) d.push(c);
    return got;
  },
  /** Concatenating the pending bytes with every chunk: the algorithm xserver used before (quadratic). */
  concatPerChunk({ chunks }) {
    let pending = null;
    for (const c of chunks) {
      const buf = pending ? Buffer.concat([pending, c]) : c;
      if (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) return buf.length;
      pending = buf;
    }
    throw new Error('incomplete');
  },
};

/**
 * Median ms of one decode: after `warmupMs` of unmeasured decodes, decodes for `durationMs` (at
 * least `minRuns` times).
 */
export function medianDecodeMs(decode, input, { minRuns = 5, warmupMs = 0, durationMs = 0 } = {}) {
  const warmEnd = performance.now() + warmupMs;
  do decode(input);
  while (performance.now() < warmEnd);
  const times = [];
  const end = performance.now() + durationMs;
  while (times.length < minRuns || performance.now() < end) {
    const t = performance.now();
    if (!decode(input)) throw new Error('nothing decoded');
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1];
}
