/**
 * Loads the configuration from four layers: CLI overrides > XSERVER_* env vars > TOML file >
 * defaults. Everything is driven by a list of Setting rows (SETTINGS plus any `extraSettings` a
 * role contributes), so a new setting automatically gets a default, an env var, a TOML key,
 * validation and a docs row.
 *
 * All value errors of all layers are collected and reported at once (one XError 'CONFIG'), each
 * line naming the key and where the bad value came from, so an operator fixes everything in one go.
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { XError } from '../errors.js';
import { SYSTEM_CMD_BASE } from '../protocol/commands.js';
import {
  FIRST_SERVICE_TYPE,
  MAX_TYPE_NUMBER,
  SETTINGS,
  envName,
  getPath,
  parseStatefulTypes,
  setPath,
  type IntSettingKey,
  type Setting,
  type XConfig,
} from './schema.js';
import { advertisedFor, expandEnv, parseHostPort } from './addresses.js';
import { LISTEN_KEYS, securityProblems, type ListenKey } from './security.js';

export type ValueSource =
  | { kind: 'default' }
  | { kind: 'file'; path: string }
  | { kind: 'env'; name: string }
  | { kind: 'cli' }
  /** An empty advertised address filled in from the bind address it advertises (config/addresses.ts). */
  | { kind: 'derived'; from: string };

export interface LoadOptions {
  /** TOML file; when absent, env XSERVER_CONFIG names it (if set). */
  file?: string;
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Dotted keys from CLI flags / --set. Strings are parsed like env values; undefined is ignored. */
  overrides?: Record<string, unknown>;
  /** Settings contributed by roles (gateway, login, ...), on top of SETTINGS. */
  extraSettings?: readonly Setting[];
  /** The host's interfaces an empty advertised address is derived from; defaults to os.networkInterfaces(). */
  interfaces?: NodeJS.Dict<NetworkInterfaceInfo[]>;
}

export interface ResolvedConfig {
  config: XConfig;
  /** SETTINGS + extraSettings: the list the config was validated against. */
  settings: readonly Setting[];
  /** Where the effective value of every setting key came from. */
  sources: Readonly<Record<string, ValueSource>>;
  /** Absolute path of the TOML file read, if any. */
  file: string | undefined;
  /** Non-fatal findings, e.g. an XSERVER_* env var that matches no setting. */
  warnings: string[];
}

export const CONFIG_FILE_ENV = 'XSERVER_CONFIG';

/** Type names that would be ambiguous with the fixed role numbers 0-3. */
const RESERVED_TYPE_NAMES = ['client', 'mgr', 'login', 'gateway'];

// ---------------------------------------------------------------------------------------------
// Settings lookup

/** SETTINGS plus role-specific settings; a duplicate key is a programming error. */
export function settingsWith(extra: readonly Setting[] = []): readonly Setting[] {
  if (extra.length === 0) return SETTINGS;
  const seen = new Set(SETTINGS.map((s) => s.key));
  for (const s of extra) {
    if (seen.has(s.key)) throw new XError('CONFIG', `setting ${s.key} is defined twice`);
    seen.add(s.key);
  }
  return [...SETTINGS, ...extra];
}

/** The defaults of the given settings as a config object (schema.defaultConfig() only knows SETTINGS). */
export function configDefaults(settings: readonly Setting[] = SETTINGS): XConfig {
  const out: Record<string, unknown> = {};
  for (const s of settings) setPath(out, s.key, structuredClone(s.default));
  return out as XConfig;
}

