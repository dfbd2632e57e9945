import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_ADMIN_TOKEN } from '../fixtures/auth.js';
import { removeDir, tempDir, type RunningStrata } from '../fixtures/strata.js';
import { makeCertificate, OPENSSL, pgClient, startWithPg } from './helpers.js';
import { int32, query, WireClient } from './wire-client.js';

/** A socket that has sent SSLRequest and read the server's 'S'. */
async function afterSslRequest(port: number) {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  socket.write(Buffer.concat([int32(8), int32(80877103)]));
  const answer = await new Promise<Buffer>((resolve) => socket.once('data', resolve));
  expect(answer.toString()).toBe('S');
  return socket;
}

/**
 * With a certificate, SSLRequest is answered 'S' and the connection upgraded: a client that then goes away, sends
 * something other than a TLS handshake, or refuses the certificate loses its own connection, and nothing else.
 */
describe.skipIf(!existsSync(OPENSSL))('a TLS handshake that fails closes only its connection', () => {
  let dir: string;
  let server: RunningStrata & { pgPort: number };
  let cert: Buffer;
  let bystander: WireClient;

  beforeAll(async () => {
    dir = await tempDir();
    const made = await makeCertificate(dir);
    cert = made.cert;
    server = await startWithPg(dir, { tls: { cert: made.cert, key: made.key } });
    bystander = (await WireClient.startup(server.pgPort, { user: 'admin', database: 'strata' }, TEST_ADMIN_TOKEN, await WireClient.connectTls(server.pgPort, cert))).client;
  });

  afterAll(async () => {
    bystander?.close();
    await server?.close();
    await removeDir(dir);
  });

  const cases: [string, () => Promise<void>][] = [
    [
      'goes away after the S',
      async () => {
        const socket = await afterSslRequest(server.pgPort);
        socket.destroy();
      },
    ],
    [
      'sends a start-up packet where the handshake belongs',
      async () => {
        const socket = await afterSslRequest(server.pgPort);
        socket.write(Buffer.concat([int32(9), int32(196608), Buffer.from([0])]));
        await new Promise((resolve) => socket.once('close', resolve));
      },
    ],
    [
      'does not trust the certificate',
      async () => {
        const socket = await afterSslRequest(server.pgPort);
        const secure = connectTls({ socket, ca: [] as Buffer[], servername: 'localhost' });
        await new Promise((resolve) => secure.once('error', resolve));
        socket.destroy();
      },
    ],
  ];

  for (const [name, client] of cases) {
    it(`when the client ${name}`, async () => {
      const before = server.pg!.connectionCount;
      await client();
      for (let i = 0; i < 100 && server.pg!.connectionCount > before; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(server.pg!.connectionCount).toBe(before);
      bystander.write(query('SELECT 1 AS still_fine'));
      expect((await bystander.readUntil('Z')).map((m) => m.type).join('')).toBe('TDCZ');
      const fresh = await pgClient(server.pgPort, { ssl: { ca: cert } });
      expect((await fresh.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
      await fresh.end();
    });
  }
});
