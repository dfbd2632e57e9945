import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { MalformedInputError, QueryError, StrataError } from '../errors.js';
import type { SqlColumn, SqlRow, SqlStream, SqlValue } from '../sql/index.js';
import type { Strata } from '../strata.js';
import { accessContext, principalOf } from './auth.js';
import { UnsupportedMediaTypeError } from './errors.js';

/** The answer formats of `POST /v1/sql`, chosen by the Accept header. */
type AnswerFormat = 'json' | 'csv' | 'ndjson';

const CONTENT_TYPES: Record<AnswerFormat, string> = {
  json: 'application/json; charset=utf-8',
  csv: 'text/csv; charset=utf-8; header=present',
  ndjson: 'application/x-ndjson; charset=utf-8',
};

const FORMAT_BY_MEDIA_TYPE: Record<string, AnswerFormat> = {
  'application/json': 'json',
  'text/csv': 'csv',
  'application/x-ndjson': 'ndjson',
};

/**
 * Ad-hoc SQL over HTTP: `POST /v1/sql` with `{"sql": "SELECT ..."}` (application/json) or the SQL itself
 * (text/plain). The answer streams as DuckDB produces rows, so a large one is never held whole:
 *
 * - JSON (default): `{"columns": [{"name", "type"}], "rows": [{...}, ...]}`.
 * - `Accept: text/csv`: RFC 4180 CSV, a header row of column names, CRLF line ends; NULL is an empty field
 *   and an empty string is `""`; JSON, LIST and STRUCT values are written as JSON text.
 * - `Accept: application/x-ndjson`: a first line `{"columns": [...]}`, then one JSON object per row.
 *
 * Values follow the SQL engine's JSON rules (timestamps ISO-8601 UTC, BIGINT and wider as strings; see
 * src/sql/json-values.ts). Errors before the first row answer `{"error": {"code", "message"}}` with their
 * status: 400 `query_refused` (not a single read-only query, or a file outside the lake), 400 `query_failed`
 * (syntax, unknown table, failed cast), 504 `query_timeout`, 503 `overloaded`. An error after rows were sent
 * (the time limit reached while a large answer streams) can no longer change the status: NDJSON ends with a
 * line `{"error": {...}}`; JSON and CSV answers are cut off (the connection is closed without the final
 * chunk), so that a truncated answer can never pass for a complete one.
 */
export function registerSqlRoutes(app: FastifyInstance, strata: Strata): void {
  // In a scope of its own: the text/plain body and the catch-all refusal hold for this route only.
  void app.register(async (scope) => {
    scope.addContentTypeParser('text/plain', { parseAs: 'string' }, (_request, body, done) => done(null, body));
    scope.addContentTypeParser('*', (request, _payload, done) =>
      done(
        new UnsupportedMediaTypeError(
          `unsupported content type ${JSON.stringify(request.headers['content-type'])}; ` +
            'send {"sql": "..."} as application/json, or the SQL as text/plain',
        ),
      ),
    );

    scope.post('/v1/sql', async (request, reply) => {
      const sql = readSql(request);
      const format = answerFormat(request.headers.accept);
      // The client going away cancels the query, whether it is still running or its rows are streaming.
      const controller = new AbortController();
      reply.raw.on('close', () => {
        // A StrataError: the answer goes nowhere, and a client leaving is nothing to log.
        if (!reply.raw.writableFinished) controller.abort(new QueryError('the query was cancelled: the client closed the connection'));
      });
      // `query` on every table and view the query reads, judged on DuckDB's own parse before it runs.
      const authorize = strata.security.queryAuthorizer(principalOf(request), accessContext(request));
      const stream = await strata.sql.query(sql, { signal: controller.signal, ...(authorize ? { authorize } : {}) });
      const batches = stream.batches[Symbol.asyncIterator]();
      let first: IteratorResult<SqlRow[]>;
      try {
        // The first batch is read before the status is sent, so that most failures still answer with theirs.
        first = await batches.next();
      } catch (error) {
        stream.close();
        throw error;
      }
      const body = Readable.from(encode(format, stream, first, batches, request), { objectMode: false });
      return reply.type(CONTENT_TYPES[format]).send(body);
    });
  });
}

/** The SQL of the request body: the `sql` member of a JSON object, or a text/plain body as it is. */
function readSql(request: FastifyRequest): string {
  const body = request.body;
  if (typeof body === 'string') return body;
  const contentType = String(request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (Buffer.isBuffer(body) && contentType === 'application/json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch (error) {
      throw new MalformedInputError(`the body is not valid JSON: ${(error as Error).message}`);
    }
    const sql = typeof parsed === 'object' && parsed !== null ? (parsed as { sql?: unknown }).sql : undefined;
    if (typeof sql !== 'string') throw new MalformedInputError('expected a JSON object {"sql": "SELECT ..."}');
    return sql;
  }
  if (Buffer.isBuffer(body)) {
    throw new UnsupportedMediaTypeError(`send {"sql": "..."} as application/json, or the SQL as text/plain, not ${contentType}`);
  }
  throw new MalformedInputError('no SQL: send {"sql": "..."} as application/json, or the SQL as text/plain');
}

/** The first format the Accept header names that we can answer in; JSON when it names none. */
function answerFormat(accept: string | undefined): AnswerFormat {
  for (const part of (accept ?? '').split(',')) {
    const format = FORMAT_BY_MEDIA_TYPE[part.split(';')[0]!.trim().toLowerCase()];
    if (format) return format;
  }
  return 'json';
}

async function* encode(
  format: AnswerFormat,
  stream: SqlStream,
  first: IteratorResult<SqlRow[]>,
  batches: AsyncIterator<SqlRow[]>,
  request: FastifyRequest,
): AsyncGenerator<string> {
  const { columns } = stream;
  let rowsSent = 0;
  try {
    if (format === 'json') yield `{"columns":${JSON.stringify(columns)},"rows":[`;
    else if (format === 'ndjson') yield `${JSON.stringify({ columns })}\n`;
    else yield csvLine(columns.map((column) => column.name));
    for (let next = first; !next.done; next = await batches.next()) {
      const rows = next.value;
      if (format === 'json') yield (rowsSent > 0 ? ',' : '') + rows.map((row) => JSON.stringify(row)).join(',');
      else if (format === 'ndjson') yield rows.map((row) => `${JSON.stringify(row)}\n`).join('');
      else yield rows.map((row) => csvRow(columns, row)).join('');
      rowsSent += rows.length;
    }
    if (format === 'json') yield ']}';
  } catch (error) {
    if (!(error instanceof StrataError)) request.log.error(error);
    if (format !== 'ndjson') throw error;
    const message = error instanceof StrataError ? error.message : 'internal error; see the server log';
    const code = error instanceof StrataError ? error.code : 'internal';
    yield `${JSON.stringify({ error: { code, message } })}\n`;
  } finally {
    stream.close();
  }
}

function csvRow(columns: readonly SqlColumn[], row: SqlRow): string {
  return csvLine(columns.map((column) => row[column.name] ?? null));
}

function csvLine(values: readonly SqlValue[]): string {
  return `${values.map(csvField).join(',')}\r\n`;
}

/** One CSV field (RFC 4180): quoted when it holds a comma, quote or line break, or is the empty string. */
export function csvField(value: SqlValue): string {
  if (value === null) return '';
  const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  return text === '' || /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
