/**
 * One client connection after authentication: the query protocol, simple and extended, over the SQL engine.
 *
 * pg-gateway hands this session each frontend message in order and waits for its answer before reading the
 * next, so the state below (prepared statements, portals, transaction status) has one writer and needs no
 * locks. Answers are packed into one buffer and written at Sync, Flush, the end of a simple Query, or every
 * {@link FLUSH_BYTES} while rows stream; the socket's backpressure holds the query while the client reads.
 *
 * Every query runs as the connection's login: {@link PgLogin.check} first (a revoked token, the rate limit),
 * then the SQL engine hands what the query reads to {@link PgLogin.authorize} before it runs (the table-level
 * policies of `POST /v1/sql`); catalog queries list only the tables the login may query.
 *
 * Errors follow PostgreSQL: an error in the extended protocol discards messages up to the next Sync; an error
 * inside an explicit transaction block leaves it failed ('E') until ROLLBACK; a message that breaks the
 * protocol (malformed, out of order, of unknown type) ends the connection with a FATAL ErrorResponse.
 */
import type { QueryReads, SqlEngine, SqlRow, SqlStream } from '../sql/index.js';
import type { PgLogin } from './auth.js';
import { needsTableList, rewriteStatement, type CatalogSession } from './catalog.js';
import { classify, type Command, type TransactionAction } from './commands.js';
import { errorFields, isExpected, isRefusal, PgError, QueryCancelledError } from './errors.js';
import { literalTokens, nullLiteral, parameterLiteral } from './parameters.js';
import {
  formatAt,
  MessageReader,
  MessageWriter,
  ProtocolViolation,
  readBind,
  readExecute,
  readParse,
  readTarget,
  type FieldDescription,
} from './protocol.js';
import { REPORTED_SETTINGS, SessionSettings, spelling } from './settings.js';
import { isBlank, nameOf, parameterCount, splitStatements, type Token } from './sql-text.js';
import { encodeBinary, encodeText, OID, oidOfTypeName, pgTypeOf, type PgType } from './types.js';

/** Bytes of answer gathered before they are written, while rows stream. */
const FLUSH_BYTES = 64 * 1024;

/** Strata's tables, as the engine has them (all in DuckDB's main schema): what a catalog may list. */
const TABLE_LIST_SQL =
  "SELECT view_name AS name FROM duckdb_views() WHERE NOT internal AND database_name = current_database() AND schema_name = 'main' " +
  "UNION ALL SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main'";

/** Bounds per connection, so that one client cannot hold unbounded state. */
export interface SessionLimits {
  /** Named prepared statements kept at once. */
  readonly maxStatements: number;
  /** Portals open at once (each may hold a running query and one of the engine's query slots). */
  readonly maxPortals: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = { maxStatements: 1000, maxPortals: 16 };

export interface SessionOptions {
  readonly engine: SqlEngine;
  readonly processId: number;
  /** Who the connection logged in as: its queries are authorized as this login. */
  readonly login: PgLogin;
  readonly user: string;
  readonly database: string;
  /** Parameters of the start-up packet (application_name, DateStyle...). */
  readonly startup: Readonly<Record<string, string>>;
  readonly limits?: SessionLimits;
  /** Told about failures that are bugs rather than the client's doing. */
  readonly log?: (message: string) => void;
}

/** A Parse'd statement. */
interface PreparedStatement {
  readonly name: string;
  readonly tokens: Token[];
  readonly command: Command;
  /** Declared parameter type OIDs, 0 where the client left it to the server; one per `$n`. */
  readonly paramTypes: number[];
  /** RowDescription of a query, once a Describe asked for it. */
  fields?: FieldDescription[];
}

/** What a session's frontend message handler answers after its last chunk. */
export type SessionOutcome = 'continue' | 'close';

type TransactionStatus = 'I' | 'T' | 'E';

/**
 * A portal: a statement with its parameter values, ready to run. A query's rows stream from the engine as the
 * client executes the portal, possibly in several Execute messages of N rows each.
 */
class Portal {
  private stream: SqlStream | null = null;
  private batches: AsyncIterator<SqlRow[]> | null = null;
  private pending: SqlRow[] = [];
  private pendingAt = 0;
  private types: PgType[] = [];
  private fields: FieldDescription[] | null = null;
  /** Rows the latest Execute sent: its CommandComplete reports them, as PostgreSQL's does. */
  private rowsSent = 0;
  /** Every row was sent (or the command ran). */
  done = false;
  /** Aborting stops the portal's query: a CancelRequest, or the connection closing. */
  readonly controller = new AbortController();

