/**
 * Hand-written protobuf codec for the two relay messages on the client hot path (FromClient,
 * ToClient in proto/xserver/v1/relay.proto). Same bytes as protobuf-es produces (proto3: zero
 * values omitted; decoding accepts any field order and skips unknown fields), at a fraction of
 * the cost: generic reflection-based encoding was a third of a gateway's CPU.
 * test/relay-codec.test.ts checks both directions against @bufbuild/protobuf.
 */
import { FieldReader } from './field-reader.js';
import { varintSize, writeVarint } from './varint.js';

export interface FromClientMsg {
  account: string;
  cmd: number;
  data: Uint8Array;
  rid: number;
  generation: number;
}

export interface ToClientMsg {
  account: string;
  cmd: number;
  data: Uint8Array;
  rid: number;
  errorCode: number;
  errorMessage: string;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();
const EMPTY = new Uint8Array(0);

/**
 * One buffer for the encodings a caller hands straight to a link (`transient`): Link.send copies
 * the body into its write batch before it returns, and a peer link that has to buffer copies it
 * too, so the next encoding may reuse the bytes. Saves an allocation per relayed message.
 */
let scratch = new Uint8Array(4096);
/** Larger bodies get their own buffer (the scratch does not grow past this). */
const SCRATCH_MAX = 64 * 1024;

function target(size: number, transient: boolean): Uint8Array {
  if (!transient || size > SCRATCH_MAX) return new Uint8Array(size);
  if (size > scratch.length) scratch = new Uint8Array(Math.min(SCRATCH_MAX, Math.max(size, scratch.length * 2)));
  return scratch.subarray(0, size);
}

class Writer {
  readonly buf: Uint8Array;
  pos = 0;

  constructor(size: number, transient: boolean) {
    this.buf = target(size, transient);
  }

  varint(v: number): void {
    this.pos = writeVarint(this.buf, this.pos, v);
  }

  uintField(field: number, v: number): void {
    if (v === 0) return;
    this.buf[this.pos++] = field << 3;
    this.varint(v);
  }

  bytesField(field: number, b: Uint8Array): void {
    if (b.length === 0) return;
    this.buf[this.pos++] = (field << 3) | 2;
    this.varint(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}

const lenField = (b: Uint8Array): number => (b.length === 0 ? 0 : 1 + varintSize(b.length) + b.length);
const uintField = (v: number): number => (v === 0 ? 0 : 1 + varintSize(v));

/** Accounts repeat on every message of a session: keep their UTF-8 bytes (bounded). */
const accountBytes = new Map<string, Uint8Array>();
function utf8Account(s: string): Uint8Array {
  let b = accountBytes.get(s);
  if (b === undefined) {
    b = textEncoder.encode(s);
    if (accountBytes.size >= 50_000) accountBytes.clear();
    accountBytes.set(s, b);
  }
  return b;
}

/** `transient`: the result is valid only until the next transient encoding (see `scratch`). */
export function encodeFromClient(m: FromClientMsg, transient = false): Uint8Array {
  const account = utf8Account(m.account);
  const w = new Writer(lenField(account) + uintField(m.cmd) + lenField(m.data) + uintField(m.rid) + uintField(m.generation), transient);
  w.bytesField(1, account);
  w.uintField(2, m.cmd);
  w.bytesField(3, m.data);
  w.uintField(4, m.rid);
  w.uintField(5, m.generation);
  return w.buf;
}

/** `transient`: the result is valid only until the next transient encoding (see `scratch`). */
export function encodeToClient(m: ToClientMsg, transient = false): Uint8Array {
  const account = utf8Account(m.account);
  const err = m.errorMessage ? textEncoder.encode(m.errorMessage) : EMPTY;
  const w = new Writer(
    lenField(account) + uintField(m.cmd) + lenField(m.data) + uintField(m.rid) + uintField(m.errorCode) + lenField(err),
    transient,
  );
  w.bytesField(1, account);
  w.uintField(2, m.cmd);
  w.bytesField(3, m.data);
  w.uintField(4, m.rid);
  w.uintField(5, m.errorCode);
  w.bytesField(6, err);
  return w.buf;
}

export function decodeFromClient(b: Uint8Array): FromClientMsg {
  const m: FromClientMsg = { account: '', cmd: 0, data: EMPTY, rid: 0, generation: 0 };
  const r = new FieldReader(b, 'FromClient');
  while (r.next()) {
    if (!r.isBytes) {
      if (r.n === 2) m.cmd = r.num;
      else if (r.n === 4) m.rid = r.num;
      else if (r.n === 5) m.generation = r.num;
    } else if (r.n === 1) m.account = textDecoder.decode(r.bytes);
    else if (r.n === 3) m.data = r.bytes;
  }
  return m;
}

export function decodeToClient(b: Uint8Array): ToClientMsg {
  const m: ToClientMsg = { account: '', cmd: 0, data: EMPTY, rid: 0, errorCode: 0, errorMessage: '' };
  const r = new FieldReader(b, 'ToClient');
  while (r.next()) {
    if (!r.isBytes) {
      if (r.n === 2) m.cmd = r.num;
      else if (r.n === 4) m.rid = r.num;
      else if (r.n === 5) m.errorCode = r.num;
    } else if (r.n === 1) m.account = textDecoder.decode(r.bytes);
    else if (r.n === 3) m.data = r.bytes;
    else if (r.n === 6) m.errorMessage = textDecoder.decode(r.bytes);
  }
  return m;
}
