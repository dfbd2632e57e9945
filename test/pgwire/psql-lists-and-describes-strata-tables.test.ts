import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_ADMIN_TOKEN } from '../fixtures/auth.js';
import { removeDir, tempDir, type RunningStrata } from '../fixtures/strata.js';
import { clickEvents, ingest, startWithPg } from './helpers.js';

const run = promisify(execFile);
const PSQL = '/usr/bin/psql';

/**
 * Runs Debian's psql against `port` (no psqlrc, no password file) as user `admin` with PGPASSWORD `password`
 * (default: the test admin token; null for none), answering its output.
 */
async function psql(port: number, args: string[], password: string | null = TEST_ADMIN_TOKEN): Promise<{ stdout: string; stderr: string }> {
  // No ~/.pgpass either: a password file that does not exist.
  const env: NodeJS.ProcessEnv = { ...process.env, PGPASSFILE: '/nonexistent/strata-test-pgpass', PGCONNECT_TIMEOUT: '10', PGSSLMODE: 'prefer' };
  delete env.PGPASSWORD;
  if (password !== null) env.PGPASSWORD = password;
  return run(PSQL, ['-X', '-h', '127.0.0.1', '-p', String(port), '-U', 'admin', '-d', 'strata', ...args], { env, timeout: 30_000 });
}

describe('psql, as Debian ships it, queries and describes Strata', () => {
  let dir: string;
  let server: RunningStrata & { pgPort: number };

  beforeAll(async () => {
    // .ci/run installs postgresql-client; without psql this suite cannot say anything.
    if (!existsSync(PSQL)) throw new Error(`${PSQL} is missing: apt-get install -y postgresql-client (.ci/run does)`);
    dir = await tempDir();
    server = await startWithPg(dir);
    await ingest(server, clickEvents(30));
  });

  afterAll(async () => {
    await server?.close();
    await removeDir(dir);
  });

  it('runs -c queries, negotiating SSL first (answered N: no TLS configured)', async () => {
    const { stdout } = await psql(server.pgPort, ['-A', '-t', '-c', "SELECT count(*) AS n, count(DISTINCT page) AS pages FROM clicks WHERE user_id <> 'nobody'"]);
    expect(stdout.trim()).toBe('30|3');
    const version = await psql(server.pgPort, ['-A', '-t', '-c', 'SELECT version()']);
    expect(version.stdout).toMatch(/^PostgreSQL 15\.\d+ \(Strata/);
  });

  it('lists the raw table and the view tables with \\dt', async () => {
    const { stdout } = await psql(server.pgPort, ['-c', '\\dt']);
    for (const table of ['clicks', 'page_minute', 'page_minute__batch', 'page_minute__speed']) {
      expect(stdout).toMatch(new RegExp(`\\s${table}\\s+\\| table`));
    }
    expect(stdout).toContain('List of relations');
  });

  it('describes a table with \\d clicks: its columns and their PostgreSQL types', async () => {
    const { stdout, stderr } = await psql(server.pgPort, ['-c', '\\d clicks']);
    expect(stderr).toBe('');
    expect(stdout).toContain('Table "main.clicks"');
    const columns = Object.fromEntries(
      stdout
        .split('\n')
        .map((line) => line.split('|').map((cell) => cell.trim()))
        .filter((cells) => cells.length >= 2 && cells[0] !== 'Column' && cells[0] !== '')
        .map((cells) => [cells[0], cells[1]]),
    );
    expect(columns).toMatchObject({
      event_id: 'text',
      ts: 'timestamp without time zone',
      user_id: 'text',
      page: 'text',
      amount: 'double precision',
    });
  });

  it('describes a view table with \\d page_minute', async () => {
    const { stdout } = await psql(server.pgPort, ['-c', '\\d page_minute']);
    expect(stdout).toContain('Table "main.page_minute"');
    expect(stdout).toMatch(/views\s+\| bigint/);
  });

  it('reports a refused statement with its SQLSTATE and exits non-zero', async () => {
    const failed = await psql(server.pgPort, ['-v', 'VERBOSITY=verbose', '-c', 'DELETE FROM clicks']).catch((error: { stderr: string; code: number }) => error);
    expect(failed).toMatchObject({ code: 1 });
    expect((failed as { stderr: string }).stderr).toContain('42501');
  });

  it('logs in as the admin token by SCRAM-SHA-256 with PGPASSWORD, and refuses a wrong password or none', async () => {
    const ok = await psql(server.pgPort, ['-A', '-t', '-c', 'SELECT count(*) FROM clicks']);
    expect(ok.stdout.trim()).toBe('30');
    const wrong = await psql(server.pgPort, ['-c', 'SELECT 1'], 'not-the-token').catch((error: { stderr: string; code: number }) => error);
    expect(wrong).toMatchObject({ code: 2 });
    expect((wrong as { stderr: string }).stderr).toContain('password authentication failed for user "admin"');
    const none = await psql(server.pgPort, ['-w', '-c', 'SELECT 1'], null).catch((error: { stderr: string; code: number }) => error);
    expect(none).toMatchObject({ code: 2 });
  });
});