  constructor(
    readonly name: string,
    readonly statement: PreparedStatement,
    /** The SQL to run, with every `$n` replaced by its literal. */
    readonly sql: string | null,
    readonly resultFormats: readonly number[],
  ) {}

  get started(): boolean {
    return this.stream !== null;
  }

  /** Starts the query (if not yet) with `query`, the session's way to run one, and answers its columns. */
  async start(query: (sql: string, signal: AbortSignal) => Promise<SqlStream>): Promise<FieldDescription[]> {
    if (this.fields) return this.fields;
    if (this.sql === null) throw new Error('only a query portal starts a query');
    this.stream = await query(this.sql, this.controller.signal);
    this.batches = this.stream.batches[Symbol.asyncIterator]();
    const columns = this.stream.columns;
    if (this.resultFormats.length > 1 && this.resultFormats.length !== columns.length) {
      throw new PgError('08P01', `bind message has ${this.resultFormats.length} result formats but query has ${columns.length} columns`);
    }
    this.types = columns.map((column) => pgTypeOf(column.type));
    this.fields = columns.map((column, i) => fieldOf(column.name, this.types[i]!, formatAt(this.resultFormats, i)));
    return this.fields;
  }

  /**
   * Sends up to `maxRows` rows (0: all) as DataRows, calling `flush` whenever the output buffer is full;
   * answers 'suspended' when it stopped at the limit, 'complete' after the last row.
   */
  async *execute(out: MessageWriter, maxRows: number): AsyncGenerator<Buffer, 'suspended' | 'complete'> {
    let sent = 0;
    this.rowsSent = 0;
    const formats = this.fields!.map((field) => field.format);
    for (;;) {
      if (this.pendingAt >= this.pending.length) {
        const next = await this.batches!.next();
        if (next.done) {
          this.finish();
          return 'complete';
        }
        this.pending = next.value;
        this.pendingAt = 0;
        continue;
      }
      if (maxRows > 0 && sent >= maxRows) return 'suspended';
      const row = this.pending[this.pendingAt++]!;
      out.dataRow(this.fields!.map((field, c) => encodeValue(this.types[c]!, row[field.name] ?? null, formats[c]!)));
      sent++;
      this.rowsSent++;
      if (out.size >= FLUSH_BYTES) yield out.take();
    }
  }

  get tag(): string {
    return `SELECT ${this.rowsSent}`;
  }

  private finish(): void {
    this.done = true;
    this.close();
  }

  /** Frees the query (its connection and slot in the engine); harmless when done. */
  close(): void {
    this.stream?.close();
    this.stream = null;
    this.pending = [];
  }
}

function encodeValue(type: PgType, value: SqlRow[string] | null, format: 0 | 1): Buffer | string | null {
  if (value === null) return null;
  return format === 1 ? encodeBinary(type, value) : encodeText(type, value);
}

function fieldOf(name: string, type: PgType, format: 0 | 1): FieldDescription {
  return { name, typeOid: type.oid, typeSize: type.size, typmod: type.typmod, format };
}

function textField(name: string): FieldDescription {
  return { name, typeOid: OID.text, typeSize: -1, typmod: -1, format: 0 };
}

/** The connection-level state PostgreSQL keeps per backend, and the message handlers. */
export class PgSession {
  readonly processId: number;
  private readonly engine: SqlEngine;
  private readonly settings: SessionSettings;
  private readonly statements = new Map<string, PreparedStatement>();
  private readonly portals = new Map<string, Portal>();
  private readonly out = new MessageWriter();
  private readonly limits: SessionLimits;
  private readonly catalog: CatalogSession;
  private status: TransactionStatus = 'I';
  /** After an error in the extended protocol, messages are skipped until Sync. */
  private skipping = false;
  /** What runs now, if anything: what a CancelRequest stops. */
  private running: { readonly controller: AbortController } | null = null;
  private closed = false;
  /** The tables catalog queries list: null for all; else loaded before each statement that lists tables. */
  private visible: readonly string[] | null;
  /** Runs a user's query as the login (every query of the session goes through here). */
  private readonly query: (sql: string, signal: AbortSignal) => Promise<SqlStream>;

