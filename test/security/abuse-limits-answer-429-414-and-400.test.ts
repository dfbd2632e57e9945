import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/security/rate-limit.js';
import { ADMIN_AUTH } from '../fixtures/auth.js';
import { clicksConfig, removeDir, startInProcess, tempDir, type RunningStrata } from '../fixtures/strata.js';
import { as, call, createToken } from './support.js';

describe('the rate limiter', () => {
  it('lets a burst through, then one request per 1/rate seconds, answering the wait', () => {
    let now = 0;
    const limiter = new RateLimiter(2, 3, 10, () => now);
    expect([limiter.take('a'), limiter.take('a'), limiter.take('a')]).toEqual([0, 0, 0]);
    expect(limiter.take('a')).toBe(1);
    expect(limiter.take('b')).toBe(0);
    now += 500;
    expect(limiter.take('a')).toBe(0);
    expect(limiter.take('a')).toBe(1);
  });

  it('keeps at most its bound of keys', () => {
    const limiter = new RateLimiter(1, 1, 2, () => 0);
    for (const key of ['a', 'b', 'c', 'd']) limiter.take(key);
    // Dropped keys start over with a full bucket: never more memory than the bound.
    expect(limiter.take('a')).toBe(0);
  });
});

describe('abuse limits', () => {
  let dir: string;
  let server: RunningStrata;

  beforeAll(async () => {
    dir = await tempDir();
    server = await startInProcess(
      clicksConfig({ policies: { bot: { allow: [{ actions: ['ingest', 'read'], resources: ['stream:clicks'] }] } }, security: { rateLimit: { failedAuthBurst: 3, failedAuthPerMinute: 6, requestsPerSecond: 1, burst: 5 } } }),
      dir,
    );
  });
  afterAll(async () => {
    await server?.close();
    await removeDir(dir);
  });

  it('answers 429 with Retry-After after repeated failed authentications from one address, never slowing valid tokens', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await call(server.url, 'GET', '/v1/streams', as(`guess-${i}`))).status);
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    const limited = await call(server.url, 'GET', '/v1/streams', {});
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(limited.text).error.code).toBe('rate_limited');
    // A token is 256 random bits: its holder is not held back by guessers on the same address.
    expect((await call(server.url, 'GET', '/v1/streams', ADMIN_AUTH)).status).toBe(200);
  });

  it('answers 429 with Retry-After past a token’s request rate, for that token alone', async () => {
    const bot = await createToken(server.url, 'bot_1', ['bot']);
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await call(server.url, 'GET', '/v1/streams', as(bot))).status);
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(statuses.at(-1)).toBe(429);
    const limited = await call(server.url, 'GET', '/v1/streams', as(bot));
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(JSON.parse(limited.text).error.message).toContain('token "bot_1" is over its limit of 1 requests a second');
    const other = await createToken(server.url, 'bot_2', ['bot']);
    expect((await call(server.url, 'GET', '/v1/streams', as(other))).status).toBe(200);
  });

  it('refuses an over-long URL (414) and over-large headers (431)', async () => {
    const other = await createToken(server.url, 'bot_3', ['bot']);
    const url = await call(server.url, 'GET', `/v1/streams?x=${'a'.repeat(9000)}`, as(other));
    expect(url.status).toBe(414);
    const headers = await call(server.url, 'GET', '/v1/streams', { ...as(other), 'x-padding': 'b'.repeat(20_000) });
    expect(headers.status).toBe(431);
  });

  it('refuses names outside the safe pattern in every route parameter, after authentication', async () => {
    // A fresh server: the admin's requests here are many, and the limits above are tight.
    const other = await startInProcess(clicksConfig(), `${dir}-names`);
    try {
      for (const [method, path] of [
        ['POST', '/v1/streams/..%2Fetc/records'],
        ['GET', '/v1/views/a%20b'],
        ['GET', '/v1/views/x%27%3B%20DROP/events'],
        ['GET', '/v1/catalog/tables/..%2F..%2Fcatalog.db'],
        ['POST', '/v1/tables/a-b/imports'],
        ['DELETE', '/v1/tokens/bad%24name'],
      ] as const) {
        const refused = await call(other.url, method, path, { ...ADMIN_AUTH, 'content-type': 'application/json' }, method === 'GET' || method === 'DELETE' ? undefined : '{}');
        expect([path, refused.status]).toEqual([path, 400]);
        expect(JSON.parse(refused.text).error.message).toMatch(/^invalid (stream |view |table )?name/);
        expect((await call(other.url, method, path, {}, undefined)).status).toBe(401);
      }
    } finally {
      await other.close();
      await removeDir(`${dir}-names`);
    }
  });
});
