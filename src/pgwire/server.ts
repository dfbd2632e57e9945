/**
 * The PostgreSQL wire protocol listener: a TCP server whose connections are taken through SSL negotiation,
 * start-up and authentication, after which each frontend message goes to a {@link PgSession}.
 *
 * pg-gateway (0.3.0-beta.4) frames messages and answers SSLRequest; it calls `onMessage` for every message
 * before its own handling, and a response from there replaces its handling. So `onMessage` answers everything
 * from the start-up packet on: start-up, authentication (by the {@link PgAuthenticator}: SCRAM-SHA-256, or a
 * password over TLS; pg-gateway's own authentication never runs), and every message after it. The TLS upgrade
 * is done here too (pg-gateway's Node adapter crosses web streams that can throw out of the process when a
 * client goes away), so that the bound pg-gateway lacks, the size of a message it buffers, is kept on the
 * decrypted bytes as well: a {@link FrameGuard} sees every byte before pg-gateway does.
 */
import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import type { Duplex } from 'node:stream';
import { closeSignal, PostgresConnection, type DuplexStream, type MessageResponse, type PostgresConnectionOptions, type TlsInfo } from 'pg-gateway';
import type { SqlEngine } from '../sql/index.js';
import { AUTHENTICATION_HINT, decoyVerifier, type PgAuthenticator, type PgLogin, type ScramVerifier } from './auth.js';
import { MessageReader, MessageWriter, ProtocolViolation } from './protocol.js';
import { ScramExchange, SCRAM_SHA_256 } from './scram.js';
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
  /** Who may connect, and what their queries may read: `securityAuthenticator(strata.security)`. There is no open mode. */
  readonly authenticator: PgAuthenticator;
  /** A certificate and key (PEM), the HTTP server's: SSLRequest is answered 'S' and the connection upgraded to TLS. */
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer } | undefined;
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

/**
 * pg-gateway's own authentication, which never runs (onMessage answers the start-up packet): should it ever,
 * it lets nobody in.
 */