  constructor(private readonly options: SessionOptions) {
    this.processId = options.processId;
    this.engine = options.engine;
    const login = options.login;
    const authorize = login.authorize;
    this.query = (sql, signal) => {
      login.check();
      return this.engine.query(sql, { signal, ...(authorize ? { authorize: (reads: QueryReads) => authorize(reads) } : {}) });
    };
    this.visible = login.visible === null ? null : [];
    this.limits = options.limits ?? DEFAULT_SESSION_LIMITS;
    this.settings = new SessionSettings(options.user, options.startup);
    const settings = this.settings;
    this.catalog = {
      user: options.user,
      database: options.database,
      processId: options.processId,
      setting: (name) => settings.get(name),
      settings: () => settings.all(),
      setSetting: (name, value) => void settings.set(name, value),
      visibleTables: () => this.visible,
    };
  }

  /** The ParameterStatus values reported at start-up, after authentication. */
  startupParameters(): [string, string][] {
    return REPORTED_SETTINGS.map((name) => [name, this.settings.get(name) ?? '']);
  }

  /** Stops the query running now, if any (a CancelRequest); later messages are unaffected. */
  cancel(): void {
    this.running?.controller.abort(new QueryCancelledError());
  }

  /** The connection is gone: stops whatever runs and frees every portal. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const portal of this.portals.values()) {
      portal.controller.abort(new QueryCancelledError());
      portal.close();
    }
    this.running?.controller.abort(new QueryCancelledError());
    this.portals.clear();
    this.statements.clear();
  }

  /**
   * Handles one frontend message (type byte, length, body). Yields the bytes to write, in order; answers
   * 'close' when the connection must end (Terminate, or a protocol violation after its FATAL error).
   */
  async *handle(message: Buffer): AsyncGenerator<Buffer, SessionOutcome> {
    try {
      if (message.length < 5 || message.readInt32BE(1) !== message.length - 1) throw new ProtocolViolation('invalid message length');
      const type = String.fromCharCode(message[0]!);
      const reader = new MessageReader(message.subarray(5));
      if (type === 'X') return 'close';
      if (this.skipping && type !== 'S') {
        // Still checked for the protocol: a malformed or unknown message ends the connection even here.
        validateSkipped(type);
        return 'continue';
      }
      switch (type) {
        case 'Q':
          yield* this.simpleQuery(reader);
          break;
        case 'P':
          await this.extended(() => this.parse(reader));
          break;
        case 'B':
          await this.extended(() => this.bind(reader));
          break;
        case 'D':
          await this.extended(() => this.describe(reader));
          break;
        case 'E':
          yield* this.extendedStream(this.execute(reader));
          break;
        case 'C':
          await this.extended(() => this.closeTarget(reader));
          break;
        case 'S':
          reader.end();
          this.sync();
          yield this.out.take();
          break;
        case 'H':
          reader.end();
          yield this.out.take();
          break;
        case 'F':
          this.out.error({ severity: 'ERROR', code: '0A000', message: 'the function call protocol is not supported; call the function in a query' });
          this.failTransaction();
          this.out.readyForQuery(this.status);
          yield this.out.take();
          break;
        case 'p':
          throw new ProtocolViolation('unexpected password message: the connection is already authenticated');
        case 'd':
        case 'c':
        case 'f':
          throw new ProtocolViolation('unexpected COPY message: no COPY is in progress');
        default:
          throw new ProtocolViolation(`invalid frontend message type ${message[0]}`);
      }
      return 'continue';
    } catch (error) {
      if (!(error instanceof ProtocolViolation)) {
        this.options.log?.(`pgwire: ${(error as Error).stack ?? String(error)}`);
      }
      // FATAL: the client learns why, then the connection ends (what is already buffered goes first).
      this.out.error(error instanceof ProtocolViolation ? errorFields(error) : { severity: 'FATAL', code: 'XX000', message: 'internal error; see the server log' });
      yield this.out.take();
      return 'close';
    }
  }

  // -------------------------------------------------------------------------------------------------------
  // Simple query protocol

