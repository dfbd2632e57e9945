/**
 * Shared set-up for the PostgreSQL protocol tests: Strata in this process with its PostgreSQL listener on a
 * port the system picks, and click events ingested over HTTP (with the admin token, which the HTTP API may
 * require).
 */
import { createServer } from 'node:net';
import pg from 'pg';
import { clicksConfig, startInProcess, waitForDelivery, type RunningStrata } from '../fixtures/strata.js';
import type { PgServerOptions } from '../../src/pgwire/index.js';

/** The token the tests' Strata accepts as admin over HTTP (the security layer reads STRATA_ADMIN_TOKEN). */
export const ADMIN_TOKEN = 'pgwire-test-admin-token-0123456789';

/** A view over the clicks stream, so that `page_minute`, `page_minute__batch` and `page_minute__speed` exist. */
export const PAGE_MINUTE =
  "SELECT page, time_bucket(INTERVAL '1 minute', ts) AS minute, count(*) AS views, sum(amount) AS revenue FROM clicks GROUP BY page, minute";

export async function startWithPg(dir: string, pg: Partial<Omit<PgServerOptions, 'engine'>> = {}): Promise<RunningStrata & { pgPort: number }> {
  process.env.STRATA_ADMIN_TOKEN ??= ADMIN_TOKEN;
  const server = await startInProcess(clicksConfig({ views: { page_minute: PAGE_MINUTE } }), dir, { pg });
  return Object.assign(server, { pgPort: server.pg!.address.port });
}

/** `count` click events over 5 minutes of 2026-11-25, 3 pages, 7 users; every 4th amount NULL. */
export function clickEvents(count: number): Record<string, unknown>[] {
  return Array.from({ length: count }, (_, i) => ({
    event_id: `e${i}`,
    ts: new Date(Date.UTC(2026, 10, 25, 10, i % 5, i % 60)).toISOString(),
    user_id: `u${i % 7}`,
    page: `/p${i % 3}`,
    amount: i % 4 === 0 ? null : i * 1.5,
  }));
}

/** POSTs events to the clicks stream over HTTP and waits until delivery has them in the lake. */
export async function ingest(server: RunningStrata, events: Record<string, unknown>[]): Promise<void> {
  const response = await fetch(`${server.url}/v1/streams/clicks/records`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${process.env.STRATA_ADMIN_TOKEN ?? ADMIN_TOKEN}` },
    body: JSON.stringify(events),
  });
  if (response.status !== 200) throw new Error(`ingest answered ${response.status}: ${await response.text()}`);
  const body = (await response.json()) as { failed: number };
  if (body.failed !== 0) throw new Error(`${body.failed} records failed`);
  await waitForDelivery(server);
}

/** A connected `pg` client (closed by the caller). */
export async function pgClient(port: number, options: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'admin', database: 'strata', ...options });
  await client.connect();
  return client;
}

/** The error a promise rejects with, to assert on its SQLSTATE. */
export async function failure(promise: Promise<unknown>): Promise<{ code?: string; message: string; severity?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { code?: string; message: string };
  }
  throw new Error('expected the query to fail');
}

/** A free TCP port on 127.0.0.1 (bind 0, note it, close), for a child process to listen on. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}
