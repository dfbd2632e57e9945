import { createHash, createHmac, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

/**
 * A token's SCRAM-SHA-256 verifier (RFC 5802, RFC 7677): what the PostgreSQL listener checks a client's proof
 * against, so that the token itself never crosses the wire and is never kept. Salt, StoredKey and ServerKey are
 * base64. Like the SHA-256 a token is looked up by, it is a salted hash: the token cannot be had back from it.
 */
export interface ScramVerifier {
  readonly salt: string;
  readonly iterations: number;
  readonly storedKey: string;
  readonly serverKey: string;
}

/** PostgreSQL's default iteration count (scram_iterations). */
export const SCRAM_ITERATIONS = 4096;

const pbkdf2Async = promisify(pbkdf2);

/**
 * The verifier of `password` with a fresh random salt. Costs one PBKDF2 of {@link SCRAM_ITERATIONS} rounds
 * (a few milliseconds), off the main thread.
 */
export async function deriveScramVerifier(password: string, iterations = SCRAM_ITERATIONS): Promise<ScramVerifier> {
  const salt = randomBytes(16);
  // RFC 7677 asks for SASLprep of the password; a token is base64url (or, from STRATA_ADMIN_TOKEN, whatever
  // the operator chose), and PostgreSQL itself uses the raw bytes when SASLprep does not apply.
  const salted = await pbkdf2Async(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  return {
    salt: salt.toString('base64'),
    iterations,
    storedKey: createHash('sha256').update(clientKey).digest('base64'),
    serverKey: createHmac('sha256', salted).update('Server Key').digest('base64'),
  };
}

/** The verifier as the catalog keeps it, in PostgreSQL's own spelling: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`. */
export function formatScramVerifier(verifier: ScramVerifier): string {
  return `SCRAM-SHA-256$${verifier.iterations}:${verifier.salt}$${verifier.storedKey}:${verifier.serverKey}`;
}

const STORED = /^SCRAM-SHA-256\$(\d{1,7}):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/;

/** Reads {@link formatScramVerifier}'s text back; null for anything else (the token then has no verifier). */
export function parseScramVerifier(text: string | null): ScramVerifier | null {
  const match = text === null ? null : STORED.exec(text);
  if (match === null) return null;
  const iterations = Number(match[1]);
  if (iterations < 1) return null;
  return { iterations, salt: match[2]!, storedKey: match[3]!, serverKey: match[4]! };
}
