/** The client-facing messages of src/protocol: one encoder and one parser each, bad bodies refused clearly. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../src/errors.js';
import { toBytes } from '../src/protocol/bytes.js';
import {
  DEFAULT_HEARTBEAT_MS,
  MessageError,
  encodeAuth,
  encodeErrorNotice,
  encodeGoingAway,
  encodeWelcome,
  parseAuth,
  parseErrorNotice,
  parseGoingAway,
  parseWelcome,
  type Welcome,
} from '../src/protocol/client-messages.js';
import { Cmd, SYSTEM_CMD_BASE, cmdName, isSystemCmd, isUserCmd } from '../src/protocol/commands.js';

describe('client messages', () => {
  it('AUTH round-trips a token and a resume key; a resume key wins over a token', () => {
    expect(parseAuth(encodeAuth({ token: 't1' }))).toEqual({ token: 't1' });
    expect(parseAuth(encodeAuth({ resume: 'r1' }))).toEqual({ resume: 'r1' });
    expect(parseAuth(toBytes('{"token":"t","resume":"r"}'))).toEqual({ resume: 'r' });
    // Neither: an empty token, which the gateway refuses as BAD_TOKEN.
    expect(parseAuth(toBytes('{"token":5}'))).toEqual({ token: '' });
  });

  it('AUTH carries a handoff token; a resume key wins over it', () => {
    expect(parseAuth(encodeAuth({ handoff: 'h1', version: '1.2' }))).toEqual({ handoff: 'h1', version: '1.2' });
    expect(parseAuth(toBytes('{"handoff":"h","resume":"r"}'))).toEqual({ resume: 'r' });
  });

  it('GOING_AWAY round-trips; one without a token or an endpoint is BAD_FRAME', () => {
    const g = { gateway: { id: 'gw-b', host: '10.0.0.2', tcpPort: 7001, wsUrl: 'ws://10.0.0.2:7002/', tls: false }, handoff: 'gw-a.tok' };
    expect(parseGoingAway(encodeGoingAway(g))).toEqual(g);
    expect(() => parseGoingAway(toBytes('{"gateway":{"wsUrl":"ws://x/"}}'))).toThrowError(expect.objectContaining({ code: 'BAD_FRAME' }));
    expect(() => parseGoingAway(toBytes('{"handoff":"t","gateway":{"host":"h"}}'))).toThrowError(expect.objectContaining({ code: 'BAD_FRAME' }));
    expect(() => parseGoingAway(toBytes('nope'))).toThrowError(expect.objectContaining({ code: 'BAD_FRAME' }));
  });

  it('AUTH that is not a JSON object is BAD_REQUEST naming the expected shape', () => {
    for (const bad of ['nope', '[1]', 'null', '"x"']) {
      expect(() => parseAuth(toBytes(bad))).toThrowError(MessageError);
      expect(() => parseAuth(toBytes(bad))).toThrowError(
        expect.objectContaining({ code: 'BAD_REQUEST', message: expect.stringContaining('{"token"') }),
      );
    }
  });

  it('WELCOME keeps every field, graceMs included', () => {
    const w: Welcome = { account: 'a', generation: 7, resume: 'k', heartbeatMs: 500, resumed: true, graceMs: 30000 };
    expect(parseWelcome(encodeWelcome(w))).toEqual(w);
    const { graceMs: _omitted, ...noGrace } = w;
    expect(parseWelcome(encodeWelcome(noGrace))).toEqual(noGrace);
  });

  it('WELCOME without a resume key is BAD_FRAME; a missing heartbeat falls back to the default', () => {
    expect(() => parseWelcome(toBytes('{"account":"a"}'))).toThrowError(expect.objectContaining({ code: 'BAD_FRAME' }));
    expect(() => parseWelcome(toBytes('{'))).toThrowError(expect.objectContaining({ code: 'BAD_FRAME' }));
    expect(parseWelcome(toBytes('{"resume":"k"}')).heartbeatMs).toBe(DEFAULT_HEARTBEAT_MS);
  });

  it('ERROR round-trips code, message and the command it answers; garbage gives the fallback code', () => {
    expect(parseErrorNotice(encodeErrorNotice({ code: 'KICKED', message: 'bye' }), 'X')).toEqual({ code: 'KICKED', message: 'bye' });
    expect(parseErrorNotice(encodeErrorNotice({ code: 'RESERVED_COMMAND', message: 'no', cmd: 1002 }), 'X')).toEqual({
      code: 'RESERVED_COMMAND',
      message: 'no',
      cmd: 1002,
    });
    expect(parseErrorNotice(toBytes('not json'), 'AUTH_FAILED')).toEqual({ code: 'AUTH_FAILED', message: 'AUTH_FAILED' });
    expect(parseErrorNotice(toBytes('{"code":"C"}'), 'X')).toEqual({ code: 'C', message: 'C' });
  });
});

describe('commands', () => {
  it('every framework command is reserved and named; user commands are below the base', () => {
    for (const [name, cmd] of Object.entries(Cmd)) {
      expect(isSystemCmd(cmd)).toBe(true);
      expect(isUserCmd(cmd)).toBe(false);
      expect(cmdName(cmd)).toBe(name);
    }
    expect(new Set(Object.values(Cmd)).size).toBe(Object.keys(Cmd).length);
    expect(isUserCmd(SYSTEM_CMD_BASE - 1)).toBe(true);
    expect(isUserCmd(-1)).toBe(false);
    expect(isUserCmd(1.5)).toBe(false);
    expect(cmdName(SYSTEM_CMD_BASE + 0xfff)).toBe('SYSTEM_0xffff0fff');
    expect(cmdName(42)).toBe('42');
  });
});

describe('docs/protocol.md', () => {
  it('the error code table lists every ErrorCode with its number, and nothing else', () => {
    const doc = readFileSync(new URL('../docs/protocol.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('## 7. Error codes'));
    const rows = [...section.matchAll(/^\| (\d+) \| `([A-Z_]+)` \|/gm)].map((m) => [m[2], Number(m[1])]);
    expect(Object.fromEntries(rows)).toEqual(ErrorCode);
  });
});