export function describeSource(src: ValueSource): string {
  switch (src.kind) {
    case 'default':
      return 'default';
    case 'file':
      return `file ${src.path}`;
    case 'env':
      return `env ${src.name}`;
    case 'cli':
      return 'command line';
    case 'derived':
      return `derived from ${src.from}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Loading

export function loadConfig(opts: LoadOptions = {}): XConfig {
  return resolveConfig(opts).config;
}

/** Like loadConfig, but also reports where each value came from (for `xserver config print`). */
export function resolveConfig(opts: LoadOptions = {}): ResolvedConfig {
  const env = opts.env ?? process.env;
  const settings = settingsWith(opts.extraSettings);
  const byKey = new Map(settings.map((s) => [s.key, s]));
  const config = configDefaults(settings) as Record<string, unknown>;
  const sources: Record<string, ValueSource> = {};
  for (const s of settings) sources[s.key] = { kind: 'default' };
  const problems: string[] = [];
  const warnings: string[] = [];

  const apply = (s: Setting, raw: unknown, textual: boolean, src: ValueSource): void => {
    // `${NAME}` references: the expanded text is parsed like any textual value.
    if (typeof raw === 'string' && raw.includes('${')) {
      const x = expandEnv(raw, env);
      if ('error' in x) return void problems.push(`${s.key}: ${x.error} (from ${describeSource(src)})`);
      if (x.value !== raw) [raw, textual] = [x.value, true];
    }
    const r = coerce(s, raw, textual);
    if ('error' in r) problems.push(`${s.key}: ${r.error} (from ${describeSource(src)})`);
    else {
      setPath(config, s.key, r.value);
      sources[s.key] = src;
    }
  };

  // 1. TOML file
  let file: string | undefined;
  const fileArg = opts.file ?? (env[CONFIG_FILE_ENV] || undefined);
  if (fileArg !== undefined) {
    file = resolvePath(fileArg);
    const via = opts.file !== undefined ? '' : ` (from env ${CONFIG_FILE_ENV})`;
    const table = readToml(file, via);
    const src: ValueSource = { kind: 'file', path: file };
    walkToml(
      table,
      '',
      settings,
      byKey,
      (s, v) => apply(s, v, false, src),
      (key, msg) => problems.push(`${key}: ${msg} (from ${describeSource(src)})`),
    );
  }

  // 2. env: an empty variable counts as unset, so `XSERVER_X=${X:-}` in scripts does no harm.
  const known = new Set<string>([CONFIG_FILE_ENV]);
  for (const s of settings) {
    const name = envName(s.key);
    known.add(name);
    const raw = env[name];
    if (raw !== undefined && raw !== '') apply(s, raw, true, { kind: 'env', name });
  }
  for (const name of Object.keys(env)) {
    if (!name.startsWith('XSERVER_') || known.has(name)) continue;
    const close = closeMatches(
      name,
      [...known].filter((n) => n !== CONFIG_FILE_ENV),
    );
    warnings.push(`env ${name} matches no setting` + (close.length ? `; did you mean ${close.join(', ')}?` : ''));
  }

  // 3. CLI overrides
  for (const [key, raw] of Object.entries(opts.overrides ?? {})) {
    if (raw === undefined) continue;
    const s = byKey.get(key);
    if (!s) problems.push(unknownKey(key, settings, 'command line'));
    else apply(s, raw, typeof raw === 'string', { kind: 'cli' });
  }

  throwIfAny(problems);
  // Cross-field checks only once every value is well-typed, so they never report noise.
  crossChecks(config, sources, byKey, problems, warnings);
  throwIfAny(problems);
  deriveAdvertised(config, sources, byKey, opts.interfaces ?? networkInterfaces(), warnings);
  return { config: config as XConfig, settings, sources, file, warnings };
}

function throwIfAny(problems: string[]): void {
  if (problems.length === 0) return;
  const msg = problems.length === 1 ? problems[0]! : `${problems.length} configuration errors:\n  ${problems.join('\n  ')}`;
  throw new XError('CONFIG', msg, { problems: [...problems] });
}

function readToml(file: string, via: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new XError('CONFIG', `cannot read config file ${file}${via}: ${(e as Error).message}`);
  }
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (e) {
    const where = e instanceof TomlError ? ` at line ${e.line}, column ${e.column}` : '';
    throw new XError('CONFIG', `config file ${file}: invalid TOML${where}: ${(e as Error).message.split('\n')[0]}`);
  }
}

/**
 * Maps nested TOML tables onto dotted setting keys. A table is descended only if some setting
 * lives under it; map-typed settings take their table whole. Leaves matching nothing are reported
 * individually so a misspelt section still gets per-key suggestions.
 */
function walkToml(
  table: Record<string, unknown>,
  prefix: string,
  settings: readonly Setting[],
  byKey: ReadonlyMap<string, Setting>,
  onValue: (s: Setting, v: unknown) => void,
  onProblem: (key: string, msg: string) => void,
): void {
  for (const [k, v] of Object.entries(table)) {
    const key = prefix ? `${prefix}.${k}` : k;
    const s = byKey.get(key);
    const isSection = settings.some((x) => x.key.startsWith(key + '.'));
    if (s) onValue(s, v);
    else if (isSection && isPlainObject(v)) walkToml(v, key, settings, byKey, onValue, onProblem);
    else if (isSection) onProblem(key, `is a section ([${key}]), expected a table, got ${show(key, v)}`);
    else if (isPlainObject(v) && Object.keys(v).length > 0) walkToml(v, key, settings, byKey, onValue, onProblem);
    else onProblem(key, unknownKeyText(key, settings));
  }
}

function unknownKey(key: string, settings: readonly Setting[], where: string): string {
  return `${key}: ${unknownKeyText(key, settings)} (from ${where})`;
}

function unknownKeyText(key: string, settings: readonly Setting[]): string {
  const close = closeMatches(
    key,
    settings.map((s) => s.key),
  );
  return close.length ? `unknown setting; did you mean ${close.join(', ')}?` : 'unknown setting (see docs/configuration.md for all settings)';
}

// ---------------------------------------------------------------------------------------------
// Values

type Coerced = { value: unknown } | { error: string };

/**
 * Checks one value against its setting. `textual` values (env, --set) are parsed from strings;
 * others (TOML, typed CLI flags) must already have the right JS type: a quoted number in TOML is
 * a mistake worth reporting rather than guessing.
 */
function coerce(s: Setting, raw: unknown, textual: boolean): Coerced {
  const bad = (expected: string): Coerced => ({ error: `expected ${expected}, got ${show(s.key, raw)}` });
  switch (s.type) {
    case 'string':
      return typeof raw === 'string' ? { value: raw } : bad('a string');
    case 'int': {
      const n = textual && typeof raw === 'string' ? parseIntText(raw) : raw;
      const ok = typeof n === 'number' && Number.isSafeInteger(n) && (s.min === undefined || n >= s.min) && (s.max === undefined || n <= s.max);
      return ok ? { value: n } : bad(intRange(s));
    }
    case 'bool': {
      if (typeof raw === 'boolean') return { value: raw };
      if (textual && typeof raw === 'string') {
        const t = raw.trim().toLowerCase();
        if (t === 'true' || t === '1') return { value: true };
        if (t === 'false' || t === '0') return { value: false };
      }
      return bad(textual ? 'true, false, 1 or 0' : 'true or false');
    }
    case 'enum': {
      const values = s.values ?? [];
      const t = typeof raw === 'string' && textual ? raw.trim() : raw;
      return typeof t === 'string' && values.includes(t) ? { value: t } : bad(`one of ${values.join(', ')}`);
    }
    case 'map':
      return textual && typeof raw === 'string' ? parseMapText(s, raw) : checkMap(s, raw);
  }
}

function parseIntText(raw: string): number | undefined {
  const t = raw.trim();
  return /^[+-]?\d+$/.test(t) ? Number(t) : undefined;
}

function intRange(s: Setting): string {
  if (s.min !== undefined && s.max !== undefined) return `an integer between ${s.min} and ${s.max}`;
  if (s.min !== undefined) return `an integer >= ${s.min}`;
  if (s.max !== undefined) return `an integer <= ${s.max}`;
  return 'an integer';
}

/** Maps are name -> integer (e.g. types); the env/--set form is `lobby=4,match=5`. */
function parseMapText(s: Setting, raw: string): Coerced {
  const out: Record<string, number> = {};
  for (const part of raw.split(',')) {
    if (part.trim() === '') continue; // tolerate a trailing comma
    const eq = part.indexOf('=');
    const name = eq < 0 ? '' : part.slice(0, eq).trim();
    const n = eq < 0 ? undefined : parseIntText(part.slice(eq + 1));
    if (name === '' || n === undefined || !Number.isSafeInteger(n)) {
      return { error: `expected name=integer entries like lobby=4,match=5, got ${show(s.key, part.trim())}` };
    }
    if (Object.hasOwn(out, name)) return { error: `name "${name}" appears twice in ${show(s.key, raw)}` };
    out[name] = n;
  }
  return { value: out };
}

function checkMap(s: Setting, raw: unknown): Coerced {
  if (!isPlainObject(raw)) return { error: `expected a table of name = integer, got ${show(s.key, raw)}` };
  for (const [name, v] of Object.entries(raw)) {
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
      return { error: `expected an integer for "${name}", got ${show(s.key, v)}` };
    }
  }
  return { value: { ...raw } };
}

// ---------------------------------------------------------------------------------------------
// Cross-field checks

/**
 * How two int settings must relate: `a` less than `b`, at most `b`, or at most half of `b` (a
 * period "well under" the timeout it feeds: one late tick must not be fatal).
 */
export interface OrderRule {
  a: IntSettingKey;
  rel: 'lt' | 'le' | 'half';
  b: IntSettingKey;
  /** How much of `b` must stay free beyond `a` (bytes of envelope around a payload). */
  headroom?: number;
  /** Why, shown in the error; the plain orderings (min <= max) need none. */
  why?: string;
  /**
   * Only a warning: the rule is about a role (the gateway) that the loading process may not run,
   * so refusing to start would be wrong there.
   */
  warnOnly?: boolean;
}

/** Room a relay envelope (account name, cmd, request id, generation) needs around a client frame. */
const RELAY_ENVELOPE_BYTES = 1024;

/** Every ordering between two settings of the table; a rule whose keys are not loaded is skipped. */
export const ORDER_RULES: readonly OrderRule[] = [
  {
    a: 'mgr.leaseRefreshMs',
    rel: 'half',
    b: 'mgr.leaseTtlMs',
    why: 'a refresh that comes one interval late must still land before the lease expires',
  },
  {
    a: 'mgr.standbyPollMs',
    rel: 'lt',
    b: 'mgr.leaseTtlMs',
    why: 'a standby polling less often than the lease lives adds a whole poll to every takeover',
  },
  { a: 'link.heartbeatIntervalMs', rel: 'half', b: 'link.heartbeatTimeoutMs', why: 'one late ping must not close a healthy link' },
  {
    a: 'gateway.heartbeatMs',
    rel: 'half',
    b: 'gateway.idleTimeoutMs',
    why: 'a client that pings one interval late must not be disconnected as idle',
  },
  {
    a: 'storeWaitReplicasMs',
    rel: 'lt',
    b: 'login.storeTimeoutMs',
    why: 'a login that registers an account would be refused while it waits for the replica',
  },
  { a: 'node.discoveryMinBackoffMs', rel: 'le', b: 'node.discoveryMaxBackoffMs' },
  { a: 'node.dialMinBackoffMs', rel: 'le', b: 'node.dialMaxBackoffMs' },
  { a: 'link.maxFrame', rel: 'le', b: 'link.maxOutboundBytes', why: 'a frame of link.maxFrame bytes could never be queued for sending' },
  {
    a: 'link.maxFrame',
    rel: 'le',
    b: 'node.pendingMaxBytes',
    why: 'a frame of link.maxFrame bytes could never be buffered while its link reconnects',
  },
  {
    a: 'gateway.maxFrame',
    rel: 'le',
    b: 'link.maxFrame',
    headroom: RELAY_ENVELOPE_BYTES,
    warnOnly: true,
    why: `a client frame travels to its node inside a relay frame on an intranet link, which needs ${RELAY_ENVELOPE_BYTES} bytes besides`,
  },
  {
    a: 'gateway.resumeBufferMaxBytes',
    rel: 'le',
    b: 'gateway.maxOutboundBytes',
    why: 'replaying the buffer to a client that comes back would disconnect it as SLOW_CONSUMER',
  },
  { a: 'login.headersTimeoutMs', rel: 'le', b: 'login.requestTimeoutMs', why: 'the headers are part of the request' },
  {
    a: 'mgr.advertiseCheckTimeoutMs',
    rel: 'lt',
    b: 'node.registerTimeoutMs',
    warnOnly: true,
    why: "a member would give up on its REGISTER before the mgr's dial-back could answer it",
  },
];

/** Port settings of one process that must differ unless 0 (any free port). */
const DISTINCT_PORTS: readonly (readonly IntSettingKey[])[] = [['gateway.tcpPort', 'gateway.wsPort']];

/**
 * The rules that involve more than one value, in one place: run once every value is well-typed,
 * so they never report noise. Each problem names the keys, their values and where they came from.
 */
function crossChecks(
  cfg: Record<string, unknown>,
  sources: Record<string, ValueSource>,
  byKey: ReadonlyMap<string, Setting>,
  problems: string[],
  warnings: string[],
): void {
  const at = (key: string): string => {
    const src = sources[key];
    return src ? `${show(key, getPath(cfg, key))} (${src.kind === 'default' ? 'default' : 'from ' + describeSource(src)})` : '';
  };
  const both = (a: string, b: string): string => `${a} is ${at(a)}, ${b} is ${at(b)}`;

  for (const r of ORDER_RULES) {
    if (!byKey.has(r.a) || !byKey.has(r.b)) continue;
    const x = getPath(cfg, r.a) as number;
    const y = getPath(cfg, r.b) as number;
    const why = r.why ? ` (${r.why})` : '';
    const report = (text: string): void => void (r.warnOnly ? warnings : problems).push(`${text}; ${both(r.a, r.b)}`);
    if (r.rel === 'le' && r.headroom && x + r.headroom > y) report(`${r.a} should be at most ${r.b} - ${r.headroom}${why}`);
    else if (r.rel === 'le' && x > y) report(`${r.a} must be at most ${r.b}${why}`);
    // Not even less than: say so plainly before asking for half.
    else if (r.rel !== 'le' && x >= y) report(`${r.a} must be less than ${r.b}${r.rel === 'lt' ? why : ''}`);
    else if (r.rel === 'half' && x * 2 > y) report(`${r.a} must be at most half of ${r.b}${why}`);
  }

  for (const keys of DISTINCT_PORTS) {
    const owner = new Map<number, string>();
    for (const key of keys.filter((k) => byKey.has(k))) {
      const port = getPath(cfg, key) as number;
      const prev = owner.get(port);
      if (port !== 0 && prev !== undefined) problems.push(`${prev} and ${key} must differ (or be 0); ${both(prev, key)}`);
      else owner.set(port, key);
    }
  }

  const beforeTypes = problems.length;
  if (byKey.has('types')) {
    const types = getPath(cfg, 'types') as Record<string, number>;
    const owner = new Map<number, string>();
    for (const [name, n] of Object.entries(types)) {
      if (name.trim() === '') problems.push(`types: type names must not be empty; types is ${at('types')}`);
      else if (RESERVED_TYPE_NAMES.includes(name)) {
        problems.push(`types.${name}: "${name}" is reserved (${RESERVED_TYPE_NAMES.join(', ')}); types is ${at('types')}`);
      }
      if (n < FIRST_SERVICE_TYPE || n > MAX_TYPE_NUMBER) {
        problems.push(
          `types.${name}: expected a number >= ${FIRST_SERVICE_TYPE} (0-3 are reserved) and <= ${MAX_TYPE_NUMBER}, got ${n}; types is ${at('types')}`,
        );
      }
      const prev = owner.get(n);
      if (prev !== undefined) problems.push(`types: ${prev} and ${name} both use number ${n}; types is ${at('types')}`);
      else owner.set(n, name);
    }
  }
  // Against a valid types map only: a bad map is reported above, once.
  if (byKey.has('statefulTypes') && byKey.has('types') && problems.length === beforeTypes) {
    const r = parseStatefulTypes(cfg as Pick<XConfig, 'statefulTypes' | 'types'>);
    for (const e of r.errors ?? []) problems.push(`statefulTypes: ${e}; statefulTypes is ${at('statefulTypes')}, types is ${at('types')}`);
  }
  // Clients address type t with commands t*cmdOffset .. (t+1)*cmdOffset-1, all below the system
  // commands. Only a warning: a type no client talks to may have any number.
  if (byKey.has('types') && byKey.has('gateway.cmdOffset') && problems.length === beforeTypes) {
    const offset = getPath(cfg, 'gateway.cmdOffset') as number;
    for (const [name, n] of Object.entries(getPath(cfg, 'types') as Record<string, number>)) {
      if ((n + 1) * offset <= SYSTEM_CMD_BASE) continue;
      warnings.push(
        `types.${name}: clients cannot reach type ${n}: its commands (from ${n * offset}) would reach the system commands ` +
          `(from ${SYSTEM_CMD_BASE}); lower the number or gateway.cmdOffset; gateway.cmdOffset is ${at('gateway.cmdOffset')}, types is ${at('types')}`,
      );
    }
  }
  // The cluster name sits inside a Redis hash tag (xs:{cluster}:...); braces would break the tag.
  if (byKey.has('cluster') && !/^[^\s{}]+$/.test(cfg.cluster as string)) {
    problems.push(`cluster: expected a non-empty name without spaces or braces, got ${at('cluster')}`);
  }
  if (byKey.has('secret') && cfg.secret === '') problems.push(`secret: must not be empty; secret is ${at('secret')}`);
  const tlsOn = (['link.tls', 'gateway.tls', 'login.tls'] as const).filter((k) => byKey.has(k) && getPath(cfg, k) === true);
  if (tlsOn.length > 0) {
    for (const k of ['tls.cert', 'tls.key'] as const) {
      if (byKey.has(k) && getPath(cfg, k) === '') problems.push(`${k}: needed by ${tlsOn.join(', ')}; ${k} is empty`);
    }
    if (tlsOn.includes('link.tls') && byKey.has('tls.ca') && getPath(cfg, 'tls.ca') === '') {
      problems.push('tls.ca: link.tls verifies every peer certificate against the cluster CA; tls.ca is empty');
    }
  }
  if (byKey.has('secret') && LISTEN_KEYS.every((k) => byKey.has(k)) && byKey.has('login.autoRegister')) {
    const hosts = Object.fromEntries(LISTEN_KEYS.map((k) => [k, getPath(cfg, k) as string])) as Record<ListenKey, string>;
    const flags = { autoRegister: getPath(cfg, 'login.autoRegister') as boolean, playground: getPath(cfg, 'login.playground') === true };
    problems.push(...securityProblems({ secret: cfg.secret as string, hosts, ...flags }, at));
  }
  if (byKey.has('gateway.publicUrl')) {
    const url = getPath(cfg, 'gateway.publicUrl') as string;
    if (url !== '' && !isWebSocketUrl(url)) problems.push(`gateway.publicUrl: expected a ws:// or wss:// URL, got ${at('gateway.publicUrl')}`);
  }
  if (byKey.has('gateway.publicTcp')) {
    const hp = getPath(cfg, 'gateway.publicTcp') as string;
    if (hp !== '' && !parseHostPort(hp)) problems.push(`gateway.publicTcp: expected host:port, got ${at('gateway.publicTcp')}`);
  }
}

