/**
 * The deployment artefacts (Dockerfile, docker-compose.yml, deploy/k8s/, docs/deployment.md)
 * checked against the product they deploy. No container engine runs here, so this checks what can
 * be checked without one: every file parses; every xserver command and flag they run exists in
 * the CLI (the commander program itself); every XSERVER_* variable is a setting, and each
 * container's environment loads as a valid configuration (resolveConfig, with the security rules);
 * every probe path is served by a real admin server; ports agree between the settings, the
 * containers, the Services and the probes; grace periods outlast the drain.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command, Option } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { startAdminServer, type AdminServer } from '../src/admin/http.js';
import { ACCOUNT_PASSWORD_ENV } from '../src/cli/account.js';
import { buildProgram } from '../src/cli/main.js';
import { clusterPlan } from '../src/cli/up.js';
import { CONFIG_FILE_ENV, resolveConfig } from '../src/config/load.js';
import { SETTINGS, envName, type XConfig } from '../src/config/schema.js';
import { createLogger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const read = (rel: string): string => readFileSync(path.join(ROOT, rel), 'utf8');
const K8S_DIR = 'deploy/k8s';

// ---------------------------------------------------------------- the product's own tables

/** XSERVER_* variables that are read by the CLI but are not settings. */
const NON_SETTING_ENV = new Set([CONFIG_FILE_ENV, ACCOUNT_PASSWORD_ENV]);
const SETTING_BY_ENV = new Map(SETTINGS.map((s) => [envName(s.key), s]));
const SETTING_KEYS = new Set(SETTINGS.map((s) => s.key));
const program = buildProgram();

/** Problems with one `xserver ...` argument list (everything after the program name). */
function cliProblems(args: readonly string[], { positionals = true } = {}): { problems: string[]; set: Record<string, string> } {
  const problems: string[] = [];
  const set: Record<string, string> = {};
  let cmd: Command = program;
  let i = 0;
  for (; i < args.length; i++) {
    const sub = cmd.commands.find((c) => c.name() === args[i]);
    if (!sub) break;
    cmd = sub;
  }
  const where = `xserver ${args.join(' ')}`;
  if (cmd === program) return { problems: [`${where}: no such command`], set };
  if (cmd.commands.length > 0) problems.push(`${where}: "${cmd.name()}" needs a subcommand (${cmd.commands.map((c) => c.name()).join(', ')})`);
  let positional = 0;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('-')) {
      positional++;
      continue;
    }
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const opt: Option | undefined = cmd.options.find((o) => o.long === flag || o.short === flag);
    if (!opt) {
      problems.push(`${where}: unknown option ${flag} (known: ${cmd.options.map((o) => o.long).join(', ')})`);
      continue;
    }
    const takesValue = opt.required || opt.optional;
    const value = inline ?? (takesValue ? args[++i] : undefined);
    if (takesValue && value === undefined) problems.push(`${where}: ${flag} needs a value`);
    if (flag === '--set' && value !== undefined) {
      const key = value.slice(0, value.indexOf('='));
      if (!value.includes('=') || !SETTING_KEYS.has(key)) problems.push(`${where}: --set ${value}: no setting "${key}"`);
      else set[key] = value.slice(value.indexOf('=') + 1);
    }
  }
  if (positionals && positional !== cmd.registeredArguments.length) {
    problems.push(`${where}: ${positional} argument(s), "${cmd.name()}" takes ${cmd.registeredArguments.length}`);
  }
  return { problems, set };
}

/** XSERVER_* names that are neither a setting nor one of the CLI's own variables. */
function unknownEnv(env: Record<string, string>): string[] {
  return Object.keys(env).filter((k) => k.startsWith('XSERVER_') && !SETTING_BY_ENV.has(k) && !NON_SETTING_ENV.has(k));
}

type Role = 'mgr' | 'login' | 'gateway' | 'node';

/** The ports a process of this role listens on, from its configuration. */
function listeningPorts(role: Role, c: XConfig): Record<string, number> {
  const ports: Record<string, number> = { adminPort: c.adminPort };
  if (role === 'mgr') ports['mgr.port'] = c.mgr.port;
  else ports['node.port'] = c.node.port;
  if (role === 'login') ports['login.port'] = c.login.port;
  if (role === 'gateway') Object.assign(ports, { 'gateway.tcpPort': c.gateway.tcpPort, 'gateway.wsPort': c.gateway.wsPort });
  return ports;
}

