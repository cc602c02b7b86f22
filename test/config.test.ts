import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, expectTypeOf, it } from 'vitest';
import { renderConfigDocs } from '../src/config/docs.js';
import { configSources, loadConfig, parseSetOption, redactedConfig, resolveConfig, settingsWith, type LoadOptions } from '../src/config/load.js';
import { defaultConfig, statefulTypeNumbers, type Setting, type XConfig } from '../src/config/schema.js';
import { isXError } from '../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'xserver-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function toml(text: string): string {
  const file = join(dir, `c${n++}.toml`);
  writeFileSync(file, text);
  return file;
}

/** Runs loadConfig expecting a CONFIG error; returns its message. */
function configError(opts: LoadOptions): string {
  try {
    loadConfig(opts);
  } catch (e) {
    expect(isXError(e, 'CONFIG')).toBe(true);
    return (e as Error).message;
  }
  throw new Error('expected a CONFIG error');
}

const extra: Setting[] = [
  { key: 'gateway.port', type: 'int', default: 7200, min: 0, max: 65535, doc: 'Client port.' },
  { key: 'gateway.compress', type: 'bool', default: false, doc: 'Compress frames.' },
  { key: 'login.adminPassword', type: 'string', default: 'pw', doc: 'Admin password.' },
];

describe('loadConfig: sources and precedence', () => {
  it('returns the defaults with no file, env or overrides', () => {
    // Empty advertised addresses are derived from the (loopback) bind addresses.
    expect(loadConfig({ env: {} })).toEqual({ ...defaultConfig(), innerIp: '127.0.0.1', outerIp: '127.0.0.1' });
  });

  it('layers CLI > env > file > defaults and records each source', () => {
    const file = toml(`
cluster = "from-file"
adminPort = 9000
[link]
heartbeatTimeoutMs = 4000
[mgr]
port = 7200
[types]
lobby = 6
`);
    const env = { XSERVER_LINK_HEARTBEAT_TIMEOUT_MS: '5000', XSERVER_MGR_PORT: '7300', XSERVER_LOG_LEVEL: 'debug' };
    const r = resolveConfig({ file, env, overrides: { 'mgr.port': '7400', 'node.port': 7500, 'log.level': undefined } });
    const c = r.config;
    expect(c.cluster).toBe('from-file');
    expect(c.adminPort).toBe(9000);
    expect(c.link.heartbeatTimeoutMs).toBe(5000);
    expect(c.mgr.port).toBe(7400);
    expect(c.node.port).toBe(7500);
    expect(c.log.level).toBe('debug'); // undefined override (unset flag) does not mask env
    expect(c.types).toEqual({ lobby: 6 }); // a map from a higher source replaces the default whole
    expect(c.secret).toBe('xserver-dev-secret');
    expect(r.file).toBe(file);
    expect(r.sources['cluster']).toEqual({ kind: 'file', path: file });
    expect(r.sources['link.heartbeatTimeoutMs']).toEqual({ kind: 'env', name: 'XSERVER_LINK_HEARTBEAT_TIMEOUT_MS' });
    expect(r.sources['mgr.port']).toEqual({ kind: 'cli' });
    expect(r.sources['secret']).toEqual({ kind: 'default' });

    const rows = configSources(r);
    expect(rows.find((x) => x.key === 'mgr.port')).toEqual({ key: 'mgr.port', env: 'XSERVER_MGR_PORT', value: 7400, source: 'command line' });
    expect(rows.find((x) => x.key === 'cluster')?.source).toBe(`file ${file}`);
    expect(rows.find((x) => x.key === 'secret')).toMatchObject({ value: '***', source: 'default' });
  });

  it('reads the file named by XSERVER_CONFIG unless a file is given', () => {
    const a = toml('cluster = "a"');
    const b = toml('cluster = "b"');
    expect(loadConfig({ env: { XSERVER_CONFIG: a } }).cluster).toBe('a');
    expect(loadConfig({ file: b, env: { XSERVER_CONFIG: a } }).cluster).toBe('b');
    expect(configError({ env: { XSERVER_CONFIG: join(dir, 'missing.toml') } })).toMatch(
      /cannot read config file .*missing\.toml \(from env XSERVER_CONFIG\)/,
    );
  });

  it('treats an empty env var as unset', () => {
    expect(loadConfig({ env: { XSERVER_MGR_PORT: '' } }).mgr.port).toBe(0);
  });

  it('warns about XSERVER_* env vars that match no setting', () => {
    const r = resolveConfig({ env: { XSERVER_LINK_HEARTBEAT_TIMOUT_MS: '1', XSERVER_CONFIG: '' } });
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toContain('XSERVER_LINK_HEARTBEAT_TIMOUT_MS');
    expect(r.warnings[0]).toContain('XSERVER_LINK_HEARTBEAT_TIMEOUT_MS');
  });
});

