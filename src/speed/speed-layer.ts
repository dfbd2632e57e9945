import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BLOB, blobValue, DuckDBInstance, type DuckDBConnection, type DuckDBPreparedStatement } from '@duckdb/node-api';
import { batchPartialRelations, partialRelations, type PartialRelation } from '../batch/index.js';
import type { Catalog, ViewVersionInfo } from '../catalog/index.js';
import type { ProjectConfig, StreamConfig } from '../config/index.js';
import { NotFoundError } from '../errors.js';
import { OFFSET_COLUMNS, readJsonColumns, withOffsets, type ObjectStore } from '../lake/index.js';
import { readJsonText } from '../lake/chunk-writer.js';
import { copyEncryption, encryptionSettings, ParquetKeys, readEncryption } from '../lake/parquet-encryption.js';
import type { DataKey, Keyring } from '../security/keyring.js';
import { asSeq, type Stream } from '../stream/index.js';
import type { DerivedTable } from '../sql/index.js';
import { quoteIdent, sqlString } from '../util/duckdb.js';
import { FileSchemas } from '../sql/file-schemas.js';
import { viewQuery } from '../sql/lake-views.js';
import type { RecordSource } from '../transform/index.js';
import { DedupeKeys, type CoveredSince } from './dedupe-keys.js';
import { planRangeFolds, type SeqRange } from './range-folds.js';
import { StepEstimate } from './step-estimate.js';
import { KeyFilter } from './key-filter.js';
import { mergeSql, type PartialRelations, type ViewDefinition } from '../views/index.js';

/** The log consumer the speed layer checkpoints under: retention keeps every record no batch version covers. */
export const SPEED_CONSUMER = 'speed';

/** The columns each stored speed partial row carries beside the partials: the micro-batch it came from. */
export const RANGE_COLUMNS = ['__range_shard', '__range_first', '__range_last'] as const;

/** Serving statements kept prepared, least recently used dropped first. */
const PREPARED_KEPT = 64;

/** How often the views' memory is measured for `strata status`. */
const MEMORY_EVERY_MS = 5000;

/** An adoption rebuilds a speed table it leaves with at most 1/N of the rows it deleted (see deleteWhere). */
const REBUILD_WHEN_LEFT_BELOW = 16;

/** Most records one micro-batch of one shard reads. */
const MICRO_BATCH_RECORDS = 50_000;

export interface SpeedLayerOptions {
  readonly catalog: Catalog;
  readonly stream: Pick<Stream, 'readBatch' | 'read' | 'shards' | 'commitCheckpoint'>;
  readonly store: ObjectStore;
  readonly config: ProjectConfig;
  readonly views: ReadonlyMap<string, ViewDefinition>;
  /** Per stream, the records its views read (clean ones when it declares a transform): the batch layer's. */
  readonly sources: ReadonlyMap<string, RecordSource>;
  /** A directory of its own for staged micro-batches; emptied at open. */
  readonly stagingDir: string;
  readonly log?: (message: string) => void;
  /**
   * With a keyring (encryption at rest), nothing of a record reaches the disk in plaintext: micro-batches are
   * read from memory instead of staged files, the Parquet exports for the SQL engine are encrypted (under keys
   * of the layer's own, see {@link SpeedLayer.derivedTables}), batch files are read with their keys, and what
   * DuckDB spills is encrypted. Null or absent: as without encryption.
   */
  readonly keyring?: Keyring | null;
}

/**
 * Export files encrypted under one export key before the next is drawn. Export keys live in memory only (the
 * files die with the process), bounded like the lake's keys are: DuckDB's GCM nonces here come from a generator
 * that is not cryptographically secure, so no key covers an unbounded number of files.
 */
const EXPORT_FILES_PER_KEY = 1024;

/** One micro-batch of one shard: its partial rows carry this range. */
type Range = SeqRange;

/** Adjacent ranges of one shard, from the one starting at `first` to the one ending at `last`, to fold into one. */
interface Fold {
  readonly shard: number;
  readonly first: number;
  readonly last: number;
}

/** Records `from`..`to` of one shard, to apply. */
interface Segment {
  readonly shard: number;
  readonly from: number;
  readonly to: number;
}

/** A batch version loaded into the speed layer's DuckDB: its partials and its merged rows, as tables. */
interface LoadedVersion {
  readonly info: ViewVersionInfo;
  /** Per relation (same order as the view's relations), the table of the version's partials. */
  readonly partials: readonly string[];
  /** The version's merged rows (the view over the batch layer alone), sorted by the group keys. */
  readonly final: string;
}

interface ViewState {
  readonly view: ViewDefinition;
  /** Prefix of the view's tables in the speed layer's DuckDB. */
  readonly prefix: string;
  readonly stream: StreamConfig;
  readonly relations: readonly PartialRelation[];
  /** The same relations grouped by `__shard` as well (a micro-batch holds several shards' records). */
  readonly shardRelations: readonly PartialRelation[];
  /** Per relation (same order), the in-memory table of its speed partials. */
  readonly tables: readonly string[];
  /** The batch version the speed partials complement, loaded; null before any. */
  version: LoadedVersion | null;
  /** A newer version loaded (off the serving path) and waiting to be adopted at the next turn. */
  loaded: LoadedVersion | null;
  /** The loaded version being adopted right now (between `loaded` and `version`). */
  adopting: LoadedVersion | null;
  /** The load of a newer version under way, if any. */
  loading: Promise<void> | null;
  /** Per shard, that version's W (0 before any version). */
  watermark: number[];
  /** Per shard, the last seq the speed partials cover (>= watermark). */
  seq: number[];
  /** Per shard, the micro-batches held, in seq order; disjoint, covering watermark+1..seq. */
  ranges: Range[][];
  /** Ranges a version's W cut in two, whose uncovered part was recomputed from the log. */
  recomputed: number;
  /** Times the oldest ranges of a shard were folded into one. */
  compacted: number;
  /** The copies its stream's de-duplication compares new records with; null without dedupe. */
  dedupe: DedupeKeys | null;
  /** The first group-by column, when a VARCHAR: the one whose values each range's KeyFilter holds; else null. */
  filteredKey: string | null;
  /** Per range held, a filter of its first group-by values (see KeyFilter); a range without one may hold any. */
  keyFilters: WeakMap<Range, KeyFilter>;
  /** The last measure of the view's memory in this DuckDB; null until the first one. */
  memory: ViewMemory | null;
  /** Bumped at every change of the partials or the version: the state of the view's SQL tables. */
  generation: number;
  /** The latest export of the partials for the SQL engine, and older ones kept while queries may read them. */
  exports: { generation: number; at: number; files: string[]; speed: PartialRelations; merged: PartialRelations }[];
}

/** What a serving read sees: one batch version and the speed partials past exactly its W, taken in one turn. */
export interface ViewSnapshot {
  readonly view: ViewDefinition;
  readonly batchVersion: number | null;
  /** Per shard (decimal string), the version's W. */
  readonly watermark: Readonly<Record<string, number>>;
  /** Per shard, the last seq the speed layer has applied. */
  readonly speedSeq: Readonly<Record<string, number>>;
  /** Age in ms of the oldest durable record the view does not show yet; 0 when it shows every one. */
  readonly freshnessMs: number;
  /** The batch version's partials (in memory). */
  readonly batch: PartialRelations;
  /** The batch version's merged rows (the view over the batch layer alone), sorted by the group keys. */
  readonly batchRows: string;
  readonly speed: PartialRelations;
  /**
   * False only when the speed partials hold no group whose first group-by column is `value` (each range's
   * KeyFilter says so; ranges have filters only when that column is a VARCHAR): a lookup of it need not scan them.
   */
  mayHoldFirstKey(value: string): boolean;
  /** Each relation the union of the batch and speed partials. */
  readonly merged: PartialRelations;
  /** The view's relations over no rows: the view's columns and types. */
  readonly empty: PartialRelations;
  /**
   * A prepared statement for `sql` on the snapshot's connection, kept across reads while the view's tables do
   * not change: planning the merge costs more than running it on a point lookup. Never across a change: DuckDB
   * plans with the tables' statistics (a table empty at planning is folded away), and a prepared statement is
   * not planned again when rows arrive, so a kept plan would miss them.
   */
  prepare(sql: string): Promise<DuckDBPreparedStatement>;
  /** Another kept version's partials, read from its files, and its W per shard; null when it is not kept. */
  versionPartials(version: number): Promise<{ readonly partials: PartialRelations; readonly watermark: Readonly<Record<string, number>> } | null>;
}

