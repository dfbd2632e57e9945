import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_AUTH } from '../fixtures/auth.js';
import { killHard, removeDir, startInProcess, tempDir, writeConfig, type RunningStrata } from '../fixtures/strata.js';
import { as, call, exampleConfig } from './support.js';

const run = promisify(execFile);

/** Runs the compiled `strata` bin with `env` over the test's environment; answers its output and exit code. */
async function strata(env: Record<string, string | undefined>, ...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['bin/strata.js', ...args], { env: { ...process.env, ...env } });
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const failed = error as { stdout: string; stderr: string; code: number };
    return { stdout: failed.stdout, stderr: failed.stderr, code: failed.code };
  }
}

const json = { 'content-type': 'application/json' };

describe('API tokens', () => {
  let dir: string;
  let server: RunningStrata;

  beforeAll(async () => {
    dir = await tempDir();
    server = await startInProcess(await exampleConfig(), dir);
  });
  afterAll(async () => {
    await server?.close();
    await removeDir(dir);
  });

  it('are made once, listed without their text or hash, and revoked over the API', async () => {
    const created = await call(server.url, 'POST', '/v1/tokens', { ...ADMIN_AUTH, ...json }, JSON.stringify({ name: 'ingest_bot', policies: ['producer'] }));
    expect(created.status).toBe(201);
    const { name, token } = JSON.parse(created.text) as { name: string; token: string };
    expect(name).toBe('ingest_bot');
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const before = JSON.parse((await call(server.url, 'GET', '/v1/tokens', ADMIN_AUTH)).text) as { tokens: Record<string, unknown>[] };
    expect(before.tokens.find((t) => t.name === 'ingest_bot')).toEqual({
      name: 'ingest_bot',
      policies: ['producer'],
      createdAt: expect.stringMatching(/Z$/),
      lastUsed: null,
      fromEnvironment: false,
    });
    expect(before.tokens).toContainEqual(expect.objectContaining({ name: 'admin', policies: ['admin'], fromEnvironment: true }));

    const ingest = await call(server.url, 'POST', '/v1/streams/clicks/records', { ...as(token), ...json }, JSON.stringify({ event_id: 'e1', ts: '2026-11-25T10:00:00Z', user_id: 'u', page: '/', amount: null }));
    expect(ingest.status).toBe(200);
    const after = await call(server.url, 'GET', '/v1/tokens', ADMIN_AUTH);
    expect((JSON.parse(after.text) as { tokens: { name: string; lastUsed: string | null }[] }).tokens.find((t) => t.name === 'ingest_bot')!.lastUsed).toMatch(/Z$/);
    expect(after.text).not.toContain(token);
    expect(after.text).not.toContain(createHash('sha256').update(token).digest('hex'));

    expect((await call(server.url, 'DELETE', '/v1/tokens/ingest_bot', ADMIN_AUTH)).status).toBe(204);
    expect((await call(server.url, 'DELETE', '/v1/tokens/ingest_bot', ADMIN_AUTH)).status).toBe(404);
    expect((await call(server.url, 'POST', '/v1/streams/clicks/records', { ...as(token), ...json }, '{}')).status).toBe(401);
  });

  it.each([
    [{ name: 'x', policies: ['nope'] }, 400, 'unknown policy "nope"; the config declares admin, producer, analyst'],
    [{ name: 'x', policies: [] }, 400, '"policies" must be a non-empty array'],
    [{ name: '../x', policies: ['producer'] }, 400, '"name" must start with a letter'],
    [{ name: 'admin', policies: ['producer'] }, 400, 'bootstrap admin token'],
  ])('refuse a bad request: %j', async (body, status, message) => {
    const answer = await call(server.url, 'POST', '/v1/tokens', { ...ADMIN_AUTH, ...json }, JSON.stringify(body));
    expect(answer.status).toBe(status);
    expect(JSON.parse(answer.text).error.message).toContain(message);
  });

  it('refuse a name in use (409) and the environment’s admin token cannot be revoked over the API', async () => {
    await call(server.url, 'POST', '/v1/tokens', { ...ADMIN_AUTH, ...json }, JSON.stringify({ name: 'twice', policies: ['analyst'] }));
    const again = await call(server.url, 'POST', '/v1/tokens', { ...ADMIN_AUTH, ...json }, JSON.stringify({ name: 'twice', policies: ['analyst'] }));
    expect(again.status).toBe(409);
    const admin = await call(server.url, 'DELETE', '/v1/tokens/admin', ADMIN_AUTH);
    expect(admin.status).toBe(400);
    expect(JSON.parse(admin.text).error.message).toContain('STRATA_ADMIN_TOKEN');
  });

  it('are made, listed and revoked by `strata token` with STRATA_TOKEN', async () => {
    const created = await strata({}, 'token', 'create', 'cli_bot', '--policy', 'producer', '--policy', 'analyst', '--url', server.url);
    expect(created.code).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toContain('shown this once');

    const listed = await strata({}, 'token', 'list', '--url', server.url);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/cli_bot +\| producer, analyst \| \S+Z \| never/);
    expect(listed.stdout).not.toContain(token);

    // Every CLI command that calls the server sends STRATA_TOKEN: here as the new token, which may not list tokens.
    const refused = await strata({ STRATA_TOKEN: token }, 'token', 'list', '--url', server.url);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('token "cli_bot" may not admin token:*');
    const status = await strata({ STRATA_TOKEN: token, STRATA_ADMIN_TOKEN: undefined }, 'catalog', '--url', server.url);
    expect(status.code).toBe(0);

    const revoked = await strata({}, 'token', 'revoke', 'cli_bot', '--url', server.url);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain('token "cli_bot" revoked');
    const gone = await strata({ STRATA_TOKEN: token }, 'status', '--url', server.url);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('refused the token in STRATA_TOKEN');
    const none = await strata({ STRATA_TOKEN: '', STRATA_ADMIN_TOKEN: '' }, 'status', '--url', server.url);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('needs an API token: set STRATA_TOKEN');
  });
});

