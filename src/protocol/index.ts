/**
 * The wire protocol, browser-safe: frames, command numbers, the client-facing messages, and the
 * liveness and retry mechanisms both ends share. Server-only pieces (the slab FrameWriter, the
 * protobuf bodies of framework commands) live in src/wire.
 */
export * from './frame.js';
export * from './commands.js';
export * from './bytes.js';
export * from './client-messages.js';
export { Heartbeat, type HeartbeatHost } from './heartbeat.js';
export { Backoff } from './backoff.js';
export * from './contract.js';