describe('loadConfig: env parsing', () => {
  it('parses ints, enums and maps', () => {
    const c = loadConfig({
      env: { XSERVER_LINK_MAX_FRAME: ' 2048 ', XSERVER_NODE_SELECTION: 'least-loaded', XSERVER_TYPES: 'lobby=4, match=5,chat=9,' },
    });
    expect(c.link.maxFrame).toBe(2048);
    expect(c.node.selection).toBe('least-loaded');
    expect(c.types).toEqual({ lobby: 4, match: 5, chat: 9 });
  });

  it('parses bools as true/false/1/0', () => {
    for (const [raw, want] of [
      ['true', true],
      ['FALSE', false],
      ['1', true],
      ['0', false],
    ] as const) {
      const c = loadConfig({ env: { XSERVER_GATEWAY_COMPRESS: raw }, extraSettings: extra });
      expect((c['gateway'] as unknown as { compress: boolean }).compress).toBe(want);
    }
    expect(configError({ env: { XSERVER_GATEWAY_COMPRESS: 'yes' }, extraSettings: extra })).toBe(
      'gateway.compress: expected true, false, 1 or 0, got "yes" (from env XSERVER_GATEWAY_COMPRESS)',
    );
  });

  it('names key, expectation, value and env var on a bad value', () => {
    expect(configError({ env: { XSERVER_LINK_HEARTBEAT_TIMEOUT_MS: 'abc' } })).toBe(
      'link.heartbeatTimeoutMs: expected an integer >= 30, got "abc" (from env XSERVER_LINK_HEARTBEAT_TIMEOUT_MS)',
    );
    expect(configError({ env: { XSERVER_LINK_HEARTBEAT_TIMEOUT_MS: '10' } })).toContain('expected an integer >= 30, got "10"');
    expect(configError({ env: { XSERVER_ADMIN_PORT: '70000' } })).toBe(
      'adminPort: expected an integer between 0 and 65535, got "70000" (from env XSERVER_ADMIN_PORT)',
    );
    expect(configError({ env: { XSERVER_MGR_PORT: '1.5' } })).toMatch(/^mgr\.port: expected an integer/);
    expect(configError({ env: { XSERVER_LOG_LEVEL: 'loud' } })).toBe(
      'log.level: expected one of trace, debug, info, warn, error, fatal, silent, got "loud" (from env XSERVER_LOG_LEVEL)',
    );
    expect(configError({ env: { XSERVER_TYPES: 'lobby' } })).toMatch(
      /^types: expected name=integer entries.*got "lobby" \(from env XSERVER_TYPES\)$/,
    );
    expect(configError({ env: { XSERVER_TYPES: 'lobby=x' } })).toMatch(/^types: .*\(from env XSERVER_TYPES\)$/);
    expect(configError({ env: { XSERVER_TYPES: '=4' } })).toMatch(/^types: /);
    expect(configError({ env: { XSERVER_TYPES: 'a=4,a=5' } })).toMatch(/^types: name "a" appears twice/);
  });

  it('reports every bad value at once', () => {
    const msg = configError({ env: { XSERVER_MGR_PORT: 'x', XSERVER_NODE_PORT: 'y' }, overrides: { 'link.maxFrame': 'z' } });
    expect(msg).toMatch(/^3 configuration errors:/);
    expect(msg).toContain('mgr.port:');
    expect(msg).toContain('node.port:');
    expect(msg).toContain('link.maxFrame: expected an integer >= 1024, got "z" (from command line)');
  });
});

