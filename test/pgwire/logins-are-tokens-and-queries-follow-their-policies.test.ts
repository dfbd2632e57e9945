import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/index.js';
import { AUTHENTICATION_HINT } from '../../src/pgwire/index.js';
import { TEST_ADMIN_TOKEN } from '../fixtures/auth.js';
import { removeDir, startInProcess, tempDir, waitForDelivery, type RunningStrata } from '../fixtures/strata.js';
import { createToken, exampleConfig } from '../security/support.js';
import { clickEvents, failure, makeCertificate, OPENSSL, pgClient } from './helpers.js';

const PSQL = '/usr/bin/psql';

/** The example project (producer and analyst policies), with an `orders` stream no policy lets the analyst query. */
async function config(): Promise<ConfigInput> {
  const base = await exampleConfig();
  return {
    ...base,
    streams: {
      ...base.streams,
      orders: { schema: { order_id: 'string', ts: 'timestamp', total: 'double' }, eventTime: 'ts' },
    },
  };
}

/** POSTs records to a stream as the test admin. */
async function ingest(url: string, stream: string, records: Record<string, unknown>[]): Promise<void> {
  const response = await fetch(`${url}/v1/streams/${stream}/records`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(records) });
  if (response.status !== 200) throw new Error(`ingest into ${stream}: ${response.status} ${await response.text()}`);
}

/** The names a one-column query answers, sorted. */
async function names(client: pg.Client, sql: string): Promise<string[]> {
  return (await client.query<{ name: string }>(sql)).rows.map((row) => row.name).sort();
}

/** Debian's psql as `user` with PGPASSWORD `password`, answering its output (or the failure's). */
function psql(port: number, user: string, password: string, args: string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env, PGPASSWORD: password, PGPASSFILE: '/nonexistent/strata-test-pgpass', PGCONNECT_TIMEOUT: '10' };
  return promisify(execFile)(PSQL, ['-X', '-h', '127.0.0.1', '-p', String(port), '-U', user, '-d', 'strata', ...args], { env, timeout: 30_000 });
}

/**
 * Over the PostgreSQL protocol, the user is a token's name and the password the token (SCRAM-SHA-256), and each
 * query is authorized on what it reads as POST /v1/sql is: the example config's producer may query nothing, its
 * analyst the clicks and the views. Catalogs list only what the login may query.
 */
