import { api, type StreamsAnswer, type ViewInfo } from '../api.js';
import { Chart } from '../charts.js';
import { formatBytes, formatDuration, formatNumber, h, replace, sumSeqs } from '../dom.js';
import { viewList } from '../live.js';

const POLL_MS = 1000;
/** Seconds of ingest rate the sparklines keep. */
const RATE_HISTORY = 120;

/**
 * The overview: the three layers as the architecture diagram with their live figures, then per stream its ingest
 * rate and counts, delivery lag and lake, and per view its batch version, watermark and speed-layer lag.
 * Polls `GET /v1/streams` every second and `GET /v1/views` every few seconds.
 */
export function overviewPage(root: HTMLElement): () => void {
  const diagram = new Diagram();
  const streamsBox = h('div', { class: 'cards' });
  const viewsBox = h('div');
  const error = h('p', { class: 'error', hidden: true });
  replace(
    root,
    h('h1', {}, 'Overview'),
    h('p', { class: 'lead' }, 'Producers write to the stream log; delivery lands it in the master dataset, where the batch layer computes view versions; the speed layer covers what the batch has not reached yet; serving merges both.'),
    error,
    diagram.element,
    h('h2', {}, 'Streams'),
    streamsBox,
    h('h2', {}, 'Views'),
    viewsBox,
  );

  const cards = new Map<string, { figures: HTMLElement; chart: Chart; t: number[]; v: number[] }>();
  let views: ViewInfo[] = [];
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const tick = async () => {
    try {
      const [status, list] = await Promise.all([api<StreamsAnswer>('/v1/streams'), viewList(5000)]);
      if (stopped) return;
      views = list;
      error.hidden = true;
      draw(status);
    } catch (e) {
      if (stopped) return;
      error.hidden = false;
      error.textContent = `Cannot reach Strata: ${(e as Error).message}`;
    }
    if (!stopped) timer = setTimeout(() => void tick(), POLL_MS);
  };

  const draw = (status: StreamsAnswer) => {
    const now = Date.now();
    diagram.update(status, views, now);
    for (const stream of status.streams) {
      let card = cards.get(stream.name);
      if (!card) {
        // Built once per stream: the figures are redrawn in place, the rate chart takes new data.
        card = { figures: h('div', { class: 'figures' }), chart: new Chart('area', 120), t: [], v: [] };
        cards.set(stream.name, card);
        streamsBox.appendChild(
          h('section', { class: 'card', 'data-stream': stream.name }, h('h3', {}, stream.name, h('span', { class: 'muted' }, ` · ${stream.shards.length} shards`)), card.figures, card.chart.element),
        );
      }
      card.t.push(now / 1000);
      card.v.push(stream.recordsPerSecond);
      if (card.t.length > RATE_HISTORY) {
        card.t.shift();
        card.v.shift();
      }
      const logged = stream.shards.reduce((sum, shard) => sum + Number(shard.lastSeq), 0);
      const lagRecords = stream.shards.reduce((sum, shard) => sum + shard.deliveryLagRecords, 0);
      const lagSeconds = Math.max(0, ...stream.shards.map((shard) => shard.deliveryLagSeconds));
      replace(
        card.figures,
        figure('records/s', formatNumber(Math.round(stream.recordsPerSecond)), 'rate'),
        figure('accepted', formatNumber(stream.accepted), 'accepted'),
        figure('in the log', formatNumber(logged), 'logged'),
        figure('refused', formatNumber(stream.failed), 'failed'),
        stream.quarantined === undefined ? null : figure('quarantined', formatNumber(stream.quarantined), 'quarantined'),
        figure('delivery lag', `${formatNumber(lagRecords)} rec · ${lagSeconds.toFixed(1)} s`, 'delivery-lag'),
        figure('lake', `${formatNumber(stream.lake.rows)} rows · ${formatNumber(stream.lake.chunks)} chunks · ${formatBytes(stream.lake.bytes)}`, 'lake'),
      );
      card.chart.update({ x: card.t, series: [{ label: 'records/s', color: '#2563eb', values: card.v }] });
    }
    replace(viewsBox, viewsTable(status, views, now));
  };

  void tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
    for (const card of cards.values()) card.chart.destroy();
  };
}

