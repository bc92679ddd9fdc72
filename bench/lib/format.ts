/** Number formats and plain-text tables. */
type Figure = number | null | undefined;

export const fmt = (v: Figure, digits = 2) =>
  v === null || v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(digits);
export const fmtInt = (v: Figure) =>
  v === null || v === undefined ? 'n/a' : Math.round(v).toLocaleString('en-US');
export const fmtX = (v: Figure) => (v === null || v === undefined ? 'n/a' : `${v.toFixed(2)}x`);

/** Columns padded to their widest cell; `align[i]` 'l' pads column i on the right, anything else on the left. */
export function table(headers: string[], rows: unknown[][], align: string[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells: unknown[]) =>
    cells
      .map((cell, i) =>
        align[i] === 'l' ? String(cell).padEnd(widths[i]!) : String(cell).padStart(widths[i]!),
      )
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
