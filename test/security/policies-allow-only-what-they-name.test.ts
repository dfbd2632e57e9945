import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpServer } from '../../src/http/index.js';
import { ADMIN_AUTH } from '../fixtures/auth.js';
import { removeDir, startInProcess, tempDir, type RunningStrata } from '../fixtures/strata.js';
import { as, call, createToken, exampleConfig } from './support.js';

const json = { 'content-type': 'application/json' };
const click = (id: string) => JSON.stringify({ event_id: id, ts: '2026-11-25T10:00:00Z', user_id: 'u1', page: '/home', amount: null });

/** The 403 body for a token refused an action on a resource. */
const forbidden = (token: string, action: string, resource: string) => ({
  error: { code: 'forbidden', message: `token "${token}" may not ${action} ${resource}` },
});

describe("the example config's policies, default deny", () => {
  let dir: string;
  let server: RunningStrata;
  let producer: string;
  let analyst: string;
  let runId: string;

  beforeAll(async () => {
    dir = await tempDir();
    server = await startInProcess(await exampleConfig(), dir);
    producer = await createToken(server.url, 'producer_p', ['producer']);
    analyst = await createToken(server.url, 'analyst_a', ['analyst']);
    const run = await call(server.url, 'POST', '/v1/batch/runs', { ...ADMIN_AUTH, ...json }, '{}');
    runId = (JSON.parse(run.text) as { id: string }).id;
  });
  afterAll(async () => {
    await server?.close();
    await removeDir(dir);
  });

  it('lets the producer ingest into clicks, and nothing else', async () => {
    const ingest = await call(server.url, 'POST', '/v1/streams/clicks/records', { ...as(producer), ...json }, click('p1'));
    expect(ingest.status).toBe(200);
    expect(JSON.parse(ingest.text)).toMatchObject({ failed: 0 });

    const refused: [string, string, string | undefined, string, string][] = [
      ['GET', '/v1/views/page_minute', undefined, 'read', 'view:page_minute'],
      ['GET', '/v1/views/page_minute/events', undefined, 'read', 'view:page_minute'],
      ['GET', '/v1/views/page_minute/versions', undefined, 'read', 'view:page_minute'],
      ['POST', '/v1/sql', '{"sql": "SELECT count(*) FROM clicks"}', 'query', 'table:clicks'],
      ['POST', '/v1/batch/runs', '{"views": ["page_minute"]}', 'batch', 'view:page_minute'],
      ['GET', `/v1/batch/runs/${'RUN'}`, undefined, 'batch', 'view:page_minute'],
      ['GET', '/v1/catalog/tables/clicks', undefined, 'read', 'table:clicks'],
      ['POST', '/v1/tables/clicks/imports', '{"files": ["/tmp/x.ndjson"]}', 'admin', 'table:clicks'],
      ['GET', '/v1/imports', undefined, 'admin', 'table:*'],
      ['GET', '/metrics', undefined, 'read', 'stream:*'],
      ['GET', '/v1/tokens', undefined, 'admin', 'token:*'],
      ['POST', '/v1/tokens', '{"name": "mine", "policies": ["admin"]}', 'admin', 'token:*'],
      ['DELETE', '/v1/tokens/analyst_a', undefined, 'admin', 'token:analyst_a'],
      // An unknown stream is refused as any other: the answer does not tell which streams exist.
      ['POST', '/v1/streams/orders/records', click('p2'), 'ingest', 'stream:orders'],
    ];
    for (const [method, path, body, action, resource] of refused) {
      const answer = await call(server.url, method, path.replace('RUN', runId), { ...as(producer), ...(body ? json : {}) }, body);
      expect([method, path, answer.status]).toEqual([method, path, 403]);
      expect(JSON.parse(answer.text)).toEqual(forbidden('producer_p', action, resource));
    }
  });

  it('lists to the producer only what it may read: nothing', async () => {
    const streams = JSON.parse((await call(server.url, 'GET', '/v1/streams', as(producer))).text) as { streams: unknown[]; views: unknown[] };
    expect(streams).toEqual({ streams: [], views: [] });
    expect(JSON.parse((await call(server.url, 'GET', '/v1/catalog/tables', as(producer))).text)).toEqual({ tables: [] });
    expect(JSON.parse((await call(server.url, 'GET', '/v1/views', as(producer))).text)).toEqual({ views: [] });
    expect(JSON.parse((await call(server.url, 'GET', '/v1/dashboards', as(producer))).text)).toEqual({ dashboards: [] });
    const session = JSON.parse((await call(server.url, 'GET', '/v1/session', as(producer))).text) as { name: string; can: Record<string, boolean> };
    expect(session.name).toBe('producer_p');
    expect(Object.values(session.can).every((can) => !can)).toBe(true);
  });

  it('lets the analyst read views and query clicks and the views, and nothing else', async () => {
    expect((await call(server.url, 'GET', '/v1/views/page_minute', as(analyst))).status).toBe(200);
    const events = await call(server.url, 'GET', '/v1/views/page_minute/events', as(analyst));
    expect(events.status).toBe(200);
    expect(events.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect((await call(server.url, 'GET', '/v1/views/page_minute/versions', as(analyst))).status).toBe(200);
    for (const table of ['clicks', 'page_minute', 'page_minute__batch', 'page_minute__speed']) {
      const answer = await call(server.url, 'POST', '/v1/sql', { ...as(analyst), ...json }, JSON.stringify({ sql: `SELECT count(*) AS n FROM ${table}` }));
      expect([table, answer.status]).toEqual([table, 200]);
    }
    // `read table:clicks` (the rule names read and query on both resources): the catalog entry of clicks.
    expect((await call(server.url, 'GET', '/v1/catalog/tables/clicks', as(analyst))).status).toBe(200);

    const refused: [string, string, string | undefined, string, string][] = [
      ['POST', '/v1/streams/clicks/records', click('a1'), 'ingest', 'stream:clicks'],
      ['POST', '/v1/batch/runs', '{}', 'batch', 'view:page_minute'],
      ['GET', '/metrics', undefined, 'read', 'stream:*'],
      ['GET', '/v1/tokens', undefined, 'admin', 'token:*'],
      ['POST', '/v1/tables/clicks/imports', '{"files": ["/tmp/x.ndjson"]}', 'admin', 'table:clicks'],
    ];
    for (const [method, path, body, action, resource] of refused) {
      const answer = await call(server.url, method, path, { ...as(analyst), ...(body ? json : {}) }, body);
      expect([method, path, answer.status]).toEqual([method, path, 403]);
      expect(JSON.parse(answer.text)).toEqual(forbidden('analyst_a', action, resource));
    }
  });

  it('lists to the analyst the views and dashboards it may read, and tells the console which pages it may use', async () => {
    const views = JSON.parse((await call(server.url, 'GET', '/v1/views', as(analyst))).text) as { views: { name: string }[] };
    expect(views.views.map((view) => view.name)).toEqual(['page_minute']);
    const dashboards = JSON.parse((await call(server.url, 'GET', '/v1/dashboards', as(analyst))).text) as { dashboards: { name: string }[] };
    expect(dashboards.dashboards.map((dashboard) => dashboard.name)).toEqual(['traffic']);
    const streams = JSON.parse((await call(server.url, 'GET', '/v1/streams', as(analyst))).text) as { streams: unknown[]; views: { view: string }[] };
    // It may read the view, not the stream's status.
    expect(streams.streams).toEqual([]);
    expect(streams.views.map((view) => view.view)).toEqual(['page_minute']);
    const session = JSON.parse((await call(server.url, 'GET', '/v1/session', as(analyst))).text) as { can: Record<string, boolean> };
    expect(session.can).toMatchObject({ streams: false, views: true, dashboards: true, sql: true, catalog: true, batch: false });
  });

  it('keeps a route nobody listed in route-access.ts for admins: new routes are closed, never open', async () => {
    const app = createHttpServer(server.strata);
    app.get('/v1/something-new', async () => ({ ok: true }));
    try {
      const analystAnswer = await app.inject({ url: '/v1/something-new', headers: as(analyst) });
      expect(analystAnswer.statusCode).toBe(403);
      expect(analystAnswer.json()).toEqual(forbidden('analyst_a', 'admin', 'system:GET /v1/something-new'));
      expect((await app.inject({ url: '/v1/something-new' })).statusCode).toBe(401);
      expect((await app.inject({ url: '/v1/something-new', headers: ADMIN_AUTH })).json()).toEqual({ ok: true });
    } finally {
      await app.close();
    }
  });

  it('lets an admin do all of it', async () => {
    expect((await call(server.url, 'GET', '/metrics', ADMIN_AUTH)).status).toBe(200);
    expect((await call(server.url, 'GET', `/v1/batch/runs/${runId}`, ADMIN_AUTH)).status).toBe(200);
    const session = JSON.parse((await call(server.url, 'GET', '/v1/session', ADMIN_AUTH)).text) as { admin: boolean; can: Record<string, boolean> };
    expect(session.admin).toBe(true);
    expect(Object.values(session.can).every(Boolean)).toBe(true);
  });
});
