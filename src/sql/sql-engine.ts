import {
  DuckDBInstance,
  StatementType,
  type DuckDBConnection,
  type DuckDBType,
  type DuckDBPreparedStatement,
  type DuckDBResult,
} from '@duckdb/node-api';
import type { Catalog, TableInfo } from '../catalog/index.js';
import { OverloadedError, QueryError, QueryRefusedError, QueryTimeoutError, StrataError, TooLargeError } from '../errors.js';
import type { ObjectStore } from '../lake/index.js';
import { encryptionSettings, ParquetKeys } from '../lake/parquet-encryption.js';
import type { Keyring } from '../security/keyring.js';
import { quoteIdent, sqlString } from '../util/duckdb.js';
import { toJsonValue, typeName, type SqlRow } from './json-values.js';
import { FileSchemas } from './file-schemas.js';
import { viewQuery } from './lake-views.js';
import { queryReads, type QueryReads } from './query-reads.js';

export interface SqlEngineOptions {
  readonly catalog: Catalog;
  readonly store: ObjectStore;
  /** The lake's root directory: the only place queries may read files from. */
  readonly lakeDir: string;
  /** A query running longer is interrupted and fails with {@link QueryTimeoutError}. */
  readonly timeoutMs?: number;
  /** DuckDB's memory limit for all queries together, e.g. `4GB`; sorts and joins beyond it spill to `spillDir`. */
  readonly memoryLimit?: string;
  readonly threads?: number;
  /** Where DuckDB spills; without it DuckDB would use `.tmp` in the working directory. */
  readonly spillDir?: string;
  /** Queries open at once (a streamed answer counts until it is read or closed); more answer 503. */
  readonly maxConcurrentQueries?: number;
  /** Tables defined by SQL over lake files rather than by catalog chunks (each view's `<view>__batch`). */
  readonly derivedTables?: () => Promise<readonly DerivedTable[]>;
  /**
   * The data keys of encrypted Parquet (see src/lake/parquet-encryption.ts): lake and view files are read with
   * the key of their partition, and whatever DuckDB spills is encrypted. Null or absent: plain files only.
   */
  readonly keyring?: Keyring | null;
}

/** A table that is a query over lake files; rebuilt whenever its `state` changes (a view's current version). */
export interface DerivedTable {
  readonly name: string;
  readonly state: string;
  sql(): Promise<string>;
  /**
   * Where the engine finds data keys that the SQL names (`encryption_config = {footer_key: ...}`) and the
   * keyring does not hold: the speed layer's keys for its short-lived exports.
   */
  readonly keys?: Pick<Keyring, 'keyById'>;
}

/** One column of an answer. `type` is DuckDB's type name (`VARCHAR`, `BIGINT`, `TIMESTAMP`, `JSON`...). */
export interface SqlColumn {
  readonly name: string;
  readonly type: string;
}

/** A whole answer, collected. */
export interface SqlAnswer {
  readonly columns: readonly SqlColumn[];
  readonly rows: SqlRow[];
}

/**
 * An answer being computed: the columns at once, the rows in batches as DuckDB produces them (about 2,048 a
 * batch), so that a caller can stream them without holding them all. The query keeps its connection and its
 * slot until the batches are read to the end, the iteration is abandoned, or {@link close} is called.
 */
export interface SqlStream {
  readonly columns: readonly SqlColumn[];
  readonly batches: AsyncIterable<SqlRow[]>;
  /** Stops the query if it still runs and frees its connection; harmless when already done. */
  close(): void;
}

export interface QueryOptions {
  /** Cancels the query when aborted (the client went away): DuckDB is interrupted, the call throws the reason. */
  readonly signal?: AbortSignal;
  /**
   * Told what the query reads (from DuckDB's parse of it) before it is prepared; throws to refuse it. Without
   * it, the query may read every table (the caller is trusted: an admin token, or Strata itself).
   */
  readonly authorize?: (reads: QueryReads) => void;
}

