/**
 * Errors as PostgreSQL clients expect them: an SQLSTATE per failure, so that a driver can tell a syntax error
 * (42601) from an unknown table (42P01), a refused statement (42501) or a cancelled query (57014). Strata's
 * own error families map here in one place.
 */
import { OverloadedError, QueryError, QueryRefusedError, QueryTimeoutError, StrataError, TooLargeError } from '../errors.js';
import { ForbiddenError, RateLimitedError, UnauthorizedError } from '../security/index.js';
import { UnsupportedSqlError } from './catalog.js';
import { ProtocolViolation, type ErrorFields } from './protocol.js';

/** An error with the SQLSTATE it answers with. */
export class PgError extends Error {
  override readonly name = 'PgError';
  constructor(
    readonly code: string,
    message: string,
    readonly detail?: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/** The reason a running query stops when a CancelRequest names its connection. */
export class QueryCancelledError extends Error {
  override readonly name = 'QueryCancelledError';
  constructor() {
    super('canceling statement due to user request');
  }
}

/** SQLSTATEs of DuckDB's error families, by the prefix of its message. */
const DUCKDB_ERRORS: readonly [RegExp, string][] = [
  [/^Parser Error/, '42601'],
  [/^Catalog Error: Table (with name|Function with name)? ?.*does not exist/, '42P01'],
  [/^Catalog Error: .*Function with name/, '42883'],
  [/^Catalog Error: Type with name/, '42704'],
  [/^Binder Error: Referenced table/, '42P01'],
  [/^Binder Error: Referenced column/, '42703'],
  [/^Binder Error: (No function matches|Could not choose a best candidate)/, '42883'],
  [/^Binder Error: .*(must appear in the GROUP BY|GROUP BY clause)/, '42803'],
  [/^Conversion Error/, '22P02'],
  [/^Invalid Input Error/, '22P02'],
  [/^Out of Range Error: .*[Dd]ivision by zero/, '22012'],
  [/^Out of Range Error/, '22003'],
  [/^Out of Memory Error/, '53200'],
];

/** The fields of the ErrorResponse for `error`; unknown errors answer XX000 without their internals. */
export function errorFields(error: unknown): ErrorFields {
  if (error instanceof PgError) {
    return { severity: 'ERROR', code: error.code, message: error.message, detail: error.detail, hint: error.hint };
  }
  if (error instanceof QueryCancelledError) return { severity: 'ERROR', code: '57014', message: error.message };
  if (error instanceof QueryTimeoutError) return { severity: 'ERROR', code: '57014', message: `canceling statement due to statement timeout: ${error.message}` };
  if (error instanceof UnsupportedSqlError) return { severity: 'ERROR', code: error.sqlState, message: error.message };
  if (error instanceof ProtocolViolation) return { severity: 'FATAL', code: '08P01', message: error.message };
  if (error instanceof QueryRefusedError) return { severity: 'ERROR', code: '42501', message: error.message };
  // The token's policies do not allow what the query reads: the message names the table or view.
  if (error instanceof ForbiddenError) return { severity: 'ERROR', code: '42501', message: error.message };
  if (error instanceof UnauthorizedError) {
    return { severity: 'ERROR', code: '28000', message: 'the token this connection logged in with was revoked; connect again with a valid token' };
  }
  if (error instanceof RateLimitedError) return { severity: 'ERROR', code: '53400', message: error.message };
  if (error instanceof OverloadedError) return { severity: 'ERROR', code: '53000', message: error.message };
  if (error instanceof TooLargeError) return { severity: 'ERROR', code: '54000', message: error.message };
  if (error instanceof QueryError) {
    // DuckDB's messages carry the context on the lines after the first: the first is the message.
    // Text DuckDB could not even split into statements carries this prefix before the parser's message.
    const [first, ...rest] = error.message.replace(/^Failed to extract statements: /, '').split('\n');
    const code = DUCKDB_ERRORS.find(([pattern]) => pattern.test(first ?? ''))?.[1] ?? 'XX000';
    const detail = rest.join('\n').trim();
    return { severity: 'ERROR', code, message: first ?? error.message, detail: detail === '' ? undefined : detail };
  }
  if (error instanceof StrataError) return { severity: 'ERROR', code: 'XX000', message: error.message };
  return { severity: 'ERROR', code: 'XX000', message: 'internal error; see the server log' };
}

/** True when the error is the login's policies (or its revocation, or its rate limit) refusing a query. */
export function isRefusal(error: unknown): boolean {
  return error instanceof ForbiddenError || error instanceof UnauthorizedError || error instanceof RateLimitedError;
}

/** True when the error is Strata's or the client's, not a bug worth logging. */
export function isExpected(error: unknown): boolean {
  return (
    error instanceof PgError ||
    error instanceof StrataError ||
    error instanceof QueryCancelledError ||
    error instanceof UnsupportedSqlError ||
    error instanceof ProtocolViolation
  );
}
