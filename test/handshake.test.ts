/**
 * The handshake machines alone, wired to each other or fed hand-made bytes: no sockets, no
 * timers. The same exchange over real sockets is in link.test.ts.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { XError } from '../src/errors.js';
import { AuthSchema, ChallengeSchema, ErrorReplySchema, HelloSchema, WelcomeSchema, type Hello } from '../src/gen/xserver/v1/cluster_pb.js';
import { AcceptorHandshake, type AcceptorHandshakeOptions } from '../src/link/handshake-acceptor.js';
import { createIdentity } from '../src/link/identity.js';
import { DiallerHandshake, type DiallerHandshakeOptions } from '../src/link/handshake-dialler.js';
import {
  HANDSHAKE_MAX_FRAME,
  PROTOCOL_VERSION,
  acceptorProof,
  diallerKeyTranscript,
  diallerProof,
  encodeFrames,
  type HandshakeStep,
} from '../src/link/handshake.js';
import { decode, encode } from '../src/wire/codec.js';
import { Cmd } from '../src/protocol/commands.js';
import { encodeFrame, type Frame } from '../src/protocol/frame.js';

const SERVER = { type: 4, id: 'server-1' };
const CLIENT = { type: 5, id: 'client-1' };
const MAX_FRAME = 64 * 1024;
const fixedNonce = (byte: number) => () => new Uint8Array(32).fill(byte);
const CLIENT_KEY = createIdentity();
const SERVER_KEY = createIdentity();

function dialler(over: Partial<DiallerHandshakeOptions> = {}): DiallerHandshake {
  return new DiallerHandshake({
    cluster: 'test',
    secret: 's3cret',
    self: CLIENT,
    identity: CLIENT_KEY,
    expect: { type: SERVER.type, id: '' },
    maxFrame: MAX_FRAME,
    peer: 'acceptor:1',
    nonce: fixedNonce(0xd1),
    ...over,
  });
}

function acceptor(over: Partial<AcceptorHandshakeOptions> = {}): AcceptorHandshake {
  return new AcceptorHandshake({
    cluster: 'test',
    secret: 's3cret',
    self: SERVER,
    identity: SERVER_KEY,
    admit: () => null,
    nonce: fixedNonce(0xa1),
    ...over,
  });
}

const bytes = (...frames: Frame[]): Uint8Array => encodeFrames(frames);
const cmds = (step: HandshakeStep): number[] => step.send.map((f) => f.cmd);

/** The refusal the peer was sent: the last frame must be an ERROR. */
function toldPeer(step: HandshakeStep): XError {
  const last = step.send.at(-1);
  expect(last?.cmd).toBe(Cmd.ERROR);
  const e = decode(ErrorReplySchema, last!.body);
  return XError.fromWire(e.code, e.message);
}

function helloFrame(over: Partial<Hello> = {}): Frame {
  const body = encode(HelloSchema, {
    cluster: 'test',
    nonce: new Uint8Array(32).fill(7),
    expectType: SERVER.type,
    expectId: '',
    fromType: CLIENT.type,
    fromId: CLIENT.id,
    protocol: PROTOCOL_VERSION,
    probe: false,
    ...over,
  });
  return { cmd: Cmd.HELLO, flags: 0, rid: 0, body };
}

/** Runs the exchange up to the acceptor's CHALLENGE; returns both machines and that frame. */
function upToChallenge(d = dialler(), a = acceptor()) {
  const step = a.receive(bytes(d.hello));
  expect(cmds(step)).toEqual([Cmd.CHALLENGE]);
  return { d, a, challenge: step.send[0]! };
}

