import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { batchPartialRelations, partialRelations, type PartialRelation } from '../batch/index.js';
import type { Catalog, ViewVersionInfo } from '../catalog/index.js';
import type { ProjectConfig, StreamConfig } from '../config/index.js';
import { NotFoundError } from '../errors.js';
import { OFFSET_COLUMNS, readJsonColumns, withOffsets, type ObjectStore } from '../lake/index.js';
import { asSeq, type Stream } from '../stream/index.js';
import type { DerivedTable } from '../sql/index.js';
import { quoteIdent, sqlString } from '../util/duckdb.js';
import { emptySourceSql, mergeSql, type PartialRelations, type ViewDefinition } from '../views/index.js';

/** The log consumer the speed layer checkpoints under: retention keeps every record no batch version covers. */
export const SPEED_CONSUMER = 'speed';

/** The columns each stored speed partial row carries beside the partials: the micro-batch it came from. */
export const RANGE_COLUMNS = ['__range_shard', '__range_first', '__range_last'] as const;

/** Most records one micro-batch of one shard reads. */
const MICRO_BATCH_RECORDS = 50_000;

export interface SpeedLayerOptions {
  readonly catalog: Catalog;
  readonly stream: Pick<Stream, 'readBatch' | 'read' | 'shards' | 'commitCheckpoint'>;
  readonly store: ObjectStore;
  readonly config: ProjectConfig;
  readonly views: ReadonlyMap<string, ViewDefinition>;
  /** A directory of its own for staged micro-batches; emptied at open. */
  readonly stagingDir: string;
  readonly log?: (message: string) => void;
}

/** One micro-batch of one shard: its partial rows carry this range. */
interface Range {
  readonly first: number;
  readonly last: number;
}

interface ViewState {
  readonly view: ViewDefinition;
  readonly stream: StreamConfig;
  readonly relations: readonly PartialRelation[];
  /** Per relation (same order), the in-memory table of its speed partials. */
  readonly tables: readonly string[];
  /** The batch version the speed partials complement; null before any. */
  version: ViewVersionInfo | null;
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
  readonly batch: PartialRelations;
  readonly speed: PartialRelations;
  /** Each relation the union of the batch and speed partials. */
  readonly merged: PartialRelations;
  /** The view's relations over no rows: the view's columns and types. */
  readonly empty: PartialRelations;
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
}

/**
 * The speed layer (architecture §4). Per view, it applies the view's partial plan (the same SQL the batch
 * layer runs over chunks) to the log past the current batch version's W, one micro-batch per shard every
 * `speed.intervalMs`, in an in-memory DuckDB. Records are read exactly as delivery reads them (NDJSON with
 * `__shard`/`__seq`, `read_json` with the stream's typed columns), so both layers see the same values.
 *
 * Partials are kept grouped by offset range: each stored row carries (shard, firstSeq, lastSeq) of its
 * micro-batch. When a newer version is published (polled each interval, and before each serving read), the
 * ranges it covers (lastSeq <= W') are dropped; a range W' cuts in two is dropped and its uncovered part
 * (W'+1 .. its lastSeq) recomputed from the log. State is disposable: at open it is rebuilt by replay from W.
 *
 * Everything (micro-batches, version changes, serving reads) runs one at a time on one connection, so a read
 * sees one version's files together with exactly the speed partials past that version's W.
 */
export class SpeedLayer {
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private tick: Promise<void> = Promise.resolve();
  private staged = 0;

  private constructor(
    private readonly options: SpeedLayerOptions,
    private readonly instance: DuckDBInstance,
    private readonly connection: DuckDBConnection,
    private readonly states: ReadonlyMap<string, ViewState>,
  ) {}