export interface QueryAllOptions extends QueryOptions {
  /** A collected answer with more rows fails with {@link TooLargeError} (default 100,000); stream instead. */
  readonly maxRows?: number;
}

const DEFAULT_MAX_ROWS = 100_000;

/**
 * The ad-hoc SQL engine (the Athena role): read-only SQL over the master dataset, in a DuckDB instance of its
 * own. Each catalog table is a view over exactly its registered Parquet files; the views follow the catalog
 * as delivery registers chunks.
 *
 * The instance is locked down before any user SQL reaches it: files can be read only under the lake
 * directory, nothing else outside the process is reachable (no other files, no network, no extensions to
 * install), and the configuration is locked, so no statement can undo this. On top, only a single query
 * statement is accepted (see {@link SqlEngine.query}).
 */
export class SqlEngine {
  private readonly running = new Set<QueryRun>();
  /** Per table, the catalog state its view was built from; see {@link tableState}. */
  private readonly built = new Map<string, string>();
  private refreshing: Promise<void> | null = null;
  private readonly files: FileSchemas;
  private closed = false;
  private warmUp: Promise<void> = Promise.resolve();
  private derivedTables: () => Promise<readonly DerivedTable[]> = async () => [];
  /** Strata's table names as of the last refresh, by lower-case name (DuckDB resolves names without case). */
  private known = new Map<string, string>();

  private constructor(
    private readonly instance: DuckDBInstance,
    /** The connection that (re)creates views; user SQL never runs on it. */
    private readonly admin: DuckDBConnection,
    private readonly catalog: Catalog,
    private readonly store: ObjectStore,
    private readonly timeoutMs: number,
    private readonly maxConcurrentQueries: number,
    private readonly keys: ParquetKeys,
  ) {
    this.files = new FileSchemas(admin, keys);
  }