function figure(label: string, value: string, name: string): HTMLElement {
  return h('div', { class: 'figure', 'data-figure': name }, h('span', { class: 'value' }, value), h('span', { class: 'label' }, label));
}

/** Records of the view's stream the speed layer has not applied yet. */
function speedLag(status: StreamsAnswer, view: StreamsAnswer['views'][number]): number {
  const stream = status.streams.find((s) => s.name === view.stream);
  if (!stream) return 0;
  return stream.shards.reduce((sum, shard) => sum + Math.max(0, Number(shard.lastSeq) - Number(view.speedSeq[shard.shard] ?? 0)), 0);
}

function viewsTable(status: StreamsAnswer, views: ViewInfo[], now: number): HTMLElement {
  if (status.views.length === 0) return h('p', { class: 'muted' }, 'The config declares no views.');
  return h(
    'table',
    { class: 'rows' },
    h('thead', {}, h('tr', {}, ['view', 'stream', 'batch version', 'age of the version', 'batch covers up to', 'watermark W', 'speed past W', 'speed lag'].map((t) => h('th', {}, t)))),
    h(
      'tbody',
      {},
      status.views.map((view) => {
        const info = views.find((v) => v.name === view.view);
        const w = sumSeqs(view.watermark);
        const speed = sumSeqs(view.speedSeq);
        return h(
          'tr',
          { 'data-view': view.view },
          h('td', {}, h('a', { href: `/views/${encodeURIComponent(view.view)}` }, view.view)),
          h('td', {}, view.stream),
          h('td', { class: 'num' }, view.batchVersion === null ? 'none yet' : `v${view.batchVersion}`),
          h('td', { class: 'num' }, info?.batch ? formatDuration(now - Date.parse(info.batch.createdAt)) : '–'),
          h('td', {}, info?.batch?.maxEventTime ? new Date(info.batch.maxEventTime).toLocaleString() : '–'),
          h('td', { class: 'num', title: JSON.stringify(view.watermark) }, `${formatNumber(w)} rec`),
          h('td', { class: 'num' }, `${formatNumber(Math.max(0, speed - w))} rec`),
          h('td', { class: 'num' }, `${formatNumber(speedLag(status, view))} rec`),
        );
      }),
    ),
  );
}

const SVG = 'http://www.w3.org/2000/svg';

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attributes: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

/** Boxes of the diagram: position and colour; their figure lines are filled in on each update. */
const BOXES = {
  producers: { x: 10, y: 95, w: 150, title: 'Producers', color: '#64748b' },
  log: { x: 200, y: 95, w: 170, title: 'Stream log', color: '#2563eb' },
  lake: { x: 430, y: 10, w: 200, title: 'Master dataset', color: '#0891b2' },
  batch: { x: 670, y: 10, w: 160, title: 'Batch layer', color: '#16a34a' },
  speed: { x: 560, y: 180, w: 200, title: 'Speed layer', color: '#d97706' },
  serving: { x: 860, y: 95, w: 115, title: 'Serving', color: '#7c3aed' },
} as const;
type BoxName = keyof typeof BOXES;
const BOX_HEIGHT = 72;

/** The Lambda architecture as an SVG diagram whose boxes carry live figures. */
class Diagram {
  readonly element: HTMLElement;
  private readonly lines = new Map<string, SVGTextElement>();

