/**
 * Authentication is on for every Strata (src/security); most tests are about something else. This setup file
 * (vitest `setupFiles`) makes them authenticate without a line of their own: Strata started by a test, in this
 * process or as a child, accepts TEST_ADMIN_TOKEN as its admin token; the CLI sends it; and fetch adds it to
 * requests to this machine that carry no Authorization header and no cookie. Tests of authentication use
 * explicit headers, or fetchWithoutToken for none.
 */
import { RAW_FETCH, TEST_ADMIN_TOKEN } from '../fixtures/auth.js';

process.env.STRATA_ADMIN_TOKEN = TEST_ADMIN_TOKEN;
process.env.STRATA_TOKEN = TEST_ADMIN_TOKEN;

const store = globalThis as unknown as Record<symbol, typeof fetch | undefined>;
if (store[RAW_FETCH] === undefined) {
  const raw = globalThis.fetch;
  store[RAW_FETCH] = raw;
  const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);
  globalThis.fetch = (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const headers = new Headers(input instanceof Request ? input.headers : undefined);
    new Headers(init?.headers).forEach((value, name) => headers.set(name, value));
    if (!LOCAL_HOSTS.has(url.hostname) || headers.has('authorization') || headers.has('cookie')) return raw(input, init);
    headers.set('authorization', `Bearer ${TEST_ADMIN_TOKEN}`);
    return raw(input, { ...init, headers });
  };
}
