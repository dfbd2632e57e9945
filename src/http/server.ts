import Fastify, { type FastifyInstance } from 'fastify';
import { parseRecords, type BodyFormat, type IngestResult } from '../ingest/index.js';
import type { Strata } from '../strata.js';
import { sendError } from './errors.js';
import { registerBatchRoutes } from './batch-routes.js';
import { registerCatalogRoutes } from './catalog-routes.js';
import { registerImportRoutes } from './import-routes.js';
import { registerConsoleApiRoutes } from './console-api-routes.js';
import { registerConsoleRoutes } from './console-routes.js';
import { measureQueryRoutes, registerMetricsRoutes } from './metrics-routes.js';
import { registerSqlRoutes } from './sql-routes.js';
import { registerViewRoutes } from './view-routes.js';

export interface HttpServerOptions {
  /** Log server errors with pino (fastify's logger) at `warn` and above; off by default so tests stay quiet. */
  readonly logger?: boolean;
}

const FORMAT_BY_CONTENT_TYPE: Record<string, BodyFormat> = {
  'application/json': 'json',
  'application/x-ndjson': 'ndjson',
};

/** Builds the HTTP API over a running {@link Strata}. The caller listens and closes. */
export function createHttpServer(strata: Strata, options: HttpServerOptions = {}): FastifyInstance {
  const limits = strata.config.ingest;
  const app = Fastify({
    // Requests log at `info`: below the level, so the hot path never formats a log line.
    logger: options.logger ? { level: 'warn' } : false,
    bodyLimit: limits.maxBodyBytes,
    // On close, end every connection at once: a client's spare keep-alive socket that never sent a request
    // would otherwise hold the close open until its header timeout. An unanswered request was never acked.
    forceCloseConnections: true,
  });

  // Bodies arrive as bytes and are parsed by the ingest layer, which names the line of a syntax error.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(Object.keys(FORMAT_BY_CONTENT_TYPE), { parseAs: 'buffer' }, (_request, body, done) =>
    done(null, body),
  );
  app.setErrorHandler((error, _request, reply) => sendError(error, reply));
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: { code: 'not_found', message: `no route ${request.method} ${request.url}` } }),
  );

  // Before any route is registered: it hooks the query routes as they are added.
  measureQueryRoutes(app, strata.metrics);

  app.get('/health', async () => ({ status: 'ok' }));

  app.get('/v1/streams', async () => ({
    streams: (await strata.streamStatus()).map((stream) => ({
      name: stream.name,
      shards: stream.shards.map((shard) => ({
        shard: String(shard.shard),
        firstSeq: shard.firstSeq === null ? null : String(shard.firstSeq),
        lastSeq: String(shard.lastSeq),
        deliveredSeq: String(shard.deliveredSeq),
        deliveryLagRecords: shard.deliveryLagRecords,
        deliveryLagSeconds: shard.deliveryLagSeconds,
        logBytes: shard.logBytes,
      })),
      recordsPerSecond: stream.ingest.recordsPerSecond,
      accepted: stream.ingest.accepted,
      failed: stream.ingest.failed,
      lake: stream.lake,
    })),
    // Per view, where its batch version and its speed layer stand (seqs as decimal strings).
    views: strata.speed.status().map((view) => ({
      ...view,
      watermark: Object.fromEntries(Object.entries(view.watermark).map(([shard, seq]) => [shard, String(seq)])),
      speedSeq: Object.fromEntries(Object.entries(view.speedSeq).map(([shard, seq]) => [shard, String(seq)])),
    })),
  }));

  app.post<{ Params: { stream: string } }>(
    '/v1/streams/:stream/records',
    {
      // Refuse an unknown stream before reading a possibly large body.
      onRequest: async (request) => strata.ingestor.assertStream(request.params.stream),
      // Once per request, whatever its record count: ack latency and the answer's status for /metrics.
      onResponse: (request, reply, done) => {
        strata.metrics.observeIngest(request.params.stream, reply.statusCode, reply.elapsedTime / 1000);
        done();
      },
    },
    async (request, reply) => {
      const contentType = String(request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      const { records, texts } = parseRecords(
        request.body as Buffer,
        FORMAT_BY_CONTENT_TYPE[contentType]!,
        limits.maxRecordsPerRequest,
      );
      const result = await strata.ingestor.ingest(request.params.stream, records, texts);
      return reply.type('application/json').send(renderIngestResult(result));
    },
  );

  registerImportRoutes(app, strata);
  registerSqlRoutes(app, strata);
  registerCatalogRoutes(app, strata);
  registerBatchRoutes(app, strata);
  registerViewRoutes(app, strata);
  registerConsoleApiRoutes(app, strata);
  registerConsoleRoutes(app, strata);
  registerMetricsRoutes(app, strata);

  return app;
}

/** The ingest answer, written by hand: it is on the hot path and its shape is fixed. */
function renderIngestResult({ results, failed }: IngestResult): string {
  const parts: string[] = new Array<string>(results.length);
  for (let i = 0; i < results.length; i++) {
    const result = results[i]!;
    parts[i] = 'error' in result ? JSON.stringify({ error: result.error }) : `{"shard":"${result.shard}","seq":"${result.seq}"}`;
  }
  return `{"records":[${parts.join(',')}],"failed":${failed}}`;
}
