import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { clicksConfig, killHard, removeDir, tempDir, writeConfig } from '../fixtures/strata.js';
import { freePort, pgClient } from './helpers.js';

/** `strata start` (the compiled bin) with `--pg-port`: the listener, its start-up line, and `--pg-port 0`. */
describe('strata start --pg-port', () => {
  let dir: string;
  let child: ChildProcess | undefined;

  afterEach(async () => {
    if (child) await killHard(child);
    child = undefined;
    await removeDir(dir);
  });

  /** Starts the bin; answers its stdout lines up to the HTTP listening line, and its stderr so far. */
  async function start(args: string[], env: NodeJS.ProcessEnv): Promise<{ lines: string[]; stderr: () => string }> {
    const config = await writeConfig(dir, clicksConfig());
    child = spawn(process.execPath, ['bin/strata.js', 'start', '--config', config, '--data', join(dir, 'data'), '--port', '0', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const lines: string[] = [];
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child!.stdout! }).on('line', (line) => {
        lines.push(line);
        // The PostgreSQL line follows the HTTP one; without a listener there is none.
        if (/PostgreSQL protocol on/.test(line) || (args.includes('0') && /listening on/.test(line))) resolve();
      });
      child!.on('exit', (code) => reject(new Error(`strata start exited with ${code}: ${stderr}`)));
      setTimeout(() => reject(new Error(`no listening line in time: ${lines.join('\n')} ${stderr}`)), 30_000).unref();
    });
    return { lines, stderr: () => stderr };
  }

  it('listens on the given port beside HTTP, prints where, and warns while anyone may connect', async () => {
    dir = await tempDir();
    const port = await freePort();
    const env = { ...process.env };
    delete env.STRATA_ADMIN_TOKEN;
    const { lines, stderr } = await start(['--pg-port', String(port)], env);
    expect(lines.some((line) => line.includes(`PostgreSQL protocol on postgresql://127.0.0.1:${port}`))).toBe(true);
    // stderr and stdout are separate pipes: the warning may arrive a moment after the listening line.
    for (let i = 0; i < 100 && !stderr().includes('anyone in without a password'); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(stderr()).toContain('anyone in without a password');
    const client = await pgClient(port);
    try {
      expect((await client.query('SELECT count(*)::INT AS n FROM clicks')).rows).toEqual([{ n: 0 }]);
    } finally {
      await client.end();
    }
  });

  it('asks for STRATA_ADMIN_TOKEN as user admin\'s password when it is set', async () => {
    dir = await tempDir();
    const port = await freePort();
    const token = 'start-test-admin-token-0123456789';
    const { stderr } = await start(['--pg-port', String(port)], { ...process.env, STRATA_ADMIN_TOKEN: token });
    expect(stderr()).not.toContain('anyone in without a password');
    await expect(pgClient(port, { password: 'wrong' })).rejects.toMatchObject({ code: '28000' });
    const client = await pgClient(port, { password: token });
    try {
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await client.end();
    }
  });

  it('opens no PostgreSQL listener with --pg-port 0', async () => {
    dir = await tempDir();
    const { lines } = await start(['--pg-port', '0'], process.env);
    expect(lines.join('\n')).not.toContain('PostgreSQL protocol');
  });
});
