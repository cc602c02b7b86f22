// Type-checks the code blocks of README.md and docs/*.md against the sources, so a snippet that
// calls a method the package does not have (or passes the wrong arguments) fails `npm run typecheck`.
//
// Every ```ts / ```typescript block is checked as a TypeScript module, every ```js / ```javascript
// block as a JavaScript module with checkJs.
// `xserver` and `xserver/client` resolve to src/ (tsconfig.check.json's paths), so no build is
// needed. A block that is not meant to compile on its own says so in its info string:
// ```js nocheck
//
// Run: node scripts/check-doc-snippets.js [file.md ...]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Inside node_modules, so that a snippet's imports of dependencies resolve as they would in a user's project. */
const OUT_DIR = path.join(ROOT, 'node_modules/.cache/doc-snippets');
const CHECK_TSCONFIG = path.join(ROOT, 'tsconfig.check.json');

/** Fence languages checked, and the extension each is written with (.mts/.mjs: ES modules, top-level await allowed). */
const EXTENSIONS = /** @type {Record<string, string>} */ ({ ts: '.mts', typescript: '.mts', js: '.mjs', javascript: '.mjs' });

/**
 * @typedef {{ source: string, line: number, lang: string, code: string }} Snippet
 *   `line` is the 1-based line of the block's first code line in `source`.
 */

/**
 * The checked code blocks of one markdown file.
 * @param {string} file
 * @returns {Snippet[]}
 */
export function extractSnippets(file) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  /** @type {Snippet[]} */
  const snippets = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)(.*)$/.exec(lines[i] ?? '');
    if (!open) continue;
    const [, indent = '', fence = '', lang = '', info = ''] = open;
    const body = [];
    let j = i + 1;
    while (j < lines.length && !(lines[j] ?? '').trimStart().startsWith(fence)) body.push((lines[j++] ?? '').slice(indent.length));
    const checked = lang.toLowerCase() in EXTENSIONS && !/\bnocheck\b/.test(info);
    if (checked) snippets.push({ source: file, line: i + 2, lang: lang.toLowerCase(), code: body.join('\n') });
    i = j;
  }
  return snippets;
}

/**
 * Type-checks the snippets; returns one message per problem, located in the markdown file.
 * @param {Snippet[]} snippets
 * @returns {string[]}
 */
export function checkSnippets(snippets) {
  fs.rmSync(OUT_DIR, { recursive: true, force: true });
  fs.mkdirSync(OUT_DIR, { recursive: true });
  /** @type {Map<string, Snippet>} */
  const byFile = new Map();
  for (const s of snippets) {
    const file = path.join(OUT_DIR, `${path.basename(s.source, '.md')}-${s.line}${EXTENSIONS[s.lang]}`);
    // `export {}` keeps a snippet without imports a module (top-level await, no global clashes).
    fs.writeFileSync(file, `${s.code}\nexport {};\n`);
    byFile.set(path.normalize(file), s);
  }

  const config = ts.readConfigFile(CHECK_TSCONFIG, ts.sys.readFile);
  if (config.error) throw new Error(ts.flattenDiagnosticMessageText(config.error.messageText, '\n'));
  const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
  const program = ts.createProgram([...byFile.keys()], { ...options, noEmit: true });
  const problems = [];
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    const snippet = d.file && byFile.get(path.normalize(d.file.fileName));
    if (!d.file || !snippet) {
      // A problem outside the snippets (the sources themselves) is tsc's to report, not ours.
      if (!d.file) problems.push(`error TS${d.code}: ${message}`);
      continue;
    }
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start ?? 0);
    problems.push(`${path.relative(ROOT, snippet.source)}:${snippet.line + line}:${character + 1}: error TS${d.code}: ${message}`);
  }
  return problems;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const docs = path.join(ROOT, 'docs');
  const files = args.length
    ? args.map((f) => path.resolve(f))
    : [
        path.join(ROOT, 'README.md'),
        ...fs
          .readdirSync(docs)
          .filter((f) => f.endsWith('.md'))
          .map((f) => path.join(docs, f)),
      ];
  const snippets = files.flatMap(extractSnippets);
  const problems = checkSnippets(snippets);
  for (const p of problems) console.error(p);
  if (problems.length) {
    console.error(`${problems.length} problem(s) in the documentation's code blocks`);
    process.exit(1);
  }
  console.log(`doc snippets: ${snippets.length} code block(s) in ${files.length} file(s) type-check`);
}