  private async *simpleQuery(reader: MessageReader): AsyncGenerator<Buffer> {
    const sql = reader.cstring();
    reader.end();
    // A simple Query drops the unnamed statement and portal, as PostgreSQL does.
    this.closePortal('');
    this.statements.delete('');
    const statements = splitStatements(sql);
    if (statements.length === 0) this.out.emptyQueryResponse();
    for (const tokens of statements) {
      const statement: PreparedStatement = { name: '', tokens, command: classify(tokens), paramTypes: [] };
      try {
        if (parameterCount(tokens) > 0) throw new PgError('42P02', 'there is no parameter $1: a simple query takes no parameters');
        await this.loadVisibleTables(tokens);
        yield* this.run(statement, this.createPortal('', statement, [], []), 0, true);
      } catch (error) {
        this.reportError(error);
        break;
      } finally {
        this.closePortal('');
      }
    }
    this.out.readyForQuery(this.status);
    yield this.out.take();
  }

  // -------------------------------------------------------------------------------------------------------
  // Extended query protocol

  /** Runs one extended-protocol step; an error is reported and messages are skipped until Sync. */
  private async extended(step: () => Promise<void> | void): Promise<void> {
    try {
      await step();
    } catch (error) {
      if (error instanceof ProtocolViolation) throw error;
      this.reportError(error);
      this.skipping = true;
    }
  }

  private async *extendedStream(steps: AsyncGenerator<Buffer>): AsyncGenerator<Buffer> {
    try {
      yield* steps;
    } catch (error) {
      if (error instanceof ProtocolViolation) throw error;
      this.reportError(error);
      this.skipping = true;
    }
  }

  private parse(reader: MessageReader): void {
    const { statement: name, sql, paramTypes } = readParse(reader);
    if (name !== '' && this.statements.has(name)) throw new PgError('42P05', `prepared statement "${name}" already exists`);
    if (name !== '' && this.statements.size >= this.limits.maxStatements) {
      throw new PgError('53400', `more than ${this.limits.maxStatements} prepared statements on one connection; close some (Close or DEALLOCATE)`);
    }
    const statements = splitStatements(sql);
    if (statements.length > 1) throw new PgError('42601', 'cannot insert multiple commands into a prepared statement');
    const tokens = statements[0] ?? [];
    const count = Math.max(parameterCount(tokens), paramTypes.length);
    if (count > 65535) throw new PgError('54000', `too many parameters (${count})`);
    // A parameter the client left untyped takes the type of a cast written on it (`$1::int`), as PostgreSQL
    // infers it: Describe reports it, and drivers encode the value for it.
    const casts = castParameterTypes(tokens);
    const types = Array.from({ length: count }, (_, i) => paramTypes[i] || (casts.get(i + 1) ?? 0));
    this.statements.set(name, { name, tokens, command: classify(tokens), paramTypes: types });
    this.out.parseComplete();
  }

  private async bind(reader: MessageReader): Promise<void> {
    const bind = readBind(reader);
    const statement = this.statements.get(bind.statement);
    if (!statement) throw new PgError('26000', `prepared statement "${bind.statement}" does not exist`);
    const expected = statement.paramTypes.length;
    if (bind.paramFormats.length > 1 && bind.paramFormats.length !== bind.params.length) {
      throw new PgError('08P01', `bind message has ${bind.paramFormats.length} parameter formats but ${bind.params.length} parameters`);
    }
    if (bind.params.length !== expected) {
      throw new PgError('08P01', `bind message supplies ${bind.params.length} parameters, but prepared statement "${bind.statement}" requires ${expected}`);
    }
    if (bind.portal !== '' && this.portals.has(bind.portal)) throw new PgError('42P03', `portal "${bind.portal}" already exists`);
    const literals = bind.params.map((value, i) => parameterLiteral(value, formatAt(bind.paramFormats, i), statement.paramTypes[i]!, i + 1));
    await this.loadVisibleTables(statement.tokens);
    this.createPortal(bind.portal, statement, literals, bind.resultFormats);
    this.out.bindComplete();
  }

  private async describe(reader: MessageReader): Promise<void> {
    const target = readTarget(reader);
    if (target.kind === 'S') {
      const statement = this.statements.get(target.name);
      if (!statement) throw new PgError('26000', `prepared statement "${target.name}" does not exist`);
      const fields = await this.describeStatement(statement);
      // A parameter the client did not type is described as text, the type its literal has here.
      this.out.parameterDescription(statement.paramTypes.map((oid) => (oid === 0 ? OID.text : oid)));
      if (fields) this.out.rowDescription(fields);
      else this.out.noData();
      return;
    }
    const portal = this.portals.get(target.name);
    if (!portal) throw new PgError('34000', `portal "${target.name}" does not exist`);
    const fields = await this.portalFields(portal);
    if (fields) this.out.rowDescription(fields);
    else this.out.noData();
  }

