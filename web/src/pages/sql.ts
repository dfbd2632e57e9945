import { api, ApiError, type Column, type Row, type SqlAnswer } from '../api.js';
import { categorySeries, Chart, ColorMap, pickAxes, timeSeries, toNumber } from '../charts.js';
import { formatNumber, h, replace } from '../dom.js';
import { isTimeType, rowsTable } from '../table.js';

const HISTORY_KEY = 'strata.sql.history';
const HISTORY_SIZE = 50;
/** A text column splits the quick chart into series only when it has at most this many values. */
const MAX_QUICK_SERIES = 10;

interface HistoryEntry {
  sql: string;
  at: string;
  rows: number | null;
  ms: number | null;
  error?: string;
}

function loadHistory(): HistoryEntry[] {
  try {
    const parsed = JSON.parse(localStorage.getItem(HISTORY_KEY) ?? '[]') as unknown;
    return Array.isArray(parsed) ? (parsed as HistoryEntry[]) : [];
  } catch {
    return [];
  }
}

function saveHistory(entries: HistoryEntry[]): void {
  localStorage.setItem(HISTORY_KEY, JSON.stringify(entries.slice(0, HISTORY_SIZE)));
}

/**
 * The SQL console (the Athena role): an editor (Ctrl+Enter runs), run and cancel (the request is aborted, and
 * the server cancels the query when its client goes away), the results with their column types, a quick chart,
 * CSV download of the result, and a history of queries kept in this browser.
 */
export function sqlPage(root: HTMLElement): () => void {
  let controller: AbortController | null = null;
  let result: SqlAnswer | null = null;
  const chart = new Chart('line', 240);
  const colors = new ColorMap();

  const history = loadHistory();
  const editor = h('textarea', {
    class: 'editor',
    spellcheck: false,
    rows: 8,
    'aria-label': 'SQL',
    placeholder: 'SELECT page, count(*) AS views FROM clicks GROUP BY page ORDER BY views DESC',
  });
  editor.value = history[0]?.sql ?? 'SELECT page, count(*) AS views FROM clicks GROUP BY page ORDER BY views DESC';
  editor.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      void run();
    }
  });
  const runButton = h('button', { type: 'button', class: 'primary', 'data-testid': 'sql-run', onclick: () => void run() }, 'Run');
  const cancelButton = h('button', { type: 'button', disabled: true, 'data-testid': 'sql-cancel', onclick: () => controller?.abort() }, 'Cancel');
  const csvButton = h('button', { type: 'button', disabled: true, 'data-testid': 'sql-csv', onclick: () => result && downloadCsv(result) }, 'Download CSV');
  const status = h('span', { class: 'status', 'data-testid': 'sql-status' });
  const output = h('div');
  const chartBox = h('div', { class: 'quick-chart', hidden: true });
  const historyBox = h('ol', { class: 'history' });

  replace(
    root,
    h('h1', {}, 'SQL'),
    h('p', { class: 'muted' }, 'Read-only SQL over the lake: every stream and imported table, each view as ', h('code', {}, 'view'), ', ', h('code', {}, 'view__batch'), ' and ', h('code', {}, 'view__speed'), '. Ctrl+Enter runs.'),
    editor,
    h('div', { class: 'toolbar' }, runButton, cancelButton, csvButton, status),
    chartBox,
    output,
    h('h2', {}, 'History'),
    historyBox,
  );

  const drawHistory = () =>
    replace(
      historyBox,
      history.map((entry) =>
        h(
          'li',
          {},
          h('button', { type: 'button', class: 'link', title: 'put in the editor', onclick: () => (editor.value = entry.sql) }, entry.sql.length > 160 ? `${entry.sql.slice(0, 160)}…` : entry.sql),
          h('span', { class: 'muted' }, ` · ${new Date(entry.at).toLocaleTimeString()} · ${entry.error ? 'failed' : `${formatNumber(entry.rows ?? 0)} rows in ${entry.ms} ms`}`),
        ),
      ),
    );
  drawHistory();

  const remember = (entry: HistoryEntry) => {
    const same = history.findIndex((e) => e.sql === entry.sql);
    if (same >= 0) history.splice(same, 1);
    history.unshift(entry);
    history.length = Math.min(history.length, HISTORY_SIZE);
    saveHistory(history);
    drawHistory();
  };

  const run = async () => {
    const sql = editor.value.trim();
    if (!sql || controller) return;
    controller = new AbortController();
    runButton.disabled = true;
    cancelButton.disabled = false;
    status.className = 'status';
    status.textContent = 'running…';
    const started = performance.now();
    try {
      result = await api<SqlAnswer>('/v1/sql', { json: { sql }, signal: controller.signal });
      const ms = Math.round(performance.now() - started);
      status.textContent = `${formatNumber(result.rows.length)} rows in ${formatNumber(ms)} ms`;
      status.dataset.rows = String(result.rows.length);
      replace(output, rowsTable(result.columns, result.rows, 1000));
      drawChart(result.columns, result.rows);
      csvButton.disabled = false;
      remember({ sql, at: new Date().toISOString(), rows: result.rows.length, ms });
    } catch (error) {
      const aborted = (error as Error).name === 'AbortError';
      status.className = 'status error';
      status.textContent = aborted ? 'cancelled' : error instanceof ApiError ? `${error.code}: ${error.message}` : (error as Error).message;
      delete status.dataset.rows;
      if (!aborted) remember({ sql, at: new Date().toISOString(), rows: null, ms: null, error: (error as Error).message });
    } finally {
      controller = null;
      runButton.disabled = false;
      cancelButton.disabled = true;
    }
  };

  /**
   * A chart of the result when it has something to plot: a number over a time (a line, one per value of a text
   * column with few values) or over a category (bars).
   */
  const drawChart = (columns: Column[], rows: Row[]) => {
    const { x, y } = pickAxes(columns);
    if (!x || !y || rows.length < 2 || !rows.some((row) => toNumber(row[y.name]) !== null)) {
      chartBox.hidden = true;
      return;
    }
    chartBox.hidden = false;
    const fewValues = (column: Column) => new Set(rows.map((row) => row[column.name])).size <= MAX_QUICK_SERIES;
    const series = columns.find((c) => c !== x && c !== y && c.type === 'VARCHAR' && fewValues(c));
    const data = isTimeType(x.type)
      ? timeSeries(rows, { x: x.name, y: y.name, series: series?.name }, colors).data
      : categorySeries(rows, x.name, y.name, '#2563eb');
    replace(chartBox, h('p', { class: 'muted' }, `${y.name} by ${x.name}${isTimeType(x.type) && series ? ` per ${series.name}` : ''}`), chart.element);
    chart.update(data);
  };

  return () => {
    controller?.abort();
    chart.destroy();
  };
}

/** One CSV field by the API's CSV rules (RFC 4180; NULL is an empty field, an empty string is ""). */
function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  return text === '' || /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The shown result as a CSV file, without running the query again. */
function downloadCsv(result: SqlAnswer): void {
  const lines = [result.columns.map((c) => csvField(c.name)).join(','), ...result.rows.map((row) => result.columns.map((c) => csvField(row[c.name])).join(','))];
  const url = URL.createObjectURL(new Blob([`${lines.join('\r\n')}\r\n`], { type: 'text/csv' }));
  const link = h('a', { href: url, download: `strata-${new Date().toISOString().replace(/[:.]/g, '-')}.csv` });
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