const REFUSE_EVERYONE: NonNullable<PostgresConnectionOptions['auth']> = {
  method: 'scram-sha-256',
  getScramSha256Data: () => decoyVerifier('', randomBytes(32)),
  validateCredentials: () => false,
};

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
    /** The TLS context connections upgrade with; null without a certificate. */
    readonly secureContext: SecureContext | null,
  ) {}

  /** Starts listening; rejects when the address is taken or the certificate and key do not load. */
  static async listen(options: PgServerOptions): Promise<PgServer> {
    const secureContext = options.tls ? createSecureContext({ cert: options.tls.cert, key: options.tls.key }) : null;
    const server = createServer();
    const pg = new PgServer(server, options, options.authenticator, secureContext);
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

  /** Whether SSLRequest is answered 'S'. */
  get tls(): boolean {
    return this.secureContext !== null;
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
  decoy(user: string): ScramVerifier {
    return decoyVerifier(user, this.decoySecret);
  }
}

/** Where a connection is, from the first byte to its session. */
type Phase =
  /** Before the start-up packet: SSLRequest, GSSENCRequest, CancelRequest or StartupMessage. */
  | { readonly kind: 'initial' }
  /** AuthenticationCleartextPassword sent (over TLS only): the password message is next. */
  | { readonly kind: 'password'; readonly user: string }
  /** AuthenticationSASL sent: the SASLInitialResponse is next. */
  | { readonly kind: 'sasl'; readonly user: string; readonly verifier: ScramVerifier }
  /** AuthenticationSASLContinue sent: the SASLResponse with the client's proof is next. */
  | { readonly kind: 'sasl-final'; readonly user: string; readonly verifier: ScramVerifier; readonly exchange: ScramExchange }
  /** Authenticated: every message goes to the session. */
  | { readonly kind: 'ready'; readonly session: PgSession };

/** One client connection, from accept to close. */
class ClientConnection {
  private phase: Phase = { kind: 'initial' };
  private guard: FrameGuard;
  /** The stream messages travel on: the socket, or the TLS socket over it once upgraded. */
  private transport: Duplex;
  /** Upgraded to TLS. */
  private secure = false;
  private startupParams: Record<string, string> = Object.create(null) as Record<string, string>;
  private startupTimer: NodeJS.Timeout | null = null;
  /** Killed: the FATAL error is written, nothing more may be. */
  private dead = false;

  constructor(
    private readonly socket: Socket,
    private readonly server: PgServer,
    private readonly options: PgServerOptions,
  ) {
    this.transport = socket;
    this.guard = new FrameGuard(options.maxMessageBytes ?? 16 * 1024 * 1024, server.tls);
  }

  private get session(): PgSession | null {
    return this.phase.kind === 'ready' ? this.phase.session : null;
  }

  /** The client's address, for the audit log and the failed-authentication limit. */
  private get client(): string {
    return this.socket.remoteAddress ?? 'unknown';
  }

  start(): void {
    const socket = this.socket;
    // Errors surface as the streams' end (a reset connection); an unhandled 'error' would crash the process.
    socket.on('error', () => {});
    socket.once('close', () => this.closed());
    this.startupTimer = setTimeout(() => this.kill('08P01', 'authentication did not finish in time'), this.options.startupTimeoutMs ?? 60_000);
    this.startupTimer.unref();
    const tls = this.options.tls;
    const gatewayOptions: PostgresConnectionOptions = {
      auth: REFUSE_EVERYONE,
      // With a certificate, pg-gateway answers SSLRequest 'S' and calls upgradeTls below.
      ...(tls ? { tls: { cert: toArrayBuffer(tls.cert), key: toArrayBuffer(tls.key) } } : {}),
      onMessage: (data) => this.onMessage(data),
    };
    // pg-gateway's `fromNodeSocket` is this over Node's Duplex.toWeb(socket). The streams here replace that
    // adapter: the readable passes every chunk through the frame guard first, and the writable tolerates a
    // socket this connection already ended (Node 20's adapter throws an uncaught TypeError when the socket ends
    // before the web stream is closed, which took the whole process down).
    new PostgresConnection({ readable: this.readable(socket), writable: this.writable(socket) }, gatewayOptions, {
      upgradeTls: () => this.upgradeTls(),
    });
  }

  /**
   * After pg-gateway answered an SSLRequest with 'S': the TLS handshake over the socket, with the server's
   * certificate. Messages then travel on the TLS socket, checked by a fresh frame guard; the socket's own
   * readable stream is left behind, fed nothing more.
   */
  private async upgradeTls(): Promise<{ duplex: DuplexStream<Uint8Array>; tlsInfo: TlsInfo }> {
    const secure = new TLSSocket(this.socket, { isServer: true, secureContext: this.server.secureContext! });
    secure.on('error', () => {});
    this.transport = secure;
    this.guard = new FrameGuard(this.options.maxMessageBytes ?? 16 * 1024 * 1024, false);
    // The readable is made before the handshake ends, so that nothing the client sends right after is missed.
    const duplex = { readable: this.readable(secure), writable: this.writable(secure) };
    await new Promise<void>((resolve, reject) => {
      secure.once('secure', () => resolve());
      // A failed handshake: pg-gateway stays quiet about an error with this code.
      secure.once('close', () => reject(Object.assign(new Error('the TLS handshake failed'), { code: 'ABORT_ERR' })));
    });
    this.secure = true;
    return { duplex, tlsInfo: { serverName: typeof secure.servername === 'string' ? secure.servername : undefined } };
  }

  /** `stream`'s bytes, checked by the frame guard, with backpressure: the stream pauses while a chunk waits. */
  private readable(stream: Duplex): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>({
      start: (controller) => {
        let open = true;
        stream.on('data', (chunk: Buffer) => {
          // Once upgraded to TLS, the socket's bytes are the TLS socket's to read.
          if (!open || this.dead || this.transport !== stream) return;
          const violation = this.guard.feed(chunk);
          if (violation !== null) {
            this.kill('08P01', violation);
            return;
          }
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          if ((controller.desiredSize ?? 0) <= 0) stream.pause();
        });
        stream.once('end', () => {
          if (open) controller.close();
          open = false;
        });
        stream.once('close', () => {
          // pg-gateway stays quiet about an error with this code (a client gone mid-message).
          if (open) controller.error(Object.assign(new Error('the connection closed'), { code: 'ABORT_ERR' }));
          open = false;
        });
      },
      pull: () => {
        stream.resume();
      },
      cancel: () => {
        stream.destroy();
      },
    });
  }

  /** Writes to `stream`, waiting on 'drain' when it is full; bytes after it ended go nowhere. */
  private writable(stream: Duplex): WritableStream<Uint8Array> {
    return new WritableStream<Uint8Array>({
      write: (chunk) => {
        if (stream.destroyed || stream.writableEnded) return;
        if (stream.write(chunk)) return;
        return new Promise<void>((resolve) => {
          const done = () => {
            stream.off('drain', done);
            stream.off('close', done);
            resolve();
          };
          stream.on('drain', done);
          stream.on('close', done);
        });
      },
      close: () => {
        if (!stream.writableEnded) stream.end();
      },
      abort: () => {
        stream.destroy();
      },
    });
  }

  /** Ends the connection at once, telling the client why (FATAL). */
  kill(code: string, message: string): void {
    this.dead = true;
    this.session?.cancel();
    const out = this.transport;
    if (out.destroyed || out.writableEnded) return;
    out.end(fatal(code, message));
    // A client that does not close its side is cut off.
    setTimeout(() => {
      out.destroy();
      this.socket.destroy();
    }, 1000).unref();
  }

  destroy(): void {
    this.session?.close();
    this.transport.destroy();
    this.socket.destroy();
  }

  private closed(): void {
    if (this.startupTimer) clearTimeout(this.startupTimer);
    const session = this.session;
    if (session) {
      this.server.unregister(session.processId);
      session.close();
    }
  }

  private onMessage(data: Uint8Array): MessageResponse | Promise<MessageResponse> {
    const message = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    // Bytes pg-gateway framed before the guard killed the connection: nothing more is written.
    if (this.dead) return close();
    switch (this.phase.kind) {
      case 'initial':
        return this.initialMessage(message);
      case 'ready':
        return respond(this.phase.session.handle(message));
      default:
        return this.authenticationMessage(message);
    }
  }

  /** SSLRequest goes on to pg-gateway (which answers 'S' or 'N'); the rest is answered here. */
  private initialMessage(message: Buffer): Iterable<Uint8Array> | undefined {
    if (message.length < 8 || message.readInt32BE(0) !== message.length) return close(fatal('08P01', 'invalid start-up packet'));
    const code = message.readInt32BE(4);
    if (code === SSL_REQUEST_CODE && message.length === 8) {
      return this.secure ? close(fatal('08P01', 'SSL negotiation on a connection that is encrypted already')) : undefined;
    }
    if (code === GSSENC_REQUEST_CODE && message.length === 8) return [Buffer.from('N')];
    if (code === CANCEL_REQUEST_CODE && message.length === 16) {
      this.server.cancel(message.readInt32BE(8), message.readInt32BE(12));
      // PostgreSQL answers a CancelRequest with nothing but the close.
      return close();
    }
    if (code !== PROTOCOL_3_0) {
      return close(fatal('0A000', `unsupported frontend protocol ${code >>> 16}.${code & 0xffff}: Strata speaks 3.0`));
    }
    const params = readStartupParameters(message.subarray(8));
    if (params === null) return close(fatal('08P01', 'invalid start-up packet'));
    return this.startup(params);
  }

  /** The start-up packet: asks the user to authenticate, the way the authenticator says. */
  private startup(params: Record<string, string>): Iterable<Uint8Array> {
    const user = params.user;
    if (user === undefined || user === '') return close(fatal('28000', 'no PostgreSQL user name specified in startup packet'));
    this.startupParams = params;
    // Who cannot log in (no such token) is still asked for SCRAM, against a verifier nothing matches.
    const challenge = this.server.authenticator.challenge(user, this.secure) ?? { method: 'scram-sha-256', verifier: this.server.decoy(user) };
    const out = new MessageWriter();
    if (challenge.method === 'password' && this.secure) {
      this.phase = { kind: 'password', user };
      out.authenticationCleartextPassword();
    } else {
      const verifier = challenge.method === 'scram-sha-256' ? challenge.verifier : this.server.decoy(user);
      this.phase = { kind: 'sasl', user, verifier };
      out.authenticationSasl([SCRAM_SHA_256]);
    }
    return [out.take()];
  }

  /** A password message ('p') during authentication: a cleartext password, or a step of SCRAM-SHA-256. */
  private authenticationMessage(message: Buffer): Iterable<Uint8Array> {
    if (message.length < 5 || message[0] !== 0x70 || message.readInt32BE(1) !== message.length - 1) {
      return close(fatal('08P01', 'expected a password message during authentication'));
    }
    const reader = new MessageReader(message.subarray(5));
    const phase = this.phase;
    const authenticator = this.server.authenticator;
    try {
      switch (phase.kind) {
        case 'password': {
          const password = reader.cstring();
          reader.end();
          const login = authenticator.passwordLogin(phase.user, password, this.client);
          return login === null ? this.refuse(phase.user) : this.authenticated(login, null);
        }
        case 'sasl': {
          const mechanism = reader.cstring();
          if (mechanism !== SCRAM_SHA_256) throw new ProtocolViolation(`SASL mechanism ${JSON.stringify(mechanism)} is not offered; use ${SCRAM_SHA_256}`);
          const length = reader.int32();
          if (length < 0) throw new ProtocolViolation('the SASLInitialResponse carries no SCRAM client-first-message');
          const clientFirst = reader.bytes(length).toString('utf8');
          reader.end();
          const exchange = ScramExchange.start(clientFirst, phase.verifier);
          this.phase = { kind: 'sasl-final', user: phase.user, verifier: phase.verifier, exchange };
          const out = new MessageWriter();
          out.authenticationSaslData(11, exchange.serverFirst);
          return [out.take()];
        }
        case 'sasl-final': {
          const serverFinal = phase.exchange.finish(reader.bytes(reader.remaining).toString('utf8'));
          if (serverFinal === null) return this.refuse(phase.user);
          // The proof matched; the token must still be there (a revocation meanwhile refuses it).
          const login = authenticator.scramLogin(phase.user, phase.verifier, this.client);
          return login === null ? this.refuse(phase.user) : this.authenticated(login, serverFinal);
        }
        default:
          throw new ProtocolViolation('unexpected password message');
      }
    } catch (error) {
      if (error instanceof ProtocolViolation) return close(fatal('08P01', error.message));
      throw error;
    }
  }

  /** A failed authentication: the same FATAL 28P01 whether the user is unknown or the password wrong. */
  private refuse(user: string): Iterable<Uint8Array> {
    this.dead = true;
    return close(fatal('28P01', this.server.authenticator.refuse(user, this.client), AUTHENTICATION_HINT));
  }

  /** Authenticated: the session, and what PostgreSQL sends up to the first ReadyForQuery. */
  private authenticated(login: PgLogin, serverFinal: string | null): Iterable<Uint8Array> {
    if (this.startupTimer) clearTimeout(this.startupTimer);
    const params = this.startupParams;
    const session = new PgSession({
      engine: this.options.engine,
      processId: this.server.allocateProcessId(),
      login,
      user: login.user,
      // libpq's default database is the user name.
      database: params.database ?? login.user,
      startup: params,
      limits: this.options.sessionLimits ?? DEFAULT_SESSION_LIMITS,
      log: this.options.log,
    });
    this.phase = { kind: 'ready', session };
    const { processId, secret } = this.server.register(session);
    const out = new MessageWriter();
    if (serverFinal !== null) out.authenticationSaslData(12, serverFinal);
    out.authenticationOk();
    for (const [name, value] of session.startupParameters()) out.parameterStatus(name, value);
    out.backendKeyData(processId, secret);
    out.readyForQuery('I');
    return [out.take()];
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
     * With TLS, an SSLRequest is answered 'S' and the bytes after it are encrypted: this guard stops there,
     * and a fresh one reads the decrypted stream.
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

/**
 * The names and values of a start-up packet (NUL-terminated strings, pairs, ending with an empty name), or
 * null when it is not well-formed. A map without a prototype: the names are the client's.
 */
function readStartupParameters(body: Buffer): Record<string, string> | null {
  const params = Object.create(null) as Record<string, string>;
  let at = 0;
  for (let pairs = 0; ; pairs++) {
    const end = body.indexOf(0, at);
    if (end === -1) return null;
    if (end === at) return at + 1 === body.length ? params : null; // the terminating empty name
    const valueEnd = body.indexOf(0, end + 1);
    if (valueEnd === -1 || pairs > 1000) return null;
    params[body.toString('utf8', at, end)] = body.toString('utf8', end + 1, valueEnd);
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

function fatal(code: string, message: string, hint?: string): Buffer {
  const out = new MessageWriter();
  out.error({ severity: 'FATAL', code, message, hint });
  return out.take();
}

function toArrayBuffer(buffer: Buffer): ArrayBuffer {
  return buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength) as ArrayBuffer;
}
