/**
 * A bare PostgreSQL protocol client for tests: sends hand-built frontend messages (well-formed or not) and
 * reads backend messages as they arrive, with nothing in between that could hide what the server did. (The
 * `pg` client cannot do this, and it reads binary values as UTF-8 text, which loses bytes.)
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { TEST_ADMIN_TOKEN } from '../fixtures/auth.js';

/** One backend message: its type character and body. */
export interface BackendMessage {
  readonly type: string;
  readonly body: Buffer;
}

export class WireClient {
  private buffer = Buffer.alloc(0);
  private readonly queue: BackendMessage[] = [];
  private waiters: (() => void)[] = [];
  private ended = false;

  private constructor(readonly socket: Socket | TLSSocket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.split();
    });
    const end = () => {
      this.ended = true;
      this.wake();
    };
    socket.on('close', end);
    socket.on('error', end);
  }

  static async connect(port: number): Promise<WireClient> {
    const socket = connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new WireClient(socket);
  }

  /**
   * Connects with TLS: SSLRequest, the server's 'S', then a TLS handshake trusting only `ca`. Answers the
   * client over the TLS socket.
   */
  static async connectTls(port: number, ca: Buffer): Promise<WireClient> {
    const socket = connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.write(Buffer.concat([int32(8), int32(80877103)]));
    const answer = await new Promise<Buffer>((resolve) => socket.once('data', resolve));
    if (answer.toString() !== 'S') throw new Error(`SSLRequest answered ${JSON.stringify(answer.toString())}`);
    const secure = connectTls({ socket, ca, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    return new WireClient(secure);
  }

  /**
   * Connects and completes start-up, logging in as `params.user` with `password` (default: the test admin
   * token) by whatever the server asks for (SCRAM-SHA-256, or a password over TLS). Answers the messages from
   * the end of authentication to ReadyForQuery, and the BackendKeyData's process ID and secret.
   */
  static async startup(
    port: number,
    params: Record<string, string> = { user: 'admin', database: 'strata' },
    password = TEST_ADMIN_TOKEN,
    client?: WireClient,
  ): Promise<{ client: WireClient; processId: number; secret: number; messages: BackendMessage[] }> {
    const connection = client ?? (await WireClient.connect(port));
    connection.write(startupMessage(params));
    const messages = await connection.authenticate(password);
    const key = messages.find((message) => message.type === 'K');
    if (!key) throw new Error(`no BackendKeyData in ${messages.map((m) => m.type).join('')}`);
    return { client: connection, processId: key.body.readInt32BE(0), secret: key.body.readInt32BE(4), messages };
  }

  /**
   * Answers the server's authentication request (after the start-up packet) with `password`: SCRAM-SHA-256
   * as libpq does it, or a password message. Answers the messages up to ReadyForQuery; throws with the
   * ErrorResponse's fields when the server refuses.
   */
  async authenticate(password: string): Promise<BackendMessage[]> {
    const request = await this.readAuthentication();
    const code = request.body.readInt32BE(0);
    if (code === 3) {
      this.write(message('p', cstring(password)));
    } else if (code === 10) {
      const clientFirstBare = `n=,r=${randomBytes(18).toString('base64')}`;
      const clientFirst = Buffer.from(`n,,${clientFirstBare}`);
      this.write(message('p', cstring('SCRAM-SHA-256'), int32(clientFirst.length), clientFirst));
      const serverFirstMessage = await this.readAuthentication();
      const serverFirst = serverFirstMessage.body.subarray(4).toString();
      const attributes = Object.fromEntries(serverFirst.split(',').map((part) => [part[0], part.slice(2)]));
      const salted = pbkdf2Sync(password, Buffer.from(attributes.s!, 'base64'), Number(attributes.i), 32, 'sha256');
      const clientKey = createHmac('sha256', salted).update('Client Key').digest();
      const storedKey = createHash('sha256').update(clientKey).digest();
      const withoutProof = `c=biws,r=${attributes.r}`;
      const signature = createHmac('sha256', storedKey).update(`${clientFirstBare},${serverFirst},${withoutProof}`).digest();
      const proof = Buffer.from(clientKey.map((byte, i) => byte ^ signature[i]!));
      this.write(message('p', Buffer.from(`${withoutProof},p=${proof.toString('base64')}`)));
    } else if (code !== 0) {
      throw new Error(`unexpected authentication request ${code}`);
    }
    const messages = await this.readUntilOrError('Z');
    return code === 0 ? [request, ...messages] : messages;
  }

  /** The next Authentication message; throws with the server's error when it sends one instead. */
  private async readAuthentication(): Promise<BackendMessage> {
    const messages = await this.readUntilOrError('R');
    return messages[messages.length - 1]!;
  }

  /** {@link readUntil}, throwing the fields of an ErrorResponse that comes first (as an Error with `fields`). */
  private async readUntilOrError(type: string): Promise<BackendMessage[]> {
    const out: BackendMessage[] = [];
    for (;;) {
      const [next] = await this.readUntil(type, 10_000, true);
      out.push(next!);
      if (next!.type === 'E') {
        const fields = errorOf(next!.body);
        throw Object.assign(new Error(`${fields.C}: ${fields.M}`), { fields });
      }
      if (next!.type === type) return out;
    }
  }

  /** Messages received and not yet read. */
  get queued(): number {
    return this.queue.length;
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /**
   * Reads messages until one of type `type` arrives (included); throws if the connection ends first. With
   * `one`, answers the next message, whatever its type.
   */
  async readUntil(type: string, timeoutMs = 10_000, one = false): Promise<BackendMessage[]> {
    const out: BackendMessage[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = this.queue.shift();
      if (message) {
        out.push(message);
        if (message.type === type || one) return out;
        continue;
      }
      if (this.ended) throw new Error(`connection closed before '${type}'; got ${out.map((m) => m.type).join('')}`);
      if (Date.now() > deadline) throw new Error(`no '${type}' in time; got ${out.map((m) => m.type).join('')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Reads every message until the server closes the connection. */
  async readToEnd(timeoutMs = 10_000): Promise<BackendMessage[]> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      if (Date.now() > deadline) throw new Error('the server did not close the connection');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return this.queue.splice(0);
  }

  close(): void {
    this.socket.destroy();
  }

  private split(): void {
    while (this.buffer.length >= 5) {
      const length = this.buffer.readInt32BE(1);
      if (this.buffer.length < 1 + length) break;
      // The single-byte answer to SSLRequest/GSSENCRequest has no header; tests read it from the socket.
      this.queue.push({ type: String.fromCharCode(this.buffer[0]!), body: this.buffer.subarray(5, 1 + length) });
      this.buffer = this.buffer.subarray(1 + length);
    }
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

/** Sends a CancelRequest on a new connection, as libpq's PQcancel does, and waits until the server closes it. */
export async function sendCancelRequest(port: number, processId: number, secret: number): Promise<void> {
  const client = await WireClient.connect(port);
  client.write(Buffer.concat([int32(16), int32(80877102), int32(processId), int32(secret)]));
  await client.readToEnd();
}

/** A frontend message: type byte, int32 length, body. */
export function message(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

export function cstring(text: string): Buffer {
  return Buffer.concat([Buffer.from(text, 'utf8'), Buffer.from([0])]);
}

export function int16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
}

export function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

export function startupMessage(params: Record<string, string>): Buffer {
  const body = Buffer.concat([int32(196608), ...Object.entries(params).flatMap(([k, v]) => [cstring(k), cstring(v)]), Buffer.from([0])]);
  return Buffer.concat([int32(body.length + 4), body]);
}

export const query = (sql: string) => message('Q', cstring(sql));
export const parse = (name: string, sql: string, types: number[] = []) => message('P', cstring(name), cstring(sql), int16(types.length), ...types.map(int32));
export function bind(portal: string, statement: string, params: (Buffer | null)[], resultFormats: number[] = [], paramFormats: number[] = []): Buffer {
  return message(
    'B',
    cstring(portal),
    cstring(statement),
    int16(paramFormats.length),
    ...paramFormats.map(int16),
    int16(params.length),
    ...params.flatMap((p) => (p === null ? [int32(-1)] : [int32(p.length), p])),
    int16(resultFormats.length),
    ...resultFormats.map(int16),
  );
}
export const describe = (kind: 'S' | 'P', name: string) => message('D', Buffer.from(kind), cstring(name));
export const execute = (portal: string, maxRows = 0) => message('E', cstring(portal), int32(maxRows));
export const sync = () => message('S');
export const flush = () => message('H');
export const terminate = () => message('X');

/** The fields of an ErrorResponse or NoticeResponse body, by field code (C for SQLSTATE, M message, S severity). */
export function errorOf(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < body.length && body[at] !== 0) {
    const code = String.fromCharCode(body[at]!);
    const end = body.indexOf(0, at + 1);
    out[code] = body.toString('utf8', at + 1, end);
    at = end + 1;
  }
  return out;
}

/** The values of a DataRow body (null for NULL). */
export function dataRowValues(body: Buffer): (Buffer | null)[] {
  const count = body.readInt16BE(0);
  const values: (Buffer | null)[] = [];
  let at = 2;
  for (let i = 0; i < count; i++) {
    const length = body.readInt32BE(at);
    at += 4;
    if (length === -1) values.push(null);
    else {
      values.push(body.subarray(at, at + length));
      at += length;
    }
  }
  return values;
}

/** The column names and type OIDs of a RowDescription body. */
export function rowDescription(body: Buffer): { name: string; oid: number; format: number }[] {
  const count = body.readInt16BE(0);
  const fields: { name: string; oid: number; format: number }[] = [];
  let at = 2;
  for (let i = 0; i < count; i++) {
    const end = body.indexOf(0, at);
    const name = body.toString('utf8', at, end);
    at = end + 1;
    const oid = body.readInt32BE(at + 6);
    const format = body.readInt16BE(at + 16);
    fields.push({ name, oid, format });
    at += 18;
  }
  return fields;
}
