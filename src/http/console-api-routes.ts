import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { DashboardConfig } from '../config/index.js';
import { ConfigError, MalformedInputError, NotFoundError, OverloadedError, StrataError } from '../errors.js';
import { parseViewRequest, serveView, VIEW_LAYERS, type ViewLayer, type ViewRequest } from '../serving/index.js';
import type { Strata } from '../strata.js';
import type { ViewDefinition } from '../views/index.js';
import { principalOf } from './auth.js';

/** Live view streams open at once, across clients; one more answers 503 rather than loading the speed layer without bound. */
export const MAX_EVENT_STREAMS = 32;
/** How often a live view stream pushes its answers. */
export const EVENT_INTERVAL_MS = 1000;
/** Bytes a slow client may leave unread before its stream skips pushes (it gets the next answer once it catches up). */
const MAX_UNREAD_BYTES = 8 * 1024 * 1024;

/**
 * Checks each dashboard panel against its view's output columns, which are known only once the views compile:
 * `x`, `y` and `series` must name columns of the view. Throws {@link ConfigError} naming every dashboard and
 * panel at fault (the config layer already checked that each panel's view exists).
 */
export function checkDashboards(dashboards: ReadonlyMap<string, DashboardConfig>, views: ReadonlyMap<string, ViewDefinition>): void {
  const problems: string[] = [];
  for (const dashboard of dashboards.values()) {
    dashboard.panels.forEach((panel, i) => {
      const view = views.get(panel.view);
      if (!view) return;
      const columns = outputColumns(view);
      for (const role of ['x', 'y', 'series'] as const) {
        const column = panel[role];
        if (column !== undefined && !columns.includes(column)) {
          problems.push(
            `dashboards.${dashboard.name}.panels.${i}.${role}: "${column}" is not a column of view "${view.name}" (columns: ${columns.join(', ')})`,
          );
        }
      }
    });
  }
  if (problems.length > 0) throw new ConfigError(`config: ${problems.join('; ')}`);
}

/** A view's output columns: its group-by columns, then its measures. */
function outputColumns(view: ViewDefinition): string[] {
  return [...view.keys.map((key) => key.name), ...view.measures.map((measure) => measure.name)];
}

/**
 * The API the web console reads beyond the core calls:
 *
 * - `GET /v1/dashboards` → `{"dashboards": [{"name", "panels": [{"view", "chart", "x", "y", "series", "title"}]}]}`,
 *   as the config declares them.
 * - `GET /v1/views` → `{"views": [{"name", "stream", "sql", "everyMs", "keys": [name], "measures": [{"name",
 *   "kind"}], "columns": [{"name", "type", "key"}], "batch": {"version", "createdAt", "watermark": {shard: "seq"},
 *   "maxEventTime"} | null}]}`. `maxEventTime` is the latest event time among the chunks the current batch version
 *   covers: where, on a time axis, the batch layer ends and the speed layer takes over.
 * - `GET /v1/views/{view}/versions` → `{"view", "versions": [{"version", "current", "createdAt", "fromScratch",
 *   "watermark": {stream: {shard: "seq"}}, "files", "rows", "bytes"}]}`, newest first.
 * - `GET /v1/views/{view}/events` with the parameters of `GET /v1/views/{view}`: server-sent events, every
 *   second one event per layer asked for, named as the layer, whose data is the answer `GET /v1/views/{view}`
 *   would give. `layer` may name several layers (`layer=merged,speed`), so that a chart can tell the speed
 *   layer's part of the merged rows. A failed answer is an `error` event `{"error": {"code", "message"}}`; the
 *   stream goes on. Bad parameters answer 400 before the stream starts; past {@link MAX_EVENT_STREAMS} open
 *   streams, 503.
 *
 * Throws {@link ConfigError} when the server gets ready if a dashboard names a column its view does not have.
 */