describe('handshake machines, wired to each other', () => {
  it('a dialler and an acceptor sharing the secret open a link, each learning the other', () => {
    const { d, a, challenge } = upToChallenge();
    expect(d.state).toBe('awaiting-challenge');
    expect(a.state).toBe('awaiting-auth');

    const auth = d.receive(bytes(challenge));
    expect(cmds(auth)).toEqual([Cmd.AUTH]);
    expect(auth.refuse).toBeUndefined();
    expect(d.state).toBe('awaiting-welcome');

    const welcome = a.receive(bytes(...auth.send));
    expect(cmds(welcome)).toEqual([Cmd.WELCOME]);
    expect(welcome.done).toEqual({ remote: { ...CLIENT, publicKey: CLIENT_KEY.publicKey }, leftover: null });
    expect(a.state).toBe('open');

    const open = d.receive(bytes(...welcome.send));
    expect(open.send).toEqual([]);
    expect(open.done).toEqual({ remote: { ...SERVER, publicKey: SERVER_KEY.publicKey }, leftover: null });
    expect(d.state).toBe('open');
  });

  it('bytes after WELCOME are handed over as leftover, including a full-size frame and a partial one', () => {
    const { d, a, challenge } = upToChallenge();
    const welcome = a.receive(bytes(...d.receive(bytes(challenge)).send));
    const big = encodeFrame(7, Buffer.alloc(HANDSHAKE_MAX_FRAME * 2, 1), 0, 0);
    const partial = encodeFrame(8, Buffer.from('abcdef')).subarray(0, 10);
    const step = d.receive(Buffer.concat([bytes(...welcome.send), big, partial]));
    expect(step.done).toBeDefined();
    expect(Buffer.compare(step.done!.leftover!, Buffer.concat([big, partial]))).toBe(0);
  });

  it('frames the dialler sends right after AUTH reach the acceptor as leftover', () => {
    const { d, a, challenge } = upToChallenge();
    const auth = d.receive(bytes(challenge));
    const app = encodeFrame(9, Buffer.from('first'), 1, 42);
    const step = a.receive(Buffer.concat([bytes(...auth.send), app]));
    expect(Buffer.compare(step.done!.leftover!, app)).toBe(0);
  });

  it('frames split at any byte boundary give the same exchange', () => {
    const d = dialler();
    const a = acceptor();
    const hello = bytes(d.hello);
    const sent: number[] = [];
    for (let i = 0; i < hello.length; i++) sent.push(...cmds(a.receive(hello.subarray(i, i + 1))));
    expect(sent).toEqual([Cmd.CHALLENGE]);
  });

  it('with the same injected nonces the exchange is byte-for-byte the same', () => {
    const run = () => {
      const { d, a, challenge } = upToChallenge();
      const auth = d.receive(bytes(challenge));
      return [bytes(d.hello), bytes(challenge), bytes(...auth.send), bytes(...a.receive(bytes(...auth.send)).send)];
    };
    expect(run()).toEqual(run());
  });
});

