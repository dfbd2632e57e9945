/**
 * The PostgreSQL wire protocol listener: a TCP server whose connections pg-gateway takes through start-up,
 * SSL negotiation and authentication, after which each frontend message goes to a {@link PgSession}.
 *
 * pg-gateway (0.3.0-beta.4) frames messages and runs the SCRAM-SHA-256 exchange; it calls
 * `onMessage` for every message before its own handling, and a response from there replaces its handling.
 * So `onMessage` answers the initial messages pg-gateway does not know (CancelRequest, GSSENCRequest,
 * garbage), checks authentication messages before pg-gateway parses them, and answers every message after
 * authentication itself. One bound pg-gateway lacks, the size of a message it buffers, is kept by a
 * {@link FrameGuard} that sees every byte before pg-gateway does.
 */
import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { closeSignal, type ConnectionState, type MessageResponse, type PostgresConnection, type PostgresConnectionOptions } from 'pg-gateway';
import { fromDuplexStream } from 'pg-gateway/node';
import type { SqlEngine } from '../sql/index.js';
import { decoyVerifier, defaultAuthenticator, type PgAuthenticator } from './auth.js';
import { MessageWriter } from './protocol.js';
import { DEFAULT_SESSION_LIMITS, PgSession, type SessionLimits } from './session.js';

/** Initial-message codes (the int32 after the length) that are not a protocol version. */
const CANCEL_REQUEST_CODE = 80877102;
const SSL_REQUEST_CODE = 80877103;
const GSSENC_REQUEST_CODE = 80877104;
const PROTOCOL_3_0 = 196608;
/** Type bytes of the frontend messages of protocol 3.0 after start-up. */
const FRONTEND_TYPES = 'QPBDECSHXFpdcf';
/** PostgreSQL's bound on a start-up packet. */
const MAX_STARTUP_BYTES = 10_000;

export interface PgServerOptions {
  /** The SQL engine queries run on: the one `POST /v1/sql` uses, with its read-only rules, limits and timeout. */
  readonly engine: SqlEngine;
  readonly host: string;
  /** 0 lets the system pick a free port. */
  readonly port: number;
  /** Default: {@link defaultAuthenticator} (STRATA_ADMIN_TOKEN, else anyone). */
  readonly authenticator?: PgAuthenticator;
  /**
   * A certificate and key (PEM) make SSLRequest answer 'S' and upgrade to TLS. Nothing passes one yet: the
   * security issue adds it, with the HTTP server's certificate.
   */
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer };
  /** Connections open at once; more are refused with SQLSTATE 53300 (default 64). */
  readonly maxConnections?: number;
  /** The largest frontend message accepted (default 16 MiB); a longer one closes its connection. */
  readonly maxMessageBytes?: number;
  /** Time from connect to the end of authentication (default 60 s), as PostgreSQL's authentication_timeout. */
  readonly startupTimeoutMs?: number;
  readonly sessionLimits?: SessionLimits;
  /** Told about failures that are bugs, not the client's doing. */
  readonly log?: (message: string) => void;
}

/** A running PostgreSQL protocol listener; {@link close} it. */
export class PgServer {
  private readonly connections = new Set<ClientConnection>();
  /** Sessions by process ID, for CancelRequest. */
  private readonly sessions = new Map<number, { readonly secret: number; readonly session: PgSession }>();
  private nextProcessId = randomInt(1000, 100_000);
  /** Keys the decoy verifiers of unknown users (see decoyVerifier). */
  private readonly decoySecret = randomBytes(32);

  private constructor(
    private readonly server: Server,
    private readonly options: PgServerOptions,
    readonly authenticator: PgAuthenticator,
  ) {}

