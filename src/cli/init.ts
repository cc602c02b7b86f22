/**
 * `xserver init <dir>`: writes a new game backend from templates/init — a contracts module, one
 * service typed by it, `npm start` (the whole cluster in one process on the in-memory store) and
 * a test that plays through the SDK. Refuses a directory that is not empty. Then runs `npm install`
 * there (unless told not to), so the project has its package-lock.json and `npm ci` works.
 */
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { XError } from '../errors.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TEMPLATE_DIR = path.join(root, 'templates', 'init');
/** Files whose `{{name}}`-style placeholders are filled in; the rest are copied as they are. */
const FILLED = new Set(['package.json', 'README.md']);
/** npm leaves `.gitignore` out of a published package, so the template keeps it under this name. */
const RENAMED: Record<string, string> = { gitignore: '.gitignore' };

export interface InitOptions {
  /**
   * The `xserver` dependency: a path to a checkout or a tarball (written as `file:<absolute path>`),
   * or any version range or spec npm takes. Default: `^<this package's version>`.
   */
  xserver?: string;
  /** The package name; default: the directory's name, made a valid npm name. */
  name?: string;
  /** Run `npm install` in the new project (default true). */
  install?: boolean;
}

export interface InitResult {
  dir: string;
  files: string[];
  /** True when `npm install` ran and succeeded. */
  installed: boolean;
}

interface OwnPackage {
  version: string;
  devDependencies: Record<string, string>;
}

/** A valid npm package name from a directory name ("My Game!" -> "my-game"). */
export function packageName(dirName: string): string {
  const n = dirName
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[-._]+|[-._]+$/g, '');
  return n.slice(0, 214) || 'game-backend';
}

async function dependencySpec(given: string | undefined, version: string): Promise<string> {
  if (given === undefined) return `^${version}`;
  const looksLikePath = given.startsWith('.') || given.startsWith('/') || given.startsWith('file:') || path.isAbsolute(given);
  if (!looksLikePath) return given;
  const p = path.resolve(given.replace(/^file:/, ''));
  try {
    await fsp.stat(p);
  } catch {
    throw new XError('CONFIG', `--xserver ${given}: no such file or directory`);
  }
  return `file:${p}`;
}

async function listTemplate(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fsp.readdir(path.join(dir, rel), { withFileTypes: true })) {
    const r = path.join(rel, e.name);
    if (e.isDirectory()) out.push(...(await listTemplate(dir, r)));
    else if (e.isFile()) out.push(r);
  }
  return out.sort();
}

export async function runInit(dir: string, opts: InitOptions = {}): Promise<InitResult> {
  const target = path.resolve(dir);
  const existing = await fsp.readdir(target).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [];
    throw new XError('CONFIG', `${dir}: ${e.message}`);
  });
  if (existing.length > 0) throw new XError('CONFIG', `${dir} is not empty: xserver init writes a new project into an empty or new directory`);
  const own = JSON.parse(await fsp.readFile(path.join(root, 'package.json'), 'utf8')) as OwnPackage;
  const vars: Record<string, string> = {
    name: opts.name ?? packageName(path.basename(target)),
    xserver: await dependencySpec(opts.xserver, own.version),
    // The versions this package is built and tested with.
    typescript: own.devDependencies.typescript ?? '^5',
    typesNode: own.devDependencies['@types/node'] ?? '^20',
  };
  const files = await listTemplate(TEMPLATE_DIR);
  const written: string[] = [];
  for (const rel of files) {
    const out = path.join(path.dirname(rel), RENAMED[path.basename(rel)] ?? path.basename(rel));
    let text = await fsp.readFile(path.join(TEMPLATE_DIR, rel), 'utf8');
    if (FILLED.has(rel)) {
      text = text.replace(/\{\{(\w+)\}\}/g, (m, k: string) => {
        const v = vars[k];
        if (v === undefined) throw new XError('CONFIG', `template ${rel}: unknown placeholder ${m}`);
        return rel === 'package.json' ? JSON.stringify(v).slice(1, -1) : v;
      });
    }
    await fsp.mkdir(path.join(target, path.dirname(out)), { recursive: true });
    await fsp.writeFile(path.join(target, out), text, { flag: 'wx' });
    written.push(out);
  }
  if (opts.install === false) return { dir: target, files: written, installed: false };
  await npmInstall(target);
  return { dir: target, files: written, installed: true };
}

/** `npm install` in `dir`, its output passed through; throws when it fails. */
function npmInstall(dir: string): Promise<void> {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  return new Promise((resolve, reject) => {
    const child = spawn(npm, ['install', '--no-audit', '--no-fund'], { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', (e) =>
      reject(new XError('CONFIG', `the files are written, but npm could not run (${e.message}); run npm install in ${dir}`)),
    );
    child.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else
        reject(
          new XError('CONFIG', `the files are written, but npm install failed (${signal ?? `exit code ${code}`}); fix that and run it in ${dir}`),
        );
    });
  });
}
