/** How a column of a text table is aligned: numbers to the right, so that their digits line up. */
export type Align = 'left' | 'right';

/**
 * An aligned text table for a terminal: a header, a rule, the rows; cells padded to their column's widest.
 * Line breaks and tabs in cells are shown escaped, so that every row stays on one line.
 */
export function renderTextTable(headers: readonly string[], rows: readonly (readonly string[])[], align: readonly Align[] = []): string {
  const clean = (cell: string) => cell.replace(/\r/g, '\\r').replace(/\n/g, '\\n').replace(/\t/g, '\\t');
  const header = headers.map(clean);
  const body = rows.map((row) => row.map(clean));
  const widths = header.map((cell, c) => Math.max(cell.length, ...body.map((row) => (row[c] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, c) => (align[c] === 'right' ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join(' | ')
      .trimEnd();
  return [line(header), widths.map((width) => '-'.repeat(width)).join('-+-'), ...body.map(line)].join('\n');
}
