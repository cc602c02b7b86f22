/**
 * Protobuf base-128 varints, for the hand-written encoders (wire/relay-codec.ts, mgr/snapshot.ts).
 * Division rather than bit operations: values may exceed 32 bits (generations).
 */

/** Bytes the varint of `v` takes. */
export function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Writes the varint of `v` at `pos`; returns the position after it. */
export function writeVarint(buf: Uint8Array, pos: number, v: number): number {
  while (v >= 128) {
    buf[pos++] = (v % 128) | 128;
    v = Math.floor(v / 128);
  }
  buf[pos++] = v;
  return pos;
}
