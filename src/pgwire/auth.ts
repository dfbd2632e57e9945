/**
 * Who may connect over the PostgreSQL protocol. Temporary until API tokens exist (the security issue): then a
 * token's name is the user and the token the password, and the token store implements
 * {@link PgAuthenticator} by keeping each token's SCRAM verifier, itself a salted hash, never the token.
 *
 * The seam is the SCRAM verifier rather than `verify(user, password)`: with SCRAM-SHA-256 the password never
 * reaches the server, which checks the client's proof against the verifier instead. A cleartext password
 * (sent over TLS, once TLS exists) can be checked against the same verifier: derive StoredKey from the
 * password with the verifier's salt and iterations, and compare.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createScramSha256Data, type ScramSha256Data } from 'pg-gateway';

/** A password's SCRAM-SHA-256 verifier: salt, iteration count, StoredKey and ServerKey (base64), as RFC 5802. */
export type ScramVerifier = ScramSha256Data;

/** Decides who may connect. */
export interface PgAuthenticator {
  /** `trust`: anyone, without a password. `scram-sha-256`: a password, checked by SCRAM-SHA-256. */
  readonly method: 'trust' | 'scram-sha-256';
  /** A line to print at start when this authenticator deserves a warning (anyone may connect). */
  readonly warning?: string;
  /** The verifier of `user`'s password, or null when there is no such user. */
  scramVerifier(user: string): Promise<ScramVerifier | null>;
}

/** The user name {@link adminTokenAuthenticator} accepts. */
export const ADMIN_USER = 'admin';

/** Lets anyone in as any user, without a password. */
export function trustAuthenticator(warning?: string): PgAuthenticator {
  return { method: 'trust', warning, scramVerifier: async () => null };
}

/** Accepts only user {@link ADMIN_USER} with `token` as the password, by SCRAM-SHA-256. */
export async function adminTokenAuthenticator(token: string): Promise<PgAuthenticator> {
  // The verifier is derived once; the token itself is not kept.
  const verifier = await createScramSha256Data(token);
  return { method: 'scram-sha-256', scramVerifier: async (user) => (user === ADMIN_USER ? verifier : null) };
}

/**
 * The authenticator `strata start` uses until tokens exist: with `STRATA_ADMIN_TOKEN` set, only user `admin`
 * with that password; without it, anyone (and a warning to print).
 */
export async function defaultAuthenticator(env: NodeJS.ProcessEnv = process.env): Promise<PgAuthenticator> {
  const token = env.STRATA_ADMIN_TOKEN;
  if (token !== undefined && token !== '') return adminTokenAuthenticator(token);
  return trustAuthenticator(
    'WARNING: the PostgreSQL endpoint lets anyone in without a password; set STRATA_ADMIN_TOKEN to require user "admin" with that password',
  );
}

/**
 * A stand-in verifier for a user that does not exist, so that the SCRAM exchange runs to its end and fails
 * the same way as a wrong password: the client cannot tell which names exist. The salt is derived from the
 * name (stable across attempts, as a real user's is); the keys are random, so no proof matches them.
 */
export function decoyVerifier(user: string, secret: Buffer): ScramVerifier {
  return {
    salt: createHmac('sha256', secret).update(user).digest().subarray(0, 16).toString('base64'),
    iterations: 4096,
    storedKey: randomBytes(32).toString('base64'),
    serverKey: randomBytes(32).toString('base64'),
  };
}
