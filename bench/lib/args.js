// Command line: node bench/run.js [scenario...] [--json] [--runs N] [--duration ms] [--warmup ms]
//                                 [--list] [--verbose] [--no-pin]
import { parseArgs } from 'node:util';

export const USAGE = `usage: node bench/run.js [scenario...] [options]
  scenario        names to run (default: all); see --list
  --runs N        runs per measurement, the table shows medians (default 3)
  --duration ms   measured time per point (default 2000)
  --warmup ms     unmeasured warm-up before each point (default 500)
  --json          print machine-readable results on stdout instead of tables
  --list          list scenarios and their rows, then exit
  --verbose       forward child process output to stderr
  --no-pin        do not pin server/client to cpu 0/1 with taskset
  -h, --help      this text`;

function integer(name, value, min) {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} wants an integer >= ${min}, got '${value}'`);
  return n;
}

export function parseCli(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      runs: { type: 'string', default: '3' },
      duration: { type: 'string', default: '2000' },
      warmup: { type: 'string', default: '500' },
      json: { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      'no-pin': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  return {
    scenarios: positionals,
    runs: integer('runs', values.runs, 1),
    durationMs: integer('duration', values.duration, 1),
    warmupMs: integer('warmup', values.warmup, 0),
    json: values.json,
    list: values.list,
    verbose: values.verbose,
    pin: !values['no-pin'],
    help: values.help,
  };
}
