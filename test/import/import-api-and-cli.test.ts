import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ImportJobView } from '../../src/ingest/index.js';
import { clicksConfig, independentQuery, removeDir, startInProcess, tempDir, type RunningStrata } from '../fixtures/strata.js';
import { ORDER_SCHEMA, orders, writeCsv } from './support.js';

/** The repo root: the bin runs the build in dist/, which `npm test` makes before vitest starts. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function strata(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/strata.js'), ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function post(url: string, path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function waitForJob(url: string, id: string): Promise<ImportJobView> {
  for (let i = 0; i < 400; i++) {
    const job = (await (await fetch(`${url}/v1/imports/${id}`)).json()) as ImportJobView;
    if (job.state !== 'running') return job;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`import ${id} did not finish`);
}

describe('bulk import over HTTP and from the CLI', () => {
  let dir: string;
  let server: RunningStrata;
  beforeEach(async () => {
    dir = await tempDir('strata-import-api-');
    server = await startInProcess(clicksConfig(), join(dir, 'data'));
  });
  afterEach(async () => {
    await server.close();
    await removeDir(dir);
  });

  it('runs a job per POST and reports each file, its rows and errors', async () => {
    const good = await writeCsv(join(dir, 'good.csv'), orders(5) as unknown as Record<string, unknown>[]);
    const bad = join(dir, 'bad.csv');
    await writeFile(bad, 'order_id,ts,customer,quantity,amount\no1,2026-11-25T00:00:00Z,c,1,x\n');

    const submitted = await post(server.url, '/v1/tables/orders/imports', { files: [good, bad], schema: ORDER_SCHEMA, eventTime: 'ts' });
    expect(submitted.status).toBe(202);
    const job = await waitForJob(server.url, submitted.body.id as string);

    expect(job).toMatchObject({
      id: submitted.body.id,
      state: 'failed',
      table: 'orders',
      progress: 1,
      rows: 5,
      files: [
        { path: good, state: 'succeeded', rows: 5, error: null },
        { path: bad, state: 'failed', rows: 0, error: { code: 'malformed_input', message: 'bad.csv line 2: field "amount": expected a number, got "x"' } },
      ],
      error: { code: 'malformed_input', message: '1 of 2 file(s) failed; the first: bad.csv line 2: field "amount": expected a number, got "x"' },
    });
    expect(job.files.map((file) => file.bytes)).toEqual([expect.any(Number), expect.any(Number)]);

    const again = await post(server.url, '/v1/tables/orders/imports', { files: [good], schema: ORDER_SCHEMA, eventTime: 'ts' });
    expect((await waitForJob(server.url, again.body.id as string)).files[0]!.error!.code).toBe('duplicate_import');
  });

  it('refuses a bad request at once', async () => {
    const good = await writeCsv(join(dir, 'good.csv'), orders(2) as unknown as Record<string, unknown>[]);
    const refusals = [
      [{ files: ['relative.csv'] }, 400, /absolute paths/],
      [{ files: [join(dir, 'missing.csv')] }, 400, /cannot read .*missing\.csv: no such file/],
      [{ files: [good], format: 'xml' }, 400, /unknown format "xml"/],
      [{ files: [good], schema: { amount: 'money' } }, 400, /unknown type "money"/],
      [{ files: [good], schema: { a: 'string' }, eventTime: 'ts' }, 400, /event time "ts" is not a column/],
      [{ files: [good], surprise: true }, 400, /surprise/],
    ] as const;
    for (const [body, status, message] of refusals) {
      const answer = await post(server.url, '/v1/tables/orders/imports', body);
      expect([answer.status, answer.body.error]).toEqual([status, { code: expect.any(String), message: expect.stringMatching(message) }]);
    }
    expect((await post(server.url, '/v1/tables/bad-name/imports', { files: [good] })).status).toBe(400);
    expect((await fetch(`${server.url}/v1/imports/nope`)).status).toBe(404);
  });

  it('`strata import` expands a glob, shows progress, prints a summary, and exits 1 when a file fails', async () => {
    for (let part = 1; part <= 3; part++) {
      await writeCsv(join(dir, `orders-${part}.csv`), orders(100, part * 1000) as unknown as Record<string, unknown>[]);
    }
    await writeFile(join(dir, 'notes.txt'), 'not matched');
    const schema = JSON.stringify(ORDER_SCHEMA);

    const run = await strata(['import', 'orders', 'orders-*.csv', '--schema', schema, '--event-time', 'ts', '--url', server.url], dir);

    expect(run.stderr).toContain(`imported ${join(dir, 'orders-1.csv')}: 100 rows`);
    expect(run.stdout).toMatch(/^imported 3 of 3 file\(s\) into "orders": 300 rows, [\d.]+ KB in [\d.]+ s \([\d,]+ rows\/s, [\d.]+ MB\/s\)\n$/);
    expect(run.code).toBe(0);
    const [{ n }] = (await independentQuery(
      `SELECT count(*)::INTEGER AS n FROM read_parquet('${join(dir, 'data', 'lake', 'imported', 'orders', '*', '*.parquet')}')`,
    )) as [{ n: number }];
    expect(n).toBe(300);

    await writeFile(join(dir, 'orders-4.csv'), 'order_id,ts,customer,quantity,amount\no1,2026-11-25T00:00:00Z,c,1,"2\n');
    const failed = await strata(['import', 'orders', join(dir, 'orders-?.csv'), '--schema', schema, '--url', server.url], dir);

    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain('imported 0 of 4 file(s) into "orders": 0 rows');
    expect(failed.stdout).toContain(`  ${join(dir, 'orders-1.csv')}: orders-1.csv: the same content was imported into "orders" at `);
    expect(failed.stdout).toContain(`  ${join(dir, 'orders-4.csv')}: orders-4.csv line 2: a quoted value is not terminated`);
  });

  it('`strata import` names a pattern that matches nothing, and a server that refuses', async () => {
    const none = await strata(['import', 'orders', 'nothing-*.csv', '--url', server.url], dir);
    expect([none.code, none.stderr.trim()]).toEqual([1, 'nothing-*.csv: no file matches']);
    await writeFile(join(dir, 'a.csv'), 'x\n1\n');
    const refused = await strata(['import', 'clicks', 'a.csv', '--schema', '{"x":"int"}', '--url', server.url], dir);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^"clicks" is a stream: its files are checked against the stream's schema/);
    const help = await strata(['import', '--help'], dir);
    expect(help.stdout).toContain('strata import clicks backfill/clicks-2026-*.ndjson');
  });
});
