/**
 * Who may connect over the PostgreSQL protocol, and what their queries may read: the user is an API token's
 * name and the password the token, checked by SCRAM-SHA-256 against the token's verifier (so the token never
 * crosses the wire), or, for a token made before verifiers were kept, sent as a password over TLS and checked
 * against the token's hash. There is no other way in: no trust, no password over a plain connection.
 *
 * Once in, a connection acts as the token's principal: each query is authorized on what it reads exactly as
 * `POST /v1/sql` authorizes it (src/security), and refusals are audited the same way.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { QueryReads } from '../sql/index.js';
import { UnauthorizedError, type Principal, type ScramVerifier, type Security } from '../security/index.js';
import { isCatalogRead } from './catalog.js';

export type { ScramVerifier } from '../security/index.js';

/** How a user is asked to prove who it is, on one connection. */
export type PgChallenge =
  /** SCRAM-SHA-256 against this verifier. */
  | { readonly method: 'scram-sha-256'; readonly verifier: ScramVerifier }
  /** The password itself: asked only over TLS. */
  | { readonly method: 'password' };

/** An authenticated connection's identity, and the checks its queries go through. */
export interface PgLogin {
  /** The user name: the token's name. */
  readonly user: string;
  /** Before each query: throws once the token is revoked, or over its request rate. */
  check(): void;
  /**
   * Told what each query reads (the SQL engine's `authorize`) before it runs; throws to refuse it. Undefined
   * when the login may read everything (an admin token), as over HTTP.
   */
  readonly authorize: ((reads: QueryReads) => void) | undefined;
  /** Whether catalog queries list `table` to this user; null when they list every table (an admin). */
  readonly visible: ((table: string) => boolean) | null;
}

/** Decides who may connect, and as whom. */
export interface PgAuthenticator {
  /**
   * How `user` is to authenticate on a connection that is (`secure`) or is not over TLS; null when it cannot
   * (no such user, or no way without TLS): the server then runs SCRAM against a decoy verifier, so that the
   * exchange fails exactly as a wrong password does.
   */
  challenge(user: string, secure: boolean): PgChallenge | null;
  /** The login after a SCRAM proof that matched `verifier`, or null (the token was revoked meanwhile). */
  scramLogin(user: string, verifier: ScramVerifier, client: string): PgLogin | null;
  /** The login of a password sent over TLS, or null when it is not `user`'s token. */
  passwordLogin(user: string, password: string, client: string): PgLogin | null;
  /** A failed authentication from `client`: recorded (and rate-limited); answers the message to send. */
  refuse(user: string, client: string): string;
}

/** What the audit log calls the PostgreSQL listener, where HTTP puts a route. */
export const PG_ROUTE = 'PostgreSQL protocol';

/** Said with every failed authentication, whatever failed: it helps without telling which names exist. */
export const AUTHENTICATION_HINT =
  "The user is an API token's name and the password is the token. Tokens made before Strata kept SCRAM verifiers " +
  'log in only over TLS (sslmode=require) until they are made again (strata token revoke NAME, then strata token create NAME).';

/**
 * The authenticator over Strata's tokens and policies (src/security). `log` is told, once per token, when a
 * token without a SCRAM verifier tries to log in without TLS: the operator learns why, the client does not
 * learn that the name exists.
 */
export function securityAuthenticator(security: Security, log?: (message: string) => void): PgAuthenticator {
  const told = new Set<string>();
  const login = (principal: Principal, client: string): PgLogin => {
    const context = { route: PG_ROUTE, client };
    const check = security.queryAuthorizer(principal, context);
    return {
      user: principal.name,
      check: () => {
        // A connection does not outlive its token: revoked, its next query is refused.
        if (!security.isLive(principal)) throw new UnauthorizedError();
        security.checkRate(principal);
      },
      // The catalog reads the rewrite makes are filtered to what the user may query (see catalog.ts); every
      // other read goes through the same check as POST /v1/sql.
      authorize: check && ((reads) => check({ ...reads, other: reads.other.filter((name) => !isCatalogRead(name)) })),
      visible: principal.admin ? null : (table) => security.allows(principal, 'query', security.tableResource(table)),
    };
  };
  return {
    challenge: (user, secure) => {
      const verifier = security.scramVerifier(user);
      if (verifier !== null) return { method: 'scram-sha-256', verifier };
      if (!security.hasToken(user)) return null;
      // A token made before verifiers were kept. Over TLS its text may be sent and checked against its hash;
      // that this asks for a password where others get SCRAM tells such a name apart, the price of letting old
      // tokens in without making them again.
      if (secure) return { method: 'password' };
      if (!told.has(user) && told.size < 10_000) {
        told.add(user);
        log?.(`pgwire: token "${user}" has no SCRAM verifier (it was made before Strata kept them): it can log in over TLS only, until it is made again`);
      }
      return null;
    },
    scramLogin: (user, verifier, client) => {
      const principal = security.scramPrincipal(user, verifier);
      return principal === null ? null : login(principal, client);
    },
    passwordLogin: (user, password, client) => {
      const principal = security.verifyToken(user, password);
      return principal === null ? null : login(principal, client);
    },
    refuse: (user, client) => {
      const refusal = security.refuseAuthentication(client, 'login', 'postgresql', { route: PG_ROUTE, client });
      return refusal instanceof UnauthorizedError ? `password authentication failed for user "${user}"` : refusal.message;
    },
  };
}

/**
 * A stand-in verifier for a user that cannot log in (unknown, or without a way to on this connection), so
 * that the SCRAM exchange runs to its end and fails the same way as a wrong password: the client cannot tell
 * which names exist. The salt is derived from the name (stable across attempts, as a real user's is); the
 * keys are random, so no proof matches them.
 */
export function decoyVerifier(user: string, secret: Buffer): ScramVerifier {
  return {
    salt: createHmac('sha256', secret).update(user).digest().subarray(0, 16).toString('base64'),
    iterations: 4096,
    storedKey: randomBytes(32).toString('base64'),
    serverKey: randomBytes(32).toString('base64'),
  };
}
