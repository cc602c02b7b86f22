// Turns scenario results into tables: values + ratios vs the raw-Node baseline, and, when xserver
// rows are present, xserver ÷ each peer.
import { renderTable, formatValue } from './table.js';

const ratio = (a, b) => (a !== undefined && b !== undefined && b !== 0 ? a / b : undefined);

export function renderScenario(result, cfg) {
  const { columns, rows } = result;
  const ratioCols = columns.filter((c) => c.ratio);
  const base = result.baseline && rows.find((r) => r.label === result.baseline);
  const short = (c) => c.label.replace(/^msg\/s\s*/, '');
  const hasNotes = rows.some((r) => r.notes.length);

  const headers = ['implementation', ...columns.map((c) => c.label)];
  if (base) headers.push(...ratioCols.map((c) => `÷base ${short(c)}`));
  if (hasNotes) headers.push('notes');
  const body = rows.map((r) => {
    const cells = [r.label, ...columns.map((c) => formatValue(c.unit, r.values[c.label]))];
    if (base) cells.push(...ratioCols.map((c) => formatValue('ratio', ratio(r.values[c.label], base.values[c.label]))));
    if (hasNotes) cells.push(r.notes.join('; '));
    return cells;
  });
  const align = headers.map((h, i) => (i === 0 || h === 'notes' ? 'l' : 'r'));

  const out = [`## ${result.name}: ${result.title}`, '', renderTable(headers, body, align)];

  const mine = rows.filter((r) => r.kind === 'xserver');
  const peers = rows.filter((r) => r.kind === 'peer');
  if (mine.length && peers.length && ratioCols.length) {
    const pairs = mine.flatMap((m) => peers.map((p) => [`${m.label} ÷ ${p.label}`, m, p]));
    out.push(
      '',
      renderTable(
        ['xserver vs peers', ...ratioCols.map((c) => c.label)],
        pairs.map(([label, m, p]) => [label, ...ratioCols.map((c) => formatValue('ratio', ratio(m.values[c.label], p.values[c.label])))]),
      ),
    );
  }

  const footer = [
    `median of ${result.runs ?? cfg.runs} run${(result.runs ?? cfg.runs) > 1 ? 's' : ''}`,
    result.name === 'discovery' || !result.columns.some((c) => c.point)
      ? undefined
      : `${cfg.durationMs} ms per point after ${cfg.warmupMs} ms warm-up`,
    base ? `÷base = row ÷ ${base.label}` : undefined,
    `scenario took ${(result.elapsedMs / 1000).toFixed(1)} s`,
  ].filter(Boolean);
  out.push('', `(${footer.join('; ')})`);
  return out.join('\n');
}