  private async *execute(reader: MessageReader): AsyncGenerator<Buffer> {
    const { portal: name, maxRows } = readExecute(reader);
    const portal = this.portals.get(name);
    if (!portal) throw new PgError('34000', `portal "${name}" does not exist`);
    yield* this.run(portal.statement, portal, maxRows, false);
  }

  private closeTarget(reader: MessageReader): void {
    const target = readTarget(reader);
    if (target.kind === 'S') {
      const statement = this.statements.get(target.name);
      this.statements.delete(target.name);
      // Closing a statement closes the portals made from it.
      for (const portal of [...this.portals.values()]) if (portal.statement === statement) this.closePortal(portal.name);
    } else {
      this.closePortal(target.name);
    }
    this.out.closeComplete();
  }

  private sync(): void {
    this.skipping = false;
    // Outside a transaction block, Sync ends the implicit transaction and with it every portal.
    if (this.status === 'I') this.closeAllPortals();
    this.out.readyForQuery(this.status);
  }

  // -------------------------------------------------------------------------------------------------------
  // Running statements

  private createPortal(name: string, statement: PreparedStatement, literals: string[], resultFormats: readonly number[]): Portal {
    this.closePortal(name);
    if (this.portals.size >= this.limits.maxPortals) {
      throw new PgError('53400', `more than ${this.limits.maxPortals} open portals on one connection; close some or Sync`);
    }
    const sql = statement.command.kind === 'query' || statement.command.kind === 'show' ? this.queryText(statement.tokens, literals) : null;
    const portal = new Portal(name, statement, sql, resultFormats);
    this.portals.set(name, portal);
    return portal;
  }

  /**
   * Before a statement whose catalog rewrite lists tables: the tables this login may see, of those the engine
   * has. A login that sees every table skips it.
   */
  private async loadVisibleTables(tokens: readonly Token[]): Promise<void> {
    const visible = this.options.login.visible;
    if (visible === null || !needsTableList(tokens)) return;
    // Strata's own question, not the user's: it needs no authorization, and lists names only.
    const answer = await this.engine.queryAll(TABLE_LIST_SQL);
    this.visible = answer.rows.map((row) => String(row.name)).filter(visible);
  }

  /** The statement as the SQL engine runs it: parameters as literals, then the catalog rewrite. */
  private queryText(tokens: readonly Token[], literals: readonly string[]): string {
    const bound: Token[] = [];
    for (const token of tokens) {
      if (token.kind === 'param') {
        const literal = literals[Number(token.text.slice(1)) - 1];
        if (literal === undefined) throw new PgError('42P02', `there is no parameter ${token.text}`);
        bound.push(...literalTokens(literal));
      } else {
        bound.push(token);
      }
    }
    return rewriteStatement(bound, this.catalog);
  }

  /** The RowDescription a portal will answer with, or null for a statement without rows. */
  private async portalFields(portal: Portal): Promise<FieldDescription[] | null> {
    const command = portal.statement.command;
    if (command.kind === 'show' && this.isSetting(command.name)) return this.showFields(command.name);
    if (command.kind !== 'query' && command.kind !== 'show') return null;
    return this.track(portal, () => portal.start(this.query));
  }

  /**
   * A statement's RowDescription without running it: the query wrapped in `LIMIT 0`, its parameters NULL of
   * their declared types. Statements that cannot be wrapped (DESCRIBE, SHOW, SUMMARIZE) are started and
   * closed once their columns are known.
   */
  private async describeStatement(statement: PreparedStatement): Promise<FieldDescription[] | null> {
    if (statement.fields) return statement.fields;
    const command = statement.command;
    if (command.kind === 'show' && this.isSetting(command.name)) return this.showFields(command.name);
    if (command.kind !== 'query' && command.kind !== 'show') return null;
    await this.loadVisibleTables(statement.tokens);
    const sql = this.queryText(
      statement.tokens,
      statement.paramTypes.map((oid) => nullLiteral(oid)),
    );
    // Tracked like a portal's query, so that a CancelRequest stops it too.
    const describing = { controller: new AbortController() };
    const stream = await this.track(describing, async () => {
      const signal = describing.controller.signal;
      try {
        return await this.query(`SELECT * FROM (\n${sql}\n) AS strata_describe LIMIT 0`, signal);
      } catch (error) {
        // Refused is refused: the query itself would be too.
        if (signal.aborted || isRefusal(error)) throw error;
        return this.query(sql, signal);
      }
    });
    stream.close();
    statement.fields = stream.columns.map((column) => fieldOf(column.name, pgTypeOf(column.type), 0));
    return statement.fields;
  }

