import Fastify, { type FastifyInstance } from 'fastify';
import { parseRecords, type BodyFormat, type IngestResult } from '../ingest/index.js';
import { registerKinesisRoutes } from '../kinesis/index.js';
import type { Strata } from '../strata.js';
import { sendError } from './errors.js';
import { installAuth, principalOf } from './auth.js';
import { registerSessionRoutes } from './session-routes.js';
import { registerTokenRoutes } from './token-routes.js';
import { registerAlertRoutes } from './alert-routes.js';
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
  /**
   * Serve HTTPS with this certificate and key (PEM): HTTP/2, with HTTP/1.1 for clients that do not offer it
   * (ALPN). Without it, plain HTTP/1.1.
   */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
}

/** Largest request head (request line, URL and headers) accepted; beyond it Node answers 431. */
const MAX_HEADER_BYTES = 16 * 1024;

const FORMAT_BY_CONTENT_TYPE: Record<string, BodyFormat> = {
  'application/json': 'json',
  'application/x-ndjson': 'ndjson',
};

/** Builds the HTTP API over a running {@link Strata}. The caller listens and closes. */
export function createHttpServer(strata: Strata, options: HttpServerOptions = {}): FastifyInstance {
  const limits = strata.config.ingest;
  const common = {
    // Requests log at `info`: below the level, so the hot path never formats a log line.
    logger: options.logger ? { level: 'warn' } : false,
    bodyLimit: limits.maxBodyBytes,
    // On close, end every connection at once: a client's spare keep-alive socket that never sent a request
    // would otherwise hold the close open until its header timeout. An unanswered request was never acked.
    forceCloseConnections: true,
    // Route parameters are names (at most 63 characters) and ids; a longer one matches no route (404).
    routerOptions: { maxParamLength: 128 },
  };
  const app = (
    options.tls
      ? Fastify({
          ...common,
          http2: true,
          // HTTP/1.1 clients over TLS keep Node's default head limit, which is MAX_HEADER_BYTES (16 KiB) too.
          https: { allowHTTP1: true, cert: options.tls.cert, key: options.tls.key, settings: { maxHeaderListSize: MAX_HEADER_BYTES } },
        })
      : Fastify({ ...common, http: { maxHeaderSize: MAX_HEADER_BYTES } })
  ) as unknown as FastifyInstance;

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
  // Every route, whoever adds it, is behind this: see auth.ts and route-access.ts.
  installAuth(app, strata.security);
  registerSessionRoutes(app, strata, { secure: options.tls !== undefined });
  registerTokenRoutes(app, strata);

  app.get('/health', async () => ({ status: 'ok' }));

  // The streams and views the token may read (`read stream:S`, `read view:V`); the rest are left out.
  app.get('/v1/streams', async (request) => {
    const principal = principalOf(request);
    const may = (resource: string) => strata.security.allows(principal, 'read', resource);
    return {
    streams: (await strata.streamStatus()).filter((stream) => may(`stream:${stream.name}`)).map((stream) => ({
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
      // Delivered records the stream's transform quarantines (absent without a transform).
      ...(stream.quarantined === null ? {} : { quarantined: stream.quarantined }),
    })),
    // Per view, where its batch version and its speed layer stand (seqs as decimal strings).
    views: strata.speed.status().filter((view) => may(`view:${view.view}`)).map((view) => ({
      ...view,
      watermark: Object.fromEntries(Object.entries(view.watermark).map(([shard, seq]) => [shard, String(seq)])),
      speedSeq: Object.fromEntries(Object.entries(view.speedSeq).map(([shard, seq]) => [shard, String(seq)])),
    })),
    };
  });

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
  registerAlertRoutes(app, strata);
  registerConsoleApiRoutes(app, strata);
  registerConsoleRoutes(app, strata);
  registerMetricsRoutes(app, strata);
  // The Kinesis Data Streams API (`POST /` with X-Amz-Target), in a scope of its own that answers in AWS's shape.
  registerKinesisRoutes(app, strata);

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
