#!/usr/bin/env node
// Benchmark harness entry point; see bench/README.md.
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { parseCli, USAGE } from './lib/args.js';
import { loadScenarios, loadXserverRows, rowsOf } from './lib/registry.js';
import { runScenario } from './lib/runner.js';
import { renderScenario } from './lib/report.js';
import { installCleanup, killAllNow, liveChildren, pinningEnabled, disablePinning, setVerbose } from './lib/proc.js';
import { deleteKeysContaining } from './lib/redis.js';

const log = (line) => process.stderr.write(`${line}\n`);

async function main() {
  let cfg;
  try {
    cfg = parseCli(process.argv.slice(2));
  } catch (err) {
    log(`${err.message}\n${USAGE}`);
    return 2;
  }
  if (cfg.help) {
    log(USAGE);
    return 0;
  }
  // Unique per invocation: prefixes every namespace handed to the rows, so Redis keys can be cleaned.
  cfg.token = `xsb${process.pid}${randomBytes(3).toString('hex')}`;
  const cleanRedis = async () => {
    const removed = await deleteKeysContaining(cfg.token);
    if (removed) log(`bench: removed ${removed} Redis key(s) matching *${cfg.token}*`);
  };
  installCleanup(cleanRedis);
  setVerbose(cfg.verbose);
  if (!cfg.pin) disablePinning();

  const all = await loadScenarios();
  const xserverRows = await loadXserverRows(log);
  if (cfg.list) {
    for (const s of all)
      log(
        `${s.name.padEnd(12)} ${s.title}\n${' '.repeat(13)}rows: ${rowsOf(s, xserverRows)
          .map((r) => r.label)
          .join(', ')}`,
      );
    return 0;
  }
  const unknown = cfg.scenarios.filter((n) => !all.some((s) => s.name === n));
  if (unknown.length) {
    log(`unknown scenario(s): ${unknown.join(', ')}; known: ${all.map((s) => s.name).join(', ')}`);
    return 2;
  }
  const selected = cfg.scenarios.length ? all.filter((s) => cfg.scenarios.includes(s.name)) : all;

  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.availableParallelism(),
    pinned: pinningEnabled() ? { server: 0, client: 1 } : false,
    runs: cfg.runs,
    durationMs: cfg.durationMs,
    warmupMs: cfg.warmupMs,
  };
  log(
    `bench: ${selected.map((s) => s.name).join(', ')}; ${cfg.runs} run(s), ${cfg.durationMs} ms/point, pinning ${meta.pinned ? 'server→cpu0 client→cpu1' : 'off'}`,
  );

  const started = Date.now();
  const results = [];
  try {
    for (const scenario of selected) {
      const result = await runScenario(scenario, rowsOf(scenario, xserverRows), cfg, log);
      results.push(result);
      if (!cfg.json) process.stdout.write(`\n${renderScenario(result, cfg)}\n`);
    }
  } finally {
    if (liveChildren().length) log(`bench: warning: killing leftover children ${liveChildren().join(', ')}`);
    killAllNow();
    await cleanRedis().catch((err) => log(`bench: redis cleanup failed: ${err.message}`));
  }
  const totalMs = Date.now() - started;
  if (cfg.json) process.stdout.write(`${JSON.stringify({ meta: { ...meta, totalMs }, scenarios: results }, null, 2)}\n`);
  else process.stdout.write(`\n(total ${(totalMs / 1000).toFixed(1)} s)\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    log(err?.stack ?? String(err));
    killAllNow();
    process.exit(1);
  },
);