describe('PostgreSQL logins are API tokens, and their policies decide what queries read', () => {
  let dir: string;
  let server: RunningStrata;
  let port: number;
  let producer: string;
  let analyst: string;
  let admin: pg.Client;

  const connect = (user: string, password: string) => pgClient(port, { user, password });

  beforeAll(async () => {
    dir = await tempDir();
    server = await startInProcess(await config(), dir, { pg: {} });
    port = server.pg!.address.port;
    producer = await createToken(server.url, 'producer_p', ['producer']);
    analyst = await createToken(server.url, 'analyst_a', ['analyst']);
    await ingest(server.url, 'clicks', clickEvents(20));
    await ingest(server.url, 'orders', [{ order_id: 'o1', ts: '2026-11-25T10:00:00Z', total: 12.5 }]);
    await waitForDelivery(server);
    admin = await connect('admin', TEST_ADMIN_TOKEN);
  });

  afterAll(async () => {
    await admin?.end();
    await server?.close();
    await removeDir(dir);
  });

  it('refuses a producer token SELECT count(*) FROM clicks with 42501 naming the table, and lets an analyst token run it', async () => {
    const asProducer = await connect('producer_p', producer);
    try {
      const refused = await failure(asProducer.query('SELECT count(*) FROM clicks'));
      expect(refused.code).toBe('42501');
      expect(refused.message).toBe('token "producer_p" may not query table:clicks');
      // The connection goes on: a query that reads no table runs.
      expect((await asProducer.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await asProducer.end();
    }
    const asAnalyst = await connect('analyst_a', analyst);
    try {
      expect((await asAnalyst.query('SELECT count(*)::INT AS n FROM clicks')).rows).toEqual([{ n: 20 }]);
      expect((await asAnalyst.query('SELECT count(*)::INT AS n FROM clicks WHERE page = $1', ['/p1'])).rows).toEqual([{ n: 7 }]);
      // A query joining an allowed and a forbidden table is refused whole, in either protocol.
      const joined = await failure(asAnalyst.query('SELECT count(*) FROM clicks, orders'));
      expect(joined).toMatchObject({ code: '42501', message: 'token "analyst_a" may not query table:orders' });
      const prepared = await failure(asAnalyst.query({ name: 'orders-total', text: 'SELECT sum(total) FROM orders WHERE total > $1', values: [1] }));
      expect(prepared).toMatchObject({ code: '42501', message: 'token "analyst_a" may not query table:orders' });
      // DuckDB's own catalog and files are for admins, as over HTTP.
      expect((await failure(asAnalyst.query('SELECT * FROM duckdb_settings()'))).code).toBe('42501');
      expect((await failure(asAnalyst.query('SELECT relname FROM system.pg_catalog.pg_class'))).code).toBe('42501');
      expect((await failure(asAnalyst.query('SELECT * FROM strata_audit'))).code).toBe('42501');
    } finally {
      await asAnalyst.end();
    }
  });

  it('records denied queries in the audit log, as HTTP does', async () => {
    const rows = (
      await admin.query<{ token: string; resource: string; outcome: string; route: string; client: string }>(
        "SELECT token, resource, outcome, route, client FROM strata_audit WHERE action = 'query' AND outcome = 'denied' ORDER BY id",
      )
    ).rows;
    expect(rows).toEqual(
      expect.arrayContaining([
        { token: 'producer_p', resource: 'table:clicks', outcome: 'denied', route: 'PostgreSQL protocol', client: '127.0.0.1' },
        { token: 'analyst_a', resource: 'table:orders', outcome: 'denied', route: 'PostgreSQL protocol', client: '127.0.0.1' },
        { token: 'analyst_a', resource: 'system:strata_audit', outcome: 'denied', route: 'PostgreSQL protocol', client: '127.0.0.1' },
      ]),
    );
  });

  it('lists in the catalogs only the tables the login may query', async () => {
    const everything = await names(admin, "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'main'");
    expect(everything).toEqual(expect.arrayContaining(['clicks', 'orders', 'page_minute', 'page_minute__batch', 'page_minute__speed', 'strata_audit']));

    const asAnalyst = await connect('analyst_a', analyst);
    try {
      const visible = everything.filter((name) => name !== 'orders' && name !== 'strata_audit' && !name.startsWith('orders__'));
      expect(await names(asAnalyst, "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'main'")).toEqual(visible);
      expect(await names(asAnalyst, "SELECT relname AS name FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'main'")).toEqual(visible);
      expect(await names(asAnalyst, "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'main'")).toEqual(visible);
      expect(await names(asAnalyst, "SELECT DISTINCT table_name AS name FROM information_schema.columns WHERE table_schema = 'main'")).toEqual(visible);
      expect(await names(asAnalyst, "SELECT view_name AS name FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal")).toEqual(visible);
      expect(await names(asAnalyst, "SELECT DISTINCT table_name AS name FROM system.main.duckdb_columns() WHERE database_name <> 'system' AND schema_name = 'main'")).toEqual(visible);
      expect((await asAnalyst.query("SELECT to_regclass('orders') AS orders, to_regclass('clicks') IS NOT NULL AS clicks FROM pg_catalog.pg_am LIMIT 1")).rows).toEqual([
        { orders: null, clicks: true },
      ]);
      expect((await asAnalyst.query("SELECT count(*)::INT AS n FROM pg_attribute a JOIN pg_class c ON a.attrelid = c.oid WHERE c.relname = 'orders'")).rows).toEqual([{ n: 0 }]);
      // Spellings that would escape the rewrite are DuckDB's catalog as it is: refused, or filtered all the same.
      for (const escaped of ['SELECT relname FROM "PG_CLASS"', 'SELECT table_name FROM "INFORMATION_SCHEMA"."TABLES"', 'SELECT * FROM duckdb_views', 'SELECT * FROM memory.pg_catalog.pg_class']) {
        expect((await failure(asAnalyst.query(escaped))).code, escaped).toBe('42501');
      }
      expect(await names(asAnalyst, `SELECT view_name AS name FROM "DUCKDB_VIEWS" ( ) AS v WHERE schema_name = 'main' AND NOT internal`)).toEqual(visible);
    } finally {
      await asAnalyst.end();
    }

    const asProducer = await connect('producer_p', producer);
    try {
      expect(await names(asProducer, "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'main'")).toEqual([]);
    } finally {
      await asProducer.end();
    }
  });

  it.skipIf(!existsSync(PSQL))('lets psql log in with PGPASSWORD set to a token, and \\dt lists what that token may query', async () => {
    const count = await psql(port, 'analyst_a', analyst, ['-A', '-t', '-c', 'SELECT count(*) FROM clicks']);
    expect(count.stdout.trim()).toBe('20');
    const tables = await psql(port, 'analyst_a', analyst, ['-c', '\\dt']);
    expect(tables.stdout).toMatch(/\sclicks\s+\| table/);
    expect(tables.stdout).toMatch(/\spage_minute\s+\| table/);
    expect(tables.stdout).not.toContain('orders');
    expect(tables.stdout).not.toContain('strata_audit');
    const described = await psql(port, 'analyst_a', analyst, ['-c', '\\d clicks']);
    expect(described.stdout).toContain('Table "main.clicks"');
    const hidden = await psql(port, 'analyst_a', analyst, ['-c', '\\d orders']).catch((error: { stdout: string; stderr: string; code: number }) => error);
    expect(`${hidden.stdout}${hidden.stderr}`).toContain('Did not find any relation named "orders"');
    const refused = await psql(port, 'producer_p', producer, ['-c', 'SELECT count(*) FROM clicks']).catch((error: { stderr: string; code: number }) => error);
    expect(refused).toMatchObject({ code: 1 });
    expect((refused as { stderr: string }).stderr).toContain('may not query table:clicks');
  });

  it('refuses a wrong password and an unknown user with the same 28P01, and audits both', async () => {
    const wrong = await failure(connect('analyst_a', 'not-the-token'));
    const unknown = await failure(connect('nobody', analyst));
    const someoneElses = await failure(connect('producer_p', analyst));
    for (const [error, user] of [
      [wrong, 'analyst_a'],
      [unknown, 'nobody'],
      [someoneElses, 'producer_p'],
    ] as const) {
      expect(error).toMatchObject({ code: '28P01', severity: 'FATAL', message: `password authentication failed for user "${user}"` });
      expect((error as { hint?: string }).hint).toBe(AUTHENTICATION_HINT);
    }
    const refusals = await admin.query<{ n: number }>("SELECT count(*)::INT AS n FROM strata_audit WHERE action = 'login' AND outcome = 'unauthenticated' AND route = 'PostgreSQL protocol' AND token IS NULL");
    expect(refusals.rows[0]!.n).toBeGreaterThanOrEqual(3);
  });

  it('refuses a revoked token at once: a new connection fails with 28P01, an open one has its next query refused', async () => {
    const token = await createToken(server.url, 'analyst_b', ['analyst']);
    const open = await connect('analyst_b', token);
    try {
      expect((await open.query('SELECT count(*)::INT AS n FROM clicks')).rows).toEqual([{ n: 20 }]);
      const revoked = await fetch(`${server.url}/v1/tokens/analyst_b`, { method: 'DELETE' });
      expect(revoked.status).toBe(204);
      expect(await failure(connect('analyst_b', token))).toMatchObject({ code: '28P01' });
      expect(await failure(open.query('SELECT count(*) FROM clicks'))).toMatchObject({ code: '28000' });
    } finally {
      await open.end().catch(() => undefined);
    }
    // Made again under the same name, it is a new token: the old text does not log in, the new one does.
    const again = await createToken(server.url, 'analyst_b', ['analyst']);
    expect(await failure(connect('analyst_b', token))).toMatchObject({ code: '28P01' });
    const fresh = await connect('analyst_b', again);
    await fresh.end();
  });

  it('keeps a SCRAM verifier for each token, never the token', () => {
    const db = new Database(join(dir, 'catalog.db'), { readonly: true });
    try {
      const rows = db.prepare('SELECT name, scram FROM tokens ORDER BY name').all() as { name: string; scram: string }[];
      expect(rows.map((row) => row.name)).toEqual(['analyst_a', 'analyst_b', 'producer_p']);
      for (const row of rows) {
        expect(row.scram).toMatch(/^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
        expect(row.scram).not.toContain(analyst);
        expect(row.scram).not.toContain(producer);
      }
    } finally {
      db.close();
    }
  });
});

/**
 * A token made before Strata kept SCRAM verifiers has none: it cannot log in by SCRAM, so it is refused on a plain
 * connection (the hint says why) and logs in by password over TLS.
 */
describe.skipIf(!existsSync(OPENSSL))('a token without a SCRAM verifier', () => {
  let dir: string;
  let server: RunningStrata | undefined;

  afterAll(async () => {
    await server?.close();
    await removeDir(dir);
  });

  it('is refused without TLS, with the hint, and logs in by password over TLS', async () => {
    dir = await tempDir();
    const { cert, key } = await makeCertificate(dir);
    const data = join(dir, 'data');
    const first = await startInProcess(await config(), data, { pg: {} });
    const token = await createToken(first.url, 'legacy', ['analyst']);
    await ingest(first.url, 'clicks', clickEvents(5));
    await waitForDelivery(first);
    await first.close();
    // As a catalog from before the verifier column was added would have it.
    const db = new Database(join(data, 'catalog.db'));
    db.prepare('UPDATE tokens SET scram = NULL WHERE name = ?').run('legacy');
    db.close();

    server = await startInProcess(await config(), data, { pg: { tls: { cert, key } } });
    const port = server.pg!.address.port;
    const plain = await failure(pgClient(port, { user: 'legacy', password: token }));
    expect(plain).toMatchObject({ code: '28P01', message: 'password authentication failed for user "legacy"' });
    expect((plain as { hint?: string }).hint).toContain('only over TLS');
    const secure = await pgClient(port, { user: 'legacy', password: token, ssl: { ca: cert } });
    try {
      expect((await secure.query('SELECT count(*)::INT AS n FROM clicks')).rows).toEqual([{ n: 5 }]);
      expect((await failure(secure.query('SELECT count(*) FROM orders'))).code).toBe('42501');
    } finally {
      await secure.end();
    }
    expect(await failure(pgClient(port, { user: 'legacy', password: 'wrong', ssl: { ca: cert } }))).toMatchObject({ code: '28P01' });
    // Tokens with a verifier still use SCRAM over TLS.
    const admin = await pgClient(port, { ssl: { ca: cert } });
    await admin.end();
  });
});
