import type { ViewAnswer, ViewInfo } from '../api.js';
import { Chart, ColorMap, pointKey, timeSeries, toSeconds } from '../charts.js';
import { formatDuration, formatNumber, h, replace, sumSeqs } from '../dom.js';
import { CHART_ROWS, subscribeView, timeKey, viewList } from '../live.js';
import { rowsTable } from '../table.js';

/** The list of views, each linking to its page. */
export function viewsPage(root: HTMLElement): void {
  replace(root, h('h1', {}, 'Views'), h('p', { class: 'muted' }, 'Loading…'));
  viewList(0)
    .then((views) =>
      replace(
        root,
        h('h1', {}, 'Views'),
        views.length === 0
          ? h('p', {}, 'The config declares no views.')
          : h(
              'ul',
              { class: 'view-list' },
              views.map((view) =>
                h(
                  'li',
                  {},
                  h('a', { href: `/views/${encodeURIComponent(view.name)}` }, view.name),
                  ' over ',
                  h('code', {}, view.stream),
                  view.batch ? ` · batch v${view.batch.version}` : ' · no batch version yet',
                  h('pre', { class: 'sql' }, view.sql),
                ),
              ),
            ),
      ),
    )
    .catch((error: Error) => replace(root, h('h1', {}, 'Views'), h('p', { class: 'error' }, error.message)));
}

type Layer = 'merged' | 'batch' | 'speed';

/**
 * One view, live: a time-series chart of the chosen layer fed by server-sent events (a push a second, no reload),
 * where each series' speed-layer part is dashed and the batch watermark is marked; the rows as a table; filters
 * on the group-by columns; the layer switch.
 */
export function viewPage(root: HTMLElement, params: Record<string, string>): () => void {
  const name = params.view!;
  let stopped = false;
  let unsubscribe: () => void = () => {};
  const chart = new Chart('line', 320);
  replace(root, h('h1', {}, name), h('p', { class: 'muted' }, 'Loading…'));

  viewList(0)
    .then((views) => {
      if (stopped) return;
      const info = views.find((v) => v.name === name);
      if (!info) {
        replace(root, h('h1', {}, name), h('p', { class: 'error' }, `No view "${name}". `, h('a', { href: '/views' }, 'All views')));
        return;
      }
      unsubscribe = liveView(root, info, chart);
    })
    .catch((error: Error) => replace(root, h('h1', {}, name), h('p', { class: 'error' }, error.message)));

  return () => {
    stopped = true;
    unsubscribe();
    chart.destroy();
  };
}

