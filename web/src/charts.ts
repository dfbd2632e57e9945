import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Column, Row } from './api.js';
import { formatCompact, h, replace } from './dom.js';
import { isNumericType, isTimeType } from './table.js';

/** Series colours, assigned in order; a series keeps its colour for as long as its chart lives. */
export const PALETTE = ['#2563eb', '#16a34a', '#d97706', '#dc2626', '#7c3aed', '#0891b2', '#db2777', '#65a30d', '#ea580c', '#475569'];

export type ChartKind = 'line' | 'area' | 'bar';

/** One drawn series: its values line up with the chart's x values; null leaves a gap. */
export interface ChartSeries {
  readonly label: string;
  readonly color: string;
  readonly values: readonly (number | null)[];
  /** Drawn dashed with points: the speed layer's part of a series. */
  readonly speed?: boolean;
  /** Left out of the legend (the speed part of a series shares its batch part's entry). */
  readonly hideInLegend?: boolean;
}

export interface ChartData {
  /** Seconds since the epoch on a time axis, or category indexes with `categories`. */
  readonly x: readonly number[];
  readonly series: readonly ChartSeries[];
  /** Labels of a category axis: x values are their indexes. */
  readonly categories?: readonly string[];
  /** A vertical mark at an x value: the batch watermark. The part of the plot right of it is shaded. */
  readonly marker?: { readonly x: number; readonly label: string } | null;
}

/**
 * A uPlot chart that follows its container's width and takes new data without being rebuilt (it is rebuilt only
 * when its series change). Its element's `data-points` and `data-speed-points` count the points drawn (all, and
 * those of speed parts) and `data-marker` names the marker, for tests and the curious.
 */
export class Chart {
  readonly element: HTMLElement;
  private readonly plotArea: HTMLElement;
  private readonly legend: HTMLElement;
  private plot: uPlot | null = null;
  private signature = '';
  private marker: ChartData['marker'] = null;
  private categories: readonly string[] = [];
  private readonly resize: ResizeObserver;

  constructor(
    private readonly kind: ChartKind,
    private readonly height = 260,
  ) {
    this.plotArea = h('div', { class: 'plot' });
    this.legend = h('div', { class: 'legend' });
    this.element = h('div', { class: 'chart', 'data-points': 0, 'data-speed-points': 0 }, this.plotArea, this.legend);
    this.resize = new ResizeObserver(() => this.plot?.setSize({ width: this.width(), height: this.height }));
    this.resize.observe(this.element);
  }

  update(data: ChartData): void {
    this.marker = data.marker ?? null;
    this.categories = data.categories ?? [];
    const signature = JSON.stringify([data.categories !== undefined, data.series.map((s) => [s.label, s.color, s.speed])]);
    const aligned: uPlot.AlignedData = [data.x as number[], ...data.series.map((s) => s.values as (number | null)[])];
    if (this.plot === null || signature !== this.signature) {
      this.plot?.destroy();
      this.signature = signature;
      this.plot = new uPlot(this.options(data), aligned, this.plotArea);
      this.drawLegend(data.series);
    } else {
      this.plot.setData(aligned);
    }
    const count = (series: readonly ChartSeries[]) => series.reduce((sum, s) => sum + s.values.filter((v) => v !== null).length, 0);
    this.element.dataset.points = String(count(data.series));
    this.element.dataset.speedPoints = String(count(data.series.filter((s) => s.speed)));
    this.element.dataset.marker = data.marker?.label ?? '';
  }

  destroy(): void {
    this.resize.disconnect();
    this.plot?.destroy();
    this.plot = null;
  }

  private width(): number {
    return Math.max(200, this.element.clientWidth || 600);
  }

