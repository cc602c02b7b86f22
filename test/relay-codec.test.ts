import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { FromClientSchema, ToClientSchema } from '../src/gen/xserver/v1/relay_pb.js';
import { XError } from '../src/errors.js';
import { decodeFromClient, decodeToClient, encodeFromClient, encodeToClient } from '../src/wire/relay-codec.js';

let seed = 7;
const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]!;
const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(rnd() * 256));

describe('relay codec (hand-written) matches protobuf-es byte for byte', () => {
  it('FromClient, both directions, including 0 values, unicode accounts and 50-bit generations', () => {
    for (let i = 0; i < 500; i++) {
      const m = {
        account: pick(['', 'alice', 'ünïcødé-玩家', 'x'.repeat(200)]),
        cmd: pick([0, 1, 127, 128, 999, 0xfffeffff]),
        data: bytes(pick([0, 1, 64, 300])),
        rid: pick([0, 1, 0x7fffffff]),
        generation: pick([0, 1, 1795640045568001, 2 ** 52 + 3]),
      };
      const ours = encodeFromClient(m);
      const theirs = toBinary(FromClientSchema, create(FromClientSchema, { ...m, generation: BigInt(m.generation) }));
      expect(Buffer.from(ours).equals(Buffer.from(theirs))).toBe(true);
      const back = decodeFromClient(theirs);
      expect({ ...back, data: [...back.data] }).toEqual({ ...m, data: [...m.data] });
      expect(Number(fromBinary(FromClientSchema, ours).generation)).toBe(m.generation);
    }
  });

  it('ToClient, both directions, with and without errors', () => {
    for (let i = 0; i < 300; i++) {
      const m = {
        account: pick(['bob', '']),
        cmd: pick([0, 5, 4321]),
        data: bytes(pick([0, 10])),
        rid: pick([0, 9]),
        errorCode: pick([0, 19, 99]),
        errorMessage: pick(['', 'nope', 'échec']),
      };
      const ours = encodeToClient(m);
      expect(Buffer.from(ours).equals(Buffer.from(toBinary(ToClientSchema, create(ToClientSchema, m))))).toBe(true);
      const back = decodeToClient(ours);
      expect({ ...back, data: [...back.data] }).toEqual({ ...m, data: [...m.data] });
    }
  });

  it('skips unknown fields and rejects truncated input with BAD_FRAME', () => {
    const withUnknown = Uint8Array.from([
      ...encodeFromClient({ account: 'a', cmd: 2, data: new Uint8Array(0), rid: 0, generation: 0 }),
      (9 << 3) | 0,
      5,
      (10 << 3) | 2,
      1,
      42,
    ]);
    expect(decodeFromClient(withUnknown)).toMatchObject({ account: 'a', cmd: 2 });
    const full = encodeToClient({ account: 'abc', cmd: 1, data: Uint8Array.from([1, 2, 3]), rid: 0, errorCode: 0, errorMessage: '' });
    for (let cut = 1; cut < full.length; cut++) {
      try {
        decodeToClient(full.subarray(0, cut));
      } catch (e) {
        expect(e).toBeInstanceOf(XError);
        expect((e as XError).code).toBe('BAD_FRAME');
      }
    }
    expect(() => decodeToClient(Uint8Array.from([(1 << 3) | 2, 10, 1]))).toThrow(XError);
  });
});
