/**
 * Server-side framing: the slab FrameWriter, and the XError factory the server's decoders use.
 * The frame format and the streaming decoder are in src/protocol/frame.ts.
 */
import { XError } from '../errors.js';
import { HEADER_SIZE, writeHeader, type FrameErrorFactory } from '../protocol/frame.js';

/** Decoder errors as XError (BAD_FRAME, FRAME_TOO_LARGE with size and limit), which links and the gateway report. */
export const toXError: FrameErrorFactory = (code, message, details) => new XError(code, message, details);

/**
 * Batches frames into slabs and hands them to the sink once the current callback and its
 * microtasks are done (process.nextTick): a burst of sends costs one syscall, and a reply
 * leaves as soon as its handler returns (setImmediate measured ~25% slower at 1024 requests
 * in flight on one link). A slab is reused when the sink reports it fully written.
 *
 * Past FLUSHES_PER_TURN flushes in one turn of the event loop, the writer waits for the end of
 * the turn's I/O (setImmediate) instead: a gateway reading 100 client sockets in one turn would
 * otherwise write its link to a node 100 times, one syscall per client message.
 */
export interface FrameSink {
  /** Writes the chunks; returns true if they were fully handed to the kernel. */
  writeChunks(chunks: Buffer[]): boolean;
}

/** Flushes at the end of a callback per writer and event-loop turn; later ones in the turn wait for its end. */
const FLUSHES_PER_TURN = 2;

export class FrameWriter {
  /** Flushes since the turn began (reset by a setImmediate armed at the first). */
  private turnFlushes = 0;
  private turnArmed = false;
  private slab: Buffer | null = null;
  private pos = 0;
  private full: Buffer[] = [];
  private fullBytes = 0;
  private scheduled = false;
  private closed = false;

  /**
   * @param slabSize  batch buffer size; allocated on first write
   * @param keepSlab  reuse the batch buffer after a drained flush (busy links) or drop it
   *                  (many mostly idle client connections keep no buffer at all)
   */
  constructor(
    private readonly sink: FrameSink,
    private readonly slabSize = 64 * 1024,
    private readonly keepSlab = true,
  ) {}

  /** Bytes queued in this writer, not yet handed to the sink. */
  get queued(): number {
    return this.fullBytes + this.pos;
  }

  write(cmd: number, body: Uint8Array, flags = 0, rid = 0): void {
    if (this.closed) return;
    const size = HEADER_SIZE + body.length;
    let slab = this.slab;
    if (slab === null || slab.length - this.pos < size) {
      if (slab !== null && this.pos > 0) {
        this.full.push(slab.subarray(0, this.pos));
        this.fullBytes += this.pos;
      }
      slab = this.slab = Buffer.allocUnsafe(Math.max(this.slabSize, size));
      this.pos = 0;
    }
    writeHeader(slab, this.pos, cmd, body.length, flags, rid);
    if (body.length > 0) slab.set(body, this.pos + HEADER_SIZE);
    this.pos += size;
    if (!this.scheduled) this.schedule();
  }

  /**
   * Queues an already encoded frame by reference (a broadcast hands the same bytes to every
   * client): no copy, and no batch buffer is allocated for it. The bytes must not change afterwards.
   */
  writeEncoded(frame: Buffer): void {
    if (this.closed) return;
    if (this.slab !== null && this.pos > 0) {
      this.full.push(this.slab.subarray(0, this.pos));
      this.fullBytes += this.pos;
      this.slab = this.slab.subarray(this.pos);
      this.pos = 0;
    }
    this.full.push(frame);
    this.fullBytes += frame.length;
    if (!this.scheduled) this.schedule();
  }

  private schedule(): void {
    this.scheduled = true;
    if (this.turnFlushes < FLUSHES_PER_TURN) process.nextTick(this.flushNow);
    else setImmediate(this.flushNow);
  }

  private readonly endTurn = (): void => {
    this.turnArmed = false;
    this.turnFlushes = 0;
  };

  /** Writes everything queued now (used before a close so the last frame is not lost). */
  readonly flushNow = (): void => {
    this.scheduled = false;
    if (this.closed) return;
    if (this.pos === 0 && this.full.length === 0) return;
    this.turnFlushes++;
    if (!this.turnArmed) {
      this.turnArmed = true;
      setImmediate(this.endTurn);
    }
    const chunks = this.full;
    if (this.slab !== null && this.pos > 0) chunks.push(this.slab.subarray(0, this.pos));
    this.full = [];
    this.fullBytes = 0;
    this.pos = 0;
    const drained = this.sink.writeChunks(chunks);
    // The kernel took everything: the slab's bytes are no longer referenced and may be reused.
    // Otherwise the socket still holds them, so the next batch needs a fresh slab. A slab grown
    // for one large frame is not kept: a link that once sent a 1 MiB frame holds 64 KiB after it.
    if (!(drained && chunks.length === 1 && this.keepSlab && this.slab?.length === this.slabSize)) this.slab = null;
  };

  close(): void {
    this.closed = true;
    this.full = [];
    this.fullBytes = 0;
    this.pos = 0;
    this.slab = null;
  }
}
