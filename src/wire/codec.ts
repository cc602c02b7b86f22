/** Thin helpers over @bufbuild/protobuf so call sites stay one line. */
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import { XError } from '../errors.js';
import { ContractError, type Codec } from '../protocol/contract.js';

export function encode<D extends DescMessage>(schema: D, init: MessageInitShape<D>): Uint8Array {
  return toBinary(schema, create(schema, init));
}

/** Decodes a body; malformed bytes become a BAD_FRAME error naming the message type. */
export function decode<D extends DescMessage>(schema: D, body: Uint8Array): MessageShape<D> {
  try {
    return fromBinary(schema, body);
  } catch (e) {
    throw new XError('BAD_FRAME', `cannot decode ${schema.typeName}: ${(e as Error).message}`);
  }
}

/** A contract codec for a @bufbuild/protobuf message (server side; the browser SDK uses JSON codecs). */
export function protoCodec<D extends DescMessage>(schema: D): Codec<MessageInitShape<D>, MessageShape<D>> {
  return {
    kind: `proto:${schema.typeName}`,
    encode: (value) => encode(schema, value),
    decode: (bytes) => {
      try {
        return fromBinary(schema, bytes);
      } catch (e) {
        throw new ContractError(`cannot decode ${schema.typeName}: ${(e as Error).message}`);
      }
    },
  };
}
