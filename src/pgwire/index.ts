/**
 * The PostgreSQL wire protocol endpoint: psql, JDBC and BI tools (Grafana, Metabase) query Strata's SQL as if
 * it were PostgreSQL. Queries run on the same read-only SQL engine as `POST /v1/sql`, with its limits and
 * timeout; pg-gateway does start-up and authentication, this module the query protocol and the catalog.
 */
export { PgServer, type PgServerOptions } from './server.js';
export {
  ADMIN_USER,
  adminTokenAuthenticator,
  defaultAuthenticator,
  trustAuthenticator,
  type PgAuthenticator,
  type ScramVerifier,
} from './auth.js';
export { DEFAULT_SESSION_LIMITS, type SessionLimits } from './session.js';
export { pgTypeOf, type PgType } from './types.js';
export { SERVER_VERSION, VERSION_STRING } from './settings.js';