  /** Starts listening; rejects when the address is taken. */
  static async listen(options: PgServerOptions): Promise<PgServer> {
    const authenticator = options.authenticator ?? (await defaultAuthenticator());
    const server = createServer();
    const pg = new PgServer(server, options, authenticator);
    server.on('connection', (socket) => pg.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return pg;
  }

  /** The address it listens on. */
  get address(): { readonly host: string; readonly port: number } {
    const address = this.server.address() as AddressInfo;
    return { host: address.address, port: address.port };
  }

  /** Connections open now. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Stops listening, ends every connection (their queries are cancelled) and waits until all are gone. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of this.connections) connection.destroy();
    await closed;
  }

  private accept(socket: Socket): void {
    socket.setNoDelay(true);
    const max = this.options.maxConnections ?? 64;
    if (this.connections.size >= max) {
      socket.on('error', () => {});
      socket.end(fatal('53300', `sorry, too many clients already (${max} connections)`));
      return;
    }
    const connection = new ClientConnection(socket, this, this.options);
    this.connections.add(connection);
    socket.once('close', () => this.connections.delete(connection));
    connection.start();
  }

  /** @internal A new authenticated session: its process ID and secret for BackendKeyData. */
  register(session: PgSession): { processId: number; secret: number } {
    const secret = randomInt(-0x80000000, 0x7fffffff);
    this.sessions.set(session.processId, { secret, session });
    return { processId: session.processId, secret };
  }

  /** @internal */
  unregister(processId: number): void {
    this.sessions.delete(processId);
  }

  /** @internal */
  allocateProcessId(): number {
    // Unique among live sessions; process IDs are positive int32, as PostgreSQL's are.
    do {
      this.nextProcessId = this.nextProcessId >= 0x7fffffff ? 1000 : this.nextProcessId + 1;
    } while (this.sessions.has(this.nextProcessId));
    return this.nextProcessId;
  }

  /** @internal A CancelRequest: stops the named session's running query if the secret matches. */
  cancel(processId: number, secret: number): void {
    const entry = this.sessions.get(processId);
    if (!entry) return;
    const expected = Buffer.alloc(4);
    expected.writeInt32BE(entry.secret);
    const given = Buffer.alloc(4);
    given.writeInt32BE(secret);
    if (timingSafeEqual(expected, given)) entry.session.cancel();
  }

  /** @internal */
  decoy(user: string) {
    return decoyVerifier(user, this.decoySecret);
  }
}

/** One client connection, from accept to close. */
class ClientConnection {
  private session: PgSession | null = null;
  private connection: PostgresConnection | null = null;
  private readonly guard: FrameGuard;
  private startupTimer: NodeJS.Timeout | null = null;
  /** 'p' messages seen during authentication: the first is the SASLInitialResponse. */
  private authMessages = 0;
  /** Killed: the FATAL error is written, nothing more may be. */
  private dead = false;

  constructor(
    private readonly socket: Socket,
    private readonly server: PgServer,
    private readonly options: PgServerOptions,
  ) {
    this.guard = new FrameGuard(options.maxMessageBytes ?? 16 * 1024 * 1024, options.tls !== undefined);
  }

  start(): void {
    const socket = this.socket;
    // Errors surface as the streams' end (a reset connection); an unhandled 'error' would crash the process.
    socket.on('error', () => {});
    socket.once('close', () => this.closed());
    this.startupTimer = setTimeout(() => this.kill('08P01', 'authentication did not finish in time'), this.options.startupTimeoutMs ?? 60_000);
    this.startupTimer.unref();
    const authenticator = this.server.authenticator;
    const gatewayOptions: PostgresConnectionOptions = {
      auth:
        authenticator.method === 'trust'
          ? { method: 'trust' }
          : {
              method: 'scram-sha-256',
              getScramSha256Data: async ({ username }) => (await authenticator.scramVerifier(username)) ?? this.server.decoy(username),
            },
      ...(this.options.tls ? { tls: { cert: toArrayBuffer(this.options.tls.cert), key: toArrayBuffer(this.options.tls.key) } } : {}),
      onStartup: async () => {
        this.connection ??= await ready;
      },
      onAuthenticated: async (state) => {
        const connection = this.connection ?? (await ready);
        await connection.streamWriter!.write(this.openSession(state));
      },
      onMessage: (data, state) => this.onMessage(data, state),
    };
    // pg-gateway's `fromNodeSocket` is `fromDuplexStream` over Node's Duplex.toWeb(socket). The streams here
    // replace that adapter: the readable passes every chunk through the frame guard first, and the writable
    // tolerates a socket this connection already ended (Node 20's adapter throws an uncaught TypeError when
    // the socket ends before the web stream is closed, which took the whole process down).
    const ready = fromDuplexStream({ readable: this.readable(), writable: this.writable() }, gatewayOptions);
    ready.then(
      (connection) => (this.connection ??= connection),
      (error: unknown) => {
        this.options.log?.(`pgwire: could not set up a connection: ${String(error)}`);
        socket.destroy();
      },
    );
  }

  /** The socket's bytes, checked by the frame guard, with backpressure: the socket pauses while a chunk waits. */
  private readable(): ReadableStream<Uint8Array> {
    const socket = this.socket;
    return new ReadableStream<Uint8Array>({
      start: (controller) => {
        let open = true;
        socket.on('data', (chunk: Buffer) => {
          if (!open || this.dead) return;
          const violation = this.guard.feed(chunk);
          if (violation !== null) {
            this.kill('08P01', violation);
            return;
          }
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          if ((controller.desiredSize ?? 0) <= 0) socket.pause();
        });
        socket.once('end', () => {
          if (open) controller.close();
          open = false;
        });
        socket.once('close', () => {
          // pg-gateway stays quiet about an error with this code (a client gone mid-message).
          if (open) controller.error(Object.assign(new Error('the connection closed'), { code: 'ABORT_ERR' }));
          open = false;
        });
      },
      pull: () => {
        socket.resume();
      },
      cancel: () => {
        socket.destroy();
      },
    });
  }