/**
 * A view's memory in the speed layer's DuckDB. DuckDB reports its in-memory tables' bytes only in total; each
 * table's share is estimated by its rows times columns, so the figures are estimates, measured every few seconds.
 */
export interface ViewMemory {
  /** Distinct group keys the speed partials hold. */
  readonly speedGroupKeys: number;
  readonly speedBytes: number;
  /** speedBytes / speedGroupKeys: what one more recent group costs (0 without any). */
  readonly speedBytesPerGroupKey: number;
  /** Group keys (merged rows) of the loaded batch version. */
  readonly batchGroupKeys: number;
  /** The loaded batch version: its partials and merged rows, kept in memory for serving. */
  readonly batchBytes: number;
  readonly measuredAt: string;
}

/** Per view, what `strata status` shows of the speed layer. */
export interface SpeedViewStatus {
  readonly view: string;
  readonly stream: string;
  readonly batchVersion: number | null;
  readonly watermark: Readonly<Record<string, number>>;
  readonly speedSeq: Readonly<Record<string, number>>;
  /** Micro-batches held (ranges not yet covered by a batch version). */
  readonly ranges: number;
  /** Ranges a newer W cut in two since open (their uncovered part recomputed from the log). */
  readonly recomputedRanges: number;
  /** Times old micro-batches were folded into one range since open. */
  readonly compactions: number;
  /** Null until first measured (a few seconds after open). */
  readonly memory: ViewMemory | null;
}

/**
 * The speed layer (architecture §4). Per view, it applies the view's partial plan (the same SQL the batch
 * layer runs over chunks) to the log past the current batch version's W, in an in-memory DuckDB: one
 * micro-batch over every shard with new records, timed so that a record is visible within `speed.intervalMs`.
 * Records are read exactly as delivery reads them (NDJSON with `__shard`/`__seq`, `read_json` with the
 * stream's typed columns), so both layers see the same values.
 *
 * Partials are kept grouped by offset range: each stored row carries (shard, firstSeq, lastSeq) of its
 * micro-batch. A newer version is loaded beside the micro-batches when a run publishes it (or at the next
 * interval) and adopted at the next turn: the ranges it covers (lastSeq <= W') are dropped; a range W' cuts in
 * two is dropped and its uncovered part (W'+1 .. its lastSeq) recomputed from the log. State is disposable: at open it is rebuilt by replay from W.
 *
 * Micro-batches and version changes run one at a time (turns) on one connection, each in a transaction. Within
 * a turn, only the commit, with the update of what describes the tables (ranges, seqs, the version and its W),
 * runs as a critical section. Parsing, cleaning, de-duplicating, inserting, and an adoption's deletes and
 * recomputes do not: readers do not see them before the commit. A serving read takes its snapshot between two
 * critical sections, in a transaction on a connection of its own, so it sees one version together with exactly
 * the speed partials past that version's W, without waiting for a micro-batch to be computed (see withSnapshot).
 */
export class SpeedLayer {
  private queue: Promise<unknown> = Promise.resolve();
  /** The critical sections: changes of the tables and of what describes them, and reads taking their snapshot. */
  private critical: Promise<unknown> = Promise.resolve();
  /** Serving reads, one at a time on the reader connection. */
  private reads: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private tick: Promise<void> = Promise.resolve();
  private staged = 0;
  /** How long a step takes, from its timer to its end (see schedule). */
  private readonly stepEstimate = new StepEstimate();
  private memoryMeasuredAt = 0;
  /** The memory measure under way, if any (see measureMemory). */
  private measuring: Promise<void> | null = null;
  /** The fold of old micro-batches under way beside the steps, if any (see compact). */
  private compacting: Promise<void> | null = null;
  /**
   * By view, plan class (see planClass) and SQL text; a Map iterates in insertion order, so re-inserting on use
   * keeps it least recently used first.
   */
  private readonly prepared = new Map<string, DuckDBPreparedStatement>();
  /** The data keys this instance knows (batch files, lake chunks, exports). */
  private readonly keys: ParquetKeys;
  /** The export keys still read by kept exports, by id, and the one in use with the files it encrypted so far. */
  private readonly exportKeys = new Map<string, DataKey>();
  private exportKey: { key: DataKey; files: number } | null = null;

  private constructor(
    private readonly options: SpeedLayerOptions,
    private readonly instance: DuckDBInstance,
    private readonly connection: DuckDBConnection,
    /** Loads newly published batch versions beside the micro-batches, so a hand-over never stalls them. */
    private readonly loader: DuckDBConnection,
    /** Serving reads, each in a transaction of its own, beside the micro-batches (see withSnapshot). */
    private readonly reader: DuckDBConnection,
    /** Folds old micro-batches beside the micro-batches (see compact). */
    private readonly folder: DuckDBConnection,
    private readonly states: ReadonlyMap<string, ViewState>,
  ) {
    this.keys = new ParquetKeys(options.keyring ?? null);
  }

  static async open(options: SpeedLayerOptions): Promise<SpeedLayer> {
    await rm(options.stagingDir, { recursive: true, force: true });
    await mkdir(options.stagingDir, { recursive: true });
    const instance = await DuckDBInstance.create(':memory:', {
      threads: String(options.config.speed.threads),
      // DuckDB checkpoints an in-memory database too, once enough has changed, inside whichever commit crosses the
      // threshold, stopping every other connection meanwhile. Its vacuum, which rewrites the row groups that lost
      // some of their rows (folds and adoptions delete partial rows), made micro-batch commits of 100-600 ms under
      // load, every few seconds: that micro-batch's records, and every read, waited. Without the vacuum a checkpoint
      // still frees a row group once all its rows are deleted, as an adoption does for the ranges its W covers, so
      // memory stays bounded by what the speed layer held over the last batch runs: about a fifth more than with
      // the vacuum (28M partial rows cycled through offline; the server after 40 s of the views bench's load).
      max_vacuum_tasks: '0',
      ...encryptionSettings(options.keyring),
    });
    const connection = await instance.connect();
    await connection.run(`SET TimeZone = 'UTC'`);
    const states = new Map<string, ViewState>();
    let index = 0;
    for (const view of options.views.values()) {
      const stream = options.config.streams.get(view.source)!;
      const relations = partialRelations(view);
      const tables: string[] = [];
      const prefix = `view${index}`;
      for (const relation of relations) {
        const table = quoteIdent(`${prefix}_speed_${relation.name}`);
        await connection.run(
          `CREATE TABLE ${table} AS SELECT *, 0::INTEGER AS ${RANGE_COLUMNS[0]}, 0::BIGINT AS ${RANGE_COLUMNS[1]}, 0::BIGINT AS ${RANGE_COLUMNS[2]}
             FROM (${relation.sql(options.sources.get(stream.name)!.emptySql)}) WHERE false`,
        );
        tables.push(table);
      }
      index++;
      // A lookup names a value as text, which is the value itself only for a VARCHAR column.
      const firstKey = view.keys[0]?.name;
      const firstKeyType =
        firstKey === undefined
          ? null
          : (await connection.runAndReadAll(`SELECT column_type FROM (DESCRIBE ${tables[0]!}) WHERE column_name = ${sqlString(firstKey)}`)).getRowsJS()[0]?.[0];
      const zeros = () => Array.from({ length: stream.shards }, () => 0);
      states.set(view.name, {
        view,
        prefix,
        stream,
        relations,
        shardRelations: partialRelations({ ...view, keys: [...view.keys, { name: '__shard', sql: '"__shard"' }] }),
        tables,
        version: null,
        loaded: null,
        adopting: null,
        loading: null,
        watermark: zeros(),
        seq: zeros(),
        ranges: Array.from({ length: stream.shards }, () => []),
        recomputed: 0,
        compacted: 0,
        dedupe: null,
        filteredKey: firstKeyType === 'VARCHAR' ? firstKey! : null,
        keyFilters: new WeakMap(),
        memory: null,
        generation: 0,
        exports: [],
      });
    }
    const loader = await instance.connect();
    const reader = await instance.connect();
    await reader.run(`SET TimeZone = 'UTC'`);
    const folder = await instance.connect();
    const layer = new SpeedLayer(options, instance, connection, loader, reader, folder, states);
    try {
      for (const state of states.values()) {
        const source = options.sources.get(state.stream.name)!;
        if (source.dedupe === null) continue;
        state.dedupe = new DedupeKeys(connection, source.dedupe, (day, since) => layer.coveredDay(state, day, since));
      }
      await layer.loadNewVersions();
      await layer.exclusive(async () => {
        await layer.syncVersions();
        await layer.checkpoint(null);
      });
    } catch (error) {
      folder.closeSync();
      reader.closeSync();
      loader.closeSync();
      connection.closeSync();
      instance.closeSync();
      throw error;
    }
    layer.schedule();
    return layer;
  }

