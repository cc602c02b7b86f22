// Length-prefixed frames used by the raw-TCP reference.
// Header (13 bytes): u32 BE length of the rest (9 + body), u32 cmd, u8 flags, u32 rid; then the body.

export const HEADER_BYTES = 13;
export const FLAG_RESPONSE = 0x01;

const SLAB_BYTES = 256 * 1024;

/** Writes one frame into `buf` at `off`; returns the offset after it. */
export function encodeInto(buf, off, cmd, flags, rid, body) {
  buf.writeUInt32BE(9 + body.length, off);
  buf.writeUInt32BE(cmd, off + 4);
  buf[off + 8] = flags;
  buf.writeUInt32BE(rid, off + 9);
  body.copy(buf, off + HEADER_BYTES);
  return off + HEADER_BYTES + body.length;
}

export function encodeFrame(cmd, flags, rid, body) {
  const buf = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  encodeInto(buf, 0, cmd, flags, rid, body);
  return buf;
}

/** Incremental parser: push() socket chunks, onFrame(cmd, flags, rid, body) fires per complete frame. */
export class FrameParser {
  constructor(onFrame) {
    this.onFrame = onFrame;
    this.rest = null;
  }

  push(chunk) {
    const buf = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    let off = 0;
    while (buf.length - off >= 4) {
      const len = buf.readUInt32BE(off);
      if (len < 9) throw new Error(`bad frame length ${len}`);
      if (buf.length - off - 4 < len) break;
      this.onFrame(buf.readUInt32BE(off + 4), buf[off + 8], buf.readUInt32BE(off + 9), buf.subarray(off + HEADER_BYTES, off + 4 + len));
      off += 4 + len;
    }
    this.rest = off < buf.length ? buf.subarray(off) : null;
  }
}

/**
 * Batched writer: frames are encoded into a shared slab and flushed as one socket.write()
 * at the end of the current tick (or when the slab is full).
 */
export class BatchWriter {
  constructor(socket) {
    this.socket = socket;
    this.slab = Buffer.allocUnsafe(SLAB_BYTES);
    this.start = 0; // first unflushed byte
    this.off = 0; // next free byte
    this.scheduled = false;
  }

  frame(cmd, flags, rid, body) {
    const size = HEADER_BYTES + body.length;
    if (size > SLAB_BYTES) {
      this.flush();
      this.socket.write(encodeFrame(cmd, flags, rid, body));
      return;
    }
    if (this.off + size > SLAB_BYTES) {
      this.flush();
      this.slab = Buffer.allocUnsafe(SLAB_BYTES); // the old slab stays referenced by pending writes
      this.start = this.off = 0;
    }
    this.off = encodeInto(this.slab, this.off, cmd, flags, rid, body);
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(flushOnTick, this);
    }
  }

  flush() {
    if (this.off > this.start) {
      this.socket.write(this.slab.subarray(this.start, this.off));
      this.start = this.off;
    }
  }
}

function flushOnTick(writer) {
  writer.scheduled = false;
  writer.flush();
}

/** One socket.write() per frame, no batching. */
export class DirectWriter {
  constructor(socket) {
    this.socket = socket;
  }

  frame(cmd, flags, rid, body) {
    this.socket.write(encodeFrame(cmd, flags, rid, body));
  }

  flush() {}
}

export function createWriter(socket, mode) {
  if (mode === 'batch') return new BatchWriter(socket);
  if (mode === 'direct') return new DirectWriter(socket);
  throw new Error(`unknown write mode ${mode}`);
}
