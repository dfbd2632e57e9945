import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { click, startStrata, type TestServer } from '../client/support/strata-server.js';

/** The repo root: the bin runs the build in dist/, which `npm test` makes before vitest starts. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `strata ARGS` as a child process, feeding `stdin` when given. */
function strata(args: string[], stdin?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/strata.js'), ...args], { cwd: ROOT, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

describe('strata ingest', () => {
  let server: TestServer;
  let dir: string;

  beforeEach(async () => {
    server = await startStrata();
    dir = await mkdtemp(join(tmpdir(), 'strata-ingest-cli-'));
  });

  afterEach(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('streams a file, reports a malformed line and a schema-invalid record, and exits 1', async () => {
    const lines: string[] = [];
    let valid = 0;
    for (let n = 0; n < 1000; n++) {
      if (n === 56) lines.push('{"event_id": "e56", oops');
      else if (n === 119) lines.push(JSON.stringify(click(n, { amount: 'lots' })));
      else if (n === 9 || n === 500) lines.push('   ');
      else {
        lines.push(JSON.stringify(click(n)));
        valid++;
      }
    }
    const file = join(dir, 'clicks.ndjson');
    await writeFile(file, lines.join('\n') + '\n');

    const run = await strata(['ingest', 'clicks', file, '--url', server.url, '--batch', '64']);

    expect(run.code).toBe(1);
    const summary = run.stdout.split('\n')[0]!;
    expect(summary).toMatch(new RegExp(`^sent ${valid + 1}, acked ${valid}, failed 2, \\d+ events/s in [\\d.]+ s$`));
    expect(run.stdout).toContain('line 120: field amount: expected a number');
    expect(run.stderr).toContain('line 57: not valid JSON');
    expect(await server.recordsInLog('clicks')).toBe(valid);
  });

  it('reads stdin for -, and exits 0 when every record is acked', async () => {
    const input = Array.from({ length: 250 }, (_, n) => JSON.stringify(click(n))).join('\n'); // no final newline
    const run = await strata(['ingest', 'clicks', '-', '--url', server.url, '--linger', '5'], input);

    expect(run.stdout).toMatch(/^sent 250, acked 250, failed 0, /);
    expect(run.code).toBe(0);
    expect(await server.recordsInLog('clicks')).toBe(250);
  });

  it('fails every record of an unknown stream with the server message', async () => {
    const run = await strata(['ingest', 'nope', '-', '--url', server.url], `${JSON.stringify(click(1))}\n`);

    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^sent 1, acked 0, failed 1, /);
    expect(run.stdout).toContain('line 1: HTTP 404 not_found: unknown stream "nope"');
  });

  it('names a file it cannot read and exits 1', async () => {
    const run = await strata(['ingest', 'clicks', join(dir, 'missing.ndjson'), '--url', server.url]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('cannot read');
  });

  it('shows usage with an example', async () => {
    const run = await strata(['ingest', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Usage: strata ingest [options] <stream> <file>');
    expect(run.stdout).toContain('strata ingest clicks clicks.ndjson');
  });
});