  static async open(options: SpeedLayerOptions): Promise<SpeedLayer> {
    await rm(options.stagingDir, { recursive: true, force: true });
    await mkdir(options.stagingDir, { recursive: true });
    const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
    const connection = await instance.connect();
    await connection.run(`SET TimeZone = 'UTC'`);
    const states = new Map<string, ViewState>();
    let index = 0;
    for (const view of options.views.values()) {
      const stream = options.config.streams.get(view.source)!;
      const relations = partialRelations(view);
      const tables: string[] = [];
      for (const relation of relations) {
        const table = quoteIdent(`speed_${index}_${relation.name}`);
        await connection.run(
          `CREATE TABLE ${table} AS SELECT *, 0::INTEGER AS ${RANGE_COLUMNS[0]}, 0::BIGINT AS ${RANGE_COLUMNS[1]}, 0::BIGINT AS ${RANGE_COLUMNS[2]}
             FROM (${relation.sql(emptySourceSql(stream.fields))}) WHERE false`,
        );
        tables.push(table);
      }
      index++;
      const zeros = () => Array.from({ length: stream.shards }, () => 0);
      states.set(view.name, {
        view,
        stream,
        relations,
        tables,
        version: null,
        watermark: zeros(),
        seq: zeros(),
        ranges: Array.from({ length: stream.shards }, () => []),
        recomputed: 0,
        compacted: 0,
        generation: 0,
        exports: [],
      });
    }
    const layer = new SpeedLayer(options, instance, connection, states);
    try {
      await layer.exclusive(async () => {
        await layer.syncVersions();
        await layer.checkpoint(null);
      });
    } catch (error) {
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
      batchVersion: state.version?.version ?? null,
      watermark: Object.fromEntries(state.watermark.map((w, shard) => [String(shard), w])),
      speedSeq: Object.fromEntries(state.seq.map((seq, shard) => [String(shard), seq])),
      ranges: state.ranges.reduce((n, ranges) => n + ranges.length, 0),
      recomputedRanges: state.recomputed,
      compactions: state.compacted,
    }));
  }

  /**
   * Runs `read` over one consistent snapshot of a view: its current batch version (made current here if a newer
   * one was published) and the speed partials past that version's W, with the connection to query them on.
   * Nothing else runs on the speed layer until `read` resolves.
   */
  async withSnapshot<T>(name: string, read: (snapshot: ViewSnapshot, connection: DuckDBConnection) => Promise<T>): Promise<T> {
    const state = this.states.get(name);
    if (!state) {
      const known = [...this.states.keys()];
      throw new NotFoundError(`unknown view "${name}"${known.length > 0 ? `; views: ${known.join(', ')}` : '; the config declares no views'}`);
    }
    return this.exclusive(async () => {
      if (this.closed) throw new Error('the speed layer is closed');
      await this.syncVersions();
      const { store } = this.options;
      const fields = state.stream.fields;
      const batch = batchPartialRelations(state.view, fields, state.version?.files ?? [], store);
      const empty = batchPartialRelations(state.view, fields, [], store);
      const exclude = RANGE_COLUMNS.join(', ');
      const speedSql = state.tables.map((table) => `SELECT * EXCLUDE (${exclude}) FROM ${table}`);
      const byRelation = (sqls: readonly string[]): PartialRelations => ({
        scalar: sqls[0]!,
        sketches: Object.fromEntries(state.relations.flatMap((relation, i) => (relation.measure === null ? [] : [[relation.measure, sqls[i]!]]))),
      });
      const batchSql = [batch.scalar, ...state.relations.slice(1).map((relation) => batch.sketches[relation.measure!]!)];
      const snapshot: ViewSnapshot = {
        view: state.view,
        batchVersion: state.version?.version ?? null,
        watermark: Object.fromEntries(state.watermark.map((w, shard) => [String(shard), w])),
        speedSeq: Object.fromEntries(state.seq.map((seq, shard) => [String(shard), seq])),
        freshnessMs: await this.freshness(state),
        batch,
        speed: byRelation(speedSql),
        merged: byRelation(batchSql.map((sql, i) => `SELECT * FROM (${sql}) UNION ALL BY NAME SELECT * FROM (${speedSql[i]!})`)),
        empty,
      };
      return read(snapshot, this.connection);
    });
  }

  /**
   * `<view>__speed` (the merge over the speed partials alone) and `<view>` (over the batch and speed partials
   * together) for the SQL engine, which runs in a DuckDB of its own: each is built over a Parquet export of the
   * speed partials taken in one turn with the batch version whose files it lists, so `<view>` is one
   * consistent snapshot like `GET /v1/views/{view}`. Exports stay until queries can no longer read them.
   */
  derivedTables(): DerivedTable[] {
    return [...this.states.values()].flatMap((state) => {
      const generation = `${state.version?.version ?? 'none'}-${state.generation}`;
      return [
        { name: `${state.view.name}__speed`, state: generation, sql: async () => mergeSql(state.view, (await this.export(state)).speed) },
        { name: state.view.name, state: generation, sql: async () => mergeSql(state.view, (await this.export(state)).merged) },
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
        await this.connection.run(`COPY (SELECT * EXCLUDE (${RANGE_COLUMNS.join(', ')}) FROM ${state.tables[i]!}) TO ${sqlString(path)} (FORMAT parquet)`);
        files.push(path);
        speedSql.push(`SELECT * FROM read_parquet(${sqlString(path)})`);
      }
      const batch = batchPartialRelations(state.view, state.stream.fields, state.version?.files ?? [], this.options.store);
      const batchSql = [batch.scalar, ...state.relations.slice(1).map((relation) => batch.sketches[relation.measure!]!)];
      const byRelation = (sqls: readonly string[]): PartialRelations => ({
        scalar: sqls[0]!,
        sketches: Object.fromEntries(state.relations.flatMap((relation, i) => (relation.measure === null ? [] : [[relation.measure, sqls[i]!]]))),
      });
      const exported = {
        generation: state.generation,
        at: Date.now(),
        files,
        speed: byRelation(speedSql),
        merged: byRelation(batchSql.map((sql, i) => `SELECT * FROM (${sql}) UNION ALL BY NAME SELECT * FROM (${speedSql[i]!})`)),
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
      return exported;
    });
  }

  /** Stops the micro-batches and closes DuckDB; the state is rebuilt from the log at the next open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.tick;
    await this.exclusive(async () => undefined);
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
   * Runs a step every `speed.intervalMs` from the start of the one before, so the interval bounds the time a
   * record waits for its micro-batch, whatever a step costs; a step that overruns is followed at once.
   */
  private schedule(lastStart = Date.now()): void {
    if (this.closed) return;
    const delay = Math.max(0, lastStart + this.options.config.speed.intervalMs - Date.now());
    this.timer = setTimeout(() => {
      const started = Date.now();
      this.tick = this.exclusive(() => this.step())
        .catch((error: unknown) => this.options.log?.(`speed layer: ${(error as Error).message}`))
        .finally(() => this.schedule(started));
    }, delay);
    this.timer.unref();
  }

  /** One interval: adopt a newer batch version, then one micro-batch per view and shard with new records. */
  private async step(): Promise<void> {
    if (this.closed) return;
    await this.syncVersions();
    for (const state of this.states.values()) {
      const shards = this.options.stream.shards(state.stream.name);
      for (let shard = 0; shard < state.seq.length; shard++) {
        const last = shards[shard]?.lastSeq ?? 0;
        const from = state.seq[shard]! + 1;
        if (last >= from) await this.apply(state, shard, from, Math.min(last, from + MICRO_BATCH_RECORDS - 1));
        await this.compact(state, shard);
      }
    }
  }

  /**
   * Past `speed.maxRangesPerShard` micro-batches, folds the oldest ones (up to one micro-batch's worth of
   * records) into one range, recomputed from the log with the same partial plan. A later W that cuts the folded
   * range recomputes its uncovered part as for any range.
   */
  private async compact(state: ViewState, shard: number): Promise<void> {
    const ranges = state.ranges[shard]!;
    if (ranges.length <= this.options.config.speed.maxRangesPerShard) return;
    let end = 0;
    while (end + 1 < ranges.length && ranges[end + 1]!.last - ranges[0]!.first + 1 <= MICRO_BATCH_RECORDS) end++;
    if (end === 0) return;
    const first = ranges[0]!.first;
    const last = ranges[end]!.last;
    await this.deleteWhere(state, `${RANGE_COLUMNS[0]} = ${shard} AND ${RANGE_COLUMNS[1]} BETWEEN ${first} AND ${last}`);
    state.ranges[shard] = ranges.slice(end + 1);
    await this.apply(state, shard, first, last, true);
    state.compacted++;
  }

  /** Makes each view's current batch version the one its speed partials complement. */
  private async syncVersions(): Promise<void> {
    const current = await this.options.catalog.currentViewVersions();
    const advanced = new Set<string>();
    for (const state of this.states.values()) {
      const version = current.get(state.view.name) ?? null;
      if (version === null || version === (state.version?.version ?? null)) continue;
      const info = (await this.options.catalog.viewVersions(state.view.name)).find((v) => v.version === version);
      // Replaced between the two reads: the next sync adopts the newer one.
      if (!info) continue;
      await this.adopt(state, info);
      advanced.add(state.stream.name);
    }
    if (advanced.size > 0) await this.checkpoint(advanced);
  }

  /**
   * Drops the partials a version covers. Per shard with W': ranges ending at or before W' go; a range W' cuts in
   * two goes too and its uncovered part, W'+1 .. its end, is recomputed from the log.
   */
  private async adopt(state: ViewState, info: ViewVersionInfo): Promise<void> {
    const next = info.watermark[state.stream.name] ?? {};
    for (let shard = 0; shard < state.seq.length; shard++) {
      const w = next[String(shard)] ?? 0;
      if (w < state.watermark[shard]!) {
        // A version behind the one before (never published that way): rebuild the shard from its W.
        await this.deleteWhere(state, `${RANGE_COLUMNS[0]} = ${shard}`);
        state.ranges[shard] = [];
        state.seq[shard] = w;
        continue;
      }
      const ranges = state.ranges[shard]!;
      const cut = ranges.find((range) => range.first <= w && range.last > w) ?? null;
      if (ranges.some((range) => range.first <= w)) {
        await this.deleteWhere(state, `${RANGE_COLUMNS[0]} = ${shard} AND ${RANGE_COLUMNS[1]} <= ${w}`);
        state.ranges[shard] = ranges.filter((range) => range.first > w);
      }
      // The speed layer was behind the batch: it resumes after W'.
      if (state.seq[shard]! < w) state.seq[shard] = w;
      if (cut !== null) {
        await this.apply(state, shard, w + 1, cut.last, true);
        state.recomputed++;
      }
    }
    state.watermark = state.watermark.map((_, shard) => next[String(shard)] ?? 0);
    state.version = info;
    state.generation++;
  }

  private async deleteWhere(state: ViewState, condition: string): Promise<void> {
    state.generation++;
    for (const table of state.tables) await this.connection.run(`DELETE FROM ${table} WHERE ${condition}`);
  }

  /**
   * Applies the partial plan to records `from`..`to` of a shard, one range per read; `replace` for the
   * recomputed part of a cut range (it lies before the ranges held, and does not move the shard's seq).
   */
  private async apply(state: ViewState, shard: number, from: number, to: number, replace = false): Promise<void> {
    const name = state.stream.name;
    const recomputed: Range[] = [];
    for (let first = from; first <= to; ) {
      const batch = await this.options.stream.readBatch(name, shard, asSeq(first), Math.min(MICRO_BATCH_RECORDS, to - first + 1));
      if (batch.count === 0) throw new Error(`the log of ${name}/${shard} holds no record at seq ${first}`);
      if (batch.firstSeq !== first) throw new Error(`the log of ${name}/${shard} gave seq ${batch.firstSeq} where ${first} was expected`);
      const last = first + batch.count - 1;
      const staged = join(this.options.stagingDir, `${this.staged++}.ndjson`);
      try {
        await writeFile(staged, withOffsets([batch], batch.count, batch.bytes, shard));
        const columns = readJsonColumns(state.stream.fields, OFFSET_COLUMNS);
        const select = state.stream.fields.map((field) => quoteIdent(field.name)).join(', ');
        // Parsed once into a temporary table, then every relation's partial plan reads that table.
        await this.connection.run(
          `CREATE OR REPLACE TEMP TABLE micro_batch AS SELECT ${select} FROM read_json(${sqlString(staged)}, format = 'newline_delimited', columns = ${columns})`,
        );
        const source = 'SELECT * FROM micro_batch';
        await this.connection.run('BEGIN TRANSACTION');
        try {
          for (let i = 0; i < state.relations.length; i++) {
            await this.connection.run(
              `INSERT INTO ${state.tables[i]!} SELECT *, ${shard}::INTEGER, ${first}::BIGINT, ${last}::BIGINT FROM (${state.relations[i]!.sql(source)})`,
            );
          }
          await this.connection.run('COMMIT');
        } catch (error) {
          await this.connection.run('ROLLBACK');
          throw error;
        }
      } finally {
        await this.connection.run('DROP TABLE IF EXISTS micro_batch').catch(() => undefined);
        await rm(staged, { force: true });
      }
      state.generation++;
      if (replace) recomputed.push({ first, last });
      else {
        state.ranges[shard]!.push({ first, last });
        state.seq[shard] = last;
      }
      first = last + 1;
    }
    if (replace) state.ranges[shard] = [...recomputed, ...state.ranges[shard]!];
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

  /** Age of the oldest durable record of the view's stream that no layer shows yet; 0 when there is none. */
  private async freshness(state: ViewState): Promise<number> {
    const now = Date.now();
    let oldest = 0;
    const shards = this.options.stream.shards(state.stream.name);
    for (let shard = 0; shard < state.seq.length; shard++) {
      if ((shards[shard]?.lastSeq ?? 0) <= state.seq[shard]!) continue;
      const [record] = await this.options.stream.read(state.stream.name, shard, asSeq(state.seq[shard]! + 1), 1);
      if (record) oldest = Math.max(oldest, now - record.appendedAt);
    }
    return oldest;
  }
}
