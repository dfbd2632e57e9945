import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, tempDir, type RunningStrata } from '../fixtures/strata.js';
import { startWithPg } from './helpers.js';
import { cstring, errorOf, int16, int32, message, query, startupMessage, WireClient } from './wire-client.js';

/** Where in a connection's life the bad bytes come: before start-up, during authentication, or in a session. */
type Stage = 'raw' | 'authenticating' | 'session';

/**
 * Bad input from a raw socket: each case must end that connection with a FATAL ErrorResponse (08P01 unless
 * said otherwise) and leave the server and a connection opened before it working.
 */
describe('a malformed or out-of-order message closes only its own connection', () => {
  let dir: string;
  let server: RunningStrata & { pgPort: number };
  let bystander: WireClient;

  beforeAll(async () => {
    dir = await tempDir();
    server = await startWithPg(dir, { maxMessageBytes: 1024 * 1024 });
    bystander = (await WireClient.startup(server.pgPort)).client;
  });

  afterAll(async () => {
    bystander?.close();
    await server?.close();
    await removeDir(dir);
  });

  /**
   * Sends `bytes` on a new connection at `stage` (before start-up, while the server waits for the SASL response
   * to its authentication request, or in a session) and answers the error the server closed the connection with.
   */
  async function closesWith(bytes: Buffer, stage: Stage): Promise<Record<string, string>> {
    const client = stage === 'session' ? (await WireClient.startup(server.pgPort)).client : await WireClient.connect(server.pgPort);
    if (stage === 'authenticating') {
      client.write(startupMessage({ user: 'admin', database: 'strata' }));
      const [request] = await client.readUntil('R');
      expect(request!.body.readInt32BE(0)).toBe(10); // AuthenticationSASL
    }
    try {
      client.write(bytes);
      const messages = await client.readToEnd();
      const error = messages.find((m) => m.type === 'E');
      if (!error) throw new Error(`closed without an ErrorResponse: ${messages.map((m) => m.type).join('')}`);
      return errorOf(error.body);
    } finally {
      client.close();
    }
  }

  const saslInitial = (mechanism: string, data: string, length = Buffer.byteLength(data)) => message('p', cstring(mechanism), int32(length), Buffer.from(data));
  const cases: [string, () => Buffer, Stage][] = [
    ['text that is not the protocol, before start-up', () => Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 'raw'],
    ['a start-up packet of length zero', () => Buffer.alloc(16), 'raw'],
    ['a start-up packet whose parameters are not terminated', () => Buffer.concat([int32(16), int32(196608), Buffer.from('user\0adm')]), 'raw'],
    ['an unknown protocol version', () => Buffer.concat([int32(9), int32(0x00020000), Buffer.from([0])]), 'raw'],
    ['a Query before authentication (out of order)', () => query('SELECT 1'), 'authenticating'],
    ['a SASL response naming a mechanism not offered', () => saslInitial('SCRAM-SHA-1', 'n,,n=,r=abc'), 'authenticating'],
    ['a SASL response longer than its message', () => saslInitial('SCRAM-SHA-256', 'n,,n=,r=abc', 1000), 'authenticating'],
    ['a SASL response asking for channel binding', () => saslInitial('SCRAM-SHA-256', 'p=tls-server-end-point,,n=,r=abc'), 'authenticating'],
    ['a SASL response that is not SCRAM', () => saslInitial('SCRAM-SHA-256', 'hello'), 'authenticating'],
    ['an unknown message type', () => message('z', Buffer.from('abc')), 'session'],
    ['a length below the minimum', () => Buffer.from([0x51, 0, 0, 0, 2]), 'session'],
    ['a length over the limit', () => Buffer.concat([Buffer.from('Q'), int32(64 * 1024 * 1024)]), 'session'],
    ['a Query whose string is not terminated', () => message('Q', Buffer.from('SELECT 1')), 'session'],
    ['a Parse shorter than its parameter count says', () => message('P', cstring(''), cstring('SELECT $1'), int16(3), int32(23)), 'session'],
    ['a Bind with a negative count', () => message('B', cstring(''), cstring(''), int16(-3)), 'session'],
    ['a Bind with trailing bytes', () => message('B', cstring(''), cstring(''), int16(0), int16(0), int16(0), Buffer.from('xx')), 'session'],
    ['a Describe of neither statement nor portal', () => message('D', Buffer.from('Q'), cstring('')), 'session'],
    ['a password message after authentication (out of order)', () => message('p', cstring('secret')), 'session'],
    ['COPY data with no COPY in progress (out of order)', () => message('d', Buffer.from('1\t2\n')), 'session'],
    ['a second start-up packet (out of order)', () => startupMessage({ user: 'admin' }), 'session'],
  ];

  for (const [name, bytes, stage] of cases) {
    it(`closes the connection on ${name}`, async () => {
      const error = await closesWith(bytes(), stage);
      expect(error.S).toBe('FATAL');
      expect(['08P01', '0A000']).toContain(error.C);
      // Everything else still works: the connection opened before, and a new one.
      bystander.write(query('SELECT 1 AS still_fine'));
      expect((await bystander.readUntil('Z')).map((m) => m.type).join('')).toBe('TDCZ');
      const fresh = await WireClient.startup(server.pgPort);
      fresh.client.write(query('SELECT 2'));
      expect((await fresh.client.readUntil('Z')).map((m) => m.type).join('')).toBe('TDCZ');
      fresh.client.close();
    });
  }

  it('closes a connection whose SCRAM proof answers another nonce than the server gave', async () => {
    const client = await WireClient.connect(server.pgPort);
    try {
      client.write(startupMessage({ user: 'admin', database: 'strata' }));
      await client.readUntil('R');
      client.write(saslInitial('SCRAM-SHA-256', 'n,,n=,r=clientnonce'));
      const [serverFirst] = await client.readUntil('R');
      expect(serverFirst!.body.subarray(4).toString()).toMatch(/^r=clientnonce\S+,s=[A-Za-z0-9+/=]+,i=4096$/);
      client.write(message('p', Buffer.from(`c=biws,r=clientnonce-other,p=${Buffer.alloc(32).toString('base64')}`)));
      const error = (await client.readToEnd()).find((m) => m.type === 'E');
      expect(errorOf(error!.body)).toMatchObject({ S: 'FATAL', C: '08P01' });
    } finally {
      client.close();
    }
  });

  it('closes a connection that sends a message in pieces and then disappears, and holds nothing for it', async () => {
    const client = (await WireClient.startup(server.pgPort)).client;
    client.write(message('Q', cstring('SELECT 1')).subarray(0, 7));
    await new Promise((resolve) => setTimeout(resolve, 50));
    client.close();
    for (let i = 0; i < 100 && server.pg!.connectionCount > 1; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    // Only the bystander is left.
    expect(server.pg!.connectionCount).toBe(1);
  });

  it('stops the running query of a client that goes away', async () => {
    const client = (await WireClient.startup(server.pgPort)).client;
    client.write(query('SELECT sum(a.range * b.range) FROM range(100000000) a, range(100000) b'));
    for (let i = 0; i < 100 && server.strata.sql.activeQueries === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(server.strata.sql.activeQueries).toBe(1);
    client.close();
    for (let i = 0; i < 250 && server.strata.sql.activeQueries > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(server.strata.sql.activeQueries).toBe(0);
  });

  it('splits several messages in one chunk, and one message over many chunks', async () => {
    const client = (await WireClient.startup(server.pgPort)).client;
    try {
      const both = Buffer.concat([query('SELECT 1 AS a'), query('SELECT 2 AS b')]);
      for (let i = 0; i < both.length; i += 3) {
        client.write(both.subarray(i, i + 3));
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect((await client.readUntil('Z')).map((m) => m.type).join('')).toBe('TDCZ');
      expect((await client.readUntil('Z')).map((m) => m.type).join('')).toBe('TDCZ');
    } finally {
      client.close();
    }
  });
});