  /** Writes to the socket, waiting on 'drain' when it is full; bytes after the socket ended go nowhere. */
  private writable(): WritableStream<Uint8Array> {
    const socket = this.socket;
    return new WritableStream<Uint8Array>({
      write: (chunk) => {
        if (socket.destroyed || socket.writableEnded) return;
        if (socket.write(chunk)) return;
        return new Promise<void>((resolve) => {
          const done = () => {
            socket.off('drain', done);
            socket.off('close', done);
            resolve();
          };
          socket.on('drain', done);
          socket.on('close', done);
        });
      },
      close: () => {
        if (!socket.writableEnded) socket.end();
      },
      abort: () => {
        socket.destroy();
      },
    });
  }

  /** Ends the connection at once, telling the client why (FATAL). */
  kill(code: string, message: string): void {
    this.dead = true;
    this.session?.cancel();
    if (this.socket.destroyed || this.socket.writableEnded) return;
    this.socket.end(fatal(code, message));
    // A client that does not close its side is cut off.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  destroy(): void {
    this.session?.close();
    this.socket.destroy();
  }

  private closed(): void {
    if (this.startupTimer) clearTimeout(this.startupTimer);
    if (this.session) {
      this.server.unregister(this.session.processId);
      this.session.close();
    }
  }

  /** After authentication: the session, and the start-up messages PostgreSQL sends before ReadyForQuery. */
  private openSession(state: ConnectionState): Uint8Array {
    if (this.startupTimer) clearTimeout(this.startupTimer);
    const params = state.clientParams ?? { user: '' };
    const session = new PgSession({
      engine: this.options.engine,
      processId: this.server.allocateProcessId(),
      user: params.user,
      // libpq's default database is the user name.
      database: params.database ?? params.user,
      startup: params,
      limits: this.options.sessionLimits ?? DEFAULT_SESSION_LIMITS,
      log: this.options.log,
    });
    this.session = session;
    const { processId, secret } = this.server.register(session);
    const out = new MessageWriter();
    for (const [name, value] of session.startupParameters()) out.parameterStatus(name, value);
    out.backendKeyData(processId, secret);
    return out.take();
  }

  private onMessage(data: Uint8Array, state: ConnectionState): MessageResponse {
    const message = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    // Bytes pg-gateway framed before the guard killed the connection: nothing more is written.
    if (this.dead) return close();
    if (!state.hasStarted) return this.initialMessage(message);
    if (!state.isAuthenticated) return this.authenticationMessage(message);
    const session = this.session;
    if (session === null) return close(fatalBytes('08P01', 'no session'));
    return respond(session.handle(message));
  }

  /** SSLRequest and StartupMessage go on to pg-gateway; the rest is answered here. */
  private initialMessage(message: Buffer): Iterable<Uint8Array> | undefined {
    if (message.length < 8 || message.readInt32BE(0) !== message.length) return close(fatalBytes('08P01', 'invalid start-up packet'));
    const code = message.readInt32BE(4);
    if (code === SSL_REQUEST_CODE && message.length === 8) return undefined;
    if (code === GSSENC_REQUEST_CODE && message.length === 8) return [Buffer.from('N')];
    if (code === CANCEL_REQUEST_CODE && message.length === 16) {
      this.server.cancel(message.readInt32BE(8), message.readInt32BE(12));
      // PostgreSQL answers a CancelRequest with nothing but the close.
      return close();
    }
    if (code !== PROTOCOL_3_0) {
      return close(fatalBytes('0A000', `unsupported frontend protocol ${code >>> 16}.${code & 0xffff}: Strata speaks 3.0`));
    }
    if (!validStartupParameters(message.subarray(8))) return close(fatalBytes('08P01', 'invalid start-up packet'));
    return undefined;
  }