export function registerConsoleApiRoutes(app: FastifyInstance, strata: Strata): void {
  void app.register(async (scope) => {
    checkDashboards(strata.config.dashboards, strata.views);

    // Lists answer what the token may read: the panels over views it may read (`read view:V`), and dashboards
    // left with any panel; the views it may read.
    const readable = (request: FastifyRequest) => {
      const principal = principalOf(request);
      return (view: string) => strata.security.allows(principal, 'read', `view:${view}`);
    };
    scope.get('/v1/dashboards', async (request) => {
      const may = readable(request);
      return {
        dashboards: [...strata.config.dashboards.values()]
          .map((dashboard) => ({ name: dashboard.name, panels: dashboard.panels.filter((panel) => may(panel.view)) }))
          .filter((dashboard) => dashboard.panels.length > 0),
      };
    });

    const describe = viewDescriber(strata);
    scope.get('/v1/views', async (request) => {
      const may = readable(request);
      return { views: await Promise.all([...strata.views.values()].filter((view) => may(view.name)).map(describe)) };
    });

    scope.get<{ Params: { view: string } }>('/v1/views/:view/versions', async (request) => {
      const view = lookUpView(strata, request.params.view);
      const versions = await strata.catalog.viewVersions(view.name);
      return {
        view: view.name,
        versions: versions.map((version) => ({
          version: version.version,
          current: version.current,
          createdAt: version.createdAt,
          fromScratch: version.fromScratch,
          watermark: Object.fromEntries(Object.entries(version.watermark).map(([stream, shards]) => [stream, decimalSeqs(shards)])),
          files: version.files.length,
          rows: version.files.reduce((sum, file) => sum + file.rows, 0),
          bytes: version.files.reduce((sum, file) => sum + file.bytes, 0),
        })),
      };
    });

    const streams = new Set<() => void>();
    scope.addHook('onClose', async () => {
      for (const stop of [...streams]) stop();
    });

    scope.get<{ Params: { view: string }; Querystring: Record<string, unknown> }>('/v1/views/:view/events', async (request, reply) => {
      const view = lookUpView(strata, request.params.view);
      const { layer, ...rest } = request.query ?? {};
      const layers = parseLayers(layer);
      // Parsed before the stream starts, so that a bad filter answers 400 rather than an endless error stream.
      const requests = layers.map((one): [ViewLayer, ViewRequest] => [one, parseViewRequest(view, { ...rest, layer: one })]);
      if (streams.size >= MAX_EVENT_STREAMS) {
        throw new OverloadedError(`${MAX_EVENT_STREAMS} live view streams are open already; close one or retry later`, 5);
      }

      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        // HTTP/2 (under TLS) refuses connection headers: its streams stay open by themselves.
        ...(request.raw.httpVersionMajor >= 2 ? {} : { connection: 'keep-alive' }),
      });
      // A client that lost the stream reconnects after this long (EventSource does it by itself).
      raw.write('retry: 2000\n\n');

      let timer: NodeJS.Timeout | undefined;
      let stopped = false;
      const stop = () => {
        stopped = true;
        clearTimeout(timer);
        streams.delete(stop);
        if (!raw.destroyed) raw.end();
      };
      streams.add(stop);
      raw.on('close', stop);

      const push = async () => {
        const started = Date.now();
        // A client that does not read is skipped, not buffered for: its socket holds at most a few answers.
        if (raw.writableLength <= MAX_UNREAD_BYTES) {
          for (const [one, viewRequest] of requests) {
            let event: string;
            try {
              event = `event: ${one}\ndata: ${JSON.stringify(await serveView(strata.speed, view.name, viewRequest))}\n\n`;
            } catch (error) {
              if (stopped) return;
              if (!(error instanceof StrataError)) request.log.error(error);
              const code = error instanceof StrataError ? error.code : 'internal';
              const message = error instanceof StrataError ? error.message : 'internal error; see the server log';
              event = `event: error\ndata: ${JSON.stringify({ error: { code, message } })}\n\n`;
            }
            if (stopped) return;
            raw.write(event);
          }
        }
        // The next push an interval after this one started, never two at once.
        if (!stopped) timer = setTimeout(() => void push(), Math.max(0, EVENT_INTERVAL_MS - (Date.now() - started)));
      };
      void push();
    });
  });
}

