/**
 * The PostgreSQL wire protocol endpoint: psql, JDBC and BI tools (Grafana, Metabase) query Strata's SQL as if
 * it were PostgreSQL. The user is an API token's name and the password the token (SCRAM-SHA-256, or a
 * password over TLS); queries run on the same read-only SQL engine as `POST /v1/sql`, with its limits,
 * timeout and table-level authorization. pg-gateway frames messages; this module does the rest.
 */
export { PgServer, type PgServerOptions } from './server.js';
export {
  AUTHENTICATION_HINT,
  PG_ROUTE,
  securityAuthenticator,
  type PgAuthenticator,
  type PgChallenge,
  type PgLogin,
  type ScramVerifier,
} from './auth.js';
export { DEFAULT_SESSION_LIMITS, type SessionLimits } from './session.js';
export { pgTypeOf, type PgType } from './types.js';
export { SERVER_VERSION, VERSION_STRING } from './settings.js';
