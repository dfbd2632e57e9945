/**
 * Error families shared by every layer. Each carries a stable `code`; the HTTP edge maps codes to statuses
 * in one place (src/http/errors.ts), the CLI prints the message. Messages name what the user must fix:
 * the stream, the field, the line.
 */
export abstract class StrataError extends Error {
  abstract readonly code: string;
}

/** The project config is invalid; Strata refuses to start. */
export class ConfigError extends StrataError {
  override readonly name: string = 'ConfigError';
  readonly code = 'invalid_config';
}

/** A named stream, table or view does not exist. */
export class NotFoundError extends StrataError {
  override readonly name: string = 'NotFoundError';
  readonly code = 'not_found';
}

/** A request body could not be read: malformed JSON, with the line it broke on. */
export class MalformedInputError extends StrataError {
  override readonly name: string = 'MalformedInputError';
  readonly code = 'malformed_input';
}

/** A request is over a size or count limit. */
export class TooLargeError extends StrataError {
  override readonly name: string = 'TooLargeError';
  readonly code = 'too_large';
}

/** Strata is over its bound on queued work; the client should retry after `retryAfterSeconds`. */
export class OverloadedError extends StrataError {
  override readonly name: string = 'OverloadedError';
  readonly code = 'overloaded';
  constructor(
    message: string,
    readonly retryAfterSeconds = 1,
  ) {
    super(message);
  }
}

/** A schema change that would make existing data unreadable or lossy (a narrowed type, a dropped column). */
export class SchemaError extends StrataError {
  override readonly name: string = 'SchemaError';
  readonly code = 'incompatible_schema';
}

/** The same data was already imported (by content hash). */
export class DuplicateImportError extends StrataError {
  override readonly name: string = 'DuplicateImportError';
  readonly code = 'duplicate_import';
}

/**
 * A SQL statement the ad-hoc SQL engine will not run: anything but a single read-only query (DDL, COPY,
 * ATTACH, SET, PRAGMA...), or a query that reaches outside the lake (a file elsewhere on disk).
 */
export class QueryRefusedError extends StrataError {
  override readonly name: string = 'QueryRefusedError';
  readonly code = 'query_refused';
}

/** A query that failed in the engine: a syntax error, an unknown table or column, a failed conversion. */
export class QueryError extends StrataError {
  override readonly name: string = 'QueryError';
  readonly code = 'query_failed';
}

/** A query that ran longer than the SQL engine's time limit and was cancelled. */
export class QueryTimeoutError extends StrataError {
  override readonly name: string = 'QueryTimeoutError';
  readonly code = 'query_timeout';
  constructor(
    message: string,
    readonly timeoutMs: number,
  ) {
    super(message);
  }
}