  constructor() {
    const root = svg('svg', { viewBox: '0 0 980 260', class: 'diagram', role: 'img', 'aria-label': 'the three layers with their live figures' });
    const defs = svg('defs', {});
    const marker = svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
    marker.appendChild(svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#94a3b8' }));
    defs.appendChild(marker);
    root.appendChild(defs);
    const edge = (from: BoxName, to: BoxName, label?: string, id?: string) => {
      const a = BOXES[from];
      const b = BOXES[to];
      const x1 = a.x + a.w;
      const y1 = a.y + BOX_HEIGHT / 2;
      const x2 = b.x;
      const y2 = b.y + BOX_HEIGHT / 2;
      const mid = (x1 + x2) / 2;
      root.appendChild(svg('path', { d: `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2 - 2} ${y2}`, fill: 'none', stroke: '#94a3b8', 'stroke-width': 2, 'marker-end': 'url(#arrow)' }));
      if (label !== undefined && id !== undefined) {
        const text = svg('text', { x: mid, y: (y1 + y2) / 2 - 8, 'text-anchor': 'middle', class: 'edge-label' }, label);
        this.lines.set(id, text);
        root.appendChild(text);
      }
    };
    edge('producers', 'log');
    edge('log', 'lake');
    edge('lake', 'batch');
    edge('batch', 'serving');
    edge('log', 'speed', 'past W', 'edge-speed');
    edge('speed', 'serving');
    for (const [name, box] of Object.entries(BOXES)) {
      const group = svg('g', { 'data-box': name });
      group.appendChild(svg('rect', { x: box.x, y: box.y, width: box.w, height: BOX_HEIGHT, rx: 8, fill: `${box.color}14`, stroke: box.color, 'stroke-width': 1.5 }));
      group.appendChild(svg('text', { x: box.x + 10, y: box.y + 20, class: 'box-title', fill: box.color }, box.title));
      for (const line of [1, 2]) {
        const text = svg('text', { x: box.x + 10, y: box.y + 20 + line * 20, class: 'box-figure' }, '');
        this.lines.set(`${name}-${line}`, text);
        group.appendChild(text);
      }
      root.appendChild(group);
    }
    this.element = h('div', { class: 'diagram-wrap' });
    this.element.appendChild(root);
  }

  update(status: StreamsAnswer, views: ViewInfo[], now: number): void {
    const sum = (f: (s: StreamsAnswer['streams'][number]) => number) => status.streams.reduce((total, s) => total + f(s), 0);
    const shards = status.streams.flatMap((s) => s.shards);
    const logged = shards.reduce((total, shard) => total + Number(shard.lastSeq), 0);
    const lag = shards.reduce((total, shard) => total + shard.deliveryLagRecords, 0);
    const lagSeconds = Math.max(0, ...shards.map((shard) => shard.deliveryLagSeconds));
    const versions = status.views.filter((v) => v.batchVersion !== null);
    const newest = views.map((v) => v.batch?.createdAt).filter((t): t is string => !!t).map(Date.parse);
    const speedLagTotal = status.views.reduce((total, view) => total + speedLag(status, view), 0);
    const pastW = status.views.reduce((total, view) => total + Math.max(0, sumSeqs(view.speedSeq) - sumSeqs(view.watermark)), 0);
    this.set('producers-1', `${formatNumber(Math.round(sum((s) => s.recordsPerSecond)))} records/s`);
    this.set('producers-2', `${formatNumber(sum((s) => s.accepted))} accepted`);
    this.set('log-1', `${formatNumber(logged)} records`);
    this.set('log-2', `${status.streams.length} stream(s), ${shards.length} shards`);
    this.set('lake-1', `${formatNumber(sum((s) => s.lake.rows))} rows · ${formatNumber(sum((s) => s.lake.chunks))} chunks`);
    this.set('lake-2', `delivery lag ${formatNumber(lag)} rec · ${lagSeconds.toFixed(1)} s`);
    this.set('batch-1', versions.length === 0 ? 'no version yet' : versions.map((v) => `${v.view} v${v.batchVersion}`).join(', '));
    this.set('batch-2', newest.length === 0 ? '' : `newest ${formatDuration(now - Math.max(...newest))} old`);
    this.set('edge-speed', `${formatNumber(pastW)} rec past W`);
    this.set('speed-1', `lag ${formatNumber(speedLagTotal)} records`);
    this.set('speed-2', `${status.views.reduce((total, v) => total + v.ranges, 0)} micro-batch ranges`);
    this.set('serving-1', `${status.views.length} view(s)`);
    this.set('serving-2', 'batch + speed');
  }

  private set(id: string, text: string): void {
    const line = this.lines.get(id);
    if (line && line.textContent !== text) line.textContent = text;
  }
}
