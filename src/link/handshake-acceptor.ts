/**
 * The acceptor's side of the link handshake as a pure state machine: bytes in, frames out.
 * No socket, no timer (the deadline is the transport's, see socket-handshake.ts).
 *
 *            +---------------------+   HELLO: our protocol, our cluster, we are the
 *            |   awaiting-hello    |   expected type/id, nonce long enough / send CHALLENGE (no proof)
 *            +---------------------+ ------------------------------+
 *                        |                                         v
 *                        |                           +---------------------+
 *                        |                           |    awaiting-auth    |
 *                        |                           +---------------------+
 *                        |                             |               |
 *                        |    ERROR from the peer,     |               | AUTH: proof right and
 *                        |    another frame, bad body, |               | admitted / send WELCOME + our proof
 *                        |    failed check, bad proof, |               v
 *                        |    not admitted             |          +--------+
 *                        v                             v          |  open  |  done: remote + leftover
 *            +-----------------------------------------------+    +--------+
 *            |                    refused                     |  refuse: why; ERROR sent to the peer
 *            +-----------------------------------------------+
 *
 * `open` and `refused` are final: later input is ignored. Every refusal ends `send` with an
 * ERROR frame, even when the dialler gave up first (it may still be reading). Nothing sent before
 * the dialler's proof checked out depends on the secret. A probe (HELLO.probe: the mgr checking a
 * member's advertised address) skips admission and ends `open` with `done.probe`: the transport
 * sends WELCOME and closes instead of opening a link.
 */
import { AuthSchema, ChallengeSchema, ErrorReplySchema, HelloSchema, WelcomeSchema, type Hello } from '../gen/xserver/v1/cluster_pb.js';
import { XError } from '../errors.js';
import { verifySignature, type NodeIdentity } from './identity.js';
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

export type AcceptorState = 'awaiting-hello' | 'awaiting-auth' | 'open' | 'refused';

export interface AcceptorHandshakeOptions {
  cluster: string;
  secret: string;
  /** This process. */
  self: HandshakeIdentity;
  /** This process's identity key pair: WELCOME carries its key and signature. */
  identity: NodeIdentity;
  /** Runs once the dialler is authenticated (secret and key); `remote.publicKey` is set; an error refuses it (NOT_ACTIVE, DUPLICATE_LINK...). */
  admit: (remote: HandshakeIdentity) => XError | null;
  /** Source of this side's nonce; tests pass a fixed one. */
  nonce?: () => Uint8Array;
}

export class AcceptorHandshake {
  state: AcceptorState = 'awaiting-hello';

  private readonly nonce: Uint8Array;
  private readonly reader = new HandshakeReader();
  /** Set once the HELLO checked out. */
  private hello: Hello | null = null;

  constructor(private readonly opts: AcceptorHandshakeOptions) {
    this.nonce = (opts.nonce ?? newNonce)();
  }

  /** Feeds bytes received from the dialler. */
  receive(bytes: Uint8Array): HandshakeStep {
    const send: Frame[] = [];
    if (this.state === 'open' || this.state === 'refused') return { send };
    try {
      this.reader.push(bytes);
      for (let f = this.reader.next(); f !== undefined; f = this.reader.next()) {
        const step = this.onFrame(f);
        send.push(...step.send);
        if (step.done) return { ...step, send };
      }
      return { send };
    } catch (e) {
      this.state = 'refused';
      const err = asXError(e);
      send.push(errorFrame(err));
      return { send, refuse: err };
    }
  }

  /** One transition. Every refusal is thrown as an XError. */
  private onFrame(f: Frame): HandshakeStep {
    const { cluster, secret, self } = this.opts;
    if (f.cmd === Cmd.ERROR) {
      const e = decode(ErrorReplySchema, f.body);
      throw XError.fromWire(e.code, `dialler gave up: ${e.message}`);
    }
    switch (this.state) {
      case 'awaiting-hello': {
        if (f.cmd !== Cmd.HELLO) throw new XError('BAD_FRAME', `expected HELLO, got ${cmdName(f.cmd)}`);
        const h = decode(HelloSchema, f.body);
        if (h.protocol !== PROTOCOL_VERSION)
          throw new XError('PROTOCOL_VERSION', `protocol ${h.protocol} not supported (this is ${PROTOCOL_VERSION})`);
        if (h.cluster !== cluster) throw new XError('WRONG_CLUSTER', `this is cluster "${cluster}", not "${h.cluster}"`);
        if (h.expectType !== self.type || (h.expectId !== '' && h.expectId !== self.id)) {
          throw new XError(
            'WRONG_TARGET',
            `this is type ${self.type} id ${self.id}, not type ${h.expectType}${h.expectId ? ' id ' + h.expectId : ''}`,
          );
        }
        if (h.nonce.length < MIN_NONCE_BYTES) throw new XError('BAD_FRAME', 'HELLO nonce too short');
        this.hello = h;
        this.state = 'awaiting-auth';
        return { send: [controlFrame(Cmd.CHALLENGE, encode(ChallengeSchema, { nonce: this.nonce, type: self.type, id: self.id }))] };
      }
      case 'awaiting-auth': {
        if (f.cmd !== Cmd.AUTH) throw new XError('BAD_FRAME', `expected AUTH, got ${cmdName(f.cmd)}`);
        const a = decode(AuthSchema, f.body);
        const hello = this.hello!;
        // The proof covers our fresh nonce: an AUTH recorded on another connection does not match.
        if (!proofMatches(diallerProof(secret, cluster, this.nonce, hello.nonce, hello.fromId), a.proof)) {
          throw new XError('AUTH_FAILED', 'wrong cluster secret');
        }
        if (!verifySignature(a.publicKey, diallerKeyTranscript(cluster, this.nonce, hello.nonce, hello.fromId), a.signature)) {
          throw new XError('AUTH_FAILED', 'the identity signature does not match the key presented');
        }
        const remote = { type: hello.fromType, id: hello.fromId, publicKey: a.publicKey };
        // A probe opens nothing, so there is nothing to admit: it only learns that we are here.
        const refusal = hello.probe ? null : this.opts.admit(remote);
        if (refusal) throw refusal;
        this.state = 'open';
        const proof = acceptorProof(secret, cluster, hello.nonce, this.nonce, self.id);
        const { identity } = this.opts;
        const signature = identity.sign(acceptorKeyTranscript(cluster, hello.nonce, this.nonce, self.id));
        return {
          send: [controlFrame(Cmd.WELCOME, encode(WelcomeSchema, { proof, publicKey: identity.publicKey, signature }))],
          done: { remote, leftover: this.reader.takeRest(), ...(hello.probe ? { probe: true } : {}) },
        };
      }
      case 'open':
      case 'refused':
        return { send: [] };
    }
  }
}
