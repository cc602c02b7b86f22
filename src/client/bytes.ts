/** Body helpers of the SDK: UTF-8 from the protocol module, JSON with the SDK's error. */
import { parseJson } from '../protocol/bytes.js';
import { ClientError } from './errors.js';

export { text, toBytes } from '../protocol/bytes.js';

/** Parses a UTF-8 JSON body. Throws ClientError BAD_FRAME when it is not valid JSON. */
export function json<T = unknown>(data: Uint8Array): T {
  try {
    return parseJson(data) as T;
  } catch (e) {
    throw new ClientError('BAD_FRAME', `body is not valid JSON: ${(e as Error).message}`);
  }
}
