import { randomBytes } from 'node:crypto';

/**
 * Strata refuses every API call without a token. Benchmarks start it with an admin token of their own: one per
 * bench run, put in STRATA_ADMIN_TOKEN (so every server the run spawns accepts it, and every child process,
 * such as the ingest load generator, can send it) and in STRATA_TOKEN (for the CLI). Importing this module is
 * enough: fetch to 127.0.0.1 then carries the token, and raw node:http callers add {@link authHeaders}.
 */
process.env.STRATA_ADMIN_TOKEN ||= randomBytes(32).toString('base64url');
process.env.STRATA_TOKEN ||= process.env.STRATA_ADMIN_TOKEN;

/** `{authorization: "Bearer <the run's admin token>"}`. */
export function authHeaders(): Record<string, string> {
  return { authorization: `Bearer ${process.env.STRATA_ADMIN_TOKEN}` };
}

const WRAPPED = Symbol.for('strata.bench.fetchWithToken');
const store = globalThis as unknown as Record<symbol, boolean | undefined>;
if (!store[WRAPPED]) {
  store[WRAPPED] = true;
  const raw = globalThis.fetch;
  globalThis.fetch = (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
    if (url.hostname !== '127.0.0.1' || headers.has('authorization')) return raw(input, init);
    headers.set('authorization', authHeaders().authorization!);
    return raw(input, { ...init, headers });
  };
}
