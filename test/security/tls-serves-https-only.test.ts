import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_AUTH, TEST_ADMIN_TOKEN } from '../fixtures/auth.js';
import { killHard, removeDir, startProcess, tempDir, writeConfig, type StrataProcess } from '../fixtures/strata.js';
import { exampleConfig } from './support.js';

const OPENSSL = '/usr/bin/openssl';

/** A GET over HTTPS/1.1 trusting only `ca`: status, headers and body. */
function httpsGet(url: string, ca: Buffer, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; alpn: string | false }>((resolve, reject) => {
    const request = https.get(url, { ca, headers }, (response) => {
      const alpn = (response.socket as TLSSocket).alpnProtocol ?? false;
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body, alpn }));
    });
    request.on('error', reject);
  });
}

/** A request over HTTP/2 trusting only `ca`. */
function h2Request(url: string, ca: Buffer, path: string, headers: Record<string, string>, firstChunkOnly = false) {
  return new Promise<{ status: number; contentType: string; body: string }>((resolve, reject) => {
    const session = http2.connect(url, { ca });
    session.on('error', reject);
    const stream = session.request({ ':path': path, ...headers });
    let status = 0;
    let contentType = '';
    let body = '';
    stream.on('response', (head) => {
      status = Number(head[':status']);
      contentType = String(head['content-type'] ?? '');
    });
    const done = () => {
      session.close();
      resolve({ status, contentType, body });
    };
    stream.on('data', (chunk: Buffer) => {
      body += chunk.toString();
      if (firstChunkOnly) {
        stream.close();
        done();
      }
    });
    stream.on('end', done);
    stream.on('error', reject);
  });
}

describe.skipIf(!existsSync(OPENSSL))('TLS', () => {
  let dir: string;
  let cert: Buffer;
  let server: StrataProcess | undefined;

  beforeAll(async () => {
    dir = await tempDir();
    // A self-signed certificate for 127.0.0.1, made here: nothing checked in.
    await promisify(execFile)(OPENSSL, [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ]);
    cert = await readFile(join(dir, 'cert.pem'));
    return () => removeDir(dir);
  });
  afterEach(async () => {
    if (server) await killHard(server.child);
    server = undefined;
  });

  it('serves the API over HTTPS (HTTP/1.1 and HTTP/2) with the certificate named in the config, and not over plain HTTP', async () => {
    // Paths relative to the config file.
    const configPath = await writeConfig(dir, { ...(await exampleConfig()), tls: { cert: './cert.pem', key: './key.pem' } });
    server = await startProcess(configPath, join(dir, 'data-config'), ['--pg-port', '0']);
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);

    const health = await httpsGet(`${server.url}/health`, cert);
    expect(health.status).toBe(200);
    // A client that offers no ALPN (Node's https) is answered over HTTP/1.1.
    expect(health.alpn).toBe(false);
    const denied = await httpsGet(`${server.url}/v1/streams`, cert);
    expect(denied.status).toBe(401);
    const streams = await httpsGet(`${server.url}/v1/streams`, cert, ADMIN_AUTH);
    expect(streams.status).toBe(200);
    expect(JSON.parse(streams.body).streams[0].name).toBe('clicks');

    // The console's cookie is Secure under TLS.
    const login = await httpsGet(`${server.url}/?token=${TEST_ADMIN_TOKEN}`, cert);
    expect(login.status).toBe(303);
    expect(login.headers['set-cookie']![0]).toMatch(/; Secure$/);

    // HTTP/2, a live view stream included (HTTP/2 refuses the connection header HTTP/1.1 streams send).
    const h2 = await h2Request(server.url, cert, '/v1/views/page_minute', ADMIN_AUTH);
    expect(h2.status).toBe(200);
    expect(JSON.parse(h2.body).columns.length).toBeGreaterThan(0);
    const live = await h2Request(server.url, cert, '/v1/views/page_minute/events', ADMIN_AUTH, true);
    expect(live.status).toBe(200);
    expect(live.contentType).toMatch(/^text\/event-stream/);

    // An untrusted certificate is refused by the client; plain HTTP gets no answer.
    await expect(httpsGet(`${server.url}/health`, Buffer.from(''))).rejects.toThrow();
    const plain = await new Promise<string>((resolve) => {
      const request = http.get(server!.url.replace('https:', 'http:') + '/health', (response) => resolve(`status ${response.statusCode}`));
      request.on('error', (error) => resolve(`error ${error.message}`));
    });
    expect(plain).not.toBe('status 200');
  });

  it('takes the certificate from --tls-cert and --tls-key', async () => {
    const configPath = await writeConfig(dir, await exampleConfig(), 'plain.config.json');
    server = await startProcess(configPath, join(dir, 'data-flags'), ['--pg-port', '0', '--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')]);
    expect(server.url).toMatch(/^https:/);
    const records = await new Promise<number>((resolve, reject) => {
      const body = JSON.stringify({ event_id: 'e1', ts: '2026-11-25T10:00:00Z', user_id: 'u1', page: '/home', amount: null });
      const request = https.request(`${server!.url}/v1/streams/clicks/records`, { method: 'POST', ca: cert, headers: { ...ADMIN_AUTH, 'content-type': 'application/json' } }, (response) => {
        response.resume();
        resolve(response.statusCode!);
      });
      request.on('error', reject);
      request.end(body);
    });
    expect(records).toBe(200);
  });

  it('refuses to start with only one of the two flags', async () => {
    const configPath = await writeConfig(dir, await exampleConfig(), 'half.config.json');
    await expect(startProcess(configPath, join(dir, 'data-half'), ['--pg-port', '0', '--tls-cert', join(dir, 'cert.pem')])).rejects.toThrow(
      /give both --tls-cert and --tls-key/,
    );
  });
});