  /** Per view, the last seq the speed layer has applied, per shard. */
  speedSeq(view: string): Record<string, number> {
    const state = this.states.get(view);
    if (!state) throw new NotFoundError(`unknown view "${view}"`);
    return Object.fromEntries(state.seq.map((seq, shard) => [String(shard), seq]));
  }

  status(): SpeedViewStatus[] {
    return [...this.states.values()].map((state) => ({
      view: state.view.name,
      stream: state.stream.name,
      batchVersion: state.version?.info.version ?? null,
      watermark: Object.fromEntries(state.watermark.map((w, shard) => [String(shard), w])),
      speedSeq: Object.fromEntries(state.seq.map((seq, shard) => [String(shard), seq])),
      ranges: state.ranges.reduce((n, ranges) => n + ranges.length, 0),
      recomputedRanges: state.recomputed,
      compactions: state.compacted,
      memory: state.memory,
    }));
  }

  /**
   * Loads every view's newly published batch version, beside the micro-batches, and adopts it at the next turn.
   * A batch run awaits this before it succeeds, so a read after the run sees its versions.
   */
  async loadPublished(): Promise<void> {
    if (this.closed) return;
    await this.loadNewVersions();
    await this.exclusive(async () => {
      if (!this.closed) await this.syncVersions();
    });
  }

  /**
   * Runs `read` over one consistent snapshot of a view: the batch version adopted (turns adopt a newly loaded
   * one) and the speed partials past that version's W, with the connection to query them on.
   *
   * Reads run on a connection of their own, one at a time, each in a transaction whose snapshot is taken
   * between two critical sections of the speed layer: its tables then hold exactly the state the provenance
   * describes, and DuckDB's MVCC keeps it so (rows a later step deletes, tables an adoption drops) until the read
   * ends, while micro-batches go on. A read waits neither for a micro-batch to be parsed nor for a version to
   * load: while one loads, it answers from the version before.
   */
  async withSnapshot<T>(name: string, read: (snapshot: ViewSnapshot, connection: DuckDBConnection) => Promise<T>): Promise<T> {
    const state = this.states.get(name);
    if (!state) {
      const known = [...this.states.keys()];
      throw new NotFoundError(`unknown view "${name}"${known.length > 0 ? `; views: ${known.join(', ')}` : '; the config declares no views'}`);
    }
    let ended: Promise<unknown> = Promise.resolve();
    const result = this.reads.then(async () => {
      const snapshot = await this.inCritical(async () => {
        if (this.closed) throw new Error('the speed layer is closed');
        try {
          // DuckDB takes a transaction's snapshot at its first read of the database, not at BEGIN.
          await this.reader.run(`BEGIN TRANSACTION; SELECT 1 FROM ${state.tables[0]!} LIMIT 1`);
          return await this.snapshotOf(state);
        } catch (error) {
          await this.reader.run('ROLLBACK').catch(() => undefined);
          throw error;
        }
      });
      try {
        // Outside the critical section: it reads the log, from the seqs the snapshot shows.
        const freshnessMs = await this.freshness(state.stream.name, state.seq.map((_, shard) => snapshot.speedSeq[String(shard)]!));
        return await read({ ...snapshot, freshnessMs }, this.reader);
      } finally {
        // A read changes nothing: ending its transaction only lets DuckDB forget the versions it kept. The
        // answer need not wait for that, the next read does.
        ended = this.reader.run('ROLLBACK').catch(() => undefined);
      }
    });
    this.reads = result.then(
      () => ended,
      () => ended,
    );
    return result;
  }

  /** The snapshot a read of the view sees now (taken between two turns, see withSnapshot), but its freshness. */
  private async snapshotOf(state: ViewState): Promise<Omit<ViewSnapshot, 'freshnessMs'>> {
    const { store, catalog } = this.options;
    const plans = `${state.prefix}/${planClass(state)}\n`;
    const emptySource = this.emptySource(state);
    const empty = batchPartialRelations(state.view, emptySource, [], store);
    const loaded = state.version;
    const batch = loaded ? this.byRelation(state, loaded.partials.map((table) => `SELECT * FROM ${table}`)) : empty;
    const exclude = RANGE_COLUMNS.join(', ');
    const speedSql = state.tables.map((table) => `SELECT * EXCLUDE (${exclude}) FROM ${table}`);
    const batchSql = this.relationList(state, batch);
    // The ranges as the snapshot shows them (steps push onto the lists after it). An adoption under way has
    // already changed them for the tables it has not committed yet (which the snapshot shows): then none is used.
    const filters = state.adopting === null ? state.ranges.flat().map((range) => state.keyFilters.get(range)) : null;
    const snapshot: Omit<ViewSnapshot, 'freshnessMs'> = {
      mayHoldFirstKey: (value) => filters === null || filters.some((filter) => filter === undefined || filter.mayHold(value)),
      view: state.view,
      batchVersion: loaded?.info.version ?? null,
      watermark: Object.fromEntries(state.watermark.map((w, shard) => [String(shard), w])),
      speedSeq: Object.fromEntries(state.seq.map((seq, shard) => [String(shard), seq])),
      batch,
      batchRows: loaded ? `SELECT * FROM ${loaded.final}` : mergeSql(state.view, empty),
      speed: this.byRelation(state, speedSql),
      merged: this.byRelation(state, batchSql.map((sql, i) => `SELECT * FROM (${sql}) UNION ALL BY NAME SELECT * FROM (${speedSql[i]!})`)),
      empty,
      prepare: async (sql) => {
        // The plan class the snapshot shows: steps may have moved the view on since.
        const key = `${plans}${sql}`;
        // Statements of the view's other plan classes name a replaced version, or were planned for another size.
        for (const [old, statement] of this.prepared) {
          if (!old.startsWith(`${state.prefix}/`) || old.startsWith(plans)) continue;
          this.prepared.delete(old);
          statement.destroySync();
        }
        let statement = this.prepared.get(key);
        if (statement) this.prepared.delete(key);
        else statement = await this.reader.prepare(sql);
        this.prepared.set(key, statement);
        for (const [old, unused] of this.prepared) {
          if (this.prepared.size <= PREPARED_KEPT) break;
          this.prepared.delete(old);
          unused.destroySync();
        }
        statement.clearBindings();
        return statement;
      },
      versionPartials: async (version) => {
        const info = (await catalog.viewVersions(state.view.name)).find((v) => v.version === version);
        if (!info) return null;
        const partials = batchPartialRelations(state.view, emptySource, info.files, store, this.keys.keyring);
        await this.keys.registerNamed(this.reader, this.relationList(state, partials).join('\n'));
        return { partials, watermark: info.watermark[state.stream.name] ?? {} };
      },
    };
    return snapshot;
  }

