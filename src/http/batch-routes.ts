import type { FastifyInstance, FastifyReply } from 'fastify';
import { BatchRunningError, type BatchRequest, type BatchRunStatus } from '../batch/index.js';
import { NAME_PATTERN } from '../config/index.js';
import { MalformedInputError, NotFoundError } from '../errors.js';
import type { Strata } from '../strata.js';
import { authorize } from './auth.js';
import type { Grant } from './route-access.js';

/**
 * Batch runs over HTTP:
 *
 * - `POST /v1/batch/runs` with `{"views": ["page_minute"], "fromScratch": true}` (both optional; no body runs
 *   every view incrementally) → `202 {"id"}`; `404` for an unknown view; `409 {"id", "error"}` with the id of
 *   the run already running for one of those views.
 * - `GET /v1/batch/runs/{id}` → `{"id", "state": "running|succeeded|failed", "progress": 0..1, "watermark":
 *   {stream: {shard: "seq"}}, "version": {view: n}, "views", "fromScratch", "recomputed": {view: [partition]},
 *   "startedAt", "finishedAt", "error"}`; seqs are decimal strings, as offsets are everywhere in the API.
 */
export function registerBatchRoutes(app: FastifyInstance, strata: Strata): void {
  /** Starts a run: 202 with `answer(id)`, or 409 with the id of the run already running for those views. */
  const startRun = (reply: FastifyReply, request: BatchRequest, answer: (id: string) => object) => {
    try {
      return reply.code(202).send(answer(strata.batch.start(request).id));
    } catch (error) {
      if (error instanceof BatchRunningError) return reply.code(409).send({ id: error.runId, error: { code: error.code, message: error.message } });
      throw error;
    }
  };

  // Quarantine replay (`strata quarantine replay STREAM`): the quarantine is the current rules over the master
  // dataset, so replaying is recomputing the stream's views; answers the run and what stays quarantined.
  app.post<{ Params: { stream: string } }>('/v1/streams/:stream/quarantine/replay', async (request, reply) => {
    const stream = strata.config.streams.get(request.params.stream);
    if (!stream) throw new NotFoundError(`unknown stream "${request.params.stream}"`);
    if (!stream.transform) throw new MalformedInputError(`stream "${stream.name}" declares no transform: nothing is quarantined`);
    const views = [...strata.views.values()].filter((view) => view.source === stream.name).map((view) => view.name);
    const status = (await strata.streamStatus()).find((one) => one.name === stream.name)!;
    if (views.length === 0) return reply.code(200).send({ id: null, views, quarantined: status.quarantined ?? 0 });
    return startRun(reply, { views }, (id) => ({ id, views, quarantined: status.quarantined ?? 0 }));
  });

  app.post('/v1/batch/runs', async (request, reply) => {
    const body = (request.body === undefined || request.body === null || (request.body as Buffer).length === 0
      ? {}
      : parseBody(request.body as Buffer)) as { views?: unknown; fromScratch?: unknown };
    if (body.views !== undefined && (!Array.isArray(body.views) || !body.views.every((v) => typeof v === 'string'))) {
      throw new MalformedInputError('"views" must be an array of view names');
    }
    const badName = (body.views as string[] | undefined)?.find((view) => !NAME_PATTERN.test(view));
    if (badName !== undefined) throw new MalformedInputError(`invalid view name ${JSON.stringify(badName.slice(0, 100))}`);
    if (body.fromScratch !== undefined && typeof body.fromScratch !== 'boolean') {
      throw new MalformedInputError('"fromScratch" must be true or false');
    }
    // `batch` on each view asked for, or on every view when none is named; logged in the audit log once answered.
    const views = (body.views as string[] | undefined) ?? [...strata.views.keys()];
    const grants = views.map((view): Grant => ['batch', `view:${view}`]);
    authorize(strata.security, request, grants);
    request.auditGrants = grants;
    return startRun(reply, { views: body.views as string[] | undefined, fromScratch: body.fromScratch === true }, (id) => ({ id }));
  });

  app.get<{ Params: { id: string } }>('/v1/batch/runs/:id', async (request) => {
    const run = strata.batch.status(request.params.id);
    if (!run) throw new NotFoundError(`unknown batch run "${request.params.id}"`);
    // A run's status is for those who may run its views.
    authorize(strata.security, request, run.views.map((view): Grant => ['batch', `view:${view}`]));
    return renderRun(run);
  });
}

function parseBody(body: Buffer): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new MalformedInputError(`the body is not JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new MalformedInputError('expected a JSON object such as {"views": ["page_minute"], "fromScratch": true}');
  }
  return parsed;
}

/** A run's status with seqs as decimal strings. */
export function renderRun(run: BatchRunStatus) {
  const watermark =
    run.watermark === null
      ? null
      : Object.fromEntries(
          Object.entries(run.watermark).map(([stream, shards]) => [
            stream,
            Object.fromEntries(Object.entries(shards).map(([shard, seq]) => [shard, String(seq)])),
          ]),
        );
  return { ...run, watermark };
}
