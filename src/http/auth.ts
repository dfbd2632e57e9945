import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { NAME_PATTERN } from '../config/index.js';
import { MalformedInputError, StrataError } from '../errors.js';
import { ForbiddenError, type AccessContext, type Principal, type Security } from '../security/index.js';
import { isConsolePage, routeAccess, type Grant, type RouteAccess } from './route-access.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who the request acts as: set by the authentication hook; null only on open routes. */
    principal: Principal | null;
    /** The principal came from the console's session cookie, not a bearer token. */
    viaSession: boolean;
    /** Grants to log in the audit log once the request is answered (admin actions). */
    auditGrants: readonly Grant[] | null;
  }
}

/** The console's session cookie. */
export const SESSION_COOKIE = 'strata_session';

/** A URL longer than this answers 414: no route takes one, and parsing one costs. */
export const MAX_URL_BYTES = 8 * 1024;

/** Methods that change nothing: a cookie-authenticated request of any other method must come from the console's own origin. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Route parameters that carry a name reaching a path or SQL: they must match the config's name pattern. */
const NAME_PARAMS = ['stream', 'view', 'table', 'name'];

/** The URL is over {@link MAX_URL_BYTES} (414). */
export class UriTooLongError extends StrataError {
  override readonly name: string = 'UriTooLongError';
  readonly code = 'uri_too_long';
}

/** The credentials a request carries: a bearer token (preferred) or the console's session cookie. */
function credentials(request: FastifyRequest): { bearer: string } | { session: string } | null {
  const header = request.headers.authorization;
  if (header !== undefined) {
    const match = /^Bearer +(\S+) *$/i.exec(header);
    // A malformed header is an unknown token, never a fall-back to the cookie.
    return { bearer: match?.[1] ?? '' };
  }
  const session = sessionCookie(request);
  return session === null ? null : { session };
}

/** The session id of the request's cookie, or null. */
export function sessionCookie(request: FastifyRequest): string | null {
  const header = request.headers.cookie;
  if (header === undefined) return null;
  for (const part of header.split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === SESSION_COOKIE) return value.join('=');
  }
  return null;
}

/** The request's principal from its credentials, or null. */
export function authenticateRequest(security: Security, request: FastifyRequest): Principal | null {
  const given = credentials(request);
  if (given === null) return null;
  request.viaSession = 'session' in given;
  return 'bearer' in given ? security.authenticate(given.bearer) : security.sessionPrincipal(given.session);
}

/** What the audit log records of a request: its route pattern and client address. */
export function accessContext(request: FastifyRequest): AccessContext {
  return { route: `${request.method} ${request.routeOptions.url ?? '(no route)'}`, client: request.ip };
}

/** Whether the request is for one of the console's pages (where `?token=` logs in). */
export function isConsolePageRequest(request: FastifyRequest): boolean {
  const url = request.routeOptions.url;
  return url !== undefined && isConsolePage(request.method, url);
}

/** The principal of an authenticated route (the hook refused the request otherwise). */
export function principalOf(request: FastifyRequest): Principal {
  if (request.principal === null) throw new Error(`route ${request.routeOptions.url} ran without a principal`);
  return request.principal;
}

/** Refuses a cross-site request: its Origin must be this server's (or, without one, Sec-Fetch-Site same-origin). */
export function assertSameOrigin(request: FastifyRequest): void {
  const origin = request.headers.origin;
  const own = `${request.protocol}://${request.host}`;
  if (origin !== undefined ? origin === own : request.headers['sec-fetch-site'] === 'same-origin') return;
  throw new ForbiddenError(
    `cross-site request refused: a ${request.method} with the console's session cookie must come from ${own} (Origin ${origin ?? 'missing'})`,
  );
}

/**
 * Authentication on every request, as one global hook: routes added by anyone are covered without a line of
 * their own (and are admin-only until src/http/route-access.ts lists them). In order:
 *
 * 1. URL over {@link MAX_URL_BYTES} → 414.
 * 2. Open routes (the console shell, `/health`, login) pass; credentials, when present, still name a principal.
 *    So do `signed` routes (the Kinesis API), which check their own signature, rate limit and policies.
 * 3. No valid credentials → 401, the same answer whether the token is missing, unknown or revoked; past the
 *    client address's limit of failed authentications, 429.
 * 4. The token's rate limit → 429 with Retry-After.
 * 5. A state-changing request authenticated by the session cookie must come from the console's own origin
 *    (CSRF: the cookie is SameSite=Strict as well).
 * 6. Names in the route's parameters must be safe names (400), before they reach a resource string.
 * 7. The route's grants → 403 naming the action and resource (audited).
 */
export function installAuth(app: FastifyInstance, security: Security): void {
  app.decorateRequest('principal', null);
  app.decorateRequest('viaSession', false);
  app.decorateRequest('auditGrants', null);
  const accessByRoute = new Map<string, RouteAccess>();

  app.addHook('onRequest', async (request) => {
    if (request.url.length > MAX_URL_BYTES) throw new UriTooLongError(`the URL is longer than ${MAX_URL_BYTES} bytes`);
    const url = request.routeOptions.url;
    let access: RouteAccess;
    if (url === undefined) {
      // No such route: a valid token is needed to learn that much.
      access = { kind: 'token' };
    } else {
      const key = `${request.method} ${url}`;
      access = accessByRoute.get(key) ?? routeAccess(request.method, url);
      accessByRoute.set(key, access);
    }
    const principal = authenticateRequest(security, request);
    request.principal = principal;
    if (access.kind === 'open' || access.kind === 'signed') return;
    const context = accessContext(request);
    if (principal === null) {
      const [action, resource] = access.kind === 'grants' ? (access.grants(stringParams(request))[0] ?? ['read', '']) : ['read', ''];
      throw security.refuseAuthentication(request.ip, action, resource, context);
    }
    security.checkRate(principal);
    if (request.viaSession && !SAFE_METHODS.has(request.method)) {
      try {
        assertSameOrigin(request);
      } catch (error) {
        security.record(principal, 'session', `origin:${request.headers.origin ?? 'none'}`.slice(0, 200), 'denied', context);
        throw error;
      }
    }
    const params = stringParams(request);
    for (const name of NAME_PARAMS) {
      const value = params[name];
      if (value !== undefined && !NAME_PATTERN.test(value)) {
        // `:name` is a token's or an alert's name: "invalid name" fits both.
        const what = name === 'name' ? 'name' : `${name} name`;
        throw new MalformedInputError(`invalid ${what} ${JSON.stringify(value.slice(0, 100))}: names start with a letter or _ and hold only letters, digits and _ (at most 63)`);
      }
    }
    if (access.kind === 'grants') {
      const needed = access.grants(params);
      security.authorizeAll(principal, needed, context);
      if (access.audit === true) request.auditGrants = needed;
    }
  });

  // Admin actions are logged once answered, with what came of them.
  app.addHook('onResponse', async (request, reply: FastifyReply) => {
    if (request.auditGrants === null || request.principal === null) return;
    const context = accessContext(request);
    const outcome = reply.statusCode < 400 ? 'succeeded' : 'failed';
    for (const [action, resource] of request.auditGrants) security.record(request.principal, action, resource, outcome, context);
  });
}

function stringParams(request: FastifyRequest): Readonly<Record<string, string>> {
  return (request.params ?? {}) as Record<string, string>;
}

/** Checks grants a handler found (a SQL query's tables, a batch run's views): 403 naming the first refused. */
export function authorize(security: Security, request: FastifyRequest, grants: readonly Grant[]): void {
  security.authorizeAll(principalOf(request), grants, accessContext(request));
}