  /** Only password messages belong here, and the first (SASLInitialResponse) must be well-formed. */
  private authenticationMessage(message: Buffer): Iterable<Uint8Array> | undefined {
    if (message.length < 5 || message[0] !== 0x70 || message.readInt32BE(1) !== message.length - 1) {
      return close(fatalBytes('08P01', 'expected a password message during authentication'));
    }
    if (this.authMessages++ === 0) {
      const end = message.indexOf(0, 5);
      const length = end === -1 || end + 5 > message.length ? NaN : message.readInt32BE(end + 1);
      if (!(length === -1 || (length >= 0 && end + 5 + length === message.length))) {
        return close(fatalBytes('08P01', 'malformed SASLInitialResponse'));
      }
    }
    return undefined;
  }
}

/** Bounds the size of each message a connection sends, by reading the frame headers of the raw bytes. */
export class FrameGuard {
  private started = false;
  private stopped = false;
  private readonly header = Buffer.alloc(8);
  private headerFill = 0;
  /** Bytes of the current message's body still to come. */
  private remaining = 0;

  constructor(
    private readonly maxMessageBytes: number,
    /**
     * With TLS, an SSLRequest is answered 'S' and the bytes after it are encrypted: the guard stops there, and
     * the upgraded stream is bounded by pg-gateway alone. (The security issue, which enables TLS, is to move
     * the guard onto the decrypted stream.)
     */
    private readonly tls: boolean,
  ) {}

  /** Reads a chunk; answers why the connection must close, or null. */
  feed(chunk: Buffer): string | null {
    let i = 0;
    while (i < chunk.length && !this.stopped) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - i);
        this.remaining -= n;
        i += n;
        continue;
      }
      // Initial messages: int32 length, int32 code. Later: a type byte, int32 length.
      const headerSize = this.started ? 5 : 8;
      const n = Math.min(headerSize - this.headerFill, chunk.length - i);
      chunk.copy(this.header, this.headerFill, i, i + n);
      this.headerFill += n;
      i += n;
      if (this.headerFill < headerSize) break;
      this.headerFill = 0;
      if (!this.started) {
        const length = this.header.readInt32BE(0);
        const code = this.header.readInt32BE(4);
        if (length < 8 || length > MAX_STARTUP_BYTES) return `invalid start-up packet length ${length}`;
        this.remaining = length - 8;
        if (code === SSL_REQUEST_CODE && this.tls) {
          this.stopped = true;
          return null;
        }
        if (code !== SSL_REQUEST_CODE && code !== GSSENC_REQUEST_CODE && code !== CANCEL_REQUEST_CODE) this.started = true;
      } else {
        // A type byte no frontend message has (a second start-up packet starts with 0): no need to wait for
        // the length it seems to announce.
        if (!FRONTEND_TYPES.includes(String.fromCharCode(this.header[0]!))) return `invalid frontend message type ${this.header[0]}`;
        const length = this.header.readInt32BE(1);
        if (length < 4) return `invalid message length ${length}`;
        if (length > this.maxMessageBytes) return `message of ${length} bytes is over the limit of ${this.maxMessageBytes}`;
        this.remaining = length - 4;
      }
    }
    return null;
  }
}

/** The names and values of a start-up packet: NUL-terminated strings, pairs, ending with an empty name. */
function validStartupParameters(body: Buffer): boolean {
  let at = 0;
  for (let pairs = 0; ; pairs++) {
    const end = body.indexOf(0, at);
    if (end === -1) return false;
    if (end === at) return at + 1 === body.length; // the terminating empty name
    const valueEnd = body.indexOf(0, end + 1);
    if (valueEnd === -1 || pairs > 1000) return false;
    at = valueEnd + 1;
  }
}

/** pg-gateway's answer to a handled message: the session's chunks, and its close signal when it ends. */
async function* respond(chunks: AsyncGenerator<Buffer, 'continue' | 'close'>): AsyncGenerator<Uint8Array> {
  let wrote = false;
  for (;;) {
    const next = await chunks.next();
    if (next.done) {
      // pg-gateway ends the connection when a response yields its close signal.
      if (next.value === 'close') yield closeSignal as unknown as Uint8Array;
      // Something must be yielded, or pg-gateway handles the message itself: an empty write is nothing.
      else if (!wrote) yield new Uint8Array(0);
      return;
    }
    if (next.value.length > 0) {
      wrote = true;
      yield next.value;
    }
  }
}

/** A response that writes `bytes` (if any), then ends the connection. */
function close(bytes?: Uint8Array): Iterable<Uint8Array> {
  return [...(bytes ? [bytes] : []), closeSignal as unknown as Uint8Array];
}

function fatalBytes(code: string, message: string): Buffer {
  return fatal(code, message);
}

function fatal(code: string, message: string): Buffer {
  const out = new MessageWriter();
  out.error({ severity: 'FATAL', code, message });
  return out.take();
}

function toArrayBuffer(buffer: Buffer): ArrayBuffer {
  return buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength) as ArrayBuffer;
}