describe('refusals', () => {
  it('a WELCOME whose proof was made with another secret: the dialler refuses it with AUTH_FAILED and says so', () => {
    const { d, challenge } = upToChallenge();
    d.receive(bytes(challenge));
    const acceptNonce = decode(ChallengeSchema, challenge.body).nonce;
    const proof = acceptorProof('nope', 'test', new Uint8Array(32).fill(0xd1), acceptNonce, SERVER.id);
    const step = d.receive(encodeFrame(Cmd.WELCOME, encode(WelcomeSchema, { proof })));
    expect(step.refuse?.code).toBe('AUTH_FAILED');
    expect(toldPeer(step).code).toBe('AUTH_FAILED');
    expect(step.done).toBeUndefined();
    expect(d.state).toBe('refused');
  });

  it('a WELCOME without a proof is refused with AUTH_FAILED', () => {
    const { d, challenge } = upToChallenge();
    d.receive(bytes(challenge));
    expect(d.receive(encodeFrame(Cmd.WELCOME)).refuse?.code).toBe('AUTH_FAILED');
  });

  it('different secrets: the acceptor refuses the AUTH and the dialler learns why from its ERROR', () => {
    const { d, a, challenge } = upToChallenge(dialler({ secret: 'nope' }));
    const refused = a.receive(bytes(...d.receive(bytes(challenge)).send));
    expect(refused.refuse?.code).toBe('AUTH_FAILED');
    expect(cmds(refused)).toEqual([Cmd.ERROR]); // no WELCOME, so no acceptor proof, leaves
    expect(d.receive(bytes(...refused.send)).refuse?.code).toBe('AUTH_FAILED');
  });

  it('wrong secret at the dialler: an AUTH proved with another secret is refused with AUTH_FAILED', () => {
    const { a, challenge } = upToChallenge();
    const acceptNonce = decode(ChallengeSchema, challenge.body).nonce;
    const proof = diallerProof('nope', 'test', acceptNonce, new Uint8Array(32).fill(0xd1), CLIENT.id);
    const step = a.receive(encodeFrame(Cmd.AUTH, encode(AuthSchema, { proof })));
    expect(step.refuse?.code).toBe('AUTH_FAILED');
    expect(toldPeer(step).code).toBe('AUTH_FAILED');
    expect(step.done).toBeUndefined();
    expect(a.state).toBe('refused');
  });

  it('an AUTH proof of the wrong length is refused, not thrown', () => {
    const { a } = upToChallenge();
    const step = a.receive(encodeFrame(Cmd.AUTH, encode(AuthSchema, { proof: new Uint8Array(3) })));
    expect(step.refuse?.code).toBe('AUTH_FAILED');
  });

  it('wrong cluster is refused with WRONG_CLUSTER', () => {
    const step = acceptor().receive(bytes(dialler({ cluster: 'other' }).hello));
    expect(step.refuse?.code).toBe('WRONG_CLUSTER');
    expect(toldPeer(step).message).toBe('this is cluster "test", not "other"');
  });

  it('wrong expected type is refused with WRONG_TARGET', () => {
    const step = acceptor().receive(bytes(dialler({ expect: { type: 1, id: '' } }).hello));
    expect(step.refuse?.code).toBe('WRONG_TARGET');
    expect(cmds(step)).toEqual([Cmd.ERROR]);
  });

  it('wrong expected id is refused with WRONG_TARGET', () => {
    const step = acceptor().receive(bytes(dialler({ expect: { type: SERVER.type, id: 'someone-else' } }).hello));
    expect(step.refuse?.code).toBe('WRONG_TARGET');
  });

  it('the dialler refuses a CHALLENGE from another id than it expects, even with a valid proof', () => {
    // An acceptor reached by a dialler that expects "any" id answers for itself ...
    const { challenge } = upToChallenge(dialler(), acceptor({ self: { type: SERVER.type, id: 'server-2' } }));
    // ... which a dialler with the same nonce but expecting server-1 must not take.
    const step = dialler({ expect: SERVER }).receive(bytes(challenge));
    expect(step.refuse?.code).toBe('WRONG_TARGET');
    expect(toldPeer(step).message).toMatch(/is type 4 id server-2, expected type 4 id server-1/);
  });

  it('another protocol version is refused with PROTOCOL_VERSION', () => {
    const step = acceptor().receive(bytes(helloFrame({ protocol: PROTOCOL_VERSION + 1 })));
    expect(step.refuse?.code).toBe('PROTOCOL_VERSION');
    expect(toldPeer(step).code).toBe('PROTOCOL_VERSION');
  });

  it('a HELLO nonce shorter than the minimum is refused with BAD_FRAME', () => {
    const step = acceptor().receive(bytes(helloFrame({ nonce: new Uint8Array(8) })));
    expect(step.refuse?.code).toBe('BAD_FRAME');
  });

  it('the admission policy refusal reaches the dialler instead of WELCOME', () => {
    const seen: unknown[] = [];
    const a = acceptor({ admit: (r) => (seen.push(r), new XError('NOT_ACTIVE', 'standby')) });
    const { d, challenge } = upToChallenge(dialler(), a);
    const step = a.receive(bytes(...d.receive(bytes(challenge)).send));
    expect(seen).toEqual([{ ...CLIENT, publicKey: CLIENT_KEY.publicKey }]);
    expect(cmds(step)).toEqual([Cmd.ERROR]);
    expect(step.refuse?.code).toBe('NOT_ACTIVE');
    const back = d.receive(bytes(...step.send));
    expect(back.refuse?.code).toBe('NOT_ACTIVE');
    expect(back.refuse?.message).toBe('acceptor:1 refused: standby');
    expect(back.send).toEqual([]); // the acceptor refused: nothing to tell it
  });

  it('an ERROR from the dialler is answered with an ERROR before the acceptor closes', () => {
    const err = new XError('SHUTTING_DOWN', 'bye');
    const step = acceptor().receive(encodeFrame(Cmd.ERROR, encode(ErrorReplySchema, { code: err.codeNumber, message: err.message })));
    expect(step.refuse?.code).toBe('SHUTTING_DOWN');
    expect(toldPeer(step).message).toBe('dialler gave up: bye');
  });
});

