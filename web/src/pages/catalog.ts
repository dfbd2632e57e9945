import { api, ApiError, type BatchRun, type TableDetail, type TableInfo, type ViewInfo, type ViewVersion } from '../api.js';
import { formatBytes, formatNumber, h, replace, sumSeqs } from '../dom.js';
import { viewList } from '../live.js';

const RUNS_KEY = 'strata.batch.runs';
const RUNS_KEPT = 20;
const POLL_MS = 1000;

/** Ids of the batch runs started from this browser, newest first (the API lists a run by its id only). */
function loadRunIds(): string[] {
  try {
    const parsed = JSON.parse(localStorage.getItem(RUNS_KEY) ?? '[]') as unknown;
    return Array.isArray(parsed) ? parsed.filter((id): id is string => typeof id === 'string') : [];
  } catch {
    return [];
  }
}

/**
 * The catalog browser: tables (with `/catalog/{table}` showing schema versions and their changes, partitions
 * and chunks), every view's versions with their watermarks, and batch runs with their progress and a button to
 * start one.
 */
export function catalogPage(root: HTMLElement, params: Record<string, string>): () => void {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const tablesBox = h('div', { 'data-testid': 'tables' }, h('p', { class: 'muted' }, 'Loading…'));
  const detailBox = h('div');
  const versionsBox = h('div');
  const runsBox = h('div', { class: 'runs' });
  const runIds = loadRunIds();
  const runs = new Map<string, BatchRun | { id: string; error: string }>();

  const viewSelect = h('select', { 'aria-label': 'views to run' }, h('option', { value: '' }, 'every view'));
  const fromScratch = h('input', { type: 'checkbox' });
  const startMessage = h('span', { class: 'status' });
  const startButton = h('button', { type: 'button', class: 'primary', onclick: () => void start() }, 'Start a batch run');

  replace(
    root,
    h('h1', {}, 'Catalog'),
    h('h2', {}, 'Tables'),
    tablesBox,
    detailBox,
    h('h2', {}, 'Batch runs'),
    h('div', { class: 'toolbar' }, startButton, h('label', {}, 'of ', viewSelect), h('label', {}, fromScratch, ' from scratch'), startMessage),
    runsBox,
    h('h2', {}, 'View versions'),
    versionsBox,
  );

  const loadTables = async () => {
    const { tables } = await api<{ tables: TableInfo[] }>('/v1/catalog/tables');
    replace(tablesBox, tablesTable(tables, params.table));
  };

  const loadDetail = async (name: string) => {
    try {
      replace(detailBox, tableDetail(await api<TableDetail>(`/v1/catalog/tables/${encodeURIComponent(name)}`)));
    } catch (error) {
      replace(detailBox, h('p', { class: 'error' }, (error as Error).message));
    }
  };

  const loadVersions = async () => {
    const views = await viewList(0);
    if (viewSelect.options.length === 1) for (const view of views) viewSelect.appendChild(h('option', { value: view.name }, view.name));
    const all = await Promise.all(views.map(async (view) => [view, (await api<{ versions: ViewVersion[] }>(`/v1/views/${encodeURIComponent(view.name)}/versions`)).versions] as const));
    replace(versionsBox, all.length === 0 ? h('p', { class: 'muted' }, 'The config declares no views.') : all.map(([view, versions]) => versionsTable(view, versions)));
  };

  const pollRuns = async () => {
    await Promise.all(
      runIds.map(async (id) => {
        const known = runs.get(id);
        // Finished runs (and runs the server no longer knows) do not change any more.
        if (known && !('state' in known && known.state === 'running')) return;
        try {
          runs.set(id, await api<BatchRun>(`/v1/batch/runs/${encodeURIComponent(id)}`));
        } catch (error) {
          // A run of an earlier server process, or one forgotten: shown as such.
          runs.set(id, { id, error: error instanceof ApiError && error.status === 404 ? 'no longer known to the server' : (error as Error).message });
        }
      }),
    );
    const running = [...runs.values()].some((run) => 'state' in run && run.state === 'running');
    drawRuns();
    return running;
  };

  const drawRuns = () =>
    replace(
      runsBox,
      runIds.length === 0
        ? h('p', { class: 'muted' }, 'No run started from this browser yet. Views with "every" in the config also run on their schedule; their versions are listed below.')
        : h(
            'table',
            { class: 'rows' },
            h('thead', {}, h('tr', {}, ['run', 'views', 'state', 'progress', 'versions', 'started', 'finished'].map((t) => h('th', {}, t)))),
            h(
              'tbody',
              {},
              runIds.map((id) => {
                const run = runs.get(id);
                if (!run || !('state' in run)) return h('tr', {}, h('td', {}, id), h('td', { colspan: 6, class: 'muted' }, run?.error ?? '…'));
                return h(
                  'tr',
                  { 'data-run': id, 'data-state': run.state },
                  h('td', {}, h('code', {}, id.slice(0, 8))),
                  h('td', {}, run.views.join(', '), run.fromScratch ? ' (from scratch)' : ''),
                  h('td', { class: `state ${run.state}` }, run.state, run.error ? h('div', { class: 'error' }, run.error) : null),
                  h('td', {}, h('progress', { max: 1, value: run.progress }), ` ${Math.round(run.progress * 100)} %`),
                  h('td', {}, Object.entries(run.version).map(([view, v]) => `${view} v${v}`).join(', ')),
                  h('td', {}, new Date(run.startedAt).toLocaleTimeString()),
                  h('td', {}, run.finishedAt ? new Date(run.finishedAt).toLocaleTimeString() : ''),
                );
              }),
            ),
          ),
    );

  const start = async () => {
    startButton.disabled = true;
    startMessage.className = 'status';
    startMessage.textContent = '';
    try {
      const body: { views?: string[]; fromScratch?: boolean } = {};
      if (viewSelect.value) body.views = [viewSelect.value];
      if (fromScratch.checked) body.fromScratch = true;
      const { id } = await api<{ id: string }>('/v1/batch/runs', { json: body });
      runIds.unshift(id);
    } catch (error) {
      startMessage.className = 'status error';
      startMessage.textContent = (error as Error).message;
      // 409: a run for those views is running already; follow it.
      const id = error instanceof ApiError && error.status === 409 ? (error.body as { id?: string } | null)?.id : undefined;
      if (id && !runIds.includes(id)) runIds.unshift(id);
    } finally {
      runIds.length = Math.min(runIds.length, RUNS_KEPT);
      localStorage.setItem(RUNS_KEY, JSON.stringify(runIds));
      startButton.disabled = false;
      void loop(true);
    }
  };

  let looping = false;
  /**
   * Polls runs while one is running, then refreshes tables and versions once, as a finished run changed them
   * (`started`: a run was just started, and may have finished before the first poll).
   */
  const loop = async (started = false) => {
    if (looping || stopped) return;
    looping = true;
    try {
      let ran = false;
      while (!stopped && (await pollRuns())) {
        ran = true;
        await new Promise((resolve) => (timer = setTimeout(resolve, POLL_MS)));
      }
      if ((ran || started) && !stopped) await Promise.all([loadTables(), loadVersions()]);
    } finally {
      looping = false;
    }
  };

  Promise.all([loadTables(), loadVersions(), params.table ? loadDetail(params.table) : null, loop()]).catch((error: Error) => {
    if (!stopped) replace(tablesBox, h('p', { class: 'error' }, error.message));
  });
  drawRuns();

  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function tablesTable(tables: TableInfo[], selected: string | undefined): HTMLElement {
  if (tables.length === 0) return h('p', { class: 'muted' }, 'No tables yet.');
  return h(
    'table',
    { class: 'rows' },
    h('thead', {}, h('tr', {}, ['table', 'kind', 'schema', 'columns', 'chunks', 'rows', 'bytes', 'created'].map((t) => h('th', {}, t)))),
    h(
      'tbody',
      {},
      tables.map((table) =>
        h(
          'tr',
          { 'data-table': table.name, class: table.name === selected ? 'selected' : '' },
          h('td', {}, h('a', { href: `/catalog/${encodeURIComponent(table.name)}` }, table.name)),
          h('td', {}, table.kind),
          h('td', { class: 'num' }, `v${table.schemaVersion}`),
          h('td', {}, table.columns.map((c) => `${c.name} ${c.type}${c.nullable ? '?' : ''}`).join(', ')),
          h('td', { class: 'num' }, formatNumber(table.chunks)),
          h('td', { class: 'num' }, formatNumber(table.rows)),
          h('td', { class: 'num' }, formatBytes(table.bytes)),
          h('td', {}, new Date(table.createdAt).toLocaleString()),
        ),
      ),
    ),
  );
}

/** Chunks listed at most; the newest are kept. */
const CHUNKS_SHOWN = 200;

function tableDetail(table: TableDetail): HTMLElement {
  const chunks = table.chunkList.slice(-CHUNKS_SHOWN).reverse();
  return h(
    'section',
    { class: 'detail', 'data-detail': table.name },
    h('h2', {}, `Table ${table.name}`),
    h('h3', {}, 'Schema versions'),
    h(
      'table',
      { class: 'rows' },
      h('thead', {}, h('tr', {}, ['version', 'columns', 'change', 'created'].map((t) => h('th', {}, t)))),
      h(
        'tbody',
        {},
        table.schemaVersions.map((version) =>
          h(
            'tr',
            {},
            h('td', { class: 'num' }, `v${version.version}`),
            h('td', {}, version.columns.map((c) => `${c.name} ${c.type}${c.nullable ? '?' : ''}`).join(', ')),
            h('td', {}, describeChange(version.change)),
            h('td', {}, new Date(version.createdAt).toLocaleString()),
          ),
        ),
      ),
    ),
    h('h3', {}, 'Partitions'),
    h(
      'table',
      { class: 'rows' },
      h('thead', {}, h('tr', {}, ['partition', 'chunks', 'rows', 'bytes', 'event time from', 'to'].map((t) => h('th', {}, t)))),
      h(
        'tbody',
        {},
        table.partitions.map((p) =>
          h(
            'tr',
            {},
            h('td', {}, p.partition),
            h('td', { class: 'num' }, formatNumber(p.chunks)),
            h('td', { class: 'num' }, formatNumber(p.rows)),
            h('td', { class: 'num' }, formatBytes(p.bytes)),
            h('td', {}, p.minTime ?? ''),
            h('td', {}, p.maxTime ?? ''),
          ),
        ),
      ),
    ),
    h('h3', {}, `Chunks (${formatNumber(table.chunkList.length)}${table.chunkList.length > CHUNKS_SHOWN ? `; the newest ${CHUNKS_SHOWN}` : ''})`),
    h(
      'table',
      { class: 'rows' },
      h('thead', {}, h('tr', {}, ['id', 'partition', 'shard', 'seqs', 'rows', 'bytes', 'file'].map((t) => h('th', {}, t)))),
      h(
        'tbody',
        {},
        chunks.map((chunk) =>
          h(
            'tr',
            {},
            h('td', { class: 'num' }, String(chunk.id)),
            h('td', {}, chunk.partition),
            h('td', { class: 'num' }, chunk.shard ?? 'import'),
            h('td', { class: 'num' }, chunk.firstSeq === null ? '' : `${chunk.firstSeq}–${chunk.lastSeq}`),
            h('td', { class: 'num' }, formatNumber(chunk.rows)),
            h('td', { class: 'num' }, formatBytes(chunk.bytes)),
            h('td', {}, h('code', {}, chunk.key)),
          ),
        ),
      ),
    ),
  );
}

function describeChange(change: TableDetail['schemaVersions'][number]['change']): string {
  if (change === null) return 'first version';
  const parts = [
    change.added.length > 0 ? `added ${change.added.join(', ')}` : '',
    ...change.widened.map((w) => `${w.column} ${w.from} → ${w.to}`),
    change.relaxed.length > 0 ? `nullable: ${change.relaxed.join(', ')}` : '',
  ].filter(Boolean);
  return parts.join('; ') || 'no change';
}

function versionsTable(view: ViewInfo, versions: ViewVersion[]): HTMLElement {
  return h(
    'section',
    { 'data-view-versions': view.name },
    h('h3', {}, h('a', { href: `/views/${encodeURIComponent(view.name)}` }, view.name)),
    versions.length === 0
      ? h('p', { class: 'muted' }, 'No batch version yet: start a batch run.')
      : h(
          'table',
          { class: 'rows' },
          h('thead', {}, h('tr', {}, ['version', 'watermark W (per shard)', 'records under W', 'kind', 'files', 'rows', 'bytes', 'published'].map((t) => h('th', {}, t)))),
          h(
            'tbody',
            {},
            versions.map((version) => {
              const w = version.watermark[view.stream] ?? {};
              return h(
                'tr',
                { class: version.current ? 'current' : '' },
                h('td', { class: 'num' }, `v${version.version}${version.current ? ' (current)' : ''}`),
                h('td', {}, Object.entries(w).map(([shard, seq]) => `${shard}:${seq}`).join(' ')),
                h('td', { class: 'num' }, formatNumber(sumSeqs(w))),
                h('td', {}, version.fromScratch ? 'from scratch' : 'incremental'),
                h('td', { class: 'num' }, formatNumber(version.files)),
                h('td', { class: 'num' }, formatNumber(version.rows)),
                h('td', { class: 'num' }, formatBytes(version.bytes)),
                h('td', {}, new Date(version.createdAt).toLocaleString()),
              );
            }),
          ),
        ),
  );
}
