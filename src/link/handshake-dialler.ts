/**
 * The dialler's side of the link handshake as a pure state machine: bytes in, frames out.
 * No socket, no timer (the deadline is the transport's, see socket-handshake.ts).
 *
 *                  send HELLO (the `hello` frame, on connect)
 *                        |
 *                        v
 *            +---------------------+   CHALLENGE: target is the expected one
 *            | awaiting-challenge  |   / send AUTH (our proof, first)
 *            +---------------------+ ------------------------------+
 *                        |                                         v
 *                        |                           +---------------------+
 *                        |                           |  awaiting-welcome   |
 *                        |                           +---------------------+
 *                        |                             |               |
 *                        |       ERROR from the peer,  |               | WELCOME with the
 *                        |       another frame, bad    |               v  acceptor's proof right
 *                        |       body, wrong target,   |          +--------+
 *                        |       bad proof             |          |  open  |  done: remote + leftover
 *                        v                             v          +--------+
 *            +-----------------------------------------------+
 *            |                    refused                     |  refuse: why (+ ERROR to the
 *            +-----------------------------------------------+  peer unless it refused us)
 *
 * `open` and `refused` are final: later input is ignored.
 */
import { AuthSchema, ChallengeSchema, ErrorReplySchema, HelloSchema, WelcomeSchema } from '../gen/xserver/v1/cluster_pb.js';
import { XError } from '../errors.js';
import { sameKey, verifySignature, type NodeIdentity } from './identity.js';
import { decode, encode } from '../wire/codec.js';
import { Cmd, cmdName } from '../protocol/commands.js';
import type { Frame } from '../protocol/frame.js';
import {
  HandshakeReader,
  MIN_NONCE_BYTES,
  PROTOCOL_VERSION,
  acceptorKeyTranscript,
  acceptorProof,
  asXError,
  controlFrame,
  diallerKeyTranscript,
  diallerProof,
  errorFrame,
  newNonce,
  proofMatches,
  type HandshakeIdentity,
  type HandshakeStep,
} from './handshake.js';

export type DiallerState = 'awaiting-challenge' | 'awaiting-welcome' | 'open' | 'refused';

export interface DiallerHandshakeOptions {
  cluster: string;
  secret: string;
  /** This process. */
  self: HandshakeIdentity;
  /** This process's identity key pair: AUTH carries its key and signature. */
  identity: NodeIdentity;
  /** Whom we mean to reach; id "" = any process of that type; with `publicKey`, only the process holding that key. */
  expect: HandshakeIdentity;
  /** Largest frame body once the acceptor is authenticated (`link.maxFrame`). */
  maxFrame: number;
  /** Names the peer in error messages, e.g. "10.0.0.5:7100". */
  peer: string;
  /** Source of this side's nonce; tests pass a fixed one. */
  nonce?: () => Uint8Array;
  /** Only check that `expect` is reachable here (HELLO.probe): the acceptor proves itself and closes. */
  probe?: boolean;
}

export class DiallerHandshake {
  state: DiallerState = 'awaiting-challenge';
  /** The first frame, sent as soon as the connection is up. */
  readonly hello: Frame;

  private readonly nonce: Uint8Array;
  private readonly reader = new HandshakeReader();
  /** Set once the CHALLENGE checked out. */
  private remote: HandshakeIdentity | null = null;
  private challengeNonce: Uint8Array | null = null;

  constructor(private readonly opts: DiallerHandshakeOptions) {
    this.nonce = (opts.nonce ?? newNonce)();
    const { cluster, self, expect } = opts;
    this.hello = controlFrame(
      Cmd.HELLO,
      encode(HelloSchema, {
        cluster,
        nonce: this.nonce,
        expectType: expect.type,
        expectId: expect.id,
        fromType: self.type,
        fromId: self.id,
        protocol: PROTOCOL_VERSION,
        probe: opts.probe ?? false,
      }),
    );
  }

