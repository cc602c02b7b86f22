/**
 * xserver/client — the game-client SDK (browsers and Node).
 *
 * Loads as plain ES modules (the login service serves dist/client at /sdk/): only relative
 * imports here; Node-only pieces (`node:net` for TCP, `ws` when there is no global WebSocket)
 * are imported lazily.
 *
 *   import { login, XClient, text } from 'xserver/client';   // or '/sdk/index.js' in a page
 *   const lr = await login('http://127.0.0.1:8080', 'alice', 'pw');
 *   const client = new XClient();
 *   client.on(client.cmd(4, 2), (data) => console.log(text(data)));
 *   await client.connect(lr);
 */
export { XClient } from './client.js';
export type { ClientEvents, ClientState, MessageHandler, RequestOptions, Welcome, XClientOptions } from './client.js';
export { login, loginEndpoint } from './login.js';
export type { GatewayInfo, LoginOptions, LoginResult } from './login.js';
export { ClientError, ClientErrorCode, isClientError } from './errors.js';
export {
  DEFAULT_MAX_FRAME,
  Flags,
  FrameDecoder,
  HEADER_REST,
  HEADER_SIZE,
  SYSTEM_CMD_BASE,
  SysCmd,
  decodeFrame,
  encodeFrame,
  json,
  text,
  toBytes,
} from './frame.js';
export type { Frame } from './frame.js';
export { openTransport } from './transport.js';
export type { Transport, TransportKind, TransportOptions, TransportTarget } from './transport.js';