  /**
   * The clean records of one event-time day that the batch version being adopted (or the current one) covers,
   * read from the lake as the batch layer reads them: what a new record's copies are looked up in.
   */
  private async coveredDay(state: ViewState, day: string, since?: CoveredSince): Promise<string | null> {
    const info = (state.adopting ?? state.version)?.info;
    if (!info) return null;
    const name = state.stream.name;
    const watermark = info.watermark[name] ?? {};
    const chunks = ((await this.options.catalog.snapshot([name])).chunks.get(name) ?? []).filter(
      (chunk) =>
        chunk.partition === day &&
        (chunk.shard === null
          ? chunk.id <= info.maxImportChunk && chunk.id > (since?.importChunk ?? 0)
          : (chunk.lastSeq ?? 0) <= (watermark[String(chunk.shard)] ?? 0) && (since === undefined || (chunk.lastSeq ?? 0) > (since.seq[chunk.shard] ?? 0))),
    );
    if (chunks.length === 0) return null;
    const groups = await new FileSchemas(this.connection, this.keys).group(
      chunks.map((chunk) => this.keys.file(this.options.store.location(chunk.key), chunk.key)),
    );
    const records = this.options.sources.get(name)!.recordsSql(viewQuery({ kind: 'raw', columns: state.stream.fields }, groups));
    // A chunk may straddle `since`: its records up to it are held already.
    return since === undefined
      ? records
      : `SELECT * FROM (${records}) AS covered WHERE "__shard" IS NULL OR "__seq" > ([${since.seq.join(', ')}]::BIGINT[])["__shard" + 1]`;
  }

  private emptySource(state: ViewState): string {
    return this.options.sources.get(state.stream.name)!.emptySql;
  }

  private byRelation(state: ViewState, sqls: readonly string[]): PartialRelations {
    return {
      scalar: sqls[0]!,
      sketches: Object.fromEntries(state.relations.flatMap((relation, i) => (relation.measure === null ? [] : [[relation.measure, sqls[i]!]]))),
    };
  }

  /** The relations' SQL in the view's relation order (scalar first, then each sketch). */
  private relationList(state: ViewState, relations: PartialRelations): string[] {
    return [relations.scalar, ...state.relations.slice(1).map((relation) => relations.sketches[relation.measure!]!)];
  }

  /**
   * `<view>__speed` (the merge over the speed partials alone) and `<view>` (over the batch and speed partials
   * together) for the SQL engine, which runs in a DuckDB of its own: each is built over a Parquet export of the
   * speed partials taken in one turn with the batch version whose files it lists, so `<view>` is one
   * consistent snapshot like `GET /v1/views/{view}`. Exports stay until queries can no longer read them.
   */
  derivedTables(): DerivedTable[] {
    return [...this.states.values()].flatMap((state) => {
      const generation = `${state.version?.info.version ?? 'none'}-${state.generation}`;
      // The SQL engine finds the export keys here (they are in no keyring).
      const keys = { keyById: (id: string) => this.exportKeys.get(id) ?? missingExportKey(id) };
      return [
        { name: `${state.view.name}__speed`, state: generation, sql: async () => mergeSql(state.view, (await this.export(state)).speed), keys },
        { name: state.view.name, state: generation, sql: async () => mergeSql(state.view, (await this.export(state)).merged), keys },
      ];
    });
  }

  private async export(state: ViewState): Promise<ViewState['exports'][number]> {
    return this.exclusive(async () => {
      if (this.closed) throw new Error('the speed layer is closed');
      await this.syncVersions();
      const latest = state.exports.at(-1);
      if (latest && latest.generation === state.generation) return latest;
      const files: string[] = [];
      const speedSql: string[] = [];
      for (let i = 0; i < state.relations.length; i++) {
        // In the lake's staging area: the SQL engine may read only under the lake (and recovery clears it).
        const path = this.options.store.stagingPath(`speed-export-${state.view.name}`);
        const key = await this.nextExportKey();
        await this.connection.run(
          `COPY (SELECT * EXCLUDE (${RANGE_COLUMNS.join(', ')}) FROM ${state.tables[i]!}) TO ${sqlString(path)} (FORMAT parquet${copyEncryption(key)})`,
        );
        files.push(path);
        speedSql.push(`SELECT * FROM read_parquet(${sqlString(path)}${readEncryption(key?.id ?? null)})`);
      }
      // The SQL engine is a DuckDB of its own: it reads the version's files, not this one's tables.
      const batch = batchPartialRelations(state.view, this.emptySource(state), state.version?.info.files ?? [], this.options.store, this.keys.keyring);
      const batchSql = this.relationList(state, batch);
      const exported = {
        generation: state.generation,
        at: Date.now(),
        files,
        speed: this.byRelation(state, speedSql),
        merged: this.byRelation(state, batchSql.map((sql, i) => `SELECT * FROM (${sql}) UNION ALL BY NAME SELECT * FROM (${speedSql[i]!})`)),
      };
      // An export replaced longer ago than a query may run is read by none: its files go.
      const horizon = Date.now() - (this.options.config.sql.timeoutSeconds + 5) * 1000;
      const keep: ViewState['exports'] = [];
      for (const [i, old] of state.exports.entries()) {
        const replacedAt = state.exports[i + 1]?.at ?? exported.at;
        if (replacedAt < horizon) for (const file of old.files) await rm(file, { force: true });
        else keep.push(old);
      }
      state.exports = [...keep, exported];
      this.forgetExportKeys();
      return exported;
    });
  }

  /**
   * The key for the next export file, drawn at random in memory (the files die with the process), registered;
   * null without a keyring. A key serves {@link EXPORT_FILES_PER_KEY} files, then the next is drawn.
   */
  private async nextExportKey(): Promise<DataKey | null> {
    if (!this.keys.enabled) return null;
    if (this.exportKey === null || this.exportKey.files >= EXPORT_FILES_PER_KEY) {
      const key = { id: `k_${randomBytes(16).toString('hex')}`, key: randomBytes(32) };
      this.exportKeys.set(key.id, key);
      this.exportKey = { key, files: 0 };
      await this.keys.register(this.connection, [key]);
    }
    this.exportKey.files++;
    return this.exportKey.key;
  }

  /** Forgets the export keys no kept export reads any more (the SQL engine registered the ones it read with). */
  private forgetExportKeys(): void {
    const used = new Set<string>();
    for (const state of this.states.values()) {
      for (const kept of state.exports) for (const sql of this.relationList(state, kept.speed)) for (const [, id] of sql.matchAll(/footer_key: '(k_[0-9a-f]+)'/g)) used.add(id!);
    }
    for (const id of this.exportKeys.keys()) if (id !== this.exportKey?.key.id && !used.has(id)) this.exportKeys.delete(id);
  }

