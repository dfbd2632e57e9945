import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_AUTH, TEST_ADMIN_TOKEN } from '../fixtures/auth.js';
import { removeDir, startInProcess, tempDir, waitForDelivery, type RunningStrata } from '../fixtures/strata.js';
import { as, call, createToken, exampleConfig } from './support.js';

const MARKER = 'marker-7f3a9c-record-content';

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

describe('the audit log', () => {
  let dir: string;
  let server: RunningStrata;
  let analyst: string;

  const audit = async () => {
    const answer = await call(
      server.url,
      'POST',
      '/v1/sql',
      { ...ADMIN_AUTH, 'content-type': 'text/plain' },
      'SELECT token, action, resource, outcome, route, client FROM strata_audit ORDER BY id',
    );
    expect(answer.status, answer.text).toBe(200);
    return (JSON.parse(answer.text) as { rows: Record<string, string | null>[] }).rows;
  };

  beforeAll(async () => {
    dir = await tempDir();
    server = await startInProcess(await exampleConfig(), dir);
    analyst = await createToken(server.url, 'analyst_a', ['analyst']);
  });
  afterAll(async () => {
    await server?.close();
    await removeDir(dir);
  });

  it('records a token creation and a denied call, with who, what, on what and how it ended', async () => {
    const body = JSON.stringify({ event_id: 'e1', ts: '2026-11-25T10:00:00Z', user_id: MARKER, page: '/home', amount: null });
    expect((await call(server.url, 'POST', '/v1/streams/clicks/records', { ...as(analyst), 'content-type': 'application/json' }, body)).status).toBe(403);
    expect((await call(server.url, 'GET', '/v1/views/page_minute', as('not-a-token'))).status).toBe(401);

    const rows = await audit();
    expect(rows).toContainEqual({ token: 'admin', action: 'admin', resource: 'token:analyst_a', outcome: 'created', route: 'POST /v1/tokens', client: '127.0.0.1' });
    expect(rows).toContainEqual({
      token: 'analyst_a',
      action: 'ingest',
      resource: 'stream:clicks',
      outcome: 'denied',
      route: 'POST /v1/streams/:stream/records',
      client: '127.0.0.1',
    });
    expect(rows).toContainEqual({ token: null, action: 'read', resource: 'view:page_minute', outcome: 'unauthenticated', route: 'GET /v1/views/:view', client: '127.0.0.1' });
  });

  it('records batch runs and revocations, and refused SQL naming the table', async () => {
    const run = await call(server.url, 'POST', '/v1/batch/runs', { ...ADMIN_AUTH, 'content-type': 'application/json' }, '{"views": ["page_minute"]}');
    expect(run.status).toBe(202);
    expect((await call(server.url, 'POST', '/v1/sql', { ...as(analyst), 'content-type': 'text/plain' }, 'SELECT * FROM strata_audit')).status).toBe(403);
    await createToken(server.url, 'gone', ['producer']);
    expect((await call(server.url, 'DELETE', '/v1/tokens/gone', ADMIN_AUTH)).status).toBe(204);
    expect((await call(server.url, 'DELETE', '/v1/tokens/gone', ADMIN_AUTH)).status).toBe(404);

    const rows = await audit();
    expect(rows).toContainEqual(expect.objectContaining({ token: 'admin', action: 'batch', resource: 'view:page_minute', outcome: 'succeeded', route: 'POST /v1/batch/runs' }));
    expect(rows).toContainEqual(expect.objectContaining({ token: 'analyst_a', action: 'query', resource: 'system:strata_audit', outcome: 'denied', route: 'POST /v1/sql' }));
    expect(rows).toContainEqual(expect.objectContaining({ token: 'admin', action: 'admin', resource: 'token:gone', outcome: 'revoked' }));
    expect(rows).toContainEqual(expect.objectContaining({ token: 'admin', action: 'admin', resource: 'token:gone', outcome: 'failed' }));
  });

  it('is for admin tokens only', async () => {
    const answer = await call(server.url, 'POST', '/v1/sql', { ...as(analyst), 'content-type': 'text/plain' }, 'SELECT count(*) FROM strata_audit');
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.text).error.message).toBe('token "analyst_a" may not query system:strata_audit');
  });

  it('never holds a token or record content, and no token is written anywhere under the data directory', async () => {
    // Records an admin ingests carry the marker: they belong in the lake, never in the audit log.
    const body = JSON.stringify({ event_id: 'e2', ts: '2026-11-25T10:00:00Z', user_id: MARKER, page: '/home', amount: null });
    expect((await call(server.url, 'POST', '/v1/streams/clicks/records', { ...ADMIN_AUTH, 'content-type': 'application/json' }, body)).status).toBe(200);
    await waitForDelivery(server);
    const rows = JSON.stringify(await audit());
    expect(rows).not.toContain(MARKER);

    const secrets = [analyst, TEST_ADMIN_TOKEN];
    for (const file of await filesUnder(dir)) {
      const content = await readFile(file);
      for (const secret of secrets) expect([file, content.includes(secret)]).toEqual([file, false]);
    }
    // The catalog holds the token's hash, which is all authentication needs.
    // (WAL mode: a recent write may still be in the log beside the database file.)
    const catalog = Buffer.concat(await Promise.all(['catalog.db', 'catalog.db-wal'].map((name) => readFile(join(dir, name)).catch(() => Buffer.alloc(0)))));
    expect(catalog.includes(createHash('sha256').update(analyst).digest('hex'))).toBe(true);
  });
});