function isWebSocketUrl(text: string): boolean {
  try {
    const u = new URL(text);
    return (u.protocol === 'ws:' || u.protocol === 'wss:') && u.hostname !== '';
  } catch {
    return false;
  }
}

/** Advertised addresses left empty, and the bind address each is derived from. */
const ADVERTISED_FROM: readonly (readonly [string, string])[] = [
  ['innerIp', 'bindHost'],
  ['outerIp', 'gateway.host'],
];

/** Fills in empty advertised addresses from what their listeners bind (config/addresses.ts). */
function deriveAdvertised(
  cfg: Record<string, unknown>,
  sources: Record<string, ValueSource>,
  byKey: ReadonlyMap<string, Setting>,
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>,
  warnings: string[],
): void {
  for (const [key, from] of ADVERTISED_FROM) {
    if (!byKey.has(key) || !byKey.has(from) || getPath(cfg, key) !== '') continue;
    const a = advertisedFor(getPath(cfg, from) as string, interfaces);
    setPath(cfg, key, a.address);
    sources[key] = { kind: 'derived', from };
    if (a.warning) warnings.push(`${key}: ${a.warning}; set ${key} to the address other hosts reach this one at`);
  }
}

// ---------------------------------------------------------------------------------------------
// Presentation: --set, config print, redaction

