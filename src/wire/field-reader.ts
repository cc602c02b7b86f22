/**
 * Protobuf wire-format reading without reflection, for the hand-written decoders of hot messages
 * (relay envelopes, membership frames from the mgr).
 */
import { XError } from '../errors.js';

const EMPTY = new Uint8Array(0);

/**
 * A cursor over one message's fields, with no closure or object per field: `next()` reads a key
 * and leaves the field's number in `n` and its value in `num` (VARINT) or `bytes` (LEN, a view
 * into the message); other wire types are skipped.
 */
export class FieldReader {
  /** Where the field just read starts (its key). */
  start = 0;
  pos = 0;
  n = 0;
  num = 0;
  bytes: Uint8Array = EMPTY;
  isBytes = false;

  constructor(
    private readonly b: Uint8Array,
    private readonly what: string,
  ) {}

  next(): boolean {
    for (;;) {
      if (this.pos >= this.b.length) {
        if (this.pos > this.b.length) throw new XError('BAD_FRAME', `${this.what}: truncated`);
        return false;
      }
      this.start = this.pos;
      const key = this.varint();
      this.n = Math.floor(key / 8);
      switch (key % 8) {
        case 0:
          this.num = this.varint();
          this.isBytes = false;
          return true;
        case 2: {
          const len = this.varint();
          if (this.pos + len > this.b.length) throw new XError('BAD_FRAME', `${this.what}: field ${this.n} overruns the message`);
          this.bytes = this.b.subarray(this.pos, this.pos + len);
          this.pos += len;
          this.isBytes = true;
          return true;
        }
        case 1:
          this.pos += 8;
          break;
        case 5:
          this.pos += 4;
          break;
        default:
          throw new XError('BAD_FRAME', `${this.what}: unsupported wire type ${key % 8}`);
      }
    }
  }

  private varint(): number {
    const b = this.b;
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= b.length) throw new XError('BAD_FRAME', `${this.what}: truncated varint`);
      const byte = b[this.pos++]!;
      v += (byte & 127) * mul;
      if (byte < 128) return v;
      mul *= 128;
    }
    throw new XError('BAD_FRAME', `${this.what}: varint too long`);
  }
}
