import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_AUTH } from '../fixtures/auth.js';
import { removeDir, startInProcess, tempDir, type RunningStrata } from '../fixtures/strata.js';
import { as, call, createToken, ENDPOINTS, exampleConfig } from './support.js';

const UNAUTHORIZED = { error: { code: 'unauthorized', message: 'a valid API token is required: send Authorization: Bearer <token>' } };

describe('every API call needs a valid token', () => {
  let dir: string;
  let server: RunningStrata;

  beforeAll(async () => {
    dir = await tempDir();
    // Many failed authentications from one address are the point here: their limit (429) has its own test.
    server = await startInProcess(await exampleConfig({ security: { rateLimit: { failedAuthBurst: 10_000 } } }), dir);
  });
  afterAll(async () => {
    await server?.close();
    await removeDir(dir);
  });

  const send = (endpoint: (typeof ENDPOINTS)[number], headers: Record<string, string>) =>
    call(server.url, endpoint.method, endpoint.path, { ...(endpoint.type ? { 'content-type': endpoint.type } : {}), ...headers }, endpoint.body);

  it.each(ENDPOINTS)('$family ($method $path): 401 without a token, with an unknown one or a malformed header, one answer for all', async (endpoint) => {
    const missing = await send(endpoint, {});
    const unknown = await send(endpoint, as('x'.repeat(43)));
    const malformed = await send(endpoint, { authorization: 'Basic YWRtaW46YWRtaW4=' });
    for (const answer of [missing, unknown, malformed]) {
      expect(answer.status).toBe(401);
      expect(JSON.parse(answer.text)).toEqual(UNAUTHORIZED);
      expect(answer.headers.get('www-authenticate')).toBe('Bearer realm="strata"');
    }
    expect(unknown.text).toBe(missing.text);
    expect(malformed.text).toBe(missing.text);
  });

  it('answers with the admin token on each of those families (none is 401 or 403)', async () => {
    for (const endpoint of ENDPOINTS) {
      const answer = await send(endpoint, ADMIN_AUTH);
      expect([endpoint.family, answer.status]).not.toEqual([endpoint.family, 401]);
      expect([endpoint.family, answer.status]).not.toEqual([endpoint.family, 403]);
    }
  });

  it('refuses a revoked token at once, with the answer an unknown one gets', async () => {
    const token = await createToken(server.url, 'short_lived', ['analyst']);
    expect((await call(server.url, 'GET', '/v1/views/page_minute', as(token))).status).toBe(200);
    const revoked = await call(server.url, 'DELETE', '/v1/tokens/short_lived', ADMIN_AUTH);
    expect(revoked.status).toBe(204);
    const after = await call(server.url, 'GET', '/v1/views/page_minute', as(token));
    const unknown = await call(server.url, 'GET', '/v1/views/page_minute', as('y'.repeat(43)));
    expect(after.status).toBe(401);
    expect(after.text).toBe(unknown.text);
  });

  it('leaves /health and the console shell open, without any data in them', async () => {
    const health = await call(server.url, 'GET', '/health');
    expect(health.status).toBe(200);
    expect(JSON.parse(health.text)).toEqual({ status: 'ok' });
    const page = await call(server.url, 'GET', '/');
    expect(page.status).toBe(200);
    expect(page.text).not.toContain('<td>clicks</td>');
    expect(page.text).toContain('Log in to see the streams');
    // With a token, the page's no-script summary lists the streams.
    expect((await call(server.url, 'GET', '/', ADMIN_AUTH)).text).toContain('<td>clicks</td>');
  });
});