  static async open(options: SqlEngineOptions): Promise<SqlEngine> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be positive, got ${timeoutMs}`);
    // With a keyring, spilled data is encrypted (a creation option: it must hold before any temp file exists).
    const instance = await DuckDBInstance.create(':memory:', encryptionSettings(options.keyring));
    try {
      const admin = await instance.connect();
      // Order matters: every setting is made before the lock, which refuses any SET after it.
      await admin.run(`SET memory_limit = ${sqlString(options.memoryLimit ?? '4GB')}`);
      await admin.run(`SET threads = ${Math.max(1, Math.floor(options.threads ?? 2))}`);
      if (options.spillDir !== undefined) await admin.run(`SET temp_directory = ${sqlString(options.spillDir)}`);
      await admin.run(`SET allowed_directories = [${sqlString(options.lakeDir)}]`);
      await admin.run('SET enable_external_access = false');
      await admin.run('SET lock_configuration = true');
      const keys = new ParquetKeys(options.keyring ?? null);
      const engine = new SqlEngine(instance, admin, options.catalog, options.store, timeoutMs, options.maxConcurrentQueries ?? 16, keys);
      // Reading the footers of a large lake takes a while (≈ 1.3 s for 10,000 files), once: start it now, so
      // the first query does not wait for it. A failure here is retried by that query.
      if (options.derivedTables) engine.derivedTables = options.derivedTables;
      engine.warmUp = engine.refreshViews().catch(() => undefined);
      return engine;
    } catch (error) {
      instance.closeSync();
      throw error;
    }
  }

  /**
   * Starts a query and answers its columns and a stream of row batches. The SQL must be one read-only query
   * (SELECT, WITH, FROM-first, VALUES, DESCRIBE, SHOW, SUMMARIZE); anything else throws
   * {@link QueryRefusedError}, as does reading a file outside the lake. Syntax, binder and run-time errors
   * throw {@link QueryError} with DuckDB's message. The whole query, reading included, is bounded by the
   * timeout: past it DuckDB is interrupted and the call or the iteration throws {@link QueryTimeoutError}.
   */
  async query(sql: string, options: QueryOptions = {}): Promise<SqlStream> {
    if (this.closed) throw new Error('the SQL engine is closed');
    options.signal?.throwIfAborted();
    if (this.running.size >= this.maxConcurrentQueries) {
      throw new OverloadedError(`${this.maxConcurrentQueries} SQL queries are running already; retry shortly`);
    }
    // The slot is taken before any await, so a burst of queries cannot overshoot the bound; the deadline
    // runs from here, so the wait for a view refresh counts too.
    const run: QueryRun = new QueryRun(this.timeoutMs, options.signal, () => this.running.delete(run));
    this.running.add(run);
    try {
      // A refresh failure is ours, not the query's: it passes unclassified (a 500 at the HTTP edge).
      await this.refreshViews();
      const connection = await run.connect(this.instance);
      const authorize = options.authorize;
      const check =
        authorize === undefined
          ? undefined
          : async (statements: readonly { readonly [key: string]: unknown }[]) =>
              authorize(await queryReads(statements, this.known, (name) => existsInEngine(connection, name)));
      const prepared = await run.step(() => prepareReadOnly(connection, sql, check));
      const result = await run.step(() => prepared.stream());
      const names = result.deduplicatedColumnNames();
      const types = result.columnTypes();
      const columns = names.map((name, i) => ({ name, type: typeName(types[i]!) }));
      return { columns, batches: readBatches(run, result, names, types), close: () => run.stop(null) };
    } catch (error) {
      run.close();
      throw error;
    }
  }

  /** Queries open now: running, or with a streamed answer not yet read to its end or closed. */
  get activeQueries(): number {
    return this.running.size;
  }

  /** Runs a query and collects its answer; see {@link query}. */
  async queryAll(sql: string, options: QueryAllOptions = {}): Promise<SqlAnswer> {
    const maxRows = options.maxRows ?? DEFAULT_MAX_ROWS;
    const stream = await this.query(sql, options);
    const rows: SqlRow[] = [];
    try {
      for await (const batch of stream.batches) {
        if (rows.length + batch.length > maxRows) {
          throw new TooLargeError(`the answer has more than ${maxRows} rows; add a LIMIT, or stream the answer`);
        }
        for (const row of batch) rows.push(row);
      }
    } finally {
      stream.close();
    }
    return { columns: stream.columns, rows };
  }

  /**
   * Brings every table's view up to date with the catalog, rebuilding only the tables whose state changed.
   * Queries call it first, so a chunk registered before a query starts is part of its answer. One refresh
   * runs at a time; a query that arrives meanwhile waits for it and checks again. Replacing a view does not
   * disturb queries already running over the old one: they were bound to it when they started.
   *
   * Cost (`npm run bench -- --only sql`, 2 cores): the check when nothing changed is one `tables()` call,
   * ≈ 0.2 ms at 1,000 chunk files and ≈ 2 ms at 10,000; a rebuild after a new chunk reads that one file's
   * footer and replaces the view, ≈ 25 ms at 1,000 files and ≈ 160 ms at 10,000 (the list of paths is
   * re-bound); the first build reads every footer once, ≈ 0.35 s at 1,000 files and ≈ 1.3 s at 10,000.
   */
  async refreshViews(): Promise<void> {
    for (;;) {
      if (this.refreshing) {
        await this.refreshing;
        continue;
      }
      const tables = await this.catalog.tables();
      const stale = tables.filter((table) => this.built.get(table.name) !== tableState(table));
      const derived = await this.derivedTables();
      this.known = new Map([...tables, ...derived].map((table) => [table.name.toLowerCase(), table.name]));
      const staleDerived = derived.filter((table) => this.built.get(table.name) !== `derived/${table.state}`);
      const gone = [...this.built.keys()].filter(
        (name) => !tables.some((table) => table.name === name) && !derived.some((table) => table.name === name),
      );
      if (stale.length === 0 && gone.length === 0 && staleDerived.length === 0) return;
      if (this.refreshing) continue;
      // close() waits for a refresh under way, but one must not start after it began.
      if (this.closed) throw new Error('the SQL engine is closed');
      this.refreshing = this.rebuild(stale, gone, staleDerived).finally(() => (this.refreshing = null));
      await this.refreshing;
      return;
    }
  }

  private async rebuild(stale: readonly TableInfo[], gone: readonly string[], derived: readonly DerivedTable[] = []): Promise<void> {
    for (const name of gone) {
      await this.admin.run(`DROP VIEW IF EXISTS ${quoteIdent(name)}`);
      this.built.delete(name);
    }
    for (const table of stale) {
      const view = quoteIdent(table.name);
      try {
        // Chunks registered since `tables()` are in the view too; its state then looks stale and is rebuilt
        // once more, which is harmless.
        const chunks = await this.catalog.chunks(table.name);
        const groups = await this.files.group(chunks.map((chunk) => this.keys.file(this.store.location(chunk.key), chunk.key)));
        await this.admin.run(`CREATE OR REPLACE VIEW ${view} AS ${viewQuery(table, groups)}`);
      } catch (error) {
        // One unreadable table (a registered file gone missing) must not take SQL over the others down: its
        // view raises the reason when read, and it is tried again before the next query.
        const reason = `table "${table.name}" cannot be read: ${duckdbMessage(error)}`;
        await this.admin.run(`CREATE OR REPLACE VIEW ${view} AS SELECT NULL AS unreadable WHERE error(${sqlString(reason)}) IS NULL`);
        this.built.delete(table.name);
        continue;
      }
      this.built.set(table.name, tableState(table));
    }
    for (const table of derived) {
      const view = quoteIdent(table.name);
      try {
        const sql = await table.sql();
        // Keys are per instance: those the SQL reads with are registered before a query can bind it.
        await this.keys.registerNamed(this.admin, sql, table.keys ?? null);
        await this.admin.run(`CREATE OR REPLACE VIEW ${view} AS ${sql}`);
        this.built.set(table.name, `derived/${table.state}`);
      } catch (error) {
        const reason = `table "${table.name}" cannot be read: ${duckdbMessage(error)}`;
        await this.admin.run(`CREATE OR REPLACE VIEW ${view} AS SELECT NULL AS unreadable WHERE error(${sqlString(reason)}) IS NULL`);
        this.built.delete(table.name);
      }
    }
  }

  /** Interrupts running queries, waits for them to stop, and closes the DuckDB instance. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const stopping = [...this.running].map((run) => {
      run.stop(new Error('the SQL engine is closing'));
      return run.done;
    });
    await Promise.all(stopping);
    await this.warmUp;
    await this.refreshing?.catch(() => undefined);
    this.admin.closeSync();
    this.instance.closeSync();
  }
}

/**
 * What a view depends on, per table: schema version, chunk count, rows and bytes. Chunks are only ever
 * added (files are never rewritten), so any registration changes the count; a future compaction that
 * replaces chunks changes the count or the bytes.
 */
function tableState(table: TableInfo): string {
  return `${table.schemaVersion}/${table.chunks}/${table.rows}/${table.bytes}`;
}

/**
 * Prepares `sql` if it is one read-only query, and refuses it otherwise. Three checks, each catching what the
 * one before lets through: the statement count; DuckDB's own parse (`json_serialize_sql` serializes SELECT
 * statements only, so DDL, COPY, ATTACH, INSTALL, SET, PRAGMA, EXPLAIN, CALL are refused by the parser itself,
 * whatever their spelling or comments); and the bound statement's type (a PRAGMA that binds to a SELECT).
 * Reading files outside the lake fails at binding with DuckDB's Permission Error, refused as well.
 */
async function prepareReadOnly(
  connection: DuckDBConnection,
  sql: string,
  authorize?: (statements: readonly { readonly [key: string]: unknown }[]) => Promise<void>,
): Promise<DuckDBPreparedStatement> {
  // DuckDB answers text without a statement (blank, only comments or semicolons) with an opaque native error.
  const extracted = await connection.extractStatements(sql).catch((error: unknown) => {
    const message = duckdbMessage(error);
    throw new QueryError(message === 'Error in native callback' ? 'no SQL statement given' : message);
  });
  if (extracted.count === 0) throw new QueryError('no SQL statement given');
  if (extracted.count > 1) {
    throw new QueryRefusedError(`one statement per query, got ${extracted.count}; send each query on its own`);
  }
  const check = await connection.runAndReadAll('SELECT json_serialize_sql($1::VARCHAR)', [sql]);
  const parsed = JSON.parse(String(check.getRows()[0]![0])) as {
    error: boolean;
    error_type?: string;
    error_message?: string;
    statements?: { node: { readonly [key: string]: unknown } }[];
  };
  if (parsed.error) {
    if (parsed.error_type === 'not implemented') throw refusal(sql);
    throw new QueryError(parsed.error_message ?? 'the SQL could not be parsed');
  }
  // Authorized on the very parse it will run from, before binding: a refused query never touches a table.
  if (authorize) await authorize((parsed.statements ?? []).map((statement) => statement.node));
  const prepared = await extracted.prepare(0).catch((error: unknown) => {
    throw classify(error);
  });
  if (prepared.statementType !== StatementType.SELECT) {
    prepared.destroySync();
    throw refusal(sql);
  }
  return prepared;
}

/** Whether DuckDB holds a table or view of this name in any schema (its system views among them). */
async function existsInEngine(connection: DuckDBConnection, name: string): Promise<boolean> {
  const reader = await connection.runAndReadAll(
    `SELECT 1 FROM duckdb_views() WHERE lower(view_name) = lower($1)
     UNION ALL SELECT 1 FROM duckdb_tables() WHERE lower(table_name) = lower($1) LIMIT 1`,
    [name],
  );
  return reader.getRows().length > 0;
}

function refusal(sql: string): QueryRefusedError {
  const keyword = /^[\s(]*([A-Za-z]+)/.exec(sql.replace(/^(\s*(--[^\n]*(\n|$)|\/\*[\s\S]*?\*\/))*/, ''))?.[1]?.toUpperCase();
  return new QueryRefusedError(
    `only read-only queries run here (SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE)` +
      (keyword ? `; ${keyword} statements are refused` : ''),
  );
}

/** DuckDB's error as one of ours: reading outside the lake is refused, the rest is the query's failure. */
function classify(error: unknown): Error {
  if (error instanceof StrataError) return error;
  const message = duckdbMessage(error);
  if (message.startsWith('Permission Error')) {
    return new QueryRefusedError(`queries may read only the lake's tables: ${message}`);
  }
  return new QueryError(message);
}

function duckdbMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function* readBatches(
  run: QueryRun,
  result: DuckDBResult,
  names: readonly string[],
  types: readonly DuckDBType[],
): AsyncGenerator<SqlRow[]> {
  try {
    for (;;) {
      const chunk = await run.step(() => result.fetchChunk());
      if (chunk === null || chunk.rowCount === 0) return;
      // The result's column types, not the vectors': only they keep aliases such as JSON.
      const columns = types.map((type, c) => chunk.getColumnValues(c).map((value) => toJsonValue(value, type, toJsonValue)));
      const rows: SqlRow[] = new Array<SqlRow>(chunk.rowCount);
      for (let r = 0; r < chunk.rowCount; r++) {
        // A prototype-less object, so that a column named `__proto__` is a column like any other.
        const row = Object.create(null) as SqlRow;
        for (let c = 0; c < names.length; c++) row[names[c]!] = columns[c]![r] ?? null;
        rows[r] = row;
      }
      yield rows;
    }
  } finally {
    run.close();
  }
}

/**
 * One query's connection, its deadline and its cancellation (exported for its tests). Every DuckDB call of the
 * query goes through {@link step}, so that a stop (timeout, abort, engine closing) interrupts the call in flight
 * and turns its outcome into the stop's error. A streamed result interrupted between two fetches just ends (its
 * next fetch answers no rows); checking our own flag after each call is what makes such an answer fail instead
 * of looking complete. The connection is closed only when no call is in flight on it.
 */
