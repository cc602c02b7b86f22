// Formatting of values and Markdown-style tables (pasteable as-is).

/** Formats a value for display; `unit` is one of: rate, mbps, us, ms, ratio, count. */
export function formatValue(unit, v) {
  if (v === undefined || v === null || Number.isNaN(v)) return 'n/a';
  switch (unit) {
    case 'rate':
      return compact(v);
    case 'count':
      return Math.round(v).toLocaleString('en-US');
    case 'ratio':
      return `${v.toFixed(v >= 10 ? 1 : 2)}×`;
    case 'us':
    case 'ms':
    case 'mbps':
      return v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1);
    default:
      return String(v);
  }
}

/** 3 significant digits with k/M suffixes: 987, 12.3k, 456k, 1.23M. */
function compact(v) {
  const [div, suffix] = v >= 1e6 ? [1e6, 'M'] : v >= 1e3 ? [1e3, 'k'] : [1, ''];
  const x = v / div;
  const digits = x >= 100 ? 0 : x >= 10 ? 1 : 2;
  return `${x.toFixed(suffix ? digits : 0)}${suffix}`;
}

/**
 * headers: string[]; rows: string[][]; align: ('l'|'r')[] per column (default: first left, rest right).
 */
export function renderTable(headers, rows, align = headers.map((_, i) => (i === 0 ? 'l' : 'r'))) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i] ?? '').length)));
  const pad = (s, i) => (align[i] === 'r' ? String(s).padStart(widths[i]) : String(s).padEnd(widths[i]));
  const line = (cells) => `| ${cells.map((c, i) => pad(c ?? '', i)).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (align[i] === 'r' ? `${'-'.repeat(w + 1)}:` : `:${'-'.repeat(w + 1)}`)).join('|')}|`;
  return [line(headers), rule, ...rows.map(line)].join('\n');
}
