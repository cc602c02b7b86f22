/**
 * Runs the handshake machines over a TCP socket: feeds what arrives into the machine, writes
 * what it returns, flushes a refusal before closing, and enforces `link.handshakeTimeoutMs`.
 * Every decision about the bytes is the machine's (handshake-dialler.ts, handshake-acceptor.ts).
 */
import net from 'node:net';
import tls from 'node:tls';
import { XError } from '../errors.js';
import { AcceptorHandshake } from './handshake-acceptor.js';
import { DiallerHandshake } from './handshake-dialler.js';
import { encodeFrames, errorFrame, type HandshakeStep } from './handshake.js';
import type { LinkIdentity, LinkOptions } from './options.js';
import { LogThrottle } from '../log.js';

/** How long a refused socket may linger to flush its ERROR frame; a peer that never reads must not keep it. */
const REFUSAL_LINGER_MS = 500;

/** Called once the peer is authenticated; takes the socket over (synchronously, so no data is missed). */
export type OpenHandshake<T> = (socket: net.Socket, remote: LinkIdentity, leftover: Uint8Array | null) => T;

/** Ends the socket after the last bytes (the ERROR frame) are written, or drops it when there is nothing to say. */
function closeRefused(socket: net.Socket, send: HandshakeStep['send']): void {
  if (send.length > 0 && !socket.destroyed) socket.end(encodeFrames(send));
  else socket.destroy();
  setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
}

/**
 * Dials `host:port`, expecting to reach `expect`, and resolves with `open(...)`'s result once
 * the handshake is done. Rejects with the typed reason otherwise.
 */
export function dialHandshake<T>(
  host: string,
  port: number,
  self: LinkIdentity,
  expect: LinkIdentity,
  opts: LinkOptions,
  open: OpenHandshake<T>,
  probe = false,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    // With link.tls the cluster CA vouches for the peer (addresses are IPs, so no host name check);
    // the handshake inside still proves the secret and the member's key.
    const socket = opts.tls
      ? tls.connect({ host, port, ...opts.tls.options, checkServerIdentity: () => undefined }).setNoDelay(true)
      : net.connect({ host, port, noDelay: true });
    const machine = new DiallerHandshake({
      cluster: opts.cluster,
      secret: opts.secret,
      identity: opts.identity,
      self,
      expect,
      maxFrame: opts.maxFrame,
      peer: `${host}:${port}`,
      probe,
    });
    let settled = false;
    const fail = (e: XError, send: HandshakeStep['send'] = []): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      closeRefused(socket, send);
      reject(e);
    };
    const timer = setTimeout(
      () => fail(new XError('HANDSHAKE_TIMEOUT', `no handshake from ${host}:${port} within ${opts.handshakeTimeoutMs} ms`)),
      opts.handshakeTimeoutMs,
    );
    const onData = (chunk: Buffer): void => {
      if (settled) return;
      const step = machine.receive(chunk);
      if (step.refuse) return fail(step.refuse, step.send);
      if (step.send.length > 0) socket.write(encodeFrames(step.send));
      if (step.done) {
        settled = true;
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('error', onError);
        socket.off('close', onCloseEarly);
        resolve(open(socket, step.done.remote, step.done.leftover));
      }
    };
    const onError = (e: Error): void => fail(new XError('LINK_CLOSED', `cannot reach ${host}:${port}: ${e.message}`));
    const onCloseEarly = (): void => fail(new XError('LINK_CLOSED', `${host}:${port} closed the connection during the handshake`));
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onCloseEarly);
    socket.once(opts.tls ? 'secureConnect' : 'connect', () => socket.write(encodeFrames([machine.hello])));
  });
}

/**
 * Checks that `expect` (with `expect.publicKey`: the process holding that key) answers at
 * `host:port`: a full handshake that opens no link. Resolves with the round trip in ms; rejects
 * with the typed reason (LINK_CLOSED when nothing answers, WRONG_TARGET or AUTH_FAILED when
 * someone else does, HANDSHAKE_TIMEOUT).
 */
export async function probeHandshake(host: string, port: number, self: LinkIdentity, expect: LinkIdentity, opts: LinkOptions): Promise<number> {
  const t0 = performance.now();
  await dialHandshake(host, port, self, expect, opts, (socket) => void socket.destroy(), true);
  return performance.now() - t0;
}

export interface AcceptCallbacks {
  /** The peer is authenticated and admitted; takes the socket over synchronously. */
  open: OpenHandshake<void>;
  /** The handshake is over, whichever way it ended (the listener stops tracking the socket). */
  settled: () => void;
}

/** Anyone can connect and be refused: at most one warning per refusal code and second per process. */
const REFUSED_LOG_INTERVAL_MS = 1000;
const refusedLog = new LogThrottle(REFUSED_LOG_INTERVAL_MS);

/** Runs the acceptor's handshake on a fresh inbound socket. Refusals are logged and flushed to the peer. */
export function acceptHandshake(
  socket: net.Socket,
  self: LinkIdentity,
  opts: LinkOptions,
  admit: (remote: LinkIdentity) => XError | null,
  on: AcceptCallbacks,
): void {
  const where = `${socket.remoteAddress}:${socket.remotePort}`;
  const machine = new AcceptorHandshake({ cluster: opts.cluster, secret: opts.secret, identity: opts.identity, self, admit });
  let settled = false;
  const settle = (): boolean => {
    if (settled) return false;
    settled = true;
    clearTimeout(timer);
    on.settled();
    return true;
  };
  const refuse = (e: XError, send: HandshakeStep['send']): void => {
    if (!settle()) return;
    refusedLog.run(e.code, (suppressed) =>
      opts.logger.warn({ code: e.code, from: where, ...(suppressed > 0 ? { suppressed } : {}) }, `refused connection: ${e.message}`),
    );
    closeRefused(socket, send);
  };
  const timer = setTimeout(() => {
    const e = new XError('HANDSHAKE_TIMEOUT', `no handshake within ${opts.handshakeTimeoutMs} ms`);
    refuse(e, [errorFrame(e)]);
  }, opts.handshakeTimeoutMs);
  const onData = (chunk: Buffer): void => {
    if (settled) return;
    const step = machine.receive(chunk);
    if (step.refuse) return refuse(step.refuse, step.send);
    if (step.done) {
      settle();
      socket.off('data', onData);
      socket.off('error', onError);
    }
    if (step.done?.probe) {
      // An address check: it has its answer (WELCOME); no link. The prober destroys its end as
      // soon as it reads WELCOME, which can reset this one: without a listener that error would
      // be an uncaught exception in this process.
      socket.on('error', () => socket.destroy());
      socket.end(encodeFrames(step.send));
      setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
      return;
    }
    if (step.send.length > 0) socket.write(encodeFrames(step.send));
    if (step.done) on.open(socket, step.done.remote, step.done.leftover);
  };
  const onError = (): void => {
    settle();
    socket.destroy();
  };
  socket.on('data', onData);
  socket.on('error', onError);
  socket.on('close', () => settle());
}
