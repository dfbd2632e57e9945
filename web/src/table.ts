import type { Column, Row } from './api.js';
import { formatValue, h } from './dom.js';

/** Types whose values are numbers (or big integers as strings): right-aligned. */
export function isNumericType(type: string): boolean {
  return /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL)/i.test(type);
}

export function isTimeType(type: string): boolean {
  return /^(TIMESTAMP|DATE)/i.test(type);
}

/**
 * A table of rows under a header of column names and types; at most `limit` rows are drawn (a note says how
 * many more there are), so that a large answer does not stall the page.
 */
export function rowsTable(columns: readonly Column[], rows: readonly Row[], limit = 500): HTMLElement {
  const shown = rows.slice(0, limit);
  const numeric = columns.map((column) => isNumericType(column.type));
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'rows' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          columns.map((column) => h('th', {}, column.name, h('span', { class: 'type' }, column.type))),
        ),
      ),
      h(
        'tbody',
        {},
        shown.map((row) =>
          h(
            'tr',
            {},
            columns.map((column, i) => {
              const value = row[column.name];
              return h('td', { class: `${numeric[i] ? 'num' : ''}${value === null ? ' null' : ''}` }, formatValue(value));
            }),
          ),
        ),
      ),
    ),
    rows.length > shown.length ? h('p', { class: 'note' }, `showing ${shown.length} of ${rows.length} rows`) : null,
  );
}