/** Loads a container's configuration the way the process would; throws the CLI's CONFIG error. */
function loadContainerConfig(env: Record<string, string>, set: Record<string, string> = {}) {
  const clean = Object.fromEntries(Object.entries(env).filter(([k]) => k !== ACCOUNT_PASSWORD_ENV));
  return resolveConfig({ env: clean, overrides: set });
}

/** `${NAME}` / `${NAME:-default}` references in a value that xserver expands itself. */
function envRefs(value: string): string[] {
  return [...value.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?][^}]*)?\}/g)].map((m) => m[1]!);
}

const freshSecret = (): string => randomBytes(32).toString('base64');

// Probe paths are checked against a real admin server: what it answers 200 is served.
let admin: AdminServer;
beforeAll(async () => {
  admin = await startAdminServer({
    host: '127.0.0.1',
    port: 0,
    logger: createLogger({ level: 'silent', pretty: 'false', name: 'deployment-test' }),
    metrics: new Metrics(),
    ready: () => true,
  });
});
afterAll(() => admin.close());
async function served(probePath: string): Promise<number> {
  return (await fetch(`http://127.0.0.1:${admin.port}${probePath}`)).status;
}

// ---------------------------------------------------------------- Dockerfile

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  name: string;
  from: string;
  body: Instruction[];
}

function parseDockerfile(text: string): { stages: Stage[]; preamble: Instruction[] } {
  const logical: string[] = [];
  let cur = '';
  for (const line of text.split('\n')) {
    if (/^\s*#/.test(line) && cur === '') continue;
    if (/^\s*#/.test(line)) continue; // a comment inside a continued instruction
    if (line.trim() === '' && cur === '') continue;
    if (line.endsWith('\\')) cur += line.slice(0, -1) + ' ';
    else {
      logical.push((cur + line).trim());
      cur = '';
    }
  }
  if (cur.trim()) logical.push(cur.trim());
  const stages: Stage[] = [];
  const preamble: Instruction[] = [];
  for (const l of logical) {
    const m = /^(\S+)\s+(.*)$/s.exec(l);
    if (!m) throw new Error(`Dockerfile: cannot parse "${l}"`);
    const ins = { op: m[1]!.toUpperCase(), args: m[2]!.trim() };
    if (ins.op === 'FROM') {
      const f = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!f) throw new Error(`Dockerfile: cannot parse FROM ${ins.args}`);
      stages.push({ from: f[1]!, name: f[2] ?? String(stages.length), body: [] });
    } else if (stages.length === 0) preamble.push(ins);
    else stages[stages.length - 1]!.body.push(ins);
  }
  return { stages, preamble };
}

function dockerEnv(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const ins of stage.body.filter((i) => i.op === 'ENV')) {
    for (const pair of ins.args.split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new Error(`Dockerfile: ENV ${ins.args}: use KEY=value`);
      env[pair.slice(0, eq)] = pair.slice(eq + 1).replace(/^"(.*)"$/, '$1');
    }
  }
  return env;
}

