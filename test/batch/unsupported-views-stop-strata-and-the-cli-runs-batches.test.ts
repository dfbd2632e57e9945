import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { Strata } from '../../src/strata.js';
import { UnsupportedViewError } from '../../src/views/index.js';
import { clicksConfig, removeDir, startInProcess, tempDir, waitForDelivery, writeConfig, type RunningStrata } from '../fixtures/strata.js';
import { clickEvents, ingest, PAGE_MINUTE } from './support.js';

const run = promisify(execFile);
const EXACT_DISTINCT = 'SELECT page, count(DISTINCT user_id) AS users FROM clicks GROUP BY page';

describe('an unsupported view stops Strata from starting', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir();
  });
  afterAll(async () => removeDir(dir));

  it('Strata.open refuses it naming the view and the construct', async () => {
    const config = parseConfig(clicksConfig({ views: { ok: PAGE_MINUTE, bad: EXACT_DISTINCT } }));
    const opening = Strata.open({ config, dataDir: dir });
    await expect(opening).rejects.toThrow(UnsupportedViewError);
    await expect(Strata.open({ config, dataDir: dir })).rejects.toThrow(/view "bad": count\(DISTINCT \.\.\.\) is not supported/);
  });

  it('`strata start` refuses it the same way, before listening', async () => {
    const path = await writeConfig(dir, clicksConfig({ views: { bad: { sql: 'SELECT page, median(amount) AS m FROM clicks GROUP BY page', every: '1m' } } }));
    const child = spawn(process.execPath, ['bin/strata.js', 'start', '--config', path, '--data', dir, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toMatch(/view "bad": median\(\) is not a mergeable aggregate/);
  });
});

describe('strata batch and scheduled runs', () => {
  let dir: string;
  let server: RunningStrata;
  beforeAll(async () => {
    dir = await tempDir();
    server = await startInProcess(
      clicksConfig({ delivery: { maxSeconds: 0.1 }, views: { page_minute: PAGE_MINUTE, by_page: { sql: 'SELECT page, count(*) AS n FROM clicks GROUP BY page', every: '1s' } } }),
      dir,
    );
    await ingest(server, clickEvents(7, 500, ['2026-11-20', '2026-11-21']));
    await waitForDelivery(server);
  });
  afterAll(async () => {
    await server?.close();
    await removeDir(dir);
  });

  it('runs a view, prints progress lines off a terminal and a summary', async () => {
    const { stdout, stderr } = await run(process.execPath, ['bin/strata.js', 'batch', 'page_minute', '--from-scratch', '--url', server.url]);
    expect(stderr).toMatch(/batch run \S+ started/);
    expect(stderr).toMatch(/: 100%/);
    expect(stdout).toMatch(/batch run \S+ succeeded in [\d.]+ s \(from scratch\)/);
    expect(stdout).toContain('page_minute: version 1, 2 partition(s) recomputed (2026-11-20, 2026-11-21)');
    expect(stdout).toMatch(/watermark clicks: 0=\d+ 1=\d+ 2=\d+ 3=\d+/);
    const rows = await server.strata.sql.queryAll('SELECT sum(views)::INTEGER AS n FROM page_minute__batch');
    expect(rows.rows[0]!.n).toBe(500);
  });

  it('fails with the server message for an unknown view', async () => {
    await expect(run(process.execPath, ['bin/strata.js', 'batch', 'nope', '--url', server.url])).rejects.toMatchObject({
      stderr: expect.stringMatching(/unknown view "nope"/),
    });
  });

  it('runs a view with `every` on its schedule', async () => {
    const started = Date.now();
    while (!(await server.strata.catalog.currentViewVersions()).has('by_page')) {
      if (Date.now() - started > 10_000) throw new Error('the scheduled run did not publish');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const rows = await server.strata.sql.queryAll('SELECT sum(n)::INTEGER AS n FROM by_page__batch');
    expect(rows.rows[0]!.n).toBe(500);
  });
});
