import { api, type Dashboard, type Panel, type Row, type ViewAnswer, type ViewInfo } from '../api.js';
import { categorySeries, Chart, ColorMap, PALETTE, timeSeries, toNumber } from '../charts.js';
import { formatNumber, formatValue, h, replace } from '../dom.js';
import { CHART_ROWS, subscribeView, timeKey, viewList } from '../live.js';
import { isTimeType, rowsTable } from '../table.js';

/** The dashboards the config declares, each linking to its page. */
export function dashboardsPage(root: HTMLElement): void {
  replace(root, h('h1', {}, 'Dashboards'), h('p', { class: 'muted' }, 'Loading…'));
  api<{ dashboards: Dashboard[] }>('/v1/dashboards')
    .then(({ dashboards }) =>
      replace(
        root,
        h('h1', {}, 'Dashboards'),
        dashboards.length === 0
          ? h('p', {}, 'The config declares no dashboards. Add one under ', h('code', {}, '"dashboards"'), ', for example ', h('pre', { class: 'sql' }, EXAMPLE))
          : h(
              'ul',
              { class: 'view-list' },
              dashboards.map((d) =>
                h('li', {}, h('a', { href: `/dashboards/${encodeURIComponent(d.name)}` }, d.name), ` · ${d.panels.length} panel(s) over ${[...new Set(d.panels.map((p) => p.view))].join(', ')}`),
              ),
            ),
      ),
    )
    .catch((error: Error) => replace(root, h('h1', {}, 'Dashboards'), h('p', { class: 'error' }, error.message)));
}

const EXAMPLE = '"dashboards": { "traffic": { "panels": [{ "view": "page_minute", "chart": "line", "x": "minute", "y": "views", "series": "page" }] } }';

/**
 * A dashboard: its panels in a grid, each live over its view's merged rows (panels over one view share one
 * stream). Each panel element says `data-state="ready"` once it has drawn data.
 */
export function dashboardPage(root: HTMLElement, params: Record<string, string>): () => void {
  const name = params.name!;
  const leaving: (() => void)[] = [];
  let stopped = false;
  replace(root, h('h1', {}, name), h('p', { class: 'muted' }, 'Loading…'));

  Promise.all([api<{ dashboards: Dashboard[] }>('/v1/dashboards'), viewList(0)])
    .then(([{ dashboards }, views]) => {
      if (stopped) return;
      const dashboard = dashboards.find((d) => d.name === name);
      if (!dashboard) {
        replace(root, h('h1', {}, name), h('p', { class: 'error' }, `No dashboard "${name}". `, h('a', { href: '/dashboards' }, 'All dashboards')));
        return;
      }
      const grid = h('div', { class: 'grid' });
      replace(root, h('h1', {}, dashboard.name), grid);
      dashboard.panels.forEach((panel, i) => {
        const view = views.find((v) => v.name === panel.view)!;
        const live = new PanelView(panel, view, i);
        grid.appendChild(live.element);
        leaving.push(live.start(), () => live.destroy());
      });
    })
    .catch((error: Error) => replace(root, h('h1', {}, name), h('p', { class: 'error' }, error.message)));

  return () => {
    stopped = true;
    for (const leave of leaving) leave();
  };
}

/** Rows of a table panel. */
const TABLE_ROWS = 20;

/** One panel: a line, area or bar chart, a single number, or a table, redrawn at every push of its view. */
class PanelView {
  readonly element: HTMLElement;
  private readonly body: HTMLElement;
  private readonly caption: HTMLElement;
  private chart: Chart | null = null;
  private readonly colors = new ColorMap();
  private readonly time: string | null;

  constructor(
    private readonly panel: Panel,
    private readonly view: ViewInfo,
    index: number,
  ) {
    this.time = timeKey(view);
    this.body = h('div', { class: 'panel-body' }, h('p', { class: 'muted' }, 'waiting for data…'));
    this.caption = h('p', { class: 'caption' });
    const title = panel.title ?? `${panel.y}${panel.x ? ` by ${panel.x}` : ''}${panel.series ? ` per ${panel.series}` : ''}`;
    this.element = h(
      'section',
      { class: `panel panel-${panel.chart}`, 'data-panel': index, 'data-chart': panel.chart, 'data-state': 'waiting' },
      h('h3', {}, title, h('span', { class: 'muted' }, ` · ${panel.view}`)),
      this.body,
      this.caption,
    );
  }

  start(): () => void {
    const query = { layer: 'merged', limit: CHART_ROWS, order: this.time === null ? undefined : `-${this.time}` };
    return subscribeView(this.panel.view, query, (answers) => {
      if (answers.error !== undefined) {
        this.element.dataset.state = 'error';
        replace(this.caption, h('span', { class: 'error' }, answers.error));
      }
      if (answers.merged) this.draw(answers.merged);
    });
  }

  destroy(): void {
    this.chart?.destroy();
  }

  private draw(answer: ViewAnswer): void {
    const { panel } = this;
    const rows = answer.rows;
    if (panel.chart === 'number') {
      const { value, caption } = this.number(rows);
      replace(this.body, h('div', { class: 'big-number', 'data-value': String(value ?? '') }, formatValue(value)));
      replace(this.caption, caption);
    } else if (panel.chart === 'table') {
      const names = [panel.x, panel.series, panel.y].filter((c): c is string => c !== undefined);
      const columns = answer.columns.filter((c) => names.includes(c.name));
      replace(this.body, rowsTable(columns, rows, TABLE_ROWS));
      replace(this.caption, `${formatNumber(rows.length)} rows, the latest first`);
    } else {
      const x = panel.x!;
      const xType = answer.columns.find((c) => c.name === x)?.type ?? '';
      if (!this.chart) {
        this.chart = new Chart(panel.chart, 220);
        replace(this.body, this.chart.element);
      }
      if (isTimeType(xType)) {
        const { data, shown, total } = timeSeries(rows, { x, y: panel.y, series: panel.series, stack: panel.chart === 'bar' }, this.colors);
        this.chart.update(data);
        replace(this.caption, shown < total ? `the ${shown} largest of ${total} series` : '');
      } else {
        this.chart.update(categorySeries(rows, x, panel.y, PALETTE[0]!));
        replace(this.caption, `${panel.y} summed per ${x}`);
      }
    }
    this.element.dataset.state = 'ready';
  }

  /** A number panel: with x, the sum of y over the rows at the latest x (across series); without, over every row. */
  private number(rows: readonly Row[]): { value: number | null; caption: string } {
    const { x, y } = this.panel;
    if (rows.length === 0) return { value: null, caption: 'no rows yet' };
    if (x === undefined) return { value: sum(rows, y), caption: `total over ${formatNumber(rows.length)} rows` };
    const later = (a: unknown, b: unknown) => (typeof a === 'number' && typeof b === 'number' ? a > b : String(a) > String(b));
    const latest = rows.reduce<unknown>((max, row) => (max === undefined || later(row[x], max) ? row[x] : max), undefined);
    const at = rows.filter((row) => row[x] === latest);
    return { value: sum(at, y), caption: `at ${x} ${formatValue(latest)}` };
  }
}

function sum(rows: readonly Row[], column: string): number {
  return rows.reduce((total, row) => total + (toNumber(row[column]) ?? 0), 0);
}
