import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { answerOk, startFakeServer, type FakeServer } from './support/fake-server.js';

/** The repo root: scripts import `strata/client` from the build in dist/, as a user's program would. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Runs an ES module script with `node`, from the repo root so the package resolves itself; answers its exit code. */
function runScript(source: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', source], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('a process using strata/client', () => {
  let server: FakeServer;

  afterEach(async () => {
    await server.close();
  });

  it('delivers puts it never awaited before it exits', async () => {
    server = await startFakeServer(answerOk);
    const run = await runScript(`
      import { StrataProducer } from 'strata/client';
      const producer = new StrataProducer({ url: ${JSON.stringify(server.url)}, stream: 'clicks', lingerMs: 20 });
      producer.put({ id: 1 });
      producer.put({ id: 2 });
    `);
    expect(run).toEqual({ code: 0, stderr: '' });
    expect(server.accepted).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it('exits once close() has resolved, however long the linger', async () => {
    // A linger timer left armed would hold the process past the test timeout.
    server = await startFakeServer(answerOk);
    const run = await runScript(`
      import { StrataProducer } from 'strata/client';
      const producer = new StrataProducer({ url: ${JSON.stringify(server.url)}, stream: 'clicks', lingerMs: 3_600_000 });
      const put = producer.put({ id: 1 });
      await producer.close();
      if (!(await put).ok) process.exit(2);
    `);
    expect(run).toEqual({ code: 0, stderr: '' });
    expect(server.accepted).toEqual([{ id: 1 }]);
  });
});
