import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, startInProcess, tempDir, type RunningStrata } from '../fixtures/strata.js';
import { as, call, createToken, exampleConfig } from './support.js';

describe('GET /v1/alerts', () => {
  let dir: string;
  let server: RunningStrata;

  beforeAll(async () => {
    dir = await tempDir();
    // A rule that never fires: the webhook is never called.
    const alerts = { busy: { view: 'page_minute', measure: 'views', above: 1_000_000_000, notify: { webhook: 'http://127.0.0.1:9/hook' } } };
    server = await startInProcess(await exampleConfig({ alerts }), dir);
  });
  afterAll(async () => {
    await server?.close();
    await removeDir(dir);
  });

  it('shows an alert to a token that may read its view, and to no other', async () => {
    const analyst = await createToken(server.url, 'analyst_alerts', ['analyst']);
    const producer = await createToken(server.url, 'producer_alerts', ['producer']);
    const names = async (token: string) => (JSON.parse((await call(server.url, 'GET', '/v1/alerts', as(token))).text) as { alerts: { name: string }[] }).alerts.map((a) => a.name);
    expect(await names(analyst)).toEqual(['busy']);
    expect(await names(producer)).toEqual([]);
    expect((await call(server.url, 'GET', '/v1/alerts/busy', as(analyst))).status).toBe(200);
    expect((await call(server.url, 'GET', '/v1/alerts/busy', as(producer))).status).toBe(404);
    // The console's alerts page is a client route like the others: a reload serves the shell.
    expect((await call(server.url, 'GET', '/alerts')).status).toBe(200);
  });
});