describe('malformed input', () => {
  it('a frame length smaller than the header is BAD_FRAME', () => {
    const step = acceptor().receive(Buffer.from([0, 0, 0, 3, 1, 2, 3]));
    expect(step.refuse?.code).toBe('BAD_FRAME');
    expect(toldPeer(step).code).toBe('BAD_FRAME');
  });

  it('a HELLO with a garbage body is BAD_FRAME', () => {
    const step = acceptor().receive(encodeFrame(Cmd.HELLO, Buffer.from([0xff, 0xff, 0xff])));
    expect(step.refuse?.code).toBe('BAD_FRAME');
    expect(step.refuse?.message).toMatch(/cannot decode xserver.v1.Hello/);
  });

  it('a CHALLENGE with a garbage body is BAD_FRAME at the dialler', () => {
    const step = dialler().receive(encodeFrame(Cmd.CHALLENGE, Buffer.from([0x12, 0x7f])));
    expect(step.refuse?.code).toBe('BAD_FRAME');
    expect(toldPeer(step).code).toBe('BAD_FRAME');
  });

  it('a truncated frame is kept until the rest arrives, and answers nothing meanwhile', () => {
    const a = acceptor();
    const hello = bytes(helloFrame());
    const first = a.receive(hello.subarray(0, 20));
    expect(first).toEqual({ send: [] });
    expect(a.state).toBe('awaiting-hello');
    expect(cmds(a.receive(hello.subarray(20)))).toEqual([Cmd.CHALLENGE]);
  });

  it('a frame over the pre-auth limit is refused with FRAME_TOO_LARGE as soon as its header arrives', () => {
    const header = encodeFrame(Cmd.HELLO, Buffer.alloc(HANDSHAKE_MAX_FRAME + 1)).subarray(0, 13);
    const step = acceptor().receive(header);
    expect(step.refuse?.code).toBe('FRAME_TOO_LARGE');
    expect(toldPeer(step).code).toBe('FRAME_TOO_LARGE');
  });

  it('docs/protocol.md states the pre-auth limit the code enforces', () => {
    const doc = readFileSync(new URL('../docs/protocol.md', import.meta.url), 'utf8');
    expect(doc).toContain(`frames may not exceed ${HANDSHAKE_MAX_FRAME / 1024} KiB (\`HANDSHAKE_MAX_FRAME\`)`);
  });

  it('a frame of exactly the pre-auth limit is not refused for its size', () => {
    const step = acceptor().receive(encodeFrame(Cmd.HELLO, Buffer.alloc(HANDSHAKE_MAX_FRAME)));
    expect(step.refuse?.code).not.toBe('FRAME_TOO_LARGE');
  });

  it('the dialler applies the pre-auth limit until the acceptor is authenticated', () => {
    const header = encodeFrame(Cmd.CHALLENGE, Buffer.alloc(HANDSHAKE_MAX_FRAME + 1)).subarray(0, 13);
    expect(dialler().receive(header).refuse?.code).toBe('FRAME_TOO_LARGE');
  });
});

describe('frames out of order', () => {
  it('AUTH before HELLO is BAD_FRAME', () => {
    const step = acceptor().receive(encodeFrame(Cmd.AUTH, encode(AuthSchema, { proof: new Uint8Array(32) })));
    expect(step.refuse?.code).toBe('BAD_FRAME');
    expect(step.refuse?.message).toBe('expected HELLO, got AUTH');
  });

  it('a second HELLO is BAD_FRAME, after the CHALLENGE already sent', () => {
    const d = dialler();
    const step = acceptor().receive(bytes(d.hello, d.hello));
    expect(cmds(step)).toEqual([Cmd.CHALLENGE, Cmd.ERROR]);
    expect(step.refuse?.message).toBe('expected AUTH, got HELLO');
  });

  it('an application frame before the handshake is done is BAD_FRAME', () => {
    expect(acceptor().receive(encodeFrame(7, Buffer.from('hi'))).refuse?.message).toBe('expected HELLO, got 7');
  });

  it('WELCOME before CHALLENGE is BAD_FRAME at the dialler', () => {
    const step = dialler().receive(encodeFrame(Cmd.WELCOME));
    expect(step.refuse?.message).toBe('expected CHALLENGE from acceptor:1, got WELCOME');
  });

  it('a second CHALLENGE is BAD_FRAME at the dialler', () => {
    const { d, challenge } = upToChallenge();
    const step = d.receive(bytes(challenge, challenge));
    expect(cmds(step)).toEqual([Cmd.AUTH, Cmd.ERROR]);
    expect(step.refuse?.message).toBe('expected WELCOME from acceptor:1, got CHALLENGE');
  });

  it('input after a refusal is ignored', () => {
    const a = acceptor();
    a.receive(encodeFrame(7));
    expect(a.receive(bytes(helloFrame()))).toEqual({ send: [] });
    expect(a.state).toBe('refused');
  });
});