  private options(data: ChartData): uPlot.Options {
    const category = data.categories !== undefined;
    const bars = uPlot.paths.bars!({ size: [0.7, 48], align: 0 });
    return {
      width: this.width(),
      height: this.height,
      legend: { show: false },
      cursor: { drag: { x: true, y: false } },
      scales: {
        // A time axis reaches the marker too: the watermark usually falls inside the latest bucket, right of its start.
        x: category
          ? { time: false, range: (_u, min, max) => [min - 0.5, max + 0.5] }
          : {
              time: true,
              range: (_u, min, max) => {
                const end = Math.max(max, this.marker?.x ?? max);
                return end > min ? [min, end] : [min - 60, min + 60];
              },
            },
        y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.08 : 1] },
      },
      axes: [
        category
          ? {
              splits: () => this.categories.map((_, i) => i),
              values: (_u, splits) => splits.map((i) => this.categories[i] ?? ''),
              // Category names are long ("/product/1"): slanted, they do not run into each other.
              rotate: -30,
              size: 64,
              gap: 4,
            }
          : {},
        { values: (_u, splits) => splits.map((v) => formatCompact(v)), size: 56 },
      ],
      series: [
        {},
        ...data.series.map(
          (s): uPlot.Series => ({
            label: s.label,
            stroke: s.color,
            width: s.speed ? 2.5 : 2,
            dash: s.speed ? [6, 4] : undefined,
            fill: this.kind === 'area' ? `${s.color}33` : this.kind === 'bar' ? `${s.color}cc` : undefined,
            paths: this.kind === 'bar' ? bars : undefined,
            // The speed part shows its points; bars have none; other lines show them when sparse (uPlot's default).
            points: { show: this.kind === 'bar' ? false : s.speed ? true : undefined, size: 6, fill: s.color },
            spanGaps: false,
          }),
        ),
      ],
      hooks: { draw: [(u) => this.drawMarker(u)] },
    };
  }

  /** The batch watermark: a dashed vertical line, the speed layer's side shaded, a label on top. */
  private drawMarker(u: uPlot): void {
    const marker = this.marker;
    if (!marker) return;
    const left = u.valToPos(marker.x, 'x', true);
    const { top, height, width } = u.bbox;
    const right = u.bbox.left + width;
    if (left < u.bbox.left || left > right) return;
    const ctx = u.ctx;
    ctx.save();
    ctx.fillStyle = 'rgba(217, 119, 6, 0.07)';
    ctx.fillRect(left, top, right - left, height);
    ctx.strokeStyle = '#d97706';
    ctx.lineWidth = 1.5 * devicePixelRatio;
    ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
    ctx.beginPath();
    ctx.moveTo(left, top);
    ctx.lineTo(left, top + height);
    ctx.stroke();
    ctx.fillStyle = '#92400e';
    ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
    ctx.textAlign = left + 160 * devicePixelRatio > right ? 'right' : 'left';
    ctx.fillText(marker.label, left + (ctx.textAlign === 'right' ? -4 : 4) * devicePixelRatio, top + 12 * devicePixelRatio);
    ctx.restore();
  }

  private drawLegend(series: readonly ChartSeries[]): void {
    replace(
      this.legend,
      series
        .filter((s) => !s.hideInLegend)
        .map((s) => h('span', { class: 'key' }, h('i', { style: `background:${s.color}` }), s.label)),
    );
  }
}

/** A column a quick chart can put on its x axis: a time, else the first text column. */
export function pickAxes(columns: readonly Column[]): { x: Column | null; y: Column | null } {
  const x = columns.find((c) => isTimeType(c.type)) ?? columns.find((c) => !isNumericType(c.type)) ?? null;
  const y = columns.find((c) => c !== x && isNumericType(c.type)) ?? null;
  return { x, y };
}

/** A value of a numeric column as a number (BIGINT and wider arrive as strings). */
export function toNumber(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  const n = typeof value === 'number' ? value : Number(value);
  return Number.isFinite(n) ? n : null;
}

/** A time value (ISO-8601 string or date) as seconds since the epoch, uPlot's time unit. */
export function toSeconds(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  const ms = Date.parse(String(value));
  return Number.isNaN(ms) ? null : ms / 1000;
}

export interface SeriesOptions {
  readonly x: string;
  readonly y: string;
  readonly series?: string;
  /** Most series drawn; the rest (smallest totals) are left out. */
  readonly maxSeries?: number;
  /** Keys `series|x` of points the speed layer contributes to: drawn as the dashed speed part. */
  readonly speedKeys?: ReadonlySet<string>;
  /** Stack the series (bar charts): each drawn as the running total, the tallest first so all stay visible. */
  readonly stack?: boolean;
}

