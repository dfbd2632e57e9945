import type { Action, Resource } from '../security/index.js';
import { CONSOLE_ROUTES } from './console-routes.js';

/** One permission a request needs: an action on a resource. */
export type Grant = readonly [Action, Resource];

/**
 * What a route needs, checked by the authentication hook (src/http/auth.ts) before the route runs:
 *
 * - `open`: nothing; no token needed (it holds no data).
 * - `token`: any valid token; the handler checks what it touches (SQL's tables, a batch run's views) or
 *   answers only what the token may see (lists).
 * - `grants`: the grants the route's parameters name, all of them; with `audit`, the call is logged once answered.
 * - `signed`: the route authenticates each request itself, by a signature instead of a bearer token (the Kinesis
 *   API's AWS Signature V4, src/kinesis), then applies the token's rate limit and policies as the hook would.
 */
export type RouteAccess =
  | { readonly kind: 'open' }
  | { readonly kind: 'signed' }
  | { readonly kind: 'token' }
  | { readonly kind: 'grants'; readonly grants: (params: Readonly<Record<string, string>>) => readonly Grant[]; readonly audit?: boolean };

const OPEN: RouteAccess = { kind: 'open' };
const TOKEN: RouteAccess = { kind: 'token' };
const grants = (of: (params: Readonly<Record<string, string>>) => readonly Grant[], audit = false): RouteAccess => ({ kind: 'grants', grants: of, audit });

/**
 * Every route's access, by `METHOD /pattern` as fastify names the route (a HEAD route shares its GET's). A route
 * missing here is for admin tokens alone (`admin system:<route>`): a route added without a line here is closed,
 * never open. The README's Security section shows this table.
 */
const ROUTE_ACCESS: ReadonlyMap<string, RouteAccess> = new Map<string, RouteAccess>([
  ['GET /health', OPEN],
  // The console's shell and assets hold no data: its API calls carry the session.
  ...CONSOLE_ROUTES.map((route): [string, RouteAccess] => [`GET ${route}`, OPEN]),
  ['GET /assets/*', OPEN],
  // Logging in is the one API call made without a token (it presents one).
  ['POST /v1/session', OPEN],
  ['GET /v1/session', TOKEN],
  ['DELETE /v1/session', TOKEN],

  ['POST /v1/streams/:stream/records', grants((p) => [['ingest', `stream:${p.stream}`]])],
  // Lists answer what the token may read: streams (read stream:S) and their views (read view:V).
  ['GET /v1/streams', TOKEN],
  // The Kinesis API: AWS Signature V4 with a token as the secret, `ingest`/`read` on stream:S per operation.
  ['POST /', { kind: 'signed' }],
  ['GET /metrics', grants(() => [['read', 'stream:*']])],

  // SQL: query on each table and view the query reads, checked on DuckDB's parse (src/security/resources.ts).
  ['POST /v1/sql', TOKEN],

  ['GET /v1/views', TOKEN],
  ['GET /v1/views/:view', grants((p) => [['read', `view:${p.view}`]])],
  ['GET /v1/views/:view/events', grants((p) => [['read', `view:${p.view}`]])],
  ['GET /v1/views/:view/versions', grants((p) => [['read', `view:${p.view}`]])],
  ['GET /v1/dashboards', TOKEN],
  // Alerts: the list, and one by name, answer the alerts on views the token may read.
  ['GET /v1/alerts', TOKEN],
  ['GET /v1/alerts/:name', TOKEN],

  ['GET /v1/catalog/tables', TOKEN],
  ['GET /v1/catalog/tables/:table', grants((p) => [['read', `table:${p.table}`]])],

  // Batch runs: batch on each view asked for (every view when none is named); a run's status, on its views.
  ['POST /v1/batch/runs', TOKEN],
  ['GET /v1/batch/runs/:id', TOKEN],

  // Imports read files on the server's disk: admin.
  ['POST /v1/tables/:table/imports', grants((p) => [['admin', `table:${p.table}`]], true)],
  ['POST /v1/streams/:stream/quarantine/replay', grants((p) => [['admin', `stream:${p.stream}`]], true)],
  ['GET /v1/imports', grants(() => [['admin', 'table:*']])],
  ['GET /v1/imports/:id', grants(() => [['admin', 'table:*']])],

  ['POST /v1/tokens', grants(() => [['admin', 'token:*']])],
  ['GET /v1/tokens', grants(() => [['admin', 'token:*']])],
  ['DELETE /v1/tokens/:name', grants((p) => [['admin', `token:${p.name}`]])],
]);

/** The access of a route (`url` as fastify names it); unlisted routes are admin-only. */
export function routeAccess(method: string, url: string): RouteAccess {
  const key = `${method === 'HEAD' ? 'GET' : method} ${url}`;
  return ROUTE_ACCESS.get(key) ?? grants(() => [['admin', `system:${key}`]]);
}

/** Whether a route is one of the console's pages (where `?token=` logs in). */
export function isConsolePage(method: string, url: string): boolean {
  return (method === 'GET' || method === 'HEAD') && CONSOLE_ROUTES.includes(url);
}