describe('the bootstrap admin token', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir();
  });
  afterAll(() => removeDir(dir));

  /** `strata start` without STRATA_ADMIN_TOKEN; answers its URL and what it printed by then. */
  async function start(configPath: string): Promise<{ url: string; lines: string[]; stop: () => Promise<void> }> {
    const env = { ...process.env };
    delete env.STRATA_ADMIN_TOKEN;
    const child = spawn(process.execPath, ['bin/strata.js', 'start', '--config', configPath, '--data', `${dir}/data`, '--port', '0', '--pg-port', '0'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    const url = await new Promise<string>((resolve, reject) => {
      let found: string | null = null;
      createInterface({ input: child.stdout }).on('line', (line) => {
        lines.push(line);
        found ??= /listening on (http\S+)/.exec(line)?.[1] ?? null;
        if (found !== null && line.startsWith('Console: ')) resolve(found);
      });
      child.on('exit', (code) => reject(new Error(`strata start exited with ${code}`)));
    });
    // The lines after "Console:" are printed at once, with it.
    await new Promise((resolve) => setTimeout(resolve, 200));
    return { url, lines, stop: () => killHard(child) };
  }

  it('is made and printed with the console URL by the first start only; later starts say how to get a new one', async () => {
    const configPath = await writeConfig(dir, await exampleConfig());
    const first = await start(configPath);
    const token = /^Admin token \(shown this once; Strata keeps only its hash\): (\S+)$/.exec(first.lines.find((line) => line.startsWith('Admin token'))!)![1]!;
    expect(first.lines).toContain(`Console: ${first.url}/?token=${token}`);
    const streams = await call(first.url, 'GET', '/v1/streams', as(token));
    expect(streams.status).toBe(200);
    // The URL logs the console in.
    expect((await call(first.url, 'GET', `/?token=${token}`)).headers.get('set-cookie')).toMatch(/^strata_session=/);
    await first.stop();

    const second = await start(configPath);
    expect(second.lines.join('\n')).not.toContain(token);
    expect(second.lines.join('\n')).toContain('cannot print it again');
    expect(second.lines.join('\n')).toContain('strata token create');
    expect((await call(second.url, 'GET', '/v1/streams', as(token))).status).toBe(200);
    await second.stop();
  });
});
