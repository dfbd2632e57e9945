import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clickRows, writeParquet } from '../fixtures/lake.js';
import { clicksConfig, removeDir, startInProcess, tempDir, type RunningStrata } from '../fixtures/strata.js';

const run = promisify(execFile);

/** Runs the compiled `strata` bin; answers its output and exit code whether it fails or not. */
async function strata(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['bin/strata.js', ...args]);
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const failed = error as { stdout: string; stderr: string; code: number };
    return { stdout: failed.stdout, stderr: failed.stderr, code: failed.code };
  }
}

describe('strata sql and strata catalog', () => {
  let dir: string;
  let server: RunningStrata;

  beforeAll(async () => {
    dir = await tempDir();
    server = await startInProcess(clicksConfig({}, 2), dir);
    const { catalog, store } = server.strata;
    const first = await writeParquet(store, 'raw/clicks/dt=2026-11-25/0-1-4.parquet', clickRows(0, 1, 4));
    await catalog.commitDelivery('clicks', 0, 1, 4, [first]);
    const second = await writeParquet(store, 'raw/clicks/dt=2026-11-26/1-1-2.parquet', clickRows(1, 1, 2, '2026-11-26'));
    await catalog.commitDelivery('clicks', 1, 1, 2, [second]);
  });
  afterAll(async () => {
    await server.close();
    await removeDir(dir);
  });

  it('prints an aligned table with the row count', async () => {
    const { stdout, code } = await strata(
      'sql',
      'SELECT dt, count(*) AS n, min(ts) AS first, max(amount) AS top FROM clicks GROUP BY dt ORDER BY dt',
      '--url',
      server.url,
    );
    expect(code).toBe(0);
    expect(stdout).toBe(
      [
        'dt         | n | first                    | top',
        '-----------+---+--------------------------+----',
        '2026-11-25 | 4 | 2026-11-25T10:00:00.000Z |   3',
        '2026-11-26 | 2 | 2026-11-26T10:00:00.000Z |   0',
        '(2 rows)',
        '',
      ].join('\n'),
    );
  });

  it('prints the JSON answer with --format json and CSV with --format csv', async () => {
    const json = await strata('sql', 'SELECT __seq, page FROM clicks WHERE __shard = 1 ORDER BY __seq', '--url', server.url, '--format', 'json');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      columns: [
        { name: '__seq', type: 'BIGINT' },
        { name: 'page', type: 'VARCHAR' },
      ],
      rows: [
        { __seq: '1', page: '/p0' },
        { __seq: '2', page: '/p1' },
      ],
    });
    const csv = await strata('sql', 'SELECT __seq, amount FROM clicks WHERE __shard = 1 ORDER BY __seq', '--url', server.url, '--format', 'csv');
    expect(csv.stdout).toBe('__seq,amount\r\n1,0\r\n2,\r\n');
  });

  it('exits 1 with the server’s message when a query is refused or fails, or no server answers', async () => {
    const refused = await strata('sql', 'DROP TABLE clicks', '--url', server.url);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/DROP statements are refused/);
    const failed = await strata('sql', 'SELECT * FROM nope', '--url', server.url);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/Table with name nope does not exist/);
    const nobody = await strata('sql', 'SELECT 1', '--url', 'http://127.0.0.1:1');
    expect(nobody).toMatchObject({ code: 1, stderr: expect.stringContaining('no Strata server answers at http://127.0.0.1:1') });
  });

  it('lists the tables with chunks, rows and bytes', async () => {
    const { stdout, code } = await strata('catalog', '--url', server.url);
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^table\s+\| kind \| schema \| columns \| chunks \| rows \|\s+bytes$/);
    expect(lines[2]!.split('|').map((cell) => cell.trim())).toEqual(['clicks', 'raw', 'v1', '5', '2', '6', expect.stringMatching(/^[\d.]+ KB$/)]);
    const json = JSON.parse((await strata('catalog', '--url', server.url, '--json')).stdout) as { tables: { name: string; rows: number }[] };
    expect(json.tables).toMatchObject([{ name: 'clicks', rows: 6 }]);
  });

  it('describes one table: columns, schema versions, partitions and chunks', async () => {
    const { stdout, code } = await strata('catalog', 'clicks', '--url', server.url);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^table clicks \(raw\): schema v1, 2 chunks, 6 rows, [\d.]+ KB$/m);
    expect(stdout).toMatch(/^ {2}amount {3}\| double\?$/m);
    expect(stdout).toMatch(/^ {2}v1 {6}\| \S+ \| created: event_id string, ts timestamp, user_id string, page string, amount double\?$/m);
    const cells = (line: string) => line.split('|').map((cell) => cell.trim());
    const lines = stdout.split('\n');
    const partitions = lines.filter((line) => /^ {2}2026-11-2\d \|/.test(line) && !line.includes('.parquet')).map(cells);
    expect(partitions.map((row) => row.slice(0, 3))).toEqual([
      ['2026-11-25', '1', '4'],
      ['2026-11-26', '1', '2'],
    ]);
    const chunks = lines.filter((line) => line.includes('.parquet')).map(cells);
    expect(chunks.map((row) => [row[1], row[2], row[3], row[4], row[6], row[7]])).toEqual([
      ['2026-11-25', '0', '1-4', '4', 'v1', 'raw/clicks/dt=2026-11-25/0-1-4.parquet'],
      ['2026-11-26', '1', '1-2', '2', 'v1', 'raw/clicks/dt=2026-11-26/1-1-2.parquet'],
    ]);
    const missing = await strata('catalog', 'nope', '--url', server.url);
    expect(missing).toMatchObject({ code: 1, stderr: expect.stringContaining('unknown table "nope"') });
  });
});