  /**
   * Runs a portal's statement: sends its RowDescription (simple protocol only; the extended one asks with
   * Describe), its rows, and its CommandComplete, or PortalSuspended at `maxRows`.
   */
  private async *run(statement: PreparedStatement, portal: Portal, maxRows: number, simple: boolean): AsyncGenerator<Buffer> {
    const command = statement.command;
    if (this.status === 'E' && !(command.kind === 'transaction' && command.action !== 'begin' && command.action !== 'savepoint' && command.action !== 'release')) {
      throw new PgError('25P02', 'current transaction is aborted, commands ignored until end of transaction block');
    }
    if (command.kind === 'query' || (command.kind === 'show' && !this.isSetting(command.name))) {
      if (portal.done) {
        // A finished query portal executed again sends no rows, as PostgreSQL's.
        this.out.commandComplete('SELECT 0');
        return;
      }
      try {
        const fields = await this.track(portal, () => portal.start(this.query));
        if (simple) this.out.rowDescription(fields);
        const ended = yield* this.trackStream(portal, portal.execute(this.out, maxRows));
        if (ended === 'suspended') this.out.portalSuspended();
        else this.out.commandComplete(portal.tag);
      } catch (error) {
        // A portal that failed cannot be resumed; its query is stopped and its slot freed.
        this.closePortal(portal.name);
        throw error;
      }
      return;
    }
    if (portal.done) throw new PgError('55000', `portal "${portal.name}" cannot be run`);
    portal.done = true;
    this.runUtility(command, simple);
  }

  /** The session statements answered here rather than by the engine. */
  private runUtility(command: Command, simple: boolean): void {
    switch (command.kind) {
      case 'empty':
        this.out.emptyQueryResponse();
        return;
      case 'refuse':
        throw new PgError(command.code, command.message);
      case 'set': {
        if (command.name !== null) {
          const before = this.settings.get(command.name);
          const notice = command.value === null ? (this.settings.reset(command.name), null) : this.settings.set(command.name, command.value);
          if (notice) this.out.notice({ severity: 'NOTICE', code: '00000', message: notice });
          this.reportParameter(command.name, before);
        }
        this.out.commandComplete('SET');
        return;
      }
      case 'reset': {
        const before = command.name === null ? undefined : this.settings.get(command.name);
        if (command.name === null) this.settings.resetAll();
        else this.settings.reset(command.name);
        if (command.name !== null) this.reportParameter(command.name, before);
        this.out.commandComplete('RESET');
        return;
      }
      case 'show': {
        const fields = this.showFields(command.name);
        if (simple) this.out.rowDescription(fields);
        if (command.name === 'all') {
          for (const [name, value] of this.settings.all()) this.out.dataRow([name, value, '']);
          this.out.commandComplete('SHOW');
          return;
        }
        this.out.dataRow([this.settings.get(command.name) ?? '']);
        this.out.commandComplete('SHOW');
        return;
      }
      case 'transaction':
        this.transaction(command.action, command.tag);
        return;
      case 'deallocate':
        if (command.name === null) {
          this.statements.clear();
        } else if (!this.statements.delete(command.name)) {
          throw new PgError('26000', `prepared statement "${command.name}" does not exist`);
        }
        this.out.commandComplete(command.name === null ? 'DEALLOCATE ALL' : 'DEALLOCATE');
        return;
      case 'discard':
        if (command.all) {
          if (this.status !== 'I') throw new PgError('25001', 'DISCARD ALL cannot run inside a transaction block');
          this.settings.resetAll();
          this.statements.clear();
          this.closeAllPortals();
        }
        this.out.commandComplete(command.tag);
        return;
      case 'noop':
        this.out.commandComplete(command.tag);
        return;
      case 'query':
        throw new Error('queries run through the engine');
    }
  }