function liveView(root: HTMLElement, initial: ViewInfo, chart: Chart): () => void {
  let info = initial;
  const time = timeKey(info);
  const measures = info.measures.map((m) => m.name);
  const seriesKey = info.keys.find((key) => key !== time) ?? null;
  const filterKeys = info.keys.filter((key) => key !== time);
  const state = { layer: 'merged' as Layer, measure: measures[0] ?? '', filters: new Map<string, string>() };
  const seen = new Map<string, Set<string>>(filterKeys.map((key) => [key, new Set<string>()]));
  const colors = new ColorMap();
  let updates = 0;
  let unsubscribe: () => void = () => {};

  const provenance = h('p', { class: 'provenance', 'data-testid': 'provenance' });
  const note = h('p', { class: 'note' });
  const tableBox = h('div');
  const errorBox = h('p', { class: 'error', hidden: true });
  const filterSelects = new Map<string, HTMLSelectElement>();

  const layerSwitch = h(
    'div',
    { class: 'segmented', role: 'radiogroup', 'aria-label': 'layer' },
    (['merged', 'batch', 'speed'] as Layer[]).map((layer) =>
      h('button', { type: 'button', 'data-layer': layer, class: layer === state.layer ? 'on' : '', onclick: () => setLayer(layer) }, layer),
    ),
  );
  const measureSelect = h(
    'select',
    { 'aria-label': 'measure', onchange: () => ((state.measure = measureSelect.value), redraw()) },
    measures.map((m) => h('option', { value: m }, m)),
  );
  const filters = h(
    'div',
    { class: 'filters' },
    filterKeys.map((key) => {
      const select = h('select', { 'data-filter': key, onchange: () => setFilter(key, select.value) }, h('option', { value: '' }, `all ${key}s`));
      filterSelects.set(key, select);
      return h('label', {}, `${key} `, select);
    }),
  );

  replace(
    root,
    h('h1', {}, info.name, h('span', { class: 'muted' }, ` over ${info.stream}`)),
    h('pre', { class: 'sql' }, info.sql),
    h('div', { class: 'toolbar' }, h('span', { class: 'muted' }, 'layer'), layerSwitch, h('label', {}, 'measure ', measureSelect), filters),
    provenance,
    errorBox,
    time === null ? h('p', { class: 'muted' }, 'This view has no time column to chart; its rows are below.') : chart.element,
    note,
    h('h2', {}, 'Rows'),
    tableBox,
  );

  let last: { answer: ViewAnswer; speed?: ViewAnswer } | null = null;

  const subscribe = () => {
    unsubscribe();
    const query: Record<string, string | number | undefined> = {
      // With the merged layer, the speed layer's answer too: it tells which points it contributes to.
      layer: state.layer === 'merged' ? 'merged,speed' : state.layer,
      limit: CHART_ROWS,
      // The latest first (the limit cuts the oldest), then by series, so the table's order holds still.
      order: time === null ? undefined : [`-${time}`, ...(seriesKey ? [seriesKey] : [])].join(','),
    };
    for (const [key, value] of state.filters) query[key] = value;
    unsubscribe = subscribeView(info.name, query, (answers) => {
      const answer = answers[state.layer];
      errorBox.hidden = answers.error === undefined;
      errorBox.textContent = answers.error ?? '';
      if (!answer) return;
      updates++;
      last = { answer, speed: state.layer === 'merged' ? answers.speed : undefined };
      // A new batch version moves the watermark: learn where it now ends on the time axis.
      if (answer.provenance.batchVersion !== (info.batch?.version ?? null)) {
        void viewList(0).then((views) => {
          const fresh = views.find((v) => v.name === info.name);
          if (fresh) info = fresh;
        });
      }
      redraw();
    });
  };

  const redraw = () => {
    if (!last) return;
    const { answer, speed } = last;
    for (const row of answer.rows) for (const [key, values] of seen) if (values.size < 200) values.add(String(row[key] ?? ''));
    refreshFilterOptions();
    const p = answer.provenance;
    replace(
      provenance,
      `batch ${p.batchVersion === null ? 'none yet' : `v${p.batchVersion}`} · W ${formatNumber(sumSeqs(p.watermark))} records · speed applied through ${formatNumber(sumSeqs(p.speedSeq))} · freshness ${formatDuration(p.freshnessMs)} · ${formatNumber(answer.rows.length)} rows · update ${updates}`,
    );
    chart.element.dataset.updates = String(updates);
    if (time !== null && state.measure) {
      const speedKeys = speed ? new Set(speed.rows.map((row) => pointKey(seriesKey ? row[seriesKey] : '', row[time]))) : undefined;
      const { data, shown, total } = timeSeries(answer.rows, { x: time, y: state.measure, series: seriesKey ?? undefined, speedKeys }, colors);
      const covers = info.batch?.maxEventTime ? toSeconds(info.batch.maxEventTime) : null;
      const marker = state.layer !== 'speed' && covers !== null && info.batch ? { x: covers, label: `batch v${info.batch.version} W` } : null;
      chart.update({ ...data, marker });
      replace(
        note,
        shown < total ? `Showing the ${shown} largest of ${total} ${seriesKey}s; filter to see others. ` : '',
        state.layer === 'merged' ? 'Solid: batch layer; dashed with points: the speed layer contributes (past the batch watermark W, or late events). ' : `The ${state.layer} layer alone. `,
        answer.rows.length >= CHART_ROWS ? `The latest ${CHART_ROWS} rows.` : '',
      );
    }
    replace(tableBox, rowsTable(answer.columns, answer.rows, 200));
  };

  const refreshFilterOptions = () => {
    for (const [key, select] of filterSelects) {
      const values = [...(seen.get(key) ?? [])].sort();
      if (select.options.length - 1 === values.length) continue;
      const chosen = select.value;
      replace(select, h('option', { value: '' }, `all ${key}s`), values.map((v) => h('option', { value: v }, v)));
      select.value = chosen;
    }
  };

  const setLayer = (layer: Layer) => {
    state.layer = layer;
    for (const button of layerSwitch.querySelectorAll('button')) button.classList.toggle('on', button.dataset.layer === layer);
    last = null;
    subscribe();
  };

  const setFilter = (key: string, value: string) => {
    if (value === '') state.filters.delete(key);
    else state.filters.set(key, value);
    last = null;
    subscribe();
  };

  subscribe();
  return () => unsubscribe();
}