/**
 * Commander option parser for a repeatable `--set key=value`:
 * `.option('--set <key=value>', 'set any setting', parseSetOption, {})`.
 * Only the shape is checked here; loadConfig validates key and value like any other source.
 */
export function parseSetOption(arg: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = arg.indexOf('=');
  const key = eq < 0 ? '' : arg.slice(0, eq).trim();
  if (key === '') throw new XError('CONFIG', `--set expects key=value (e.g. link.heartbeatTimeoutMs=5000), got "${arg}"`);
  return { ...previous, [key]: arg.slice(eq + 1) };
}

export interface ConfigSourceRow {
  key: string;
  env: string;
  /** Redacted for secrets and URL passwords. */
  value: unknown;
  source: string;
}

/** One row per setting: effective (redacted) value and where it came from. */
export function configSources(resolved: ResolvedConfig): ConfigSourceRow[] {
  const shown = redactedConfig(resolved.config, resolved.settings) as Record<string, unknown>;
  return resolved.settings.map((s) => ({
    key: s.key,
    env: envName(s.key),
    value: getPath(shown, s.key),
    source: describeSource(resolved.sources[s.key] ?? { kind: 'default' }),
  }));
}

const REDACTED = '***';

/** Key names whose values must never be printed. Name-based, so role settings are covered too. */
function isSecretKey(key: string): boolean {
  return /(secret|password|passwd|token)$/i.test(key.split('.').pop()!);
}

