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

/**
 * The wire layout of a message's own fields, for the contract hash: number, name and type of each
 * (scalar type, or the enum's / nested message's full name; nested messages are named, not
 * expanded). Renaming or renumbering a field, changing its type or adding one changes it.
 */
export function protoLayout(schema: DescMessage): string {
  const fields = [...schema.fields].sort((a, b) => a.number - b.number);
  return fields
    .map((f) => {
      const elem = f.scalar !== undefined ? `s${f.scalar}` : f.enum ? `e:${f.enum.typeName}` : f.message ? `m:${f.message.typeName}` : '?';
      const shape = f.fieldKind === 'list' ? `list<${elem}>` : f.fieldKind === 'map' ? `map<s${f.mapKey},${elem}>` : elem;
      return `${f.number}:${f.name}:${shape}`;
    })
    .join(',');
}

/**
 * A contract codec for a @bufbuild/protobuf message (server side; the browser SDK uses JSON
 * codecs). Its kind, part of the contract hash, is `proto:<type name>{<field layout>}`.
 */
export function protoCodec<D extends DescMessage>(schema: D): Codec<MessageInitShape<D>, MessageShape<D>> {
  return {
    kind: `proto:${schema.typeName}{${protoLayout(schema)}}`,
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