describe('replay protection', () => {
  it('an AUTH recorded on another connection is refused: the acceptor nonce is fresh per connection', () => {
    let n = 0;
    const freshNonce = () => new Uint8Array(32).fill(++n);
    // Connection 1: a genuine dialler authenticates; an eavesdropper records its HELLO and AUTH.
    const d = dialler();
    const a1 = acceptor({ nonce: freshNonce });
    const challenge1 = a1.receive(bytes(d.hello)).send[0]!;
    const recordedAuth = bytes(...d.receive(bytes(challenge1)).send);
    expect(a1.receive(recordedAuth).done?.remote).toMatchObject(CLIENT);
    // Connection 2: the eavesdropper replays both to the same process.
    const a2 = acceptor({ nonce: freshNonce });
    expect(cmds(a2.receive(bytes(d.hello)))).toEqual([Cmd.CHALLENGE]);
    const step = a2.receive(recordedAuth);
    expect(step.refuse?.code).toBe('AUTH_FAILED');
    expect(step.done).toBeUndefined();
  });

  it('a WELCOME recorded on another connection is refused: the dialler nonce is fresh per connection', () => {
    // Connection 1, genuine: an eavesdropper records CHALLENGE and WELCOME.
    const { d, a, challenge } = upToChallenge(dialler({ nonce: fixedNonce(1) }));
    const welcome = bytes(...a.receive(bytes(...d.receive(bytes(challenge)).send)).send);
    // Connection 2: the eavesdropper, posing as the acceptor, replays both to a fresh dialler.
    const d2 = dialler({ nonce: fixedNonce(2) });
    expect(cmds(d2.receive(bytes(challenge)))).toEqual([Cmd.AUTH]);
    expect(d2.receive(welcome).refuse?.code).toBe('AUTH_FAILED');
  });
});

describe('identity keys', () => {
  it('an AUTH whose signature was not made with the key it presents is refused with AUTH_FAILED', () => {
    const { a, challenge } = upToChallenge();
    const acceptNonce = decode(ChallengeSchema, challenge.body).nonce;
    const dialNonce = new Uint8Array(32).fill(0xd1);
    const proof = diallerProof('s3cret', 'test', acceptNonce, dialNonce, CLIENT.id);
    const signature = createIdentity().sign(diallerKeyTranscript('test', acceptNonce, dialNonce, CLIENT.id)); // another key
    const step = a.receive(encodeFrame(Cmd.AUTH, encode(AuthSchema, { proof, publicKey: CLIENT_KEY.publicKey, signature })));
    expect(step.refuse?.code).toBe('AUTH_FAILED');
    expect(step.refuse?.message).toMatch(/identity signature/);
  });

  it('a dialler that expects a member key refuses an acceptor holding another one', () => {
    const someoneElse = createIdentity();
    const { d, a, challenge } = upToChallenge(dialler({ expect: { type: SERVER.type, id: SERVER.id, publicKey: someoneElse.publicKey } }));
    const welcome = a.receive(bytes(...d.receive(bytes(challenge)).send));
    const step = d.receive(bytes(...welcome.send));
    expect(step.refuse?.code).toBe('WRONG_TARGET');
    expect(step.done).toBeUndefined();
  });

  it('with the expected key the link opens', () => {
    const { d, a, challenge } = upToChallenge(dialler({ expect: { type: SERVER.type, id: SERVER.id, publicKey: SERVER_KEY.publicKey } }));
    const welcome = a.receive(bytes(...d.receive(bytes(challenge)).send));
    expect(d.receive(bytes(...welcome.send)).done?.remote.publicKey).toEqual(SERVER_KEY.publicKey);
  });
});