function lookUpView(strata: Strata, name: string): ViewDefinition {
  const view = strata.views.get(name);
  if (view) return view;
  const known = [...strata.views.keys()];
  throw new NotFoundError(`unknown view "${name}"${known.length > 0 ? `; views: ${known.join(', ')}` : '; the config declares no views'}`);
}

/** `layer=merged,speed` or `layer=merged&layer=speed`: the layers a live stream pushes, merged alone by default. */
function parseLayers(raw: unknown): ViewLayer[] {
  if (raw === undefined) return ['merged'];
  const layers = (Array.isArray(raw) ? raw : [raw]).flatMap((value) => String(value).split(',')).map((value) => value.trim());
  for (const layer of layers) {
    if (!(VIEW_LAYERS as readonly string[]).includes(layer)) {
      throw new MalformedInputError(`layer must name one or more of ${VIEW_LAYERS.join(', ')}, not "${layer}"`);
    }
  }
  return [...new Set(layers)] as ViewLayer[];
}

function decimalSeqs(seqs: Readonly<Record<string, number>>): Record<string, string> {
  return Object.fromEntries(Object.entries(seqs).map(([shard, seq]) => [shard, String(seq)]));
}

/**
 * What `GET /v1/views` says of one view. Column types come from the view's answer (a one-row speed-layer query)
 * and never change while Strata runs; a version's latest event time is read from the catalog once per version.
 */
function viewDescriber(strata: Strata) {
  const columnsByView = new Map<string, { name: string; type: string; key: boolean }[]>();
  const maxEventTimes = new Map<string, string | null>();

  const columnsOf = async (view: ViewDefinition) => {
    let columns = columnsByView.get(view.name);
    if (!columns) {
      const answer = await serveView(strata.speed, view.name, parseViewRequest(view, { layer: 'speed', limit: '1' }));
      const keys = new Set(view.keys.map((key) => key.name));
      columns = answer.columns.map((column) => ({ name: column.name, type: column.type, key: keys.has(column.name) }));
      columnsByView.set(view.name, columns);
    }
    return columns;
  };

  const maxEventTime = async (view: ViewDefinition, version: number, watermark: Readonly<Record<string, number>>, maxImportChunk: number) => {
    const cacheKey = `${view.name}@${version}`;
    if (!maxEventTimes.has(cacheKey)) {
      let latest: string | null = null;
      for (const chunk of await strata.catalog.chunks(view.source)) {
        const covered =
          chunk.shard === null ? chunk.id <= maxImportChunk : chunk.lastSeq !== null && chunk.lastSeq <= (watermark[String(chunk.shard)] ?? 0);
        // ISO-8601 UTC strings of one format order as their instants do.
        if (covered && chunk.maxTime !== null && (latest === null || chunk.maxTime > latest)) latest = chunk.maxTime;
      }
      maxEventTimes.set(cacheKey, latest);
    }
    return maxEventTimes.get(cacheKey) ?? null;
  };

  return async (view: ViewDefinition) => {
    const current = (await strata.catalog.viewVersions(view.name)).find((version) => version.current) ?? null;
    const watermark = current?.watermark[view.source] ?? {};
    return {
      name: view.name,
      stream: view.source,
      sql: view.sql,
      everyMs: strata.config.views.get(view.name)?.everyMs ?? null,
      keys: view.keys.map((key) => key.name),
      measures: view.measures.map((measure) => ({ name: measure.name, kind: measure.kind })),
      columns: await columnsOf(view),
      batch:
        current === null
          ? null
          : {
              version: current.version,
              createdAt: current.createdAt,
              watermark: decimalSeqs(watermark),
              maxEventTime: await maxEventTime(view, current.version, watermark, current.maxImportChunk),
            },
    };
  };
}