  /** Stops the micro-batches and closes DuckDB; the state is rebuilt from the log at the next open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.tick;
    await this.compacting;
    await this.measuring;
    for (const state of this.states.values()) await state.loading?.catch(() => undefined);
    await this.exclusive(async () => undefined);
    await this.reads;
    for (const statement of this.prepared.values()) statement.destroySync();
    this.prepared.clear();
    this.folder.closeSync();
    this.reader.closeSync();
    this.loader.closeSync();
    this.connection.closeSync();
    this.instance.closeSync();
    await rm(this.options.stagingDir, { recursive: true, force: true });
    for (const state of this.states.values()) for (const old of state.exports) for (const file of old.files) await rm(file, { force: true });
  }

  /** Runs `task` after every task queued before it; one at a time. */
  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const result = this.queue.then(task);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /**
   * Runs `task` as a critical section: after every one queued before it, one at a time. Turns change the tables
   * and the state describing them only in one (a reader never sees a micro-batch committed but its range not yet
   * listed, nor half an adoption); reads take their snapshot in one.
   */
  private inCritical<T>(task: () => Promise<T>): Promise<T> {
    const result = this.critical.then(task);
    this.critical = result.catch(() => undefined);
    return result;
  }

  /**
   * Schedules the next step so that a record arriving just after a step read the log is visible within
   * `speed.intervalMs`: the next step reads the log that long after, less the time steps take (from the timer
   * to the step's end, its wait for reads included), estimated to cover the slower steps (StepEstimate). So the
   * interval bounds arrival → visible rather than arrival → the next read; a step that overruns is followed at
   * once.
   */
  private schedule(lastRead = Date.now()): void {
    if (this.closed) return;
    const delay = Math.max(0, lastRead + this.options.config.speed.intervalMs - this.stepEstimate.ms - Date.now());
    this.timer = setTimeout(() => {
      const fired = Date.now();
      let read = fired;
      const report = (error: unknown) => this.options.log?.(`speed layer: ${(error as Error).message}`);
      // A newly published version loads beside the micro-batches (a batch run starts that load itself; this
      // catches any other publish): steps go on over the version held, and the first step after the load
      // adopts it. A version that fails to load (its files already gone with old versions) holds up nothing.
      void this.loadNewVersions().catch(report);
      // Measured beside the micro-batches too: counting a view's group keys scans its speed partials.
      if (this.measuring === null && Date.now() - this.memoryMeasuredAt >= MEMORY_EVERY_MS) {
        this.memoryMeasuredAt = Date.now();
        this.measuring = this.measureMemory()
          .catch(report)
          .finally(() => {
            this.measuring = null;
          });
      }
      this.tick = this.exclusive(() => {
        read = Date.now();
        return this.step();
      })
        .catch(report)
        .finally(() => {
          this.stepEstimate.observe(Date.now() - fired);
          this.schedule(read);
        });
    }, delay);
    this.timer.unref();
  }

  /** One interval: adopt a newer batch version, then one micro-batch per view and shard with new records. */
  private async step(): Promise<void> {
    if (this.closed) return;
    await this.syncVersions();
    for (const state of this.states.values()) {
      const shards = this.options.stream.shards(state.stream.name);
      const segments: Segment[] = [];
      for (let shard = 0; shard < state.seq.length; shard++) {
        const last = shards[shard]?.lastSeq ?? 0;
        const from = state.seq[shard]! + 1;
        if (last >= from) segments.push({ shard, from, to: Math.min(last, from + MICRO_BATCH_RECORDS - 1) });
      }
      if (segments.length > 0) await this.apply(state, segments);
    }
    this.startCompaction();
  }

  /** Starts folding the views whose shards hold too many micro-batches (see compact), unless a fold is under way. */
  private startCompaction(): void {
    if (this.compacting !== null || this.closed) return;
    const { maxRangesPerShard } = this.options.config.speed;
    const due: { state: ViewState; folds: Fold[] }[] = [];
    for (const state of this.states.values()) {
      const folds = state.ranges.flatMap((ranges, shard) =>
        planRangeFolds(ranges, maxRangesPerShard, MICRO_BATCH_RECORDS).map(({ start, end }) => ({ shard, first: ranges[start]!.first, last: ranges[end]!.last })),
      );
      if (folds.length > 0) due.push({ state, folds });
    }
    if (due.length === 0) return;
    // Steps only append ranges meanwhile (an adoption waits for the folds), so these stay what they were planned on.
    this.compacting = (async () => {
      for (const { state, folds } of due) await this.compact(state, folds);
    })()
      .catch((error: unknown) => this.options.log?.(`speed layer: folding micro-batches: ${(error as Error).message}`))
      .finally(() => {
        this.compacting = null;
      });
  }

  /**
   * Past `speed.maxRangesPerShard` micro-batches in a shard, folds runs of its small adjacent ranges (`folds`, from
   * planRangeFolds) into one range each: their partial rows merged into one per group (foldPartialSql), in memory, without
   * reading the log again; every shard due at once, in one statement per relation. A range stays within one
   * micro-batch's worth of records, which bounds what a later W cutting it recomputes from the log.
   *
   * A fold runs beside the steps, in a transaction of its own connection: under load it took 200-400 ms, which
   * in a step held up the next read of the log and so the visibility of every record arriving meanwhile. Steps
   * only append rows, which DuckDB lets go on beside the fold's delete of older ones; an adoption, which deletes
   * and replaces rows itself, waits for the fold (syncVersions). A fold changes no answer (the same partials,
   * merged), so readers need no critical section around it: they see the rows before or after, whole.
   */
  private async compact(state: ViewState, folds: readonly Fold[]): Promise<void> {
    if (this.closed) return;
    const [shardColumn, firstColumn] = RANGE_COLUMNS;
    const inFold = folds.map(({ shard, first, last }) => `(${shardColumn} = ${shard} AND ${firstColumn} BETWEEN ${first} AND ${last})`);
    const condition = inFold.join(' OR ');
    // The fold's number stands in the shard key, so that each fold groups apart; the insert gives rows their shard.
    const foldNumber = `CASE ${inFold.map((test, i) => `WHEN ${test} THEN ${i}`).join(' ')} END`;
    const ranges = folds.map(({ shard, first, last }, i) => `(${i}, ${shard}, ${first}, ${last})`).join(', ');
    const folder = this.folder;
    await folder.run('BEGIN TRANSACTION');
    try {
      for (let i = 0; i < state.tables.length; i++) {
        const table = state.tables[i]!;
        const rows = `SELECT * EXCLUDE (${RANGE_COLUMNS.join(', ')}), ${foldNumber} AS "__shard" FROM ${table} WHERE ${condition}`;
        await folder.run(`CREATE OR REPLACE TEMP TABLE folded AS ${state.shardRelations[i]!.fold(rows)}`);
        await folder.run(`DELETE FROM ${table} WHERE ${condition}`);
        await this.insertWithRanges(folder, table, 'SELECT * FROM folded', ranges);
      }
      await folder.run('DROP TABLE folded');
      await folder.run('COMMIT');
    } catch (error) {
      await folder.run('ROLLBACK').catch(() => undefined);
      throw error;
    }
    // Steps appended ranges meanwhile, never removed any (an adoption waits for this): each fold's ranges are
    // still held, found by their seqs.
    state.ranges = state.ranges.map((held, shard) => {
      let kept = held;
      for (const fold of folds) {
        if (fold.shard !== shard) continue;
        const start = kept.findIndex((range) => range.first === fold.first);
        const end = kept.findIndex((range) => range.last === fold.last);
        const folded = { first: fold.first, last: fold.last };
        const members = kept.slice(start, end + 1).map((range) => state.keyFilters.get(range));
        if (members.every((filter) => filter !== undefined)) state.keyFilters.set(folded, KeyFilter.union(members));
        kept = [...kept.slice(0, start), folded, ...kept.slice(end + 1)];
      }
      return kept;
    });
    state.compacted += folds.length;
    state.generation++;
  }

  /** Loads every view's newly published batch version, if any (off the micro-batch queue). */
  private async loadNewVersions(): Promise<void> {
    for (const state of this.states.values()) await this.ensureLoaded(state);
  }

