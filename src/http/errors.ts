import type { FastifyError, FastifyReply } from 'fastify';
import { OverloadedError, StrataError } from '../errors.js';
import { LogFailedError } from '../stream/index.js';

/** HTTP status of each error family: the one place where errors become statuses. */
const STATUS_BY_CODE: Record<string, number> = {
  invalid_config: 400,
  malformed_input: 400,
  not_found: 404,
  too_large: 413,
  unsupported_media_type: 415,
  overloaded: 503,
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
    if (error instanceof OverloadedError) void reply.header('retry-after', String(error.retryAfterSeconds));
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
