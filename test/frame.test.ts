import { afterEach, describe, expect, it, vi } from 'vitest';
import { XError } from '../src/errors.js';
import { Flags, FrameDecoder, HEADER_SIZE, batchFrames, decodeFrames, encodeFrame, type Frame } from '../src/protocol/frame.js';
import { FrameWriter, toXError } from '../src/wire/frame.js';

function decodeAll(chunks: Uint8Array[], max = 1 << 20): Frame[] {
  const out: Frame[] = [];
  const d = new FrameDecoder(max, (f) => out.push({ ...f, body: Buffer.from(f.body) }), toXError);
  for (const c of chunks) d.push(c);
  return out;
}

describe('frame codec', () => {
  it('round-trips cmd, flags, rid and body, including 32-bit commands', () => {
    const f = encodeFrame(0xfffe1234, Buffer.from('hello'), 3, 0x7fffffff);
    expect(f.length).toBe(HEADER_SIZE + 5);
    const [g] = decodeAll([f]);
    expect(g).toMatchObject({ cmd: 0xfffe1234, flags: 3, rid: 0x7fffffff });
    expect(Buffer.from(g!.body).toString()).toBe('hello');
  });

  it('reassembles frames split at every byte boundary', () => {
    const all = Buffer.concat([encodeFrame(1, Buffer.from('abc')), encodeFrame(2), encodeFrame(3, Buffer.alloc(300, 7))]);
    for (let cut = 1; cut < all.length; cut++) {
      const frames = decodeAll([all.subarray(0, cut), all.subarray(cut)]);
      expect(frames.map((f) => f.cmd)).toEqual([1, 2, 3]);
      expect(frames[2]!.body.length).toBe(300);
    }
  });

  it('decodes one byte at a time', () => {
    const all = Buffer.concat([encodeFrame(9, Buffer.from('xyz')), encodeFrame(10, Buffer.from('!'))]);
    const frames = decodeAll([...all].map((b) => Buffer.from([b])));
    expect(frames.map((f) => Buffer.from(f.body).toString())).toEqual(['xyz', '!']);
  });

  it('rejects a frame over the limit before buffering it', () => {
    const big = encodeFrame(1, Buffer.alloc(2000));
    expect(() => decodeAll([big.subarray(0, 8)], 1000)).toThrowError(XError);
    try {
      decodeAll([big.subarray(0, 8)], 1000);
    } catch (e) {
      expect((e as XError).code).toBe('FRAME_TOO_LARGE');
    }
  });

  it('rejects a length too small for the header', () => {
    const bad = Buffer.from([0, 0, 0, 3, 1, 2, 3]);
    expect(() => decodeAll([bad])).toThrowError(/smaller than/);
  });

  describe('cost linear in the bytes received', () => {
    afterEach(() => {
      vi.restoreAllMocks();
    });

    /** Counts the bytes copied through the two copy primitives a decoder can use (Buffer.concat, Uint8Array#set). */
    function countCopies(): () => number {
      let copied = 0;
      const concat = Buffer.concat.bind(Buffer);
      vi.spyOn(Buffer, 'concat').mockImplementation((list: readonly Uint8Array[], total?: number) => {
        copied += list.reduce((n, b) => n + b.length, 0);
        return concat(list, total);
      });
      const set = Uint8Array.prototype.set;
      vi.spyOn(Uint8Array.prototype, 'set').mockImplementation(function (this: Uint8Array, src: ArrayLike<number>, offset?: number) {
        copied += src.length;
        set.call(this, src, offset);
      });
      return () => copied;
    }

    it('a 4 MiB frame in 16 KiB chunks is copied once, not once per chunk', () => {
      const size = 4 * 1024 * 1024;
      const wire = Buffer.concat([encodeFrame(7, Buffer.alloc(size, 3)), encodeFrame(8, Buffer.from('next'))]);
      const chunks: Uint8Array[] = [];
      for (let at = 0; at < wire.length; at += 16 * 1024) chunks.push(wire.subarray(at, at + 16 * 1024));
      const out: Frame[] = [];
      const d = new FrameDecoder(size, (f) => out.push(f), toXError);
      const copied = countCopies();
      for (const c of chunks) d.push(c);
      const bytes = copied();
      vi.restoreAllMocks();
      expect(out.map((f) => f.cmd)).toEqual([7, 8]);
      expect(out[0]!.body.length).toBe(size);
      expect(out[0]!.body.every((b) => b === 3)).toBe(true);
      expect(d.buffered).toBe(0);
      // One join of the frame's chunks; the quadratic decoder copied ~256 * 2 MiB here.
      expect(bytes).toBeLessThanOrEqual(wire.length);
    });

    it('frames within one chunk are views into it (no copy)', () => {
      const wire = Buffer.concat([encodeFrame(1, Buffer.from('a')), encodeFrame(2, Buffer.from('bb'))]);
      const out: Frame[] = [];
      const d = new FrameDecoder(1024, (f) => out.push(f), toXError);
      const copied = countCopies();
      d.push(wire);
      const bytes = copied();
      vi.restoreAllMocks();
      expect(bytes).toBe(0);
      expect(out.map((f) => f.body.buffer === wire.buffer)).toEqual([true, true]);
    });
  });

  it('fuzz: random bytes either decode or throw an XError, never anything else', () => {
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    for (let i = 0; i < 2000; i++) {
      const len = Math.floor(rnd() * 64);
      const buf = Buffer.alloc(len);
      for (let j = 0; j < len; j++) buf[j] = Math.floor(rnd() * 256);
      // Small lengths are likely; force some plausible headers too.
      if (len >= 4 && rnd() < 0.5) buf.writeUInt32BE(Math.floor(rnd() * 80), 0);
      try {
        decodeAll([buf], 4096);
      } catch (e) {
        expect(e).toBeInstanceOf(XError);
      }
    }
  });

  it('writer batches frames into one flush per turn and keeps order', async () => {
    const flushed: Buffer[][] = [];
    const w = new FrameWriter({ writeChunks: (c) => (flushed.push(c.map((x) => Buffer.from(x))), true) }, 256);
    for (let i = 0; i < 50; i++) w.write(i, Buffer.alloc(20, i));
    expect(flushed.length).toBe(0);
    await new Promise((r) => setImmediate(r));
    expect(flushed.length).toBe(1);
    const frames = decodeAll(flushed[0]!);
    expect(frames.map((f) => f.cmd)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(frames.every((f, i) => f.body.every((b) => b === i))).toBe(true);
  });

  it('reuses its slab after a drained flush, but does not keep one grown for a large frame', async () => {
    const flushed: Buffer[][] = [];
    const w = new FrameWriter({ writeChunks: (c) => (flushed.push(c), true) }, 256);
    const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
    w.write(1, Buffer.alloc(10));
    await turn();
    w.write(2, Buffer.alloc(10));
    await turn();
    expect(flushed[1]![0]!.buffer).toBe(flushed[0]![0]!.buffer); // the same 256-byte slab
    w.write(3, Buffer.alloc(100_000));
    await turn();
    w.write(4, Buffer.alloc(10));
    await turn();
    expect(flushed[2]![0]!.buffer.byteLength).toBeGreaterThanOrEqual(100_000);
    expect(flushed[3]![0]!.buffer).not.toBe(flushed[2]![0]!.buffer);
    expect(decodeAll(flushed[3]!).map((f) => f.cmd)).toEqual([4]);
  });

  it('writes an encoded frame by reference, in order with the frames around it', async () => {
    const flushed: Buffer[][] = [];
    const w = new FrameWriter({ writeChunks: (c) => (flushed.push(c), true) }, 256, false);
    const shared = Buffer.from(encodeFrame(7, Buffer.from('shared')));
    w.writeEncoded(shared);
    await new Promise((r) => setImmediate(r));
    expect(flushed[0]).toEqual([shared]);
    expect(flushed[0]![0]).toBe(shared);
    w.write(1, Buffer.from('before'));
    w.writeEncoded(shared);
    w.write(2, Buffer.from('after'));
    await new Promise((r) => setImmediate(r));
    expect(flushed[1]![1]).toBe(shared);
    expect(decodeAll(flushed[1]!).map((f) => [f.cmd, Buffer.from(f.body).toString()])).toEqual([
      [1, 'before'],
      [7, 'shared'],
      [2, 'after'],
    ]);
  });
});

describe('batched messages (several whole frames in one)', () => {
  const frames = [encodeFrame(1, Buffer.from('a')), encodeFrame(2, Buffer.alloc(50, 7), Flags.REQUEST, 9), encodeFrame(3)];

  it('batchFrames groups in order up to the byte limit; a frame over it goes alone, uncopied', () => {
    const big = encodeFrame(4, Buffer.alloc(200));
    const out = batchFrames([...frames, big, frames[0]!], 100);
    expect(out.map((m) => m.length)).toEqual([frames[0]!.length + frames[1]!.length + frames[2]!.length, big.length, frames[0]!.length]);
    expect(out[1]).toBe(big);
    expect(batchFrames([frames[0]!], 100)[0]).toBe(frames[0]);
    expect(out.flatMap((m) => decodeFrames(m)).map((f) => f.cmd)).toEqual([1, 2, 3, 4, 1]);
    // Frames over `alone` bytes are never copied into a batch: each is its own message, by reference.
    const shared = batchFrames([frames[0]!, frames[1]!, frames[2]!, frames[0]!], 1 << 16, 20);
    expect(shared.map((m) => decodeFrames(m).map((f) => f.cmd))).toEqual([[1], [2], [3, 1]]);
    expect(shared[1]).toBe(frames[1]);
  });

  it('decodeFrames reads every frame of a message, and refuses one that ends inside a frame or holds one over the limit', () => {
    const [m] = batchFrames(frames, 1 << 16);
    const got = decodeFrames(m!);
    expect(got.map((f) => [f.cmd, f.flags, f.rid, f.body.length])).toEqual([
      [1, 0, 0, 1],
      [2, Flags.REQUEST, 9, 50],
      [3, 0, 0, 0],
    ]);
    expect(() => decodeFrames(m!.subarray(0, frames[0]!.length + frames[1]!.length - 1), 1 << 16, toXError)).toThrow(/runs past the end/);
    expect(() => decodeFrames(m!.subarray(0, frames[0]!.length + 5), 1 << 16, toXError)).toThrow(/inside a frame header/);
    expect(() => decodeFrames(m!, 10, toXError)).toThrow(XError);
    expect(() => decodeFrames(new Uint8Array(0), 10, toXError)).toThrow(/empty/);
  });
});