/** The key of a point in {@link SeriesOptions.speedKeys}. */
export function pointKey(series: unknown, x: unknown): string {
  return `${String(series ?? '')}|${String(x)}`;
}

/**
 * Rows as time series: one per value of `series` (one in all without it), summed per x when several rows share
 * one. With `speedKeys`, each series splits in two: its batch part (solid) and its speed part (dashed), joined
 * at the last batch point before each speed run so the line stays continuous.
 */
export function timeSeries(rows: readonly Row[], options: SeriesOptions, colors: ColorMap): { data: ChartData; shown: number; total: number } {
  const byX = new Map<number, Map<string, { value: number; speed: boolean }>>();
  const totals = new Map<string, number>();
  for (const row of rows) {
    const x = toSeconds(row[options.x]);
    const y = toNumber(row[options.y]);
    if (x === null || y === null) continue;
    const name = options.series ? String(row[options.series] ?? 'NULL') : options.y;
    const speed = options.speedKeys?.has(pointKey(options.series ? row[options.series] : '', row[options.x])) ?? false;
    let points = byX.get(x);
    if (!points) byX.set(x, (points = new Map()));
    const point = points.get(name);
    points.set(name, { value: (point?.value ?? 0) + y, speed: (point?.speed ?? false) || speed });
    totals.set(name, (totals.get(name) ?? 0) + Math.abs(y));
  }
  const names = [...totals.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, options.maxSeries ?? 8)
    .map(([name]) => name)
    .sort();
  const xs = [...byX.keys()].sort((a, b) => a - b);
  const series: ChartSeries[] = [];
  for (const name of names) {
    const color = colors.get(name);
    const values = xs.map((x) => byX.get(x)?.get(name) ?? null);
    if (!options.speedKeys) {
      series.push({ label: name, color, values: values.map((p) => p?.value ?? null) });
      continue;
    }
    const batch = values.map((p) => (p && !p.speed ? p.value : null));
    const speed: (number | null)[] = new Array<number | null>(values.length).fill(null);
    // From the right: a batch point whose next point is a speed point also starts the speed part, joining the two.
    let nextIsSpeed = false;
    for (let i = values.length - 1; i >= 0; i--) {
      const p = values[i];
      if (!p) continue;
      if (p.speed || nextIsSpeed) speed[i] = p.value;
      nextIsSpeed = p.speed;
    }
    series.push({ label: name, color, values: batch });
    if (speed.some((v) => v !== null)) series.push({ label: `${name} (speed)`, color, values: speed, speed: true, hideInLegend: true });
  }
  if (options.stack) {
    const running = xs.map(() => 0);
    const stacked = series.map((s) => ({ ...s, values: s.values.map((v, i) => (running[i]! += v ?? 0)) }));
    return { data: { x: xs, series: stacked.reverse() }, shown: names.length, total: totals.size };
  }
  return { data: { x: xs, series }, shown: names.length, total: totals.size };
}

/** Rows summed per category (x), largest first: a bar chart of a non-time column. */
export function categorySeries(rows: readonly Row[], x: string, y: string, color: string, max = 20): ChartData {
  const sums = new Map<string, number>();
  for (const row of rows) {
    const value = toNumber(row[y]);
    if (value !== null) sums.set(String(row[x] ?? 'NULL'), (sums.get(String(row[x] ?? 'NULL')) ?? 0) + value);
  }
  const top = [...sums.entries()].sort((a, b) => b[1] - a[1]).slice(0, max);
  return {
    x: top.map((_, i) => i),
    categories: top.map(([name]) => name),
    series: [{ label: y, color, values: top.map(([, value]) => value) }],
  };
}

/** Stable colours per series name. */
export class ColorMap {
  private readonly colors = new Map<string, string>();
  get(name: string): string {
    let color = this.colors.get(name);
    if (!color) this.colors.set(name, (color = PALETTE[this.colors.size % PALETTE.length]!));
    return color;
  }
}