  /**
   * Loads the view's current batch version into this DuckDB unless it is the one adopted or already loaded:
   * its partials as tables, and its merged rows sorted by the group keys. Serving then reads memory, never the
   * version's files, and merges only the groups the speed layer also holds (see serving).
   */
  private async ensureLoaded(state: ViewState): Promise<void> {
    // Each pass either finds nothing newer, or waits for a load; a run publishing meanwhile is caught next pass.
    for (let pass = 0; pass < 3 && !this.closed; pass++) {
      const current = (await this.options.catalog.currentViewVersions()).get(state.view.name) ?? null;
      const known = [state.version, state.adopting, state.loaded].map((loaded) => loaded?.info.version);
      if (current === null || known.includes(current)) return;
      if (state.loading === null) {
        state.loading = this.load(state, current).finally(() => {
          state.loading = null;
        });
      }
      await state.loading;
    }
  }

  private async load(state: ViewState, version: number): Promise<void> {
    const info = (await this.options.catalog.viewVersions(state.view.name)).find((v) => v.version === version);
    // Replaced between the two reads: the next pass loads the newer one.
    if (!info || this.closed) return;
    const files = this.relationList(state, batchPartialRelations(state.view, this.emptySource(state), info.files, this.options.store, this.keys.keyring));
    await this.keys.registerNamed(this.loader, files.join('\n'));
    const tag = `${state.prefix}_v${info.version}`;
    const partials = state.relations.map((relation) => quoteIdent(`${tag}_${relation.name}`));
    const final = quoteIdent(`${tag}_final`);
    const keys = state.view.keys.map((key) => `${quoteIdent(key.name)} NULLS LAST`);
    try {
      // All sorted by the keys, so that zone maps skip most of a table for a filter on the first key (a point
      // lookup reads the partials of the groups the speed layer also holds, and the merged rows of the others).
      const order = keys.length > 0 ? ` ORDER BY ${keys.join(', ')}` : '';
      for (let i = 0; i < partials.length; i++) await this.loader.run(`CREATE OR REPLACE TABLE ${partials[i]!} AS SELECT * FROM (${files[i]!})${order}`);
      const merged = mergeSql(state.view, this.byRelation(state, partials.map((table) => `SELECT * FROM ${table}`)));
      await this.loader.run(`CREATE OR REPLACE TABLE ${final} AS SELECT * FROM (${merged})${order}`);
    } catch (error) {
      await this.dropTables(this.loader, [...partials, final]);
      throw error;
    }
    // Never adopted, so nothing reads it: a newer load replaces it.
    const replaced = state.loaded;
    state.loaded = { info, partials, final };
    if (replaced) await this.dropTables(this.loader, [...replaced.partials, replaced.final]);
  }