  /** Feeds bytes received from the acceptor. */
  receive(bytes: Uint8Array): HandshakeStep {
    const send: Frame[] = [];
    if (this.state === 'open' || this.state === 'refused') return { send };
    try {
      this.reader.push(bytes);
      for (let f = this.reader.next(); f !== undefined; f = this.reader.next()) {
        const step = this.onFrame(f);
        send.push(...step.send);
        if (step.done || step.refuse) return { ...step, send };
      }
      return { send };
    } catch (e) {
      // Our own verdict: tell the acceptor why before closing.
      this.state = 'refused';
      const err = asXError(e);
      send.push(errorFrame(err));
      return { send, refuse: err };
    }
  }

  /** One transition. Throws an XError for a refusal the peer must be told about. */
  private onFrame(f: Frame): HandshakeStep {
    const { peer, expect, secret, cluster } = this.opts;
    if (f.cmd === Cmd.ERROR) {
      // The acceptor refused us and is closing; there is nobody left to tell.
      const e = decode(ErrorReplySchema, f.body);
      this.state = 'refused';
      return { send: [], refuse: XError.fromWire(e.code, `${peer} refused: ${e.message}`) };
    }
    switch (this.state) {
      case 'awaiting-challenge': {
        if (f.cmd !== Cmd.CHALLENGE) throw new XError('BAD_FRAME', `expected CHALLENGE from ${peer}, got ${cmdName(f.cmd)}`);
        const ch = decode(ChallengeSchema, f.body);
        if (ch.type !== expect.type || (expect.id !== '' && ch.id !== expect.id)) {
          throw new XError(
            'WRONG_TARGET',
            `${peer} is type ${ch.type} id ${ch.id}, expected type ${expect.type}${expect.id ? ' id ' + expect.id : ''}`,
          );
        }
        if (ch.nonce.length < MIN_NONCE_BYTES) throw new XError('BAD_FRAME', 'CHALLENGE nonce too short');
        this.remote = { type: ch.type, id: ch.id };
        this.challengeNonce = ch.nonce;
        this.state = 'awaiting-welcome';
        const { identity, self } = this.opts;
        const proof = diallerProof(secret, cluster, ch.nonce, this.nonce, self.id);
        const signature = identity.sign(diallerKeyTranscript(cluster, ch.nonce, this.nonce, self.id));
        return { send: [controlFrame(Cmd.AUTH, encode(AuthSchema, { proof, publicKey: identity.publicKey, signature }))] };
      }
      case 'awaiting-welcome': {
        if (f.cmd !== Cmd.WELCOME) throw new XError('BAD_FRAME', `expected WELCOME from ${peer}, got ${cmdName(f.cmd)}`);
        const w = decode(WelcomeSchema, f.body);
        if (!proofMatches(acceptorProof(secret, cluster, this.nonce, this.challengeNonce!, this.remote!.id), w.proof)) {
          throw new XError('AUTH_FAILED', `${peer} does not know the cluster secret`);
        }
        const remote = this.remote!;
        if (!verifySignature(w.publicKey, acceptorKeyTranscript(cluster, this.nonce, this.challengeNonce!, remote.id), w.signature)) {
          throw new XError('AUTH_FAILED', `${peer}: the identity signature does not match the key presented`);
        }
        if (expect.publicKey && !sameKey(expect.publicKey, w.publicKey)) {
          throw new XError('WRONG_TARGET', `${peer} holds another identity key than the member ${remote.id} it claims to be`);
        }
        remote.publicKey = w.publicKey;
        // The acceptor is authenticated: the frames behind WELCOME belong to the link and may be full-size.
        this.reader.raiseLimit(this.opts.maxFrame);
        this.state = 'open';
        return { send: [], done: { remote: this.remote!, leftover: this.reader.takeRest() } };
      }
      case 'open':
      case 'refused':
        return { send: [] };
    }
  }
}
