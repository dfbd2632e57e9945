import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { TEST_ADMIN_TOKEN } from '../fixtures/auth.js';
import { clicksConfig, killHard, removeDir, tempDir, writeConfig } from '../fixtures/strata.js';
import { failure, freePort, makeCertificate, OPENSSL, pgClient } from './helpers.js';
import { cstring, errorOf, int32, query, WireClient } from './wire-client.js';

const PSQL = '/usr/bin/psql';

/** `strata start` (the compiled bin) with `--pg-port`: the listener, its start-up line, logins, TLS, and `--pg-port 0`. */
describe('strata start --pg-port', () => {
  let dir: string;
  let child: ChildProcess | undefined;

  afterEach(async () => {
    if (child) await killHard(child);
    child = undefined;
    await removeDir(dir);
  });

  /** Starts the bin; answers its stdout lines up to the PostgreSQL listening line (or the HTTP one, without), and its stderr so far. */
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

  it('listens on the given port beside HTTP, prints where, and lets in only a token: the admin token the first start printed', async () => {
    dir = await tempDir();
    const port = await freePort();
    const env = { ...process.env };
    delete env.STRATA_ADMIN_TOKEN;
    const { lines } = await start(['--pg-port', String(port)], env);
    expect(lines.some((line) => line.includes(`PostgreSQL protocol on postgresql://127.0.0.1:${port}`))).toBe(true);
    const printed = lines.map((line) => /^Admin token .*: (\S+)$/.exec(line)?.[1]).find((token) => token !== undefined);
    expect(printed).toBeDefined();
    // No open door: no password, a wrong one, or the right one under another name are all refused.
    expect(await failure(pgClient(port, { password: 'not-the-token' }))).toMatchObject({ code: '28P01' });
    expect(await failure(pgClient(port, { user: 'anyone', password: printed! }))).toMatchObject({ code: '28P01' });
    expect(await failure(pgClient(port, { password: TEST_ADMIN_TOKEN }))).toMatchObject({ code: '28P01' });
    const client = await pgClient(port, { password: printed! });
    try {
      expect((await client.query('SELECT count(*)::INT AS n FROM clicks')).rows).toEqual([{ n: 0 }]);
    } finally {
      await client.end();
    }
  });

  it("asks for STRATA_ADMIN_TOKEN as user admin's password when it is set", async () => {
    dir = await tempDir();
    const port = await freePort();
    const token = 'start-test-admin-token-0123456789';
    await start(['--pg-port', String(port)], { ...process.env, STRATA_ADMIN_TOKEN: token });
    await expect(pgClient(port, { password: 'wrong' })).rejects.toMatchObject({ code: '28P01' });
    const client = await pgClient(port, { password: token });
    try {
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await client.end();
    }
  });

  it.skipIf(!existsSync(OPENSSL))('upgrades to TLS with the certificate of --tls-cert and --tls-key, and bounds messages inside it', async () => {
    dir = await tempDir();
    const { certPath, keyPath, cert } = await makeCertificate(dir);
    const port = await freePort();
    const { lines } = await start(['--pg-port', String(port), '--tls-cert', certPath, '--tls-key', keyPath], process.env);
    expect(lines.join('\n')).toMatch(/PostgreSQL protocol on postgresql:\/\/127\.0\.0\.1:\d+ .*TLS/);

    // The pg client, trusting only the test's certificate.
    const secure = await pgClient(port, { ssl: { ca: cert } });
    try {
      const stream = (secure as unknown as { connection: { stream: unknown } }).connection.stream;
      expect(stream).toBeInstanceOf(TLSSocket);
      expect((await secure.query('SELECT count(*)::INT AS n FROM clicks')).rows).toEqual([{ n: 0 }]);
    } finally {
      await secure.end();
    }

    if (existsSync(PSQL)) {
      const env: NodeJS.ProcessEnv = { ...process.env, PGPASSWORD: TEST_ADMIN_TOKEN, PGPASSFILE: '/nonexistent/strata-test-pgpass', PGCONNECT_TIMEOUT: '10' };
      const psql = (conninfo: string) => promisify(execFile)(PSQL, ['-X', '-A', '-t', '-c', 'SELECT 41 + 1', `host=127.0.0.1 port=${port} user=admin dbname=strata ${conninfo}`], { env, timeout: 30_000 });
      expect((await psql('sslmode=require')).stdout.trim()).toBe('42');
      expect((await psql(`sslmode=verify-full sslrootcert=${certPath}`)).stdout.trim()).toBe('42');
      // SCRAM keeps the token off a plain connection too.
      expect((await psql('sslmode=disable')).stdout.trim()).toBe('42');
    }

    // The frame guard reads the decrypted stream: an oversized message over TLS closes that connection.
    const { client } = await WireClient.startup(port, { user: 'admin', database: 'strata' }, TEST_ADMIN_TOKEN, await WireClient.connectTls(port, cert));
    try {
      client.write(query('SELECT 1 AS fine'));
      expect((await client.readUntil('Z')).map((m) => m.type).join('')).toBe('TDCZ');
      client.write(Buffer.concat([Buffer.from('Q'), int32(64 * 1024 * 1024), cstring('SELECT')]));
      const error = (await client.readToEnd()).find((m) => m.type === 'E');
      expect(errorOf(error!.body)).toMatchObject({ S: 'FATAL', C: '08P01' });
    } finally {
      client.close();
    }
    // A second SSLRequest inside TLS is a protocol error, not a second handshake.
    const twice = await WireClient.connectTls(port, cert);
    try {
      twice.write(Buffer.concat([int32(8), int32(80877103)]));
      const error = (await twice.readToEnd()).find((m) => m.type === 'E');
      expect(errorOf(error!.body)).toMatchObject({ S: 'FATAL', C: '08P01' });
    } finally {
      twice.close();
    }
  });

  it('opens no PostgreSQL listener with --pg-port 0', async () => {
    dir = await tempDir();
    const { lines } = await start(['--pg-port', '0'], process.env);
    expect(lines.join('\n')).not.toContain('PostgreSQL protocol');
  });
});