  private async dropTables(connection: DuckDBConnection, tables: readonly string[]): Promise<void> {
    for (const table of tables) await connection.run(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
  }

  /**
   * Makes each view's newly loaded batch version the one its speed partials complement (in a turn). Every change
   * of the tables an adoption makes (the covered partials deleted, cut ranges recomputed, micro-batches redone
   * for de-duplication) runs in one transaction beside the reads, which go on seeing the version before; only
   * its commit, with the swap of the version, W and seqs that describe the tables, is a critical section.
   */
  private async syncVersions(): Promise<void> {
    const adoptions = [...this.states.values()].flatMap((state) => (state.loaded === null ? [] : [{ state, loaded: state.loaded }]));
    if (adoptions.length === 0) return;
    // A fold deletes rows the adoption may delete too: DuckDB would fail the second of the two.
    await this.compacting;
    // Adopting until the swap: a load meanwhile knows the version (see ensureLoaded).
    for (const adoption of adoptions) {
      adoption.state.loaded = null;
      adoption.state.adopting = adoption.loaded;
    }
    const swaps: (() => void)[] = [];
    const replaced = adoptions.flatMap(({ state }) => (state.version ? [state.version] : []));
    try {
      await this.commitChanges(
        async () => {
          for (const { state, loaded } of adoptions) swaps.push(await this.adopt(state, loaded));
        },
        () => {
          for (const swap of swaps) swap();
          for (const { state } of adoptions) state.adopting = null;
        },
      );
    } catch (error) {
      // Rolled back: the tables are as before, but what describes them (ranges, the copies de-duplication
      // holds) may have moved on. State is disposable: it is rebuilt from the log past the version held.
      for (const { state, loaded } of adoptions) {
        state.adopting = null;
        await this.dropTables(this.connection, [...loaded.partials, loaded.final]);
        await this.reset(state);
      }
      throw error;
    }
    // Reads that took their snapshot before keep seeing the replaced versions' tables (MVCC); statements naming
    // them belong to another plan class (see planClass) and go at the next read of the view.
    for (const version of replaced) await this.dropTables(this.connection, [...version.partials, version.final]);
    await this.checkpoint(new Set(adoptions.map(({ state }) => state.stream.name)));
  }

  /** Drops every speed partial of the view, to be applied again from the log past its version's W. */
  private async reset(state: ViewState): Promise<void> {
    await this.inCritical(async () => {
      for (const table of state.tables) await this.connection.run(`DELETE FROM ${table}`);
      await state.dedupe?.clear();
      state.ranges = state.ranges.map(() => []);
      state.seq = [...state.watermark];
      state.generation++;
    });
  }

  /**
   * Drops the partials a version covers, in the caller's transaction. Per shard with W': ranges ending at or
   * before W' go; a range W' cuts in two goes too and its uncovered part, W'+1 .. its end, is recomputed from the
   * log. Answers the swap to run with the commit: the version, W and seqs that readers see.
   */
  private async adopt(state: ViewState, loaded: LoadedVersion): Promise<() => void> {
    const next = loaded.info.watermark[state.stream.name] ?? {};
    const nextW = state.watermark.map((_, shard) => next[String(shard)] ?? 0);
    // De-duplication first: which speed records must give way to copies the version now covers.
    let giveWay: { shard: number; seq: number }[] = [];
    if (state.dedupe) {
      if (nextW.some((w, shard) => w < state.watermark[shard]!)) await state.dedupe.clear();
      else {
        giveWay = await state.dedupe.cover(nextW);
        const behind = nextW.some((w, shard) => w > state.seq[shard]!);
        const heldImports = state.version?.info.maxImportChunk ?? 0;
        const imported = loaded.info.maxImportChunk !== heldImports;
        // Records the speed layer never applied are covered now: the copies held lack them.
        if (behind || imported) await state.dedupe.addCovered({ seq: [...state.seq], importChunk: heldImports });
      }
    }
    // Every shard's covered partials go in one statement per table (each row compared with its own shard's bound,
    // picked from a list: 3-4 times faster than an OR over the shards), and the uncovered parts of cut ranges are
    // recomputed in one micro-batch. A bound of 0 deletes nothing (seqs start at 1).
    const deleteUpTo = state.seq.map(() => 0);
    const cuts: Segment[] = [];
    const seq = [...state.seq];
    for (let shard = 0; shard < state.seq.length; shard++) {
      const w = next[String(shard)] ?? 0;
      if (w < state.watermark[shard]!) {
        // A version behind the one before (never published that way): rebuild the shard from its W.
        deleteUpTo[shard] = Number.MAX_SAFE_INTEGER;
        state.ranges[shard] = [];
        seq[shard] = w;
        continue;
      }
      const ranges = state.ranges[shard]!;
      const cut = ranges.find((range) => range.first <= w && range.last > w) ?? null;
      if (ranges.some((range) => range.first <= w)) {
        deleteUpTo[shard] = w;
        state.ranges[shard] = ranges.filter((range) => range.first > w);
      }
      // The speed layer was behind the batch: it resumes after W'.
      if (seq[shard]! < w) seq[shard] = w;
      if (cut !== null) cuts.push({ shard, from: w + 1, to: cut.last });
    }
    if (deleteUpTo.some((bound) => bound > 0)) {
      await this.deleteWhere(state, `${RANGE_COLUMNS[1]} <= ([${deleteUpTo.join(', ')}]::BIGINT[])[${RANGE_COLUMNS[0]} + 1]`);
    }
    if (cuts.length > 0) {
      await this.apply(state, cuts, true);
      state.recomputed += cuts.length;
    }
    // Micro-batches holding a record that must now give way are computed again (once each) with the new decisions.
    const redo = new Map<string, { shard: number; range: Range }>();
    for (const { shard, seq } of giveWay) {
      const range = state.ranges[shard]?.find((r) => r.first <= seq && seq <= r.last);
      if (range) redo.set(`${shard}/${range.first}`, { shard, range });
    }
    if (redo.size > 0) {
      const again = [...redo.values()];
      await this.deleteWhere(state, again.map(({ shard, range }) => `(${RANGE_COLUMNS[0]} = ${shard} AND ${RANGE_COLUMNS[1]} = ${range.first})`).join(' OR '));
      for (const { shard, range } of again) state.ranges[shard] = state.ranges[shard]!.filter((r) => r !== range);
      await this.apply(state, again.map(({ shard, range }) => ({ shard, from: range.first, to: range.last })), true);
      state.recomputed += again.length;
    }
    return () => {
      state.version = loaded;
      state.watermark = nextW;
      state.seq = seq;
      state.generation++;
    };
  }

  /**
   * Makes `changes` in one transaction of the turns' connection (all of them, or none), and commits it together
   * with `describe`, the update of the state that describes the tables, as one critical section. Readers see
   * neither the changes before the commit (MVCC) nor the state before `describe`, so they wait only for the
   * commit, never for the changes to be computed.
   */
  private async commitChanges(changes: () => Promise<void>, describe: () => void): Promise<void> {
    await this.connection.run('BEGIN TRANSACTION');
    try {
      await changes();
    } catch (error) {
      await this.connection.run('ROLLBACK');
      throw error;
    }
    const commit = async () => {
      try {
        await this.connection.run('COMMIT');
      } catch (error) {
        // DuckDB has rolled back a transaction whose commit failed; this only makes sure none stays open.
        await this.connection.run('ROLLBACK').catch(() => undefined);
        throw error;
      }
      describe();
    };
    await this.inCritical(commit);
  }

  /** Per shard, the filter of the first group-by values in `table` (partial rows grouped by `__shard`). */
  private async keyFiltersOf(table: string, firstKey: string): Promise<Map<number, KeyFilter>> {
    const reader = await this.connection.runAndReadAll(
      `SELECT "__shard", list(DISTINCT ${quoteIdent(firstKey)}) FILTER (WHERE ${quoteIdent(firstKey)} IS NOT NULL) FROM ${table} GROUP BY ALL`,
    );
    return new Map(reader.getRowsJS().map(([shard, values]) => [Number(shard), KeyFilter.of((values ?? []) as string[])]));
  }

  /**
   * Inserts partial rows grouped by `__shard` into a speed table on `connection`, each with its range: `ranges` is a
   * VALUES list of `(group, shard, first, last)`, one per value of the rows' `__shard` (the shard itself for a
   * micro-batch, a fold's number for folded rows).
   */
  private async insertWithRanges(connection: DuckDBConnection, table: string, partials: string, ranges: string): Promise<void> {
    const [shardColumn, firstColumn, lastColumn] = RANGE_COLUMNS;
    await connection.run(
      `INSERT INTO ${table} BY NAME
         SELECT partial.* EXCLUDE ("__shard"), range.shard::INTEGER AS ${shardColumn}, range.first::BIGINT AS ${firstColumn}, range.last::BIGINT AS ${lastColumn}
         FROM (${partials}) AS partial JOIN (VALUES ${ranges}) AS range("group", shard, first, last) ON partial."__shard" = range."group"`,
    );
  }

  /**
   * Deletes the partial rows matching `condition` from every speed table, in the adoption's transaction, and
   * rebuilds each table it all but empties (as dropping the partials a version covers does on a quiet stream).
   * DuckDB estimates a table's rows from its row groups and forgets deleted rows only once a later write commits
   * with no read older than the delete still open. So after an adoption that overlapped a read, a stream
   * gone quiet kept its speed tables' pre-adoption estimate (a million rows where none were left), and the merge
   * built its hash joins on the batch partials instead: a group-by over a million keys went from 15 to 340 ms,
   * until the next micro-batch. A rebuilt table has its exact count at once; readers of older snapshots keep
   * reading the table they started with (DuckDB's catalog is transactional too).
   */
  private async deleteWhere(state: ViewState, condition: string): Promise<void> {
    for (const table of state.tables) {
      const deleted = Number((await this.connection.runAndReadAll(`DELETE FROM ${table} WHERE ${condition}`)).getRows()[0]?.[0] ?? 0);
      if (deleted === 0) continue;
      const left = Number((await this.connection.runAndReadAll(`SELECT count(*) FROM ${table}`)).getRows()[0]![0]);
      // Only a table left with few rows, as a quiet stream's: under load a third of the rows may be left (the
      // seconds past W), copying them took 140 ms of an adoption, and the next micro-batch's commit then
      // lets DuckDB correct the estimate anyway.
      if (left * REBUILD_WHEN_LEFT_BELOW <= deleted) await this.connection.run(`CREATE OR REPLACE TABLE ${table} AS SELECT * FROM ${table}`);
    }
  }

  /**
   * Applies the partial plan to the records of each segment (`from`..`to` of a shard), every shard's next read
   * together in one micro-batch: parsed once, and each relation's partials computed by one statement grouped
   * by shard as well, so a step's cost does not grow with the shard count. Each partial row carries its own
   * shard's range. Only the insert's commit, with the ranges it adds, is a critical section. `replace` for a
   * recomputed part of a range during an adoption: it lies before the ranges held, does not move the shard's
   * seq, and is inserted in the adoption's transaction, to be committed with it.
   */
  private async apply(state: ViewState, segments: readonly Segment[], replace = false): Promise<void> {
    const name = state.stream.name;
    const next = segments.map((segment) => ({ ...segment, first: segment.from, recomputed: [] as Range[] }));
    for (;;) {
      const reads: { segment: (typeof next)[number]; first: number; last: number; ndjson: Buffer }[] = [];
      for (const segment of next) {
        if (segment.first > segment.to) continue;
        const { shard, first } = segment;
        const batch = await this.options.stream.readBatch(name, shard, asSeq(first), Math.min(MICRO_BATCH_RECORDS, segment.to - first + 1));
        if (batch.count === 0) throw new Error(`the log of ${name}/${shard} holds no record at seq ${first}`);
        if (batch.firstSeq !== first) throw new Error(`the log of ${name}/${shard} gave seq ${batch.firstSeq} where ${first} was expected`);
        reads.push({ segment, first, last: first + batch.count - 1, ndjson: withOffsets([batch], batch.count, batch.bytes, shard) });
      }
      if (reads.length === 0) break;
      // With encryption at rest the records are read from memory, as delivery then reads them: never staged.
      const staged = this.keys.enabled ? null : join(this.options.stagingDir, `${this.staged++}.ndjson`);
      try {
        const ndjson = reads.length === 1 ? reads[0]!.ndjson : Buffer.concat(reads.map((read) => read.ndjson));
        const select = [...state.stream.fields.map((field) => quoteIdent(field.name)), '"__shard"', '"__seq"'].join(', ');
        // Parsed once into a temporary table, then every relation's partial plan reads that table.
        if (staged === null) {
          await this.connection.run(
            `CREATE OR REPLACE TEMP TABLE micro_batch AS SELECT ${select} FROM (${readJsonText(state.stream.fields, OFFSET_COLUMNS)}) AS records`,
            [blobValue(ndjson)],
            [BLOB],
          );
        } else {
          await writeFile(staged, ndjson);
          const columns = readJsonColumns(state.stream.fields, OFFSET_COLUMNS);
          await this.connection.run(
            `CREATE OR REPLACE TEMP TABLE micro_batch AS SELECT ${select} FROM read_json(${sqlString(staged)}, format = 'newline_delimited', columns = ${columns})`,
          );
        }
        // The same records the batch layer reads from chunks: cleaned by the stream's transform, if any, and
        // without the copies of a key another layer or an earlier micro-batch already counts.
        const records = this.options.sources.get(name)!;
        let source = 'SELECT * FROM micro_batch';
        if (records.transformVersion !== null) {
          // Cleaned once, not once per relation.
          await this.connection.run(`CREATE OR REPLACE TEMP TABLE micro_clean AS ${records.recordsSql(source)}`);
          source = state.dedupe ? await state.dedupe.keep('micro_clean', replace) : 'SELECT * FROM micro_clean';
        }
        const ranges = reads.map((read) => `(${read.segment.shard}, ${read.segment.shard}, ${read.first}, ${read.last})`).join(', ');
        let filters = new Map<number, KeyFilter>();
        const insert = async () => {
          for (let i = 0; i < state.relations.length; i++) {
            let partials = state.shardRelations[i]!.sql(source);
            if (i === 0 && state.filteredKey !== null) {
              // The scalar partials once, for the insert and for each range's filter of first group-by values.
              await this.connection.run(`CREATE OR REPLACE TEMP TABLE micro_scalar AS ${partials}`);
              partials = 'SELECT * FROM micro_scalar';
              filters = await this.keyFiltersOf('micro_scalar', state.filteredKey);
            }
            await this.insertWithRanges(this.connection, state.tables[i]!, partials, ranges);
          }
        };
        const held = (shard: number, first: number, last: number): Range => {
          const range = { first, last };
          if (state.filteredKey !== null) state.keyFilters.set(range, filters.get(shard) ?? KeyFilter.of([]));
          return range;
        };
        if (replace) {
          await insert();
          for (const { segment, first, last } of reads) {
            segment.recomputed.push(held(segment.shard, first, last));
            segment.first = last + 1;
          }
        } else {
          await this.commitChanges(insert, () => {
            state.generation++;
            for (const { segment, first, last } of reads) {
              state.ranges[segment.shard]!.push(held(segment.shard, first, last));
              state.seq[segment.shard] = last;
              segment.first = last + 1;
            }
          });
        }
      } finally {
        for (const table of ['micro_batch', 'micro_clean', 'micro_clean_losers', 'micro_clean_kept', 'micro_scalar']) await this.connection.run(`DROP TABLE IF EXISTS ${quoteIdent(table)}`).catch(() => undefined);
        if (staged !== null) await rm(staged, { force: true });
      }
    }
    if (replace) {
      for (const { shard, recomputed } of next) state.ranges[shard] = [...recomputed, ...state.ranges[shard]!].sort((a, b) => a.first - b.first);
    }
  }

  /**
   * Measures each view's memory for `strata status`, on a connection of its own beside the turns: the counts read
   * the tables as they stand when each query starts (MVCC), an estimate that need not match one turn exactly.
   */
  private async measureMemory(): Promise<void> {
    const connection = await this.instance.connect();
    try {
      await this.measureMemoryOn(connection);
    } finally {
      connection.closeSync();
    }
  }

  private async measureMemoryOn(connection: DuckDBConnection): Promise<void> {
    const total = (await connection.runAndReadAll(`SELECT coalesce(sum(memory_usage_bytes), 0)::DOUBLE AS bytes FROM duckdb_memory() WHERE tag = 'IN_MEMORY_TABLE'`))
      .getRowObjects()[0]!.bytes as number;
    const tables = (await connection.runAndReadAll(`SELECT table_name, (estimated_size * column_count)::DOUBLE AS cells, estimated_size::DOUBLE AS rows FROM duckdb_tables() WHERE NOT temporary`))
      .getRowObjects()
      .map((row) => ({ name: quoteIdent(String(row.table_name)), cells: row.cells as number, rows: row.rows as number }));
    const allCells = tables.reduce((sum, table) => sum + table.cells, 0);
    const bytesOf = (names: readonly string[]) =>
      allCells === 0 ? 0 : Math.round((total * tables.filter((table) => names.includes(table.name)).reduce((sum, table) => sum + table.cells, 0)) / allCells);
    for (const state of this.states.values()) {
      const keys = state.view.keys.map((key) => quoteIdent(key.name));
      const speedGroupKeys = Number(
        (await connection.runAndReadAll(`SELECT count(*)::DOUBLE AS n FROM (SELECT DISTINCT ${keys.length > 0 ? keys.join(', ') : '1'} FROM ${state.tables[0]!})`)).getRowObjects()[0]!
          .n,
      );
      const speedBytes = bytesOf(state.tables) + (state.dedupe?.bytes ?? 0);
      const batch = state.version;
      state.memory = {
        speedGroupKeys,
        speedBytes,
        speedBytesPerGroupKey: speedGroupKeys === 0 ? 0 : Math.round(speedBytes / speedGroupKeys),
        batchGroupKeys: batch ? (tables.find((table) => table.name === batch.final)?.rows ?? 0) : 0,
        batchBytes: batch ? bytesOf([...batch.partials, batch.final]) : 0,
        measuredAt: new Date().toISOString(),
      };
    }
  }

  /** Tells log retention what no view needs any more: per shard, the smallest W of the stream's views. */
  private async checkpoint(streams: ReadonlySet<string> | null): Promise<void> {
    for (const stream of this.options.config.streams.values()) {
      if (streams !== null && !streams.has(stream.name)) continue;
      const states = [...this.states.values()].filter((state) => state.stream.name === stream.name);
      if (states.length === 0) continue;
      for (let shard = 0; shard < stream.shards; shard++) {
        const seq = Math.min(...states.map((state) => state.watermark[shard]!));
        try {
          await this.options.stream.commitCheckpoint(SPEED_CONSUMER, stream.name, shard, asSeq(seq));
        } catch (error) {
          this.options.log?.(`speed layer: checkpoint of ${stream.name}/${shard}: ${(error as Error).message}`);
        }
      }
    }
  }

  /**
   * Age of the oldest durable record of `stream` past `seq` (per shard, the last seq a snapshot shows), which no
   * layer shows yet; 0 when there is none.
   */
  private async freshness(stream: string, seq: readonly number[]): Promise<number> {
    const now = Date.now();
    let oldest = 0;
    const shards = this.options.stream.shards(stream);
    for (let shard = 0; shard < seq.length; shard++) {
      if ((shards[shard]?.lastSeq ?? 0) <= seq[shard]!) continue;
      const [record] = await this.options.stream.read(stream, shard, asSeq(seq[shard]! + 1), 1);
      if (record) oldest = Math.max(oldest, now - record.appendedAt);
    }
    return oldest;
  }
}

function missingExportKey(id: string): never {
  throw new Error(`no speed layer export key ${id}`);
}

/**
 * When a read's prepared statements are planned again: with another batch version (its tables), or once the
 * speed layer holds twice or half as many records as when they were planned. Planning the merge is about a
 * third of a filtered read (3-4 ms of 10 on a quiet machine), and every micro-batch used to start a new plan, so
 * the first read after each step, the one that shows its records, paid it. DuckDB plans for the row counts it
 * estimates when it plans (which side of a join to build): a plan made for an empty speed layer is not kept for
 * one holding a million records. Rows inserted later are read by the kept plan; a table replaced under it is
 * bound again by DuckDB.
 */
function planClass(state: ViewState): string {
  let held = 0;
  for (const ranges of state.ranges) for (const range of ranges) held += range.last - range.first + 1;
  return `${state.version?.info.version ?? 'none'}/${Math.round(Math.log2(1 + held))}`;
}