describe('loadConfig: TOML file', () => {
  it('maps nested tables and top-level keys onto dotted settings', () => {
    const file = toml(`
cluster = "x"
[link]
heartbeatTimeoutMs = 3500
[node]
selection = "round-robin"
[types]
lobby = 4
match = 7
`);
    const c = loadConfig({ file, env: {} });
    expect(c.cluster).toBe('x');
    expect(c.link.heartbeatTimeoutMs).toBe(3500);
    expect(c.node.selection).toBe('round-robin');
    expect(c.types).toEqual({ lobby: 4, match: 7 });
  });

  it('rejects wrongly typed values, naming key and file', () => {
    const file = toml('[link]\nheartbeatTimeoutMs = "3000"\n');
    expect(configError({ file, env: {} })).toBe(`link.heartbeatTimeoutMs: expected an integer >= 30, got "3000" (from file ${file})`);
    const f2 = toml('[types]\nlobby = "four"\n');
    expect(configError({ file: f2, env: {} })).toMatch(/^types: expected an integer for "lobby"/);
    const f3 = toml('link = 5\n');
    expect(configError({ file: f3, env: {} })).toMatch(/^link: is a section/);
  });

  it('rejects unknown keys and suggests close matches', () => {
    const file = toml('[link]\nheartbeatTimoutMs = 3000\n');
    expect(configError({ file, env: {} })).toBe(`link.heartbeatTimoutMs: unknown setting; did you mean link.heartbeatTimeoutMs? (from file ${file})`);
    // Right name, wrong place.
    expect(configError({ file: toml('heartbeatTimeoutMs = 3000\n'), env: {} })).toMatch(
      /^heartbeatTimeoutMs: unknown setting; did you mean link\.heartbeatTimeoutMs\?/,
    );
    // Misspelt section: each leaf is reported with its own suggestion.
    expect(configError({ file: toml('[lnk]\nmaxFrame = 4096\n'), env: {} })).toMatch(
      /^lnk\.maxFrame: unknown setting; did you mean .*link\.maxFrame.*\?/,
    );
    expect(configError({ file: toml('zzzzzzzz = 1\n'), env: {} })).toMatch(/^zzzzzzzz: unknown setting \(see docs/);
  });

  it('reports TOML syntax errors with the file and position', () => {
    const file = toml('cluster = \n');
    expect(configError({ file, env: {} })).toMatch(new RegExp(`^config file .*c\\d+\\.toml: invalid TOML at line 1`));
  });

  it('rejects unknown CLI override keys with suggestions', () => {
    expect(configError({ env: {}, overrides: { 'mgr.leaseTtl': '5000' } })).toBe(
      'mgr.leaseTtl: unknown setting; did you mean mgr.leaseTtlMs? (from command line)',
    );
  });
});

describe('loadConfig: cross-field checks', () => {
  it('mgr.leaseRefreshMs < mgr.leaseTtlMs', () => {
    expect(configError({ env: { XSERVER_MGR_LEASE_REFRESH_MS: '3000' } })).toBe(
      'mgr.leaseRefreshMs must be less than mgr.leaseTtlMs; mgr.leaseRefreshMs is 3000 (from env XSERVER_MGR_LEASE_REFRESH_MS), mgr.leaseTtlMs is 3000 (default)',
    );
  });
  it('link.heartbeatIntervalMs < link.heartbeatTimeoutMs', () => {
    const file = toml('[link]\nheartbeatTimeoutMs = 500\n');
    expect(configError({ file, env: {}, overrides: { 'link.heartbeatIntervalMs': 600 } })).toMatch(
      /^link\.heartbeatIntervalMs must be less than link\.heartbeatTimeoutMs; .*600 \(from command line\).*500 \(from file /,
    );
  });
  it('min backoffs <= max backoffs', () => {
    expect(configError({ env: { XSERVER_NODE_DISCOVERY_MIN_BACKOFF_MS: '1001' } })).toMatch(
      /^node\.discoveryMinBackoffMs must be at most node\.discoveryMaxBackoffMs/,
    );
    expect(configError({ env: { XSERVER_NODE_DIAL_MAX_BACKOFF_MS: '20', XSERVER_NODE_DIAL_MIN_BACKOFF_MS: '30' } })).toMatch(
      /^node\.dialMinBackoffMs must be at most node\.dialMaxBackoffMs/,
    );
    // Equal is fine.
    expect(loadConfig({ env: { XSERVER_NODE_DIAL_MIN_BACKOFF_MS: '2000' } }).node.dialMinBackoffMs).toBe(2000);
  });
  it('types: numbers >= 4 and unique, names non-empty and not reserved', () => {
    expect(configError({ env: { XSERVER_TYPES: 'lobby=3' } })).toMatch(/^types\.lobby: expected a number >= 4.*from env XSERVER_TYPES/);
    expect(configError({ env: { XSERVER_TYPES: 'lobby=4,match=4' } })).toMatch(/^types: lobby and match both use number 4/);
    expect(configError({ file: toml('[types]\n"" = 4\n'), env: {} })).toMatch(/^types: type names must not be empty/);
    expect(configError({ env: { XSERVER_TYPES: 'gateway=6' } })).toMatch(/^types\.gateway: "gateway" is reserved/);
  });
  it('mgr.leaseRefreshMs at most half of mgr.leaseTtlMs', () => {
    expect(configError({ env: { XSERVER_MGR_LEASE_REFRESH_MS: '1501' } })).toBe(
      'mgr.leaseRefreshMs must be at most half of mgr.leaseTtlMs (a refresh that comes one interval late must still land before the lease expires); mgr.leaseRefreshMs is 1501 (from env XSERVER_MGR_LEASE_REFRESH_MS), mgr.leaseTtlMs is 3000 (default)',
    );
    expect(loadConfig({ env: { XSERVER_MGR_LEASE_REFRESH_MS: '1500' } }).mgr.leaseRefreshMs).toBe(1500);
  });
  it('mgr.standbyPollMs < mgr.leaseTtlMs', () => {
    expect(configError({ env: { XSERVER_MGR_STANDBY_POLL_MS: '3000' } })).toMatch(
      /^mgr\.standbyPollMs must be less than mgr\.leaseTtlMs \(a standby polling less often .*\); mgr\.standbyPollMs is 3000 \(from env XSERVER_MGR_STANDBY_POLL_MS\), mgr\.leaseTtlMs is 3000 \(default\)$/,
    );
  });
  it('link.heartbeatIntervalMs at most half of link.heartbeatTimeoutMs', () => {
    expect(configError({ env: { XSERVER_LINK_HEARTBEAT_INTERVAL_MS: '1600' } })).toMatch(
      /^link\.heartbeatIntervalMs must be at most half of link\.heartbeatTimeoutMs \(one late ping must not close a healthy link\); .*1600.*3000 \(default\)$/,
    );
  });
  it('gateway.heartbeatMs < gateway.idleTimeoutMs, and at most half of it', () => {
    expect(configError({ env: { XSERVER_GATEWAY_IDLE_TIMEOUT_MS: '10000' } })).toBe(
      'gateway.heartbeatMs must be less than gateway.idleTimeoutMs; gateway.heartbeatMs is 10000 (default), gateway.idleTimeoutMs is 10000 (from env XSERVER_GATEWAY_IDLE_TIMEOUT_MS)',
    );
    expect(configError({ env: { XSERVER_GATEWAY_IDLE_TIMEOUT_MS: '19999' } })).toMatch(
      /^gateway\.heartbeatMs must be at most half of gateway\.idleTimeoutMs \(a client that pings one interval late/,
    );
    expect(loadConfig({ env: { XSERVER_GATEWAY_IDLE_TIMEOUT_MS: '20000' } }).gateway.idleTimeoutMs).toBe(20000);
  });
  it('link.maxFrame fits link.maxOutboundBytes and node.pendingMaxBytes', () => {
    expect(configError({ env: { XSERVER_LINK_MAX_OUTBOUND_BYTES: String(1024 * 1024) } })).toMatch(
      /^link\.maxFrame must be at most link\.maxOutboundBytes \(a frame of link\.maxFrame bytes could never be queued for sending\); link\.maxFrame is 4194304 \(default\), link\.maxOutboundBytes is 1048576 \(from env/,
    );
    expect(configError({ env: { XSERVER_NODE_PENDING_MAX_BYTES: '4194303' } })).toMatch(
      /^link\.maxFrame must be at most node\.pendingMaxBytes \(a frame .* could never be buffered while its link reconnects\)/,
    );
  });
  it('gateway.resumeBufferMaxBytes <= gateway.maxOutboundBytes', () => {
    expect(configError({ env: { XSERVER_GATEWAY_RESUME_BUFFER_MAX_BYTES: '1048577' } })).toMatch(
      /^gateway\.resumeBufferMaxBytes must be at most gateway\.maxOutboundBytes \(replaying the buffer .* SLOW_CONSUMER\)/,
    );
  });
  it('warns, without failing, when a client frame could not be relayed on an intranet link', () => {
    const r = resolveConfig({ env: { XSERVER_GATEWAY_MAX_FRAME: String(4 * 1024 * 1024) } });
    expect(r.warnings).toEqual([
      expect.stringMatching(
        /^gateway\.maxFrame should be at most link\.maxFrame - 1024 \(a client frame travels to its node inside a relay frame .*\); gateway\.maxFrame is 4194304 \(from env XSERVER_GATEWAY_MAX_FRAME\), link\.maxFrame is 4194304 \(default\)$/,
      ),
    ]);
    expect(resolveConfig({ env: { XSERVER_GATEWAY_MAX_FRAME: String(4 * 1024 * 1024 - 1024) } }).warnings).toEqual([]);
  });
  it('login.headersTimeoutMs <= login.requestTimeoutMs', () => {
    expect(configError({ env: { XSERVER_LOGIN_HEADERS_TIMEOUT_MS: '20000' } })).toBe(
      'login.headersTimeoutMs must be at most login.requestTimeoutMs (the headers are part of the request); login.headersTimeoutMs is 20000 (from env XSERVER_LOGIN_HEADERS_TIMEOUT_MS), login.requestTimeoutMs is 15000 (default)',
    );
  });
  it('gateway.tcpPort and gateway.wsPort differ unless 0', () => {
    expect(configError({ env: { XSERVER_GATEWAY_TCP_PORT: '7300', XSERVER_GATEWAY_WS_PORT: '7300' } })).toBe(
      'gateway.tcpPort and gateway.wsPort must differ (or be 0); gateway.tcpPort is 7300 (from env XSERVER_GATEWAY_TCP_PORT), gateway.wsPort is 7300 (from env XSERVER_GATEWAY_WS_PORT)',
    );
    expect(loadConfig({ env: {} }).gateway.tcpPort).toBe(0); // both 0 by default: any free port each
  });
  it('statefulTypes: known names, service type numbers, each type once', () => {
    expect(configError({ env: { XSERVER_STATEFUL_TYPES: 'lobby,lobyy' } })).toBe(
      'statefulTypes: unknown type "lobyy" (types: lobby, match); statefulTypes is "lobby,lobyy" (from env XSERVER_STATEFUL_TYPES), types is {"lobby":4,"match":5} (default)',
    );
    expect(configError({ env: { XSERVER_STATEFUL_TYPES: '2' } })).toMatch(/^statefulTypes: "2" is not a service type \(expected a number >= 4/);
    expect(configError({ env: { XSERVER_STATEFUL_TYPES: 'lobby,4' } })).toMatch(
      /^statefulTypes: "4" names type 4 again \(already listed as "lobby"\)/,
    );
    expect(configError({ env: { XSERVER_STATEFUL_TYPES: 'toString' } })).toMatch(/^statefulTypes: unknown type "toString"/);
    // Numbers need no name; empty entries are skipped; an empty list means no stateful types.
    expect(loadConfig({ env: { XSERVER_STATEFUL_TYPES: 'match, 9,' } }).statefulTypes).toBe('match, 9,');
    expect(statefulTypeNumbers(loadConfig({ env: { XSERVER_STATEFUL_TYPES: 'match, 9,' } }))).toEqual([5, 9]);
    expect(loadConfig({ overrides: { statefulTypes: '' }, env: {} }).statefulTypes).toBe('');
    // A bad types map is reported once, not again through statefulTypes.
    expect(configError({ env: { XSERVER_TYPES: 'lobby=3' } })).not.toContain('statefulTypes');
  });
  it('warns when the commands of a type would reach the system commands', () => {
    const r = resolveConfig({ env: { XSERVER_GATEWAY_CMD_OFFSET: '1000000', XSERVER_TYPES: 'lobby=4,far=4294' } });
    expect(r.warnings).toEqual([
      expect.stringMatching(
        /^types\.far: clients cannot reach type 4294: its commands \(from 4294000000\) would reach the system commands \(from 4294901760\)/,
      ),
    ]);
    expect(resolveConfig({ env: { XSERVER_GATEWAY_CMD_OFFSET: '1000000', XSERVER_TYPES: 'lobby=4,far=4293' } }).warnings).toEqual([]);
  });
  it('reports every broken rule at once', () => {
    const msg = configError({
      env: { XSERVER_MGR_STANDBY_POLL_MS: '5000', XSERVER_NODE_DIAL_MIN_BACKOFF_MS: '3000', XSERVER_STATEFUL_TYPES: 'nope' },
    });
    expect(msg).toMatch(/^3 configuration errors:/);
    expect(msg).toContain('mgr.standbyPollMs must be less than mgr.leaseTtlMs');
    expect(msg).toContain('node.dialMinBackoffMs must be at most node.dialMaxBackoffMs');
    expect(msg).toContain('statefulTypes: unknown type "nope"');
  });
  it('cluster and secret must be usable', () => {
    expect(configError({ env: {}, overrides: { cluster: 'a{b}' } })).toMatch(/^cluster: expected a non-empty name/);
    expect(configError({ file: toml('cluster = ""\n'), env: {} })).toMatch(/^cluster: /);
    expect(configError({ file: toml('secret = ""\n'), env: {} })).toMatch(/^secret: must not be empty/);
  });
});

describe('extraSettings', () => {
  it('adds defaults, env, file, CLI, validation and docs for role settings', () => {
    expect((loadConfig({ env: {}, extraSettings: extra })['gateway'] as unknown as { port: number }).port).toBe(7200);
    const file = toml('[gateway]\nport = 7201\n');
    expect((loadConfig({ file, env: {}, extraSettings: extra })['gateway'] as unknown as { port: number }).port).toBe(7201);
    expect((loadConfig({ env: { XSERVER_GATEWAY_PORT: '7202' }, extraSettings: extra })['gateway'] as unknown as { port: number }).port).toBe(7202);
    expect(configError({ env: {}, overrides: { 'gateway.port': '-1' }, extraSettings: extra })).toBe(
      'gateway.port: expected an integer between 0 and 65535, got "-1" (from command line)',
    );
    // Without the extra settings, the same file key is unknown.
    expect(configError({ file, env: {} })).toMatch(/^gateway\.port: unknown setting/);
    expect(renderConfigDocs(settingsWith(extra))).toContain('| `gateway.port` | `XSERVER_GATEWAY_PORT` | `7200` |');
  });
  it('rejects a duplicate setting key', () => {
    expect(() => settingsWith([{ key: 'cluster', type: 'string', default: '', doc: '' }])).toThrow(/cluster is defined twice/);
  });
});

describe('parseSetOption', () => {
  it('accumulates key=value pairs, splitting at the first =', () => {
    const a = parseSetOption('link.heartbeatTimeoutMs=5000');
    const b = parseSetOption('types=lobby=4,match=5', a);
    expect(b).toEqual({ 'link.heartbeatTimeoutMs': '5000', types: 'lobby=4,match=5' });
    expect(loadConfig({ env: {}, overrides: b }).types).toEqual({ lobby: 4, match: 5 });
  });
  it('rejects a missing = or key', () => {
    expect(() => parseSetOption('link.heartbeatTimeoutMs')).toThrow(/--set expects key=value/);
    expect(() => parseSetOption('=5')).toThrow(/--set expects key=value/);
  });
});

describe('redaction', () => {
  it('masks the secret, URL passwords and password-like role settings', () => {
    const cfg = loadConfig({
      env: { XSERVER_SECRET: 'hunter2', XSERVER_REDIS_URL: 'redis://user:p%40ss@redis:6379/2' },
      extraSettings: extra,
    });
    const r = redactedConfig(cfg, settingsWith(extra));
    expect(r.secret).toBe('***');
    expect(r.redisUrl).toBe('redis://user:***@redis:6379/2');
    expect((r['login'] as unknown as { adminPassword: string }).adminPassword).toBe('***');
    expect(cfg.secret).toBe('hunter2'); // the original is untouched
    expect(JSON.stringify(r)).not.toContain('hunter2');
    expect(JSON.stringify(r)).not.toContain('p%40ss');
  });
  it('handles password-only, sentinel and password-free URLs', () => {
    const red = (url: string): string => redactedConfig({ ...defaultConfig(), redisUrl: url }).redisUrl;
    expect(red('redis://:pw@h:6379')).toBe('redis://:***@h:6379');
    expect(red('redis-sentinel://:pw@h1:26379,h2:26379/mymaster')).toBe('redis-sentinel://:***@h1:26379,h2:26379/mymaster');
    expect(red('rediss://h:6380?password=pw&db=1')).toBe('rediss://h:6380?password=***&db=1');
    expect(red('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(red('memory://')).toBe('memory://');
  });
  it('never echoes a secret in an error', () => {
    const msg = configError({ file: toml('secret = 12345\n'), env: {} });
    expect(msg).toMatch(/^secret: expected a string, got <redacted>/);
    expect(msg).not.toContain('12345');
  });
});

describe('renderConfigDocs', () => {
  it('renders one table row per setting', () => {
    const md = renderConfigDocs();
    expect(md).toContain('| Key | Env var | Default | Meaning |');
    expect(md).toContain('| `link.heartbeatTimeoutMs` | `XSERVER_LINK_HEARTBEAT_TIMEOUT_MS` | `3000` | A link with no traffic');
    expect(md).toContain('`4194304` (4 MiB)');
    expect(md).toContain('| `types` | `XSERVER_TYPES` | `lobby=4,match=5` |');
    expect(md).toContain('One of: `random`, `round-robin`, `least-loaded`.');
    const rows = md.split('\n').filter((l) => l.startsWith('| `'));
    expect(rows).toHaveLength(defaultConfigKeys());
  });
  it('lists the rules between settings', () => {
    const md = renderConfigDocs();
    expect(md).toContain('## Rules between settings');
    expect(md).toContain('- `mgr.leaseRefreshMs` is at most half of `mgr.leaseTtlMs`: ');
    expect(md).toContain('- `gateway.maxFrame` is at most `link.maxFrame` - 1024: ');
  });
  it('is what docs/configuration.md holds (regenerate with npm run gen:config-docs)', () => {
    const file = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
    expect(file).toBe(renderConfigDocs());
  });
});

function defaultConfigKeys(): number {
  return settingsWith().length;
}

// Checked by `npm run typecheck` (tsc over test/): XConfig is derived from the settings table.
describe('XConfig', () => {
  it('has the type of every setting, nested by its dotted key', () => {
    expectTypeOf<XConfig['cluster']>().toEqualTypeOf<string>();
    expectTypeOf<XConfig['link']['maxFrame']>().toEqualTypeOf<number>();
    expectTypeOf<XConfig['login']['autoRegister']>().toEqualTypeOf<boolean>();
    expectTypeOf<XConfig['node']['selection']>().toEqualTypeOf<'random' | 'round-robin' | 'least-loaded'>();
    expectTypeOf<XConfig['log']['level']>().toEqualTypeOf<'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent'>();
    expectTypeOf<XConfig['types']>().toEqualTypeOf<Record<string, number>>();
    expectTypeOf(defaultConfig()).toEqualTypeOf<XConfig>();
  });

  it('has no index signature: a misspelt section or key does not compile', () => {
    expectTypeOf<string extends keyof XConfig ? true : false>().toEqualTypeOf<false>();
    const misspelt = (cfg: XConfig): unknown[] => [
      // @ts-expect-error gatway is not a section
      cfg.gatway.port,
      // @ts-expect-error node has port, not prot
      cfg.node.prot,
      // @ts-expect-error a section is not a setting
      cfg.link satisfies number,
    ];
    expect(typeof misspelt).toBe('function');
  });
});
