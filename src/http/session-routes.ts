import type { FastifyInstance, FastifyReply } from 'fastify';
import { MalformedInputError } from '../errors.js';
import type { Principal } from '../security/index.js';
import type { Strata } from '../strata.js';
import { accessContext, assertSameOrigin, isConsolePageRequest, principalOf, SESSION_COOKIE, sessionCookie } from './auth.js';

/**
 * The console's login (a session cookie for a token) and what the session may see:
 *
 * - `GET /<console page>?token=T` (the URL `strata start` prints): a valid T opens a session, sets its cookie and
 *   redirects (303) to the same page without the token, so it leaves the address bar and the history; an
 *   invalid one redirects there too (the console then shows its login form).
 * - `POST /v1/session` `{"token"}` (the console's login form) → 200 `{"name", "policies"}` with the cookie; 401
 *   for a bad token. Refused from another origin (login CSRF).
 * - `GET /v1/session` → `{"name", "policies", "admin", "can": {"streams", "views", "dashboards", "sql", "alerts",
 *   "catalog", "batch"}}`: which parts of the console the token may use (the server refuses the rest anyway).
 * - `DELETE /v1/session` → 204, the session closed and its cookie cleared.
 *
 * The cookie is HttpOnly, SameSite=Strict, Path=/, Secure under TLS; its value is a random session id that the
 * server maps to the token's hash (src/security/sessions.ts), never the token.
 */
export function registerSessionRoutes(app: FastifyInstance, strata: Strata, options: { readonly secure: boolean }): void {
  const security = strata.security;
  const setCookie = (reply: FastifyReply, principal: Principal) => {
    const id = security.sessions.open(principal.hash);
    void reply.header('set-cookie', `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${security.sessions.maxAgeSeconds}${options.secure ? '; Secure' : ''}`);
  };

  app.addHook('onRequest', async (request, reply) => {
    if (!isConsolePageRequest(request)) return;
    const url = new URL(request.url, 'http://strata.invalid');
    const token = url.searchParams.get('token');
    if (token === null) return;
    const principal = security.authenticate(token);
    if (principal === null) {
      const refusal = security.refuseAuthentication(request.ip, 'read', 'console', accessContext(request));
      // Past the failed-login limit, the answer is the 429 itself; otherwise back to the page and its login form.
      if (refusal.code === 'rate_limited') throw refusal;
    } else {
      setCookie(reply, principal);
    }
    url.searchParams.delete('token');
    return reply
      .code(303)
      .header('location', url.pathname + url.search)
      .header('cache-control', 'no-store')
      .header('referrer-policy', 'no-referrer')
      .send();
  });

  app.post('/v1/session', async (request, reply) => {
    if (request.headers.origin !== undefined) assertSameOrigin(request);
    const token = readToken(request.body);
    const principal = security.authenticate(token);
    if (principal === null) throw security.refuseAuthentication(request.ip, 'read', 'console', accessContext(request));
    setCookie(reply, principal);
    return reply.header('cache-control', 'no-store').send({ name: principal.name, policies: principal.policies });
  });

  app.get('/v1/session', async (request) => {
    const principal = principalOf(request);
    return { name: principal.name, policies: principal.policies, admin: principal.admin, can: await consoleSections(strata, principal) };
  });

  app.delete('/v1/session', async (request, reply) => {
    const id = sessionCookie(request);
    if (id !== null) security.sessions.close(id);
    return reply
      .header('set-cookie', `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${options.secure ? '; Secure' : ''}`)
      .code(204)
      .send();
  });
}

function readToken(body: unknown): string {
  let parsed: unknown = body;
  if (Buffer.isBuffer(body)) {
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw new MalformedInputError('expected a JSON object {"token": "..."}');
    }
  }
  const token = typeof parsed === 'object' && parsed !== null ? (parsed as { token?: unknown }).token : undefined;
  if (typeof token !== 'string') throw new MalformedInputError('expected a JSON object {"token": "..."}');
  return token;
}

/** Which parts of the console a principal may use: each true when it may read or run at least one thing there. */
async function consoleSections(strata: Strata, principal: Principal) {
  const security = strata.security;
  const may = (action: Parameters<typeof security.allows>[1], resource: string) => security.allows(principal, action, resource);
  const streams = [...strata.config.streams.keys()];
  const views = [...strata.views.keys()];
  const tables = (await strata.catalog.tables()).map((table) => table.name);
  const readableViews = new Set(views.filter((view) => may('read', `view:${view}`)));
  return {
    streams: streams.some((stream) => may('read', `stream:${stream}`)),
    views: readableViews.size > 0,
    dashboards: [...strata.config.dashboards.values()].some((dashboard) => dashboard.panels.some((panel) => readableViews.has(panel.view))),
    sql: [...tables, ...views].some((table) => may('query', security.tableResource(table))),
    catalog: tables.some((table) => may('read', `table:${table}`)) || readableViews.size > 0,
    batch: views.some((view) => may('batch', `view:${view}`)),
    // `GET /v1/alerts` answers the alerts on views the token may read (an admin sees the page, alerts or not).
    alerts: principal.admin || [...strata.config.alerts.values()].some((alert) => readableViews.has(alert.view)),
  };
}