/** redis://user:pass@host -> redis://user:***@host; also ?password=... query parameters. */
export function redactUrl(url: string): string {
  return url
    .replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/]*)@/i, (_m, scheme: string, auth: string) => {
      const colon = auth.indexOf(':');
      // Without a colon the whole userinfo may be a password (redis://pass@host in some clients).
      return `${scheme}${colon < 0 ? REDACTED : auth.slice(0, colon + 1) + REDACTED}@`;
    })
    .replace(/([?&](?:password|pass)=)[^&]*/gi, `$1${REDACTED}`);
}

/** A copy of the config safe to print or serve on /api: secrets masked, URL passwords masked. */
export function redactedConfig(cfg: XConfig, settings: readonly Setting[] = SETTINGS): XConfig {
  const out = structuredClone(cfg) as Record<string, unknown>;
  for (const s of settings) {
    const v = getPath(out, s.key);
    if (typeof v !== 'string' || v === '') continue;
    if (isSecretKey(s.key)) setPath(out, s.key, REDACTED);
    else if (/url$/i.test(s.key)) setPath(out, s.key, redactUrl(v));
  }
  return out as XConfig;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** A value quoted in an error longer than this is cut: one error stays one readable line. */
const MAX_SHOWN_CHARS = 80;

/** Quotes a bad value for an error message, never echoing a secret. */
function show(key: string, v: unknown): string {
  if (isSecretKey(key)) return '<redacted>';
  let s: string;
  try {
    s = typeof v === 'string' ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));
  } catch {
    s = String(v);
  }
  if (/url$/i.test(key) && typeof v === 'string') s = JSON.stringify(redactUrl(v));
  return s.length > MAX_SHOWN_CHARS ? s.slice(0, MAX_SHOWN_CHARS - 3) + '...' : s;
}

/** Suggestions in a "did you mean": more than a few is a list, not a hint. */
const MAX_SUGGESTIONS = 3;

/** Up to MAX_SUGGESTIONS candidates close to `word`: small edit distance, or the same last path segment. */
function closeMatches(word: string, candidates: readonly string[]): string[] {
  const w = word.toLowerCase();
  const last = (k: string): string => k.toLowerCase().split('.').pop()!;
  const limit = Math.max(2, Math.floor(w.length / 3));
  const scored = candidates
    .map((c) => {
      const d = editDistance(w, c.toLowerCase());
      const segment = editDistance(last(w), last(c));
      return { c, d: Math.min(d, segment <= Math.max(1, Math.floor(last(c).length / 4)) ? segment + 0.5 : Infinity) };
    })
    .filter((x) => x.d <= limit)
    .sort((a, b) => a.d - b.d || a.c.localeCompare(b.c));
  // Only near-ties of the best match: a clear winner is shown alone.
  const best = scored[0]?.d ?? 0;
  return scored
    .filter((x) => x.d <= best + 1)
    .slice(0, MAX_SUGGESTIONS)
    .map((x) => x.c);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