describe('Dockerfile', () => {
  const { stages } = parseDockerfile(read('Dockerfile'));
  const build = stages.find((s) => s.name === 'build');
  const runtime = stages[stages.length - 1]!;
  const runs = (s: Stage): string[] => s.body.filter((i) => i.op === 'RUN').map((i) => i.args);
  const imageEnv = dockerEnv(runtime);

  it('builds in a stage with the dev dependencies and runs in a last stage with production ones only', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(build, 'a stage named "build"').toBeDefined();
    expect(runtime.name).toBe('runtime');
    expect(runs(build!).some((r) => /\bnpm ci\b/.test(r) && !/--omit=dev/.test(r))).toBe(true);
    expect(runs(build!).some((r) => /\bnpm run (-s )?build\b/.test(r))).toBe(true);
    expect(runs(runtime).some((r) => /\bnpm ci\b.*--omit=dev/.test(r))).toBe(true);
    const copies = runtime.body.filter((i) => i.op === 'COPY').map((i) => i.args);
    expect(copies).toContain('--from=build /app/dist ./dist');
    expect(copies.filter((c) => /^src\b|\ssrc\s/.test(c))).toEqual([]);
    // What the runtime copies from the context exists, and .dockerignore does not drop it.
    const ignored = new Set(
      read('.dockerignore')
        .split('\n')
        .map((l) => l.trim().replace(/\/$/, ''))
        .filter((l) => l && !l.startsWith('#')),
    );
    for (const stage of stages) {
      for (const c of stage.body.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'))) {
        for (const src of c.args.split(/\s+/).slice(0, -1)) {
          expect(existsSync(path.join(ROOT, src)), `COPY ${src}`).toBe(true);
          expect(ignored.has(src), `.dockerignore drops ${src}`).toBe(false);
        }
      }
    }
  });

  it('holds every /app path the compose file and the manifests run (entries, the chat page)', () => {
    const copied = new Set(
      runtime.body.filter((i) => i.op === 'COPY').map((i) => i.args.split(/\s+/).at(-1)!.replace(/^\.\//, '/app/').replace(/\/$/, '')),
    );
    const used = [...composeServices(), ...k8sContainers()].flatMap((c) =>
      [...JSON.stringify([c.args, c.env]).matchAll(/\/app\/([A-Za-z0-9_.-]+)/g)].map((m) => `/app/${m[1]!}`),
    );
    expect(used.length).toBeGreaterThan(0);
    expect([...new Set(used)].filter((u) => !copied.has(u))).toEqual([]);
  });

  it('runs as a numeric non-root user, under tini, with the xserver CLI as entrypoint', () => {
    const user = runtime.body.filter((i) => i.op === 'USER').at(-1)?.args;
    expect(user, 'USER uid:gid (numeric, so runAsNonRoot can check it)').toMatch(/^[1-9]\d*(:\d+)?$/);
    expect(runs(runtime).some((r) => /apt-get install .*\btini\b/.test(r))).toBe(true);
    const entry = runtime.body.filter((i) => i.op === 'ENTRYPOINT').at(-1)?.args ?? '';
    const argv = JSON.parse(entry) as string[];
    expect(argv.slice(0, 2)).toEqual(['/usr/bin/tini', '--']);
    expect(argv.slice(2)).toEqual(['node', '/app/bin/xserver.js']);
    expect(existsSync(path.join(ROOT, 'bin/xserver.js'))).toBe(true);
    const workdir = runtime.body.filter((i) => i.op === 'WORKDIR').at(-1)?.args;
    expect(workdir).toBe('/app');
  });

  it('sets only real settings, with valid values; EXPOSEs the ports the deployments use; health-checks a served path on adminPort', async () => {
    expect(unknownEnv(imageEnv)).toEqual([]);
    const { config } = loadContainerConfig(imageEnv);
    const exposed = runtime.body
      .filter((i) => i.op === 'EXPOSE')
      .flatMap((i) => i.args.split(/\s+/))
      .map(Number);
    expect(exposed).toContain(config.adminPort);
    // Every port the compose file and the manifests listen on is exposed.
    const used = new Set([...composeServices().flatMap((s) => Object.values(s.ports)), ...k8sContainers().flatMap((c) => Object.values(c.ports))]);
    expect([...used].filter((p) => !exposed.includes(p))).toEqual([]);
    const hc = runtime.body.find((i) => i.op === 'HEALTHCHECK');
    if (hc) {
      const url = new URL(/https?:\/\/[^'"\s)]+/.exec(hc.args)![0]);
      expect(Number(url.port)).toBe(config.adminPort);
      expect(await served(url.pathname)).toBe(200);
    }
  });
});

// ---------------------------------------------------------------- docker-compose.yml

/** Compose's own interpolation of the file ($$, ${V}, ${V:-d}, ${V-d}, ${V:?err}, ${V?err}). */
function composeInterpolate(value: string, vars: Record<string, string | undefined>): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}/g,
    (m, name?: string, colon?: string, op?: string, arg?: string) => {
      if (m === '$$') return '$';
      const v = vars[name!];
      const missing = v === undefined || (colon === ':' && v === '');
      if (op === '?' && missing) throw new Error(`required variable ${name} is missing: ${arg}`);
      if (op === '-' && missing) return arg!;
      return v ?? '';
    },
  );
}

function deepInterpolate(node: unknown, vars: Record<string, string | undefined>): unknown {
  if (typeof node === 'string') return composeInterpolate(node, vars);
  if (Array.isArray(node)) return node.map((n) => deepInterpolate(n, vars));
  if (node && typeof node === 'object') return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, deepInterpolate(v, vars)]));
  return node;
}

