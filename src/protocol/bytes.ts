/** UTF-8 and JSON bodies, browser-safe. */
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** UTF-8 encodes a string (or returns bytes unchanged). */
export function toBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === 'string' ? encoder.encode(data) : data;
}

/** Decodes a UTF-8 body as a string. */
export function text(data: Uint8Array): string {
  return decoder.decode(data);
}

/** JSON-encodes a value as UTF-8. */
export function jsonBytes(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/** Parses a UTF-8 JSON body; throws SyntaxError when it is not JSON. */
export function parseJson(data: Uint8Array): unknown {
  return JSON.parse(decoder.decode(data)) as unknown;
}
