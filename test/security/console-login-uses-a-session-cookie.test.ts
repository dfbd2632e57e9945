import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_AUTH } from '../fixtures/auth.js';
import { removeDir, startInProcess, tempDir, type RunningStrata } from '../fixtures/strata.js';
import { as, call, createToken, exampleConfig } from './support.js';

/** The `name=value` of a Set-Cookie header, to send back as Cookie. */
const cookieOf = (setCookie: string | null) => setCookie!.split(';')[0]!;

describe('the console logs in with a session cookie', () => {
  let dir: string;
  let server: RunningStrata;
  let analyst: string;
  let origin: string;

  beforeAll(async () => {
    dir = await tempDir();
    server = await startInProcess(await exampleConfig(), dir);
    analyst = await createToken(server.url, 'analyst_a', ['analyst']);
    origin = new URL(server.url).origin;
  });
  afterAll(async () => {
    await server?.close();
    await removeDir(dir);
  });

  /** Logs in through the URL `strata start` prints; answers the cookie to send. */
  async function login(token: string, path = '/'): Promise<string> {
    const answer = await call(server.url, 'GET', `${path}${path.includes('?') ? '&' : '?'}token=${token}`);
    expect(answer.status).toBe(303);
    return cookieOf(answer.headers.get('set-cookie'));
  }

  it('exchanges ?token= for an HttpOnly, SameSite=Strict cookie and redirects to the page without the token', async () => {
    const answer = await call(server.url, 'GET', `/views/page_minute?layer=speed&token=${analyst}`);
    expect(answer.status).toBe(303);
    expect(answer.headers.get('location')).toBe('/views/page_minute?layer=speed');
    expect(answer.headers.get('referrer-policy')).toBe('no-referrer');
    const setCookie = answer.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/^strata_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=43200$/);
    // The cookie holds a session id, never the token.
    expect(setCookie).not.toContain(analyst);

    const cookie = cookieOf(setCookie);
    const session = await call(server.url, 'GET', '/v1/session', { cookie });
    expect(session.status).toBe(200);
    expect(JSON.parse(session.text)).toMatchObject({ name: 'analyst_a', policies: ['analyst'], admin: false });
    // The cookie carries the token's policies, no more.
    expect((await call(server.url, 'GET', '/v1/views/page_minute', { cookie })).status).toBe(200);
    expect((await call(server.url, 'GET', '/v1/tokens', { cookie })).status).toBe(403);
    const events = await call(server.url, 'GET', '/v1/views/page_minute/events', { cookie });
    expect(events.status).toBe(200);
    expect(events.text).toContain('retry: 2000');
  });

  it('redirects an invalid ?token= without a cookie, and the console then shows its login form', async () => {
    const answer = await call(server.url, 'GET', `/?token=${'z'.repeat(43)}`);
    expect(answer.status).toBe(303);
    expect(answer.headers.get('location')).toBe('/');
    expect(answer.headers.get('set-cookie')).toBeNull();
    expect((await call(server.url, 'GET', '/v1/session')).status).toBe(401);
  });

  it('logs in with POST /v1/session from the login form, and refuses a bad token or another origin', async () => {
    const json = { 'content-type': 'application/json', origin };
    const ok = await call(server.url, 'POST', '/v1/session', json, JSON.stringify({ token: analyst }));
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.text)).toEqual({ name: 'analyst_a', policies: ['analyst'] });
    expect((await call(server.url, 'GET', '/v1/session', { cookie: cookieOf(ok.headers.get('set-cookie')) })).status).toBe(200);

    const bad = await call(server.url, 'POST', '/v1/session', json, JSON.stringify({ token: 'nope' }));
    expect(bad.status).toBe(401);
    expect(bad.headers.get('set-cookie')).toBeNull();
    const elsewhere = await call(server.url, 'POST', '/v1/session', { ...json, origin: 'http://evil.example' }, JSON.stringify({ token: analyst }));
    expect(elsewhere.status).toBe(403);
  });

  it('refuses a state-changing request with the cookie unless it comes from the console’s own origin', async () => {
    const cookie = await login(analyst);
    const sql = JSON.stringify({ sql: 'SELECT 1 AS one' });
    const json = { 'content-type': 'application/json', cookie };
    const noOrigin = await call(server.url, 'POST', '/v1/sql', json, sql);
    expect(noOrigin.status).toBe(403);
    expect(JSON.parse(noOrigin.text).error.message).toMatch(/^cross-site request refused/);
    expect((await call(server.url, 'POST', '/v1/sql', { ...json, origin: 'http://evil.example' }, sql)).status).toBe(403);
    expect((await call(server.url, 'POST', '/v1/sql', { ...json, 'sec-fetch-site': 'cross-site' }, sql)).status).toBe(403);
    expect((await call(server.url, 'POST', '/v1/sql', { ...json, origin }, sql)).status).toBe(200);
    expect((await call(server.url, 'POST', '/v1/sql', { ...json, 'sec-fetch-site': 'same-origin' }, sql)).status).toBe(200);
    // A bearer token is not sent by browsers on their own: no origin check for it.
    expect((await call(server.url, 'POST', '/v1/sql', { ...as(analyst), 'content-type': 'application/json', origin: 'http://evil.example' }, sql)).status).toBe(200);
  });

  it('ends the sessions of a revoked token at once, and logs out', async () => {
    const shortLived = await createToken(server.url, 'short_lived', ['analyst']);
    const cookie = await login(shortLived);
    expect((await call(server.url, 'GET', '/v1/session', { cookie })).status).toBe(200);
    expect((await call(server.url, 'DELETE', '/v1/tokens/short_lived', ADMIN_AUTH)).status).toBe(204);
    expect((await call(server.url, 'GET', '/v1/session', { cookie })).status).toBe(401);

    const other = await login(analyst);
    const out = await call(server.url, 'DELETE', '/v1/session', { cookie: other, origin });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toContain('Max-Age=0');
    expect((await call(server.url, 'GET', '/v1/session', { cookie: other })).status).toBe(401);
  });
});
