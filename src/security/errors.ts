import { StrataError } from '../errors.js';

/**
 * No valid token: missing, unknown, revoked or expired. One message for all of them, so that an answer never
 * tells a guesser which tokens exist or existed.
 */
export class UnauthorizedError extends StrataError {
  override readonly name: string = 'UnauthorizedError';
  readonly code = 'unauthorized';
  constructor() {
    super('a valid API token is required: send Authorization: Bearer <token>');
  }
}

/** The token is valid, but none of its policies allows this action on this resource. */
export class ForbiddenError extends StrataError {
  override readonly name: string = 'ForbiddenError';
  readonly code = 'forbidden';
}

/** Over a request-rate limit; retry after `retryAfterSeconds`. */
export class RateLimitedError extends StrataError {
  override readonly name: string = 'RateLimitedError';
  readonly code = 'rate_limited';
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}
