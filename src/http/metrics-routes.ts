import type { FastifyInstance, onResponseHookHandler, RouteOptions } from 'fastify';
import type { StrataMetrics } from '../metrics/index.js';
import type { Strata } from '../strata.js';

/** The query routes whose latency `strata_http_query_seconds` measures, as fastify names them (its `route` label). */
const QUERY_ROUTES: ReadonlySet<string> = new Set(['/v1/sql', '/v1/views/:view']);

/** `GET /metrics`: every metric of this Strata in the Prometheus text format (see src/metrics). */
export function registerMetricsRoutes(app: FastifyInstance, strata: Strata): void {
  app.get('/metrics', async (_request, reply) => {
    const text = await strata.metrics.scrape();
    return reply.type(strata.metrics.contentType).send(text);
  });
}

/**
 * Measures the latency of the query routes ({@link QUERY_ROUTES}). Must be added before those routes are
 * registered: it attaches an `onResponse` hook to each of them alone, so no other route (ingest above all)
 * pays for a check on every request. `onResponse` runs once the last byte is written, so a streamed SQL
 * answer counts whole.
 */
export function measureQueryRoutes(app: FastifyInstance, metrics: StrataMetrics): void {
  app.addHook('onRoute', (route: RouteOptions) => {
    // fastify adds a HEAD route beside each GET; a HEAD answers no rows, so it would only skew the figures.
    if (!QUERY_ROUTES.has(route.url) || route.method === 'HEAD') return;
    const label = route.url;
    const measure: onResponseHookHandler = (_request, reply, done) => {
      metrics.observeQuery(label, reply.elapsedTime / 1000);
      done();
    };
    route.onResponse = [...toArray(route.onResponse), measure];
  });
}

function toArray<T>(value: T | readonly T[] | undefined): T[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? [...(value as readonly T[])] : [value as T];
}