describe('nothing crackable for a stranger', () => {
  /** Everything the acceptor sends to someone who connects without the secret and tries to authenticate. */
  function strangerTranscript(secret: string): Uint8Array[] {
    const a = acceptor({ secret });
    const out: Uint8Array[] = [];
    const challenge = a.receive(bytes(helloFrame()));
    out.push(bytes(...challenge.send));
    const guess = diallerProof('a guess', 'test', decode(ChallengeSchema, challenge.send[0]!.body).nonce, new Uint8Array(32).fill(7), CLIENT.id);
    const refused = a.receive(encodeFrame(Cmd.AUTH, encode(AuthSchema, { proof: guess })));
    expect(refused.refuse?.code).toBe('AUTH_FAILED');
    out.push(bytes(...refused.send));
    return out;
  }

  it('what a stranger receives is the same whatever the secret: no value to test guesses against offline', () => {
    // Same nonces, two different secrets: if any byte sent before the dialler's proof depended on
    // the secret, the transcripts would differ.
    expect(strangerTranscript('secret-one')).toEqual(strangerTranscript('another secret entirely'));
  });

  it('the acceptor proves the secret only after the dialler did, in WELCOME', () => {
    const { d, a, challenge } = upToChallenge();
    expect(decode(ChallengeSchema, challenge.body)).not.toHaveProperty('proof');
    const welcome = a.receive(bytes(...d.receive(bytes(challenge)).send));
    expect(decode(WelcomeSchema, welcome.send[0]!.body).proof.length).toBe(32);
  });
});

describe('fuzz (the machines alone)', () => {
  let seed = 777;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const junk = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(rnd() * 256));
  /**
   * A valid one-frame message with one byte of its length, command or body changed (flags and rid
   * mean nothing in a handshake frame, so changing them changes nothing).
   */
  const mutate = (b: Uint8Array) => {
    const c = b.slice();
    const places = [...Array(8).keys(), ...Array.from({ length: c.length - 13 }, (_, k) => 13 + k)];
    c[places[Math.floor(rnd() * places.length)]!] ^= 1 + Math.floor(rnd() * 255);
    return c;
  };

  it('random and mutated input never throws, never opens without both proofs, and refusals always say why', () => {
    for (let i = 0; i < 2000; i++) {
      const a = acceptor({ nonce: newNonceFrom(rnd) });
      const d = dialler({ nonce: newNonceFrom(rnd) });
      const hello = bytes(d.hello);
      const kind = i % 4;
      let step: HandshakeStep;
      if (kind === 0) step = a.receive(junk(1 + Math.floor(rnd() * 300)));
      else if (kind === 1) step = a.receive(mutate(hello));
      else {
        const ch = a.receive(hello);
        expect(cmds(ch)).toEqual([Cmd.CHALLENGE]);
        const auth = bytes(...d.receive(bytes(...ch.send)).send);
        step = a.receive(kind === 2 ? mutate(auth) : junk(1 + Math.floor(rnd() * 300)));
      }
      if (step.done) {
        // Only an intact exchange opens; a mutation that kept every proof valid is impossible.
        throw new Error(`opened on fuzz input ${i}`);
      }
      if (step.refuse) expect(cmds(step).at(-1)).toBe(Cmd.ERROR);
      expect(['awaiting-hello', 'awaiting-auth', 'refused']).toContain(a.state);
    }
  });

  it('a dialler fed junk or mutated CHALLENGE/WELCOME never opens', () => {
    for (let i = 0; i < 1000; i++) {
      const a = acceptor({ nonce: newNonceFrom(rnd) });
      const d = dialler({ nonce: newNonceFrom(rnd) });
      const ch = a.receive(bytes(d.hello));
      const kind = i % 3;
      let step: HandshakeStep;
      if (kind === 0) step = d.receive(junk(1 + Math.floor(rnd() * 300)));
      else if (kind === 1) step = d.receive(mutate(bytes(...ch.send)));
      else {
        const welcome = a.receive(bytes(...d.receive(bytes(...ch.send)).send));
        step = d.receive(mutate(bytes(...welcome.send)));
      }
      expect(step.done, `fuzz input ${i}`).toBeUndefined();
    }
  });
});

function newNonceFrom(rnd: () => number): () => Uint8Array {
  return () => Uint8Array.from({ length: 32 }, () => Math.floor(rnd() * 256));
}