type Obj = Record<string, unknown>;
const asObj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const asArr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function parseYamlFile(rel: string): Obj[] {
  const docs = parseAllDocuments(read(rel), { merge: true });
  const list = Array.isArray(docs) ? docs : [docs];
  for (const d of list) if (d.errors.length) throw new Error(`${rel}: ${d.errors.map((e) => e.message).join('; ')}`);
  return list.map((d) => asObj(d.toJS({ maxAliasCount: -1 })));
}

function composeFile(vars: Record<string, string | undefined>): Obj {
  const [doc] = parseYamlFile('docker-compose.yml');
  return asObj(deepInterpolate(doc, vars));
}

interface ComposeXserver {
  name: string;
  svc: Obj;
  args: string[];
  env: Record<string, string>;
  role: string;
  config: XConfig;
  /** Listening ports of long-running roles (empty for one-shot commands). */
  ports: Record<string, number>;
}

const COMPOSE_VARS = { XSERVER_SECRET: freshSecret() };
let composeCache: ComposeXserver[] | undefined;
function composeServices(): ComposeXserver[] {
  if (composeCache) return composeCache;
  const services = asObj(composeFile(COMPOSE_VARS).services);
  composeCache = Object.entries(services)
    .filter(([, s]) => asObj(s).image === 'xserver:local')
    .map(([name, s]) => {
      const svc = asObj(s);
      const args = asArr(svc.command).map(String);
      const env = Object.fromEntries(Object.entries(asObj(svc.environment)).map(([k, v]) => [k, String(v)]));
      const role = args[0] ?? '';
      const roleKind = ['mgr', 'login', 'gateway', 'node'].includes(role);
      const { config } = loadContainerConfig(env, cliProblems(args).set);
      return { name, svc, args, env, role, config, ports: roleKind ? listeningPorts(role as Role, config) : {} };
    });
  return composeCache;
}

/** "[ip:]host:container" -> { host, container } */
function publishedPorts(svc: Obj): { host: number; container: number }[] {
  return asArr(svc.ports).map((p) => {
    const parts = String(p).split(':');
    return { host: Number(parts.at(-2)), container: Number(parts.at(-1)) };
  });
}

function durationMs(d: string): number {
  const m = /^(\d+)(ms|s|m)$/.exec(d);
  if (!m) throw new Error(`duration ${d}`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2] as 'ms' | 's' | 'm'];
}

