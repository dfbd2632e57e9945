import { isAbsolute } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { MalformedInputError, NotFoundError } from '../errors.js';
import { FORMAT_NAMES, ImportJobs } from '../ingest/index.js';
import type { Strata } from '../strata.js';

const importRequest = z.strictObject({
  files: z.array(z.string().min(1)).min(1).max(10_000),
  format: z.string().optional(),
  schema: z.record(z.string(), z.string()).optional(),
  eventTime: z.string().optional(),
  allowDuplicate: z.boolean().optional(),
});

/**
 * Bulk import over HTTP:
 *
 * - `POST /v1/tables/{table}/imports` `{"files": ["/abs/path", ...], "format"?, "schema"?, "eventTime"?,
 *   "allowDuplicate"?}` → `202 {"id"}`; a bad table, file, format or schema is refused at once (400, or 409
 *   for a schema the table cannot take).
 * - `GET /v1/imports/{id}` → the job: `{"id", "state", "table", "files": [{"path", "state", "rows", "bytes",
 *   "error"}], "progress", "rows", "bytes", "error", "createdAt", "finishedAt"}`; `GET /v1/imports` lists the
 *   kept jobs, newest first.
 *
 * The server reads the files from its own disk, so they must be readable by the Strata process: Strata runs
 * on the user's machine; reading server paths is why importing needs `admin` on the table (route-access.ts).
 */
export function registerImportRoutes(app: FastifyInstance, strata: Strata): void {
  const jobs = new ImportJobs(strata);
  // Before Strata closes under them: the running job stops between lines and registers nothing more.
  app.addHook('onClose', async () => jobs.close());

  app.post<{ Params: { table: string } }>('/v1/tables/:table/imports', async (request, reply) => {
    const body = parseBody(request.body);
    const relative = body.files.find((path) => !isAbsolute(path));
    if (relative !== undefined) {
      throw new MalformedInputError(`files must be absolute paths on the server's machine; ${JSON.stringify(relative)} is not`);
    }
    const format = body.format === undefined ? undefined : FORMAT_NAMES[body.format.toLowerCase()];
    if (body.format !== undefined && format === undefined) {
      throw new MalformedInputError(`unknown format ${JSON.stringify(body.format)}; expected ndjson, csv or parquet`);
    }
    const job = await jobs.submit({
      table: request.params.table,
      files: body.files,
      ...(format !== undefined ? { format } : {}),
      ...(body.schema !== undefined ? { schema: body.schema } : {}),
      ...(body.eventTime !== undefined ? { eventTime: body.eventTime } : {}),
      ...(body.allowDuplicate !== undefined ? { allowDuplicate: body.allowDuplicate } : {}),
    });
    return reply.code(202).send({ id: job.id });
  });

  app.get('/v1/imports', async () => ({ imports: jobs.list() }));

  app.get<{ Params: { id: string } }>('/v1/imports/:id', async (request) => {
    const job = jobs.get(request.params.id);
    if (!job) throw new NotFoundError(`no import job "${request.params.id}" (jobs are kept in memory until the server restarts)`);
    return job;
  });
}

function parseBody(raw: unknown): z.output<typeof importRequest> {
  let value: unknown = raw;
  if (Buffer.isBuffer(raw)) {
    try {
      value = JSON.parse(raw.toString('utf8'));
    } catch (error) {
      throw new MalformedInputError(`the request body is not valid JSON: ${(error as Error).message}`);
    }
  }
  const parsed = importRequest.safeParse(value);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.map(String).join('.') || '(body)'}: ${issue.message}`);
    throw new MalformedInputError(`invalid import request: ${problems.join('; ')}`);
  }
  return parsed.data;
}
