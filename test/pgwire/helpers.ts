/**
 * Shared set-up for the PostgreSQL protocol tests: Strata in this process with its PostgreSQL listener on a
 * port the system picks (logins are Strata's tokens: user `admin` with the test admin token), and click events
 * ingested over HTTP.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { ADMIN_AUTH, TEST_ADMIN_TOKEN } from '../fixtures/auth.js';
import { clicksConfig, startInProcess, waitForDelivery, type RunningStrata } from '../fixtures/strata.js';
import type { PgServerOptions } from '../../src/pgwire/index.js';

/** A view over the clicks stream, so that `page_minute`, `page_minute__batch` and `page_minute__speed` exist. */
export const PAGE_MINUTE =
  "SELECT page, time_bucket(INTERVAL '1 minute', ts) AS minute, count(*) AS views, sum(amount) AS revenue FROM clicks GROUP BY page, minute";

export async function startWithPg(dir: string, pg: Partial<Omit<PgServerOptions, 'engine'>> = {}): Promise<RunningStrata & { pgPort: number }> {
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
    headers: { 'content-type': 'application/json', ...ADMIN_AUTH },
    body: JSON.stringify(events),
  });
  if (response.status !== 200) throw new Error(`ingest answered ${response.status}: ${await response.text()}`);
  const body = (await response.json()) as { failed: number };
  if (body.failed !== 0) throw new Error(`${body.failed} records failed`);
  await waitForDelivery(server);
}

/** A connected `pg` client (closed by the caller), as user `admin` with the test admin token unless told otherwise. */
export async function pgClient(port: number, options: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'admin', password: TEST_ADMIN_TOKEN, database: 'strata', ...options });
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

/** Where the TLS tests find OpenSSL (Debian's). */
export const OPENSSL = '/usr/bin/openssl';

/** A self-signed certificate for 127.0.0.1 and localhost, made in `dir` with OpenSSL: its paths and the certificate. */
export async function makeCertificate(dir: string): Promise<{ certPath: string; keyPath: string; cert: Buffer; key: Buffer }> {
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  await promisify(execFile)(OPENSSL, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-keyout', keyPath, '-out', certPath,
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]);
  return { certPath, keyPath, cert: await readFile(certPath), key: await readFile(keyPath) };
}