describe('docker-compose.yml', () => {
  it('parses, and refuses to start without XSERVER_SECRET (the message says how to make one)', () => {
    expect(() => composeFile({})).toThrow(/XSERVER_SECRET.*xserver secret/);
    expect(composeServices().length).toBeGreaterThan(0);
  });

  it('runs the roles of `npm start` (clusterPlan of xserver up), one container each, plus Redis', () => {
    const services = asObj(composeFile(COMPOSE_VARS).services);
    expect(Object.keys(services)).toContain('redis');
    const composed = composeServices()
      .filter((s) => ['mgr', 'login', 'gateway', 'node'].includes(s.role))
      .map((s) => `${s.role} ${s.args.includes('--entry') ? s.args[s.args.indexOf('--entry') + 1]!.replace(/^.*\/examples\//, '') : ''}`.trim());
    const planned = clusterPlan().map((p) => `${p.role} ${p.entry ? p.entry.replace(/^.*\/examples\//, '') : ''}`.trim());
    expect(composed.sort()).toEqual(planned.sort());
    // The demo page is served as in `xserver up`.
    const login = composeServices().find((s) => s.role === 'login')!;
    expect(login.config.login.staticDir).toBe('/app/dist/examples/web');
    expect(existsSync(path.join(ROOT, 'examples/chat/index.html'))).toBe(true);
  });

  it('uses only commands, flags and settings that exist, with values that load', () => {
    const problems: string[] = [];
    for (const s of composeServices()) {
      problems.push(...cliProblems(s.args).problems.map((p) => `${s.name}: ${p}`));
      problems.push(...unknownEnv(s.env).map((e) => `${s.name}: ${e} is no setting`));
      const entry = s.args.includes('--entry') ? s.args[s.args.indexOf('--entry') + 1]! : undefined;
      if (entry) expect(existsSync(path.join(ROOT, entry.replace(/^\/app\//, ''))), `${s.name}: ${entry}`).toBe(true);
      expect(s.config.secret).toBe(COMPOSE_VARS.XSERVER_SECRET);
      expect(s.config.redisUrl).toBe('redis://redis:6379');
    }
    expect(problems).toEqual([]);
  });

  it('publishes only ports the process listens on, health-checks /readyz on adminPort, and outlasts the drain on stop', async () => {
    for (const s of composeServices().filter((x) => Object.keys(x.ports).length > 0)) {
      const listening = Object.values(s.ports);
      expect(
        listening.filter((p) => p === 0),
        `${s.name}: fixed ports (${JSON.stringify(s.ports)})`,
      ).toEqual([]);
      for (const p of publishedPorts(s.svc)) expect(listening, `${s.name} publishes ${p.container}`).toContain(p.container);
      const test = asArr(asObj(s.svc.healthcheck).test).map(String).join(' ');
      const url = new URL(/https?:\/\/[^'"\s)]+/.exec(test)![0]);
      expect(url.pathname).toBe('/readyz');
      expect(Number(url.port), s.name).toBe(s.config.adminPort);
      expect(await served(url.pathname)).toBe(200);
      expect(durationMs(String(s.svc.stop_grace_period)), s.name).toBeGreaterThan(s.config.drainTimeoutMs);
    }
  });

  it('gateways hand out addresses that reach their own published client ports', () => {
    const gateways = composeServices().filter((s) => s.role === 'gateway');
    expect(gateways.length).toBe(2);
    const seen = new Set<string>();
    for (const g of gateways) {
      const published = publishedPorts(g.svc);
      const ws = new URL(g.env[envName('gateway.publicUrl')]!);
      expect(ws.protocol).toBe(g.config.gateway.tls ? 'wss:' : 'ws:');
      expect(published).toContainEqual({ host: Number(ws.port), container: g.config.gateway.wsPort });
      const tcp = g.env[envName('gateway.publicTcp')]!;
      expect(published).toContainEqual({ host: Number(tcp.split(':').at(-1)), container: g.config.gateway.tcpPort });
      seen.add(ws.href).add(tcp);
    }
    expect(seen.size, 'each gateway its own addresses').toBe(4);
  });
});

// ---------------------------------------------------------------- Kubernetes

interface K8sContainer {
  file: string;
  workload: Obj;
  kind: string;
  name: string;
  container: Obj;
  args: string[];
  /** Environment as the pod gets it, downward API filled in for pod `podName`. */
  env: Record<string, string>;
  podName: string;
  config: XConfig;
  ports: Record<string, number>;
  containerPorts: Map<string, number>;
}

const POD_IP = '10.1.2.3';
const K8S_SECRET = freshSecret();
const k8sFiles = (): string[] => readdirSync(path.join(ROOT, K8S_DIR)).filter((f) => /\.ya?ml$/.test(f));
function k8sDocs(): { file: string; doc: Obj }[] {
  return k8sFiles().flatMap((f) => parseYamlFile(`${K8S_DIR}/${f}`).map((doc) => ({ file: f, doc })));
}
const meta = (d: Obj): Obj => asObj(d.metadata);
const podTemplate = (w: Obj): Obj => asObj(asObj(w.spec).template);
const podSpec = (w: Obj): Obj => asObj(podTemplate(w).spec);

function containerEnv(c: Obj, docs: { doc: Obj }[], podName: string): Record<string, string> {
  const env: Record<string, string> = {};
  const byKindName = (kind: string, name: unknown): Obj | undefined => docs.find((d) => d.doc.kind === kind && meta(d.doc).name === name)?.doc;
  for (const from of asArr(c.envFrom).map(asObj)) {
    if (from.configMapRef) {
      const cm = byKindName('ConfigMap', asObj(from.configMapRef).name);
      if (!cm) throw new Error(`ConfigMap ${String(asObj(from.configMapRef).name)} is not in the manifests`);
      Object.assign(env, asObj(cm.data));
    }
    if (from.secretRef) {
      const secret = byKindName('Secret', asObj(from.secretRef).name);
      if (!secret) throw new Error(`Secret ${String(asObj(from.secretRef).name)}: no template in the manifests`);
      // The template's keys, with a real value as the operator would create it.
      for (const k of Object.keys({ ...asObj(secret.stringData), ...asObj(secret.data) })) env[k] = K8S_SECRET;
    }
  }
  for (const e of asArr(c.env).map(asObj)) {
    const field = String(asObj(asObj(e.valueFrom).fieldRef).fieldPath ?? '');
    if (field === 'status.podIP') env[String(e.name)] = POD_IP;
    else if (field === 'metadata.name') env[String(e.name)] = podName;
    else if (e.value !== undefined) env[String(e.name)] = String(e.value);
    else throw new Error(`env ${String(e.name)}: unsupported source`);
  }
  return env;
}

let k8sCache: K8sContainer[] | undefined;
function k8sContainers(): K8sContainer[] {
  if (k8sCache) return k8sCache;
  const docs = k8sDocs();
  k8sCache = docs
    .filter((d) => d.doc.kind === 'Deployment' || d.doc.kind === 'StatefulSet')
    .flatMap(({ file, doc }) =>
      asArr(podSpec(doc).containers)
        .map(asObj)
        .map((container) => {
          const name = String(meta(doc).name);
          const podName = doc.kind === 'StatefulSet' ? `${name}-0` : `${name}-5d8f7c9b4-x2x7q`;
          const args = asArr(container.args).map(String);
          const env = containerEnv(container, docs, podName);
          const { config } = loadContainerConfig(env, cliProblems(args).set);
          const containerPorts = new Map(asArr(container.ports).map((p) => [String(asObj(p).name), Number(asObj(p).containerPort)]));
          const ports = listeningPorts(args[0] as Role, config);
          return { file, workload: doc, kind: String(doc.kind), name, container, args, env, podName, config, ports, containerPorts };
        }),
    );
  return k8sCache;
}

/** A probe's or Service's port (a name or a number) as a container port number. */
function resolvePort(c: K8sContainer, port: unknown): number | undefined {
  if (typeof port === 'number') return [...c.containerPorts.values()].includes(port) ? port : undefined;
  return c.containerPorts.get(String(port));
}

function selects(selector: Obj, c: K8sContainer): boolean {
  const labels: Record<string, unknown> = { ...asObj(meta(podTemplate(c.workload)).labels) };
  if (c.kind === 'StatefulSet') {
    const replicas = Number(asObj(c.workload.spec).replicas ?? 1);
    const pod = selector['statefulset.kubernetes.io/pod-name'];
    if (pod !== undefined) {
      const i = Number(String(pod).slice(c.name.length + 1));
      return String(pod).startsWith(`${c.name}-`) && Number.isInteger(i) && i >= 0 && i < replicas;
    }
  }
  return Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
}

function sleepSeconds(c: Obj): number {
  const cmd = asArr(asObj(asObj(asObj(c.lifecycle).preStop).exec).command).map(String);
  if (cmd.length === 0) return 0;
  if (cmd[0] === 'sleep') return Number(cmd[1]);
  throw new Error(`preStop ${cmd.join(' ')}: only sleep is accounted for`);
}

describe('Kubernetes manifests (deploy/k8s)', () => {
  it('parse; every object has a kind and a name and names no namespace; kustomization lists them all but the Secret template', () => {
    const docs = k8sDocs();
    for (const { file, doc } of docs) {
      expect(doc.apiVersion, file).toBeTruthy();
      expect(doc.kind, file).toBeTruthy();
      if (doc.kind !== 'Kustomization') expect(meta(doc).name, file).toBeTruthy();
      expect(JSON.stringify(doc), file).not.toMatch(/"namespace"/);
    }
    const kustomization = docs.find((d) => d.doc.kind === 'Kustomization')!.doc;
    const resources = asArr(kustomization.resources).map(String).sort();
    expect(resources).toEqual(
      k8sFiles()
        .filter((f) => f !== 'kustomization.yaml' && f !== 'secret.yaml')
        .sort(),
    );
    // The Secret is a template: its value is empty (a process refuses to start with it).
    const secret = docs.find((d) => d.doc.kind === 'Secret')!.doc;
    expect(Object.values(asObj(secret.stringData))).toEqual(['']);
    expect(() => loadContainerConfig({ ...k8sContainers()[0]!.env, ...asObj(secret.stringData) } as Record<string, string>)).toThrow(/secret/);
  });

  it('run only commands and flags that exist, set only settings that exist, and each container loads its config', () => {
    const containers = k8sContainers();
    expect(new Set(containers.map((c) => c.args[0]))).toEqual(new Set(['mgr', 'login', 'gateway', 'node']));
    const problems: string[] = [];
    for (const c of containers) {
      problems.push(...cliProblems(c.args).problems.map((p) => `${c.name}: ${p}`));
      problems.push(...unknownEnv(c.env).map((e) => `${c.name}: ${e} is no setting`));
      const entry = c.args.includes('--entry') ? c.args[c.args.indexOf('--entry') + 1]! : undefined;
      if (entry) expect(existsSync(path.join(ROOT, entry.replace(/^\/app\//, ''))), `${c.name}: ${entry}`).toBe(true);
      // Every ${VAR} xserver is asked to expand is in the container's environment.
      for (const [k, v] of Object.entries(c.env)) {
        if (k.startsWith('XSERVER_')) for (const ref of envRefs(v)) expect(Object.keys(c.env), `${c.name}: ${k} uses \${${ref}}`).toContain(ref);
      }
      expect(c.config.secret).toBe(K8S_SECRET);
      expect(c.container.image).toBe('xserver');
      expect(asObj(podSpec(c.workload).securityContext).runAsNonRoot).toBe(true);
      const requests = asObj(asObj(c.container.resources).requests);
      expect(Object.keys(requests).sort(), c.name).toEqual(['cpu', 'memory']);
    }
    expect(problems).toEqual([]);
  });

  it('bind 0.0.0.0 and advertise the pod IP (innerIp=${POD_IP} expanded by xserver)', () => {
    const got = k8sContainers().map((c) => `${c.name}: bindHost=${c.config.bindHost} innerIp=${c.config.innerIp}`);
    expect(got).toEqual(k8sContainers().map((c) => `${c.name}: bindHost=0.0.0.0 innerIp=${POD_IP}`));
  });

  it('declare exactly the ports each process listens on; probes hit /livez and /readyz on adminPort', async () => {
    for (const c of k8sContainers()) {
      const listening = Object.values(c.ports);
      expect(
        listening.filter((p) => p === 0),
        `${c.name}: fixed ports (${JSON.stringify(c.ports)})`,
      ).toEqual([]);
      expect([...c.containerPorts.values()].sort(), c.name).toEqual([...listening].sort());
      const live = asObj(asObj(c.container.livenessProbe).httpGet);
      const ready = asObj(asObj(c.container.readinessProbe).httpGet);
      expect([live.path, ready.path], c.name).toEqual(['/livez', '/readyz']);
      for (const probe of [live, ready]) {
        expect(resolvePort(c, probe.port), `${c.name} probe port ${String(probe.port)}`).toBe(c.config.adminPort);
        expect(await served(String(probe.path))).toBe(200);
      }
    }
  });

  it('give every pod a grace period above its preStop pause plus drainTimeoutMs', () => {
    for (const c of k8sContainers()) {
      const grace = Number(podSpec(c.workload).terminationGracePeriodSeconds) * 1000;
      expect(grace, c.name).toBeGreaterThan(c.config.drainTimeoutMs + sleepSeconds(c.container) * 1000);
    }
  });

  it('Services select existing pods and target ports those pods declare', () => {
    const services = k8sDocs().filter((d) => d.doc.kind === 'Service');
    expect(services.length).toBeGreaterThan(0);
    for (const { doc } of services) {
      const spec = asObj(doc.spec);
      const selected = k8sContainers().filter((c) => selects(asObj(spec.selector), c));
      expect(selected.length, `Service ${String(meta(doc).name)} selects a workload`).toBeGreaterThan(0);
      for (const p of asArr(spec.ports).map(asObj)) {
        for (const c of selected)
          expect(resolvePort(c, p.targetPort ?? p.port), `Service ${String(meta(doc).name)} port ${String(p.name)}`).toBeDefined();
      }
    }
  });

  it('gateways: one per-pod Service per replica, and each pod advertises the address of its own', () => {
    const docs = k8sDocs();
    const gw = k8sContainers().find((c) => c.args[0] === 'gateway' && c.kind === 'StatefulSet');
    expect(gw, 'a gateway StatefulSet').toBeDefined();
    const spec = asObj(gw!.workload.spec);
    expect(docs.some((d) => d.doc.kind === 'Service' && meta(d.doc).name === spec.serviceName && asObj(d.doc.spec).clusterIP === 'None')).toBe(true);
    const replicas = Number(spec.replicas);
    const perPod = docs.filter(
      (d) => d.doc.kind === 'Service' && asObj(asObj(d.doc.spec).selector)['statefulset.kubernetes.io/pod-name'] !== undefined,
    );
    const podNames = perPod.map((d) => String(asObj(asObj(d.doc.spec).selector)['statefulset.kubernetes.io/pod-name'])).sort();
    expect(podNames).toEqual(Array.from({ length: replicas }, (_, i) => `${gw!.name}-${i}`).sort());
    for (const d of perPod) {
      const pod = String(asObj(asObj(d.doc.spec).selector)['statefulset.kubernetes.io/pod-name']);
      const env = containerEnv(gw!.container, docs, pod);
      const expand = (v: string): string => v.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, n: string) => env[n] ?? '');
      const ports = asArr(asObj(d.doc.spec).ports).map(asObj);
      const targetOf = (port: number): number | undefined => resolvePort(gw!, ports.find((p) => Number(p.port) === port)?.targetPort);
      const ws = new URL(expand(env[envName('gateway.publicUrl')]!));
      expect(ws.hostname.split('.')[0]).toBe(pod);
      expect(ws.protocol).toBe(gw!.config.gateway.tls ? 'wss:' : 'ws:');
      expect(targetOf(Number(ws.port || (ws.protocol === 'wss:' ? 443 : 80)))).toBe(gw!.config.gateway.wsPort);
      const tcp = expand(env[envName('gateway.publicTcp')]!);
      expect(tcp.split('.')[0]).toBe(pod);
      expect(targetOf(Number(tcp.split(':').at(-1)))).toBe(gw!.config.gateway.tcpPort);
    }
    // TLS material is mounted as a directory (a subPath mount would never see a renewed Secret).
    if (gw!.config.gateway.tls) {
      const mounts = asArr(gw!.container.volumeMounts).map(asObj);
      const m = mounts.find((x) => gw!.config.tls.cert.startsWith(`${String(x.mountPath)}/`));
      expect(m, 'tls.cert is on a mounted volume').toBeDefined();
      expect(m!.subPath).toBeUndefined();
      expect(gw!.config.tls.key.startsWith(`${String(m!.mountPath)}/`)).toBe(true);
    }
  });

  it('PodDisruptionBudgets cover the gateways and the lobbies', () => {
    const pdbs = k8sDocs().filter((d) => d.doc.kind === 'PodDisruptionBudget');
    const covered = (pred: (c: K8sContainer) => boolean): boolean =>
      pdbs.some((p) => k8sContainers().some((c) => pred(c) && selects(asObj(asObj(asObj(p.doc.spec).selector).matchLabels), c)));
    expect(covered((c) => c.args[0] === 'gateway')).toBe(true);
    expect(covered((c) => c.args.some((a) => a.endsWith('examples/lobby/service.js')))).toBe(true);
  });
});

// ---------------------------------------------------------------- docs/deployment.md

describe('docs/deployment.md', () => {
  const code = (): string[] => [...read('docs/deployment.md').matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);

  it('is linked from the README', () => {
    expect(read('README.md').includes('(docs/deployment.md)')).toBe(true);
  });

  it('names only xserver commands and flags that exist', () => {
    const commands = code()
      .filter((c) => /^(npx )?xserver [a-z]/.test(c))
      .map((c) => c.replace(/^(npx )?xserver /, '').split(/\s+/));
    expect(commands.length).toBeGreaterThan(0);
    // Placeholders (<id|name>) and shell glue are not checked, the command path and its flags are.
    const problems = commands.flatMap(
      (args) =>
        cliProblems(
          args.filter((a) => !/^[<|>$(]|[|)]$/.test(a)),
          { positionals: false },
        ).problems,
    );
    expect(problems).toEqual([]);
  });

  it('names only settings and XSERVER_* variables that exist', () => {
    const envs = code().flatMap((c) => [...c.matchAll(/\bXSERVER_[A-Z0-9_]+/g)].map((m) => m[0]));
    expect([...new Set(envs.filter((e) => !SETTING_BY_ENV.has(e) && !NON_SETTING_ENV.has(e)))]).toEqual([]);
    const keys = code()
      .flatMap((c) => c.split(/[\s,=/]+/))
      .filter((t) => !/\.(ya?ml|md|ts|js|json|toml)$/.test(t))
      .filter((t) => /^(gateway|login|link|mgr|node|tls|log)\.[a-z][A-Za-z]+$/.test(t) || /^[a-z]+(Host|Ip|Port|Url|Tcp|Ms)$/.test(t));
    expect(keys.length).toBeGreaterThan(0);
    expect([...new Set(keys.filter((k) => !SETTING_KEYS.has(k)))]).toEqual([]);
  });
});
