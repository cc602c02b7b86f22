/**
 * xserver/client — the game-client SDK (browsers and Node).
 *
 * Loads as plain ES modules: the login service serves dist/client at /sdk/ and dist/protocol at
 * /protocol/, so the relative imports (../protocol/*.js included) resolve in a page too. Only
 * relative imports here; Node-only pieces (`node:net` for TCP, `ws` when there is no global
 * WebSocket, `node:tls` for TLS over TCP) are imported lazily.
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
export { json, text, toBytes } from './bytes.js';
// The wire protocol, shared with the server: frames, command numbers, client messages.
export {
  Cmd,
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_MAX_FRAME,
  Flags,
  FrameDecoder,
  FrameError,
  HEADER_REST,
  HEADER_SIZE,
  MessageError,
  SYSTEM_CMD_BASE,
  cmdName,
  decodeFrame,
  encodeAuth,
  encodeErrorNotice,
  encodeFrame,
  encodeGoingAway,
  encodeWelcome,
  isSystemCmd,
  isUserCmd,
  parseAuth,
  parseErrorNotice,
  parseGoingAway,
  parseWelcome,
} from '../protocol/index.js';
export type { AuthRequest, ErrorNotice, GoingAway, HandoffGateway, Frame, FrameErrorCode, FrameErrorFactory } from '../protocol/index.js';
// Contracts: one declaration types the service and the client.
export * from '../protocol/contract.js';
export { openTransport } from './transport.js';
export type { ClientTlsOptions, Transport, TransportKind, TransportOptions, TransportTarget } from './transport.js';
