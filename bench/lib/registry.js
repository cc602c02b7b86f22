// Finds the scenarios (bench/scenarios/*.js) and their rows, including xserver plug-ins
// (bench/xserver/*.js, see README.md) which add rows to the scenarios they name.
import { readdirSync, existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import { implsOf } from './impl.js';

export const BENCH_DIR = fileURLToPath(new URL('../', import.meta.url));
const SCENARIO_DIR = path.join(BENCH_DIR, 'scenarios');
const XSERVER_DIR = path.join(BENCH_DIR, 'xserver');

function moduleFiles(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.js') && !f.startsWith('_') && !f.startsWith('.'))
    .sort()
    .map((f) => path.join(dir, f));
}

/** All scenario definitions, in file order. */
export async function loadScenarios() {
  const out = [];
  for (const file of moduleFiles(SCENARIO_DIR)) out.push((await import(pathToFileURL(file).href)).default);
  return out;
}

/** xserver plug-in rows, grouped by scenario name. Files that fail to import are reported and skipped. */
export async function loadXserverRows(warn) {
  const byScenario = new Map();
  for (const file of moduleFiles(XSERVER_DIR)) {
    let impls;
    try {
      impls = implsOf(await import(pathToFileURL(file).href));
    } catch (err) {
      warn(`bench: skipping ${path.relative(BENCH_DIR, file)}: ${err.message}`);
      continue;
    }
    for (const impl of impls) {
      for (const scenario of [impl.scenario].flat().filter(Boolean)) {
        const rows = byScenario.get(scenario) ?? [];
        rows.push({
          label: impl.label ?? impl.name,
          kind: 'xserver',
          module: file,
          impl: impl.name,
          options: impl.options ?? {},
          needs: impl.needs ?? [],
        });
        byScenario.set(scenario, rows);
      }
    }
  }
  return byScenario;
}

/** The rows of one scenario: its own (module paths made absolute) followed by the xserver plug-ins. */
export function rowsOf(scenario, xserverRows) {
  const own = scenario.rows.map((r) => ({ needs: [], options: {}, ...r, module: path.join(BENCH_DIR, r.module) }));
  return [...own, ...(xserverRows.get(scenario.name) ?? [])];
}