  private transaction(action: TransactionAction, tag: string): void {
    switch (action) {
      case 'begin':
        if (this.status !== 'I') this.out.notice({ severity: 'WARNING', code: '25001', message: 'there is already a transaction in progress' });
        else this.status = 'T';
        this.out.commandComplete(tag);
        return;
      case 'commit': {
        if (this.status === 'I') this.out.notice({ severity: 'WARNING', code: '25P01', message: 'there is no transaction in progress' });
        const failed = this.status === 'E';
        this.endTransaction();
        this.out.commandComplete(failed ? 'ROLLBACK' : tag);
        return;
      }
      case 'rollback':
        if (this.status === 'I') this.out.notice({ severity: 'WARNING', code: '25P01', message: 'there is no transaction in progress' });
        this.endTransaction();
        this.out.commandComplete(tag);
        return;
      case 'savepoint':
      case 'release':
      case 'rollback_to':
        if (this.status === 'I') throw new PgError('25P01', `${tag} can only be used in transaction blocks`);
        if (action === 'rollback_to') this.status = 'T';
        this.out.commandComplete(tag);
        return;
    }
  }

  private endTransaction(): void {
    this.status = 'I';
    this.closeAllPortals();
  }

  private failTransaction(): void {
    if (this.status === 'T') this.status = 'E';
  }

  private isSetting(name: string): boolean {
    return name === 'all' || this.settings.get(name) !== undefined;
  }

  private showFields(name: string): FieldDescription[] {
    if (name === 'all') return [textField('name'), textField('setting'), textField('description')];
    return [textField(spelling(name))];
  }

  /** When SET changes a setting PostgreSQL reports, the client is told its new value. */
  private reportParameter(name: string, before: string | undefined): void {
    const reported = REPORTED_SETTINGS.find((setting) => setting.toLowerCase() === name.toLowerCase());
    const now = this.settings.get(name);
    if (reported && now !== before) this.out.parameterStatus(reported, now ?? '');
  }

  private reportError(error: unknown): void {
    if (!isExpected(error)) this.options.log?.(`pgwire: ${(error as Error)?.stack ?? String(error)}`);
    this.out.error(errorFields(error));
    this.failTransaction();
  }

  /** Runs a step of a portal's query as the connection's running query, so that a CancelRequest reaches it. */
  private async track<T>(runner: { readonly controller: AbortController }, step: () => Promise<T>): Promise<T> {
    this.running = runner;
    try {
      return await step();
    } finally {
      this.running = null;
    }
  }

  private async *trackStream<T>(portal: Portal, steps: AsyncGenerator<Buffer, T>): AsyncGenerator<Buffer, T> {
    this.running = portal;
    try {
      return yield* steps;
    } finally {
      this.running = null;
    }
  }

  private closePortal(name: string): void {
    const portal = this.portals.get(name);
    if (!portal) return;
    portal.close();
    this.portals.delete(name);
  }

  private closeAllPortals(): void {
    for (const portal of this.portals.values()) portal.close();
    this.portals.clear();
  }
}

/** Messages skipped after an error must still be well-formed frontend messages of a known type. */
function validateSkipped(type: string): void {
  if (!'QPBDECHF'.includes(type)) throw new ProtocolViolation(`unexpected message type ${JSON.stringify(type)}`);
}

/** The types of `$n::type` casts in a statement, by parameter number (the first cast of each wins). */
function castParameterTypes(tokens: readonly Token[]): Map<number, number> {
  const casts = new Map<number, number>();
  const significantTokens = tokens.filter((token) => !isBlank(token));
  for (let i = 0; i + 2 < significantTokens.length; i++) {
    const token = significantTokens[i]!;
    if (token.kind !== 'param' || significantTokens[i + 1]!.text !== '::') continue;
    let name = nameOf(significantTokens[i + 2]);
    // Two-word names: double precision, character varying.
    const next = nameOf(significantTokens[i + 3]);
    if (name !== null && next !== null && (`${name} ${next}` === 'double precision' || `${name} ${next}` === 'character varying')) name = `${name} ${next}`;
    const oid = name === null ? undefined : oidOfTypeName(name);
    const n = Number(token.text.slice(1));
    if (oid !== undefined && !casts.has(n)) casts.set(n, oid);
  }
  return casts;
}