export class QueryRun {
  private connection: DuckDBConnection | null = null;
  /** A DuckDB call (or the connect) is in flight. */
  private busy = false;
  /** Interrupts the call in flight again and again, from a stop until the call returns (see interrupt). */
  private interrupter: NodeJS.Timeout | null = null;
  private failure: Error | null = null;
  /** The run is over: its slot is free, its connection closes as soon as no call is in flight. */
  private closed = false;
  private released = false;
  private readonly timer: NodeJS.Timeout;
  private readonly onAbort: (() => void) | undefined;
  private resolveDone!: () => void;
  /** Settles once the run is over and its connection closed. */
  readonly done = new Promise<void>((resolve) => (this.resolveDone = resolve));

  constructor(
    timeoutMs: number,
    private readonly signal: AbortSignal | undefined,
    private readonly onClose: () => void,
  ) {
    this.timer = setTimeout(() => this.stop(new QueryTimeoutError(timeoutMessage(timeoutMs), timeoutMs)), timeoutMs);
    this.timer.unref();
    if (signal) {
      this.onAbort = () => this.stop(abortReason(signal));
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  /** Opens the run's connection. */
  async connect(instance: DuckDBInstance): Promise<DuckDBConnection> {
    return this.step(async () => (this.connection = await instance.connect()));
  }

  /** Runs one DuckDB call of the query; a stop meanwhile interrupts it and makes it throw the stop's error. */
  async step<T>(call: () => Promise<T>): Promise<T> {
    if (this.failure) throw this.failure;
    this.busy = true;
    try {
      const value = await call();
      if (this.failure) throw this.failure;
      return value;
    } catch (error) {
      throw this.failure ?? classify(error);
    } finally {
      this.busy = false;
      if (this.interrupter) clearInterval(this.interrupter);
      this.interrupter = null;
      if (this.closed) this.release();
      else if (this.failure) this.close();
    }
  }

  /** Stops the query: with `reason`, later steps throw it; with null it is a plain close by its reader. */
  stop(reason: Error | null): void {
    if (this.closed) return;
    this.failure ??= reason ?? new Error('the query was closed');
    if (this.busy) this.interrupt();
    else this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.failure ??= new Error('the query was closed');
    clearTimeout(this.timer);
    if (this.onAbort) this.signal?.removeEventListener('abort', this.onAbort);
    this.onClose();
    // A connection is never closed under a call in flight: step() releases it when its call returns.
    if (this.busy) this.interrupt();
    else this.release();
  }

  /**
   * Interrupts the call in flight, and again every REINTERRUPT_MS until it returns: DuckDB interrupts only a
   * call it is running, and a call still waiting for a libuv pool thread (all of them busy) when the stop came
   * would otherwise run to its end, holding its query slot (seen once: a cancelled query's slot taken past 10 s).
   */
  private interrupt(): void {
    this.connection?.interrupt();
    this.interrupter ??= setInterval(() => this.connection?.interrupt(), REINTERRUPT_MS).unref();
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.connection?.closeSync();
    this.resolveDone();
  }
}

/** How often a stopped query's call in flight is interrupted again (see QueryRun.interrupt). */
const REINTERRUPT_MS = 20;

function timeoutMessage(timeoutMs: number): string {
  const limit = timeoutMs % 1000 === 0 ? `${timeoutMs / 1000} s` : `${timeoutMs} ms`;
  return `the query ran longer than the ${limit} limit and was cancelled; narrow it (a WHERE on dt, a LIMIT) or raise sql.timeoutSeconds`;
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('the query was cancelled');
}
