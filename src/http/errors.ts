import type { FastifyError, FastifyReply } from 'fastify';
import { OverloadedError, StrataError } from '../errors.js';
import { RateLimitedError, UnauthorizedError } from '../security/index.js';
import { LogFailedError } from '../stream/index.js';

/** A request body in a content type the route does not take (415). */
export class UnsupportedMediaTypeError extends StrataError {
  override readonly name: string = 'UnsupportedMediaTypeError';
  readonly code = 'unsupported_media_type';
}

/** HTTP status of each error family: the one place where errors become statuses. */
const STATUS_BY_CODE: Record<string, number> = {
  invalid_config: 400,
  malformed_input: 400,
  // Authentication and authorization (src/security): no valid token; a token its policies do not allow.
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  // The table's state refuses the request: its schema cannot take the change, or the file was imported already.
  incompatible_schema: 409,
  duplicate_import: 409,
  // A batch run for the same views is running already.
  batch_running: 409,
  token_exists: 409,
  // SQL the engine will not run (not one read-only query) or that failed in it (syntax, unknown table).
  query_refused: 400,
  query_failed: 400,
  too_large: 413,
  uri_too_long: 414,
  unsupported_media_type: 415,
  rate_limited: 429,
  overloaded: 503,
  // The query engine behind the API gave up at its time limit. Not 408, which clients and browsers may resend
  // by themselves: re-running an expensive query unchanged would time out again.
  query_timeout: 504,
  unavailable: 503,
};

/** Fastify's own errors that a client caused, under our codes. */
const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_BODY_TOO_LARGE: 'too_large',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'malformed_input',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'malformed_input',
};

/** Answers any error as `{"error": {"code", "message"}}` with its status; logs what is our fault. */
export function sendError(error: unknown, reply: FastifyReply): FastifyReply {
  let code: string;
  let message: string;
  if (error instanceof StrataError) {
    code = error.code;
    message = error.message;
    if (error instanceof OverloadedError || error instanceof RateLimitedError) void reply.header('retry-after', String(error.retryAfterSeconds));
    // One answer for a missing, unknown or revoked token: the header says how to authenticate, nothing more.
    if (error instanceof UnauthorizedError) void reply.header('www-authenticate', 'Bearer realm="strata"');
  } else if (error instanceof LogFailedError) {
    code = 'unavailable';
    message = 'the stream log stopped accepting writes after a disk error; restart Strata to recover';
    reply.log.error(error);
  } else {
    const fastifyError = error as Partial<FastifyError>;
    const mapped = fastifyError.code ? FASTIFY_CODES[fastifyError.code] : undefined;
    if (mapped) {
      code = mapped;
      message =
        mapped === 'unsupported_media_type'
          ? 'unsupported content type; send application/json (an object or an array) or application/x-ndjson'
          : String(fastifyError.message);
    } else if (fastifyError.statusCode !== undefined && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
      return reply.code(fastifyError.statusCode).send({ error: { code: 'bad_request', message: fastifyError.message } });
    } else {
      reply.log.error(error);
      return reply.code(500).send({ error: { code: 'internal', message: 'internal error; see the server log' } });
    }
  }
  return reply.code(STATUS_BY_CODE[code] ?? 500).send({ error: { code, message } });
}
