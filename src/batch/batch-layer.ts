import { createHash, randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { Catalog, ChunkInfo, ChunkSnapshot, CleanChunkInfo, NewViewVersion, ViewFile, ViewVersionInfo, Watermark } from '../catalog/index.js';
import type { ProjectConfig, StreamConfig } from '../config/index.js';
import { NotFoundError, StrataError } from '../errors.js';
import { parquetCopyOptions, type ObjectStore } from '../lake/index.js';
import { encryptionSettings, ParquetKeys } from '../lake/parquet-encryption.js';
import type { Keyring } from '../security/keyring.js';
import { FileSchemas } from '../sql/file-schemas.js';
import { PARTITION_COLUMN, viewQuery } from '../sql/lake-views.js';
import { DAY_MS, dayOf } from '../util/days.js';
import { groupBy } from '../util/group-by.js';
import { quoteIdent, sqlString } from '../util/duckdb.js';
import type { RecordSource } from '../transform/index.js';
import type { ViewDefinition } from '../views/index.js';
import { cleanChunksSql, cleanRawChunks, lakeFilesSql } from './clean-stage.js';
import { anyRepeated, KeyIndex, mergeKeyHashes, readKeyHashes, type KeyHashes } from './key-index.js';
import { PARTITION_OF_PARTIAL, partialRelations, planHash } from './partials.js';

/** A batch run was asked for views a run already running covers; `runId` is that run. */
export class BatchRunningError extends StrataError {
  override readonly name: string = 'BatchRunningError';
  readonly code = 'batch_running';
  constructor(
    message: string,
    readonly runId: string,
  ) {
    super(message);
  }
}

/** What a run is asked to do. */
export interface BatchRequest {
  /** The views to compute; all views when absent or empty. */
  readonly views?: readonly string[];
  /** Recompute every partition instead of only those that received chunks since the current version. */
  readonly fromScratch?: boolean;
}

export type BatchRunState = 'running' | 'succeeded' | 'failed';

/** A run as `GET /v1/batch/runs/{id}` shows it. */
export interface BatchRunStatus {
  readonly id: string;
  readonly state: BatchRunState;
  readonly views: readonly string[];
  readonly fromScratch: boolean;
  /** 0..1: partition partials written out of those to write; 1 once published. */
  readonly progress: number;
  /** The run's W, per stream and shard; null until the run has read the catalog. */
  readonly watermark: Watermark | null;
  /** The version each view got; empty until the run published. */
  readonly version: Readonly<Record<string, number>>;
  /** Per view, the source partitions whose partials this run computed (the others were reused). */
  readonly recomputed: Readonly<Record<string, readonly string[]>>;
  readonly startedAt: string;
  readonly finishedAt: string | null;
  readonly error: string | null;
}

export interface BatchLayerOptions {
  readonly catalog: Catalog;
  readonly store: ObjectStore;
  readonly config: ProjectConfig;
  /** The compiled views, by name. */
  readonly views: ReadonlyMap<string, ViewDefinition>;
  /** Per stream, the records its views read (clean ones when it declares a transform). */
  readonly sources: ReadonlyMap<string, RecordSource>;
  /** Where DuckDB spills big aggregations. */
  readonly spillDir?: string;
  /** Told about scheduled runs that fail. */
  readonly log?: (message: string) => void;
  /**
   * With a keyring, chunks are read with their partition's key, partial files are written encrypted under the
   * key of their version's partition (src/lake/parquet-encryption.ts), and what DuckDB spills is encrypted.
   */
  readonly keyring?: Keyring | null;
  /** Awaited after a run published its versions, before it succeeds: serving loads them (see execute). */
  readonly afterPublish?: () => Promise<void>;
}

/**
 * A partition holding more partial files than this per relation (a base and the deltas of incremental runs)
 * is recomputed whole, which folds its files back into one.
 */
const MAX_FILES_PER_PARTITION = 8;

/** Finished runs remembered for `GET /v1/batch/runs/{id}`; older ones are forgotten. */
const KEPT_RUNS = 100;

/** A mutable run record; {@link BatchRunStatus} is its snapshot. */
interface Run {
  id: string;
  state: BatchRunState;
  views: string[];
  fromScratch: boolean;
  done: number;
  total: number;
  watermark: Watermark | null;
  version: Record<string, number>;
  recomputed: Record<string, string[]>;
  startedAt: string;
  finishedAt: string | null;
  error: string | null;
  finished: Promise<void>;
}

/** A view's next version, computed but not yet published. */
interface Computed {
  readonly version: NewViewVersion;
  /** Keys this run wrote, to delete if the run fails. */
  readonly written: string[];
}

/**
 * The batch layer (architecture §3): a run picks a watermark W, computes each view's partials over exactly the
 * chunks W covers, writes them as a new view version, and publishes every version of the run in one catalog
 * transaction, which flips the views' current versions.
 *
 * W and the chunk set come from one catalog transaction ({@link Catalog.snapshot}): per shard, the delivered
 * seq, which delivery advances in the same transaction that registers a chunk, so the chunks of the snapshot
 * are exactly those with lastSeq <= W. Imported chunks (bulk imports into a stream's table) have no offsets;
 * every one registered at the snapshot is covered, and the version records the largest such chunk id.
 *
 * Partials are computed per event-time partition of the source (`dt`), one Parquet file per (relation,
 * partition) under `views/<view>/v=<n>/<relation>/dt=<partition>/part.parquet`. Incremental runs touch only
 * partitions that received a chunk the current version does not cover (a delivered chunk past its W, an
 * imported chunk past its largest import id): they write a `delta.parquet` of partials over those chunks alone
 * and list the current version's files by reference (files are immutable; a version lists every file it
 * reads); see {@link planVersion}. From-scratch runs recompute every partition; both merge to the same rows.
 *
 * Runs use a DuckDB instance of their own, with `batch.threads` threads (1 by default, so that ingest and
 * delivery keep the other core of a 2-core machine).
 */
export class BatchLayer {
  private readonly runs = new Map<string, Run>();
  private readonly timers: NodeJS.Timeout[] = [];
  private closed = false;
  /** Test seam: runs after every view is computed and before the versions are published. */
  beforePublish: ((runId: string) => void | Promise<void>) | null = null;

  /** Runs and eager cleans clean a stream's new raw chunks one at a time, so that no raw chunk is cleaned twice. */
  private readonly cleaning = new Map<string, Promise<unknown>>();
  /** Eager cleans not finished, which close waits for (a clean that has not started when closing cleans nothing). */
  private readonly eagerCleans = new Set<Promise<void>>();
  /** Per stream, the eager clean that has not started yet, which deliveries told meanwhile join. */
  private readonly eagerCleanWaiting = new Map<string, Promise<void>>();
  /** Per stream, the deliveries (shard, last seq) told and not yet taken by an eager clean. */
  private readonly deliveredUncleaned = new Map<string, { shard: number; lastSeq: number }[]>();
  /** The de-duplication keys of the clean chunks incremental runs judged against, kept from run to run. */
  private readonly keyIndex: KeyIndex;

  private constructor(
    private readonly options: BatchLayerOptions,
    private readonly instance: DuckDBInstance,
    private readonly keys: ParquetKeys,
    /** Per stream with a transform, the catalog's number of its current transform version. */
    private readonly transformVersions: ReadonlyMap<string, number>,
  ) {
    this.keyIndex = new KeyIndex(options.config.batch.dedupeIndexKeys);
  }

  static async open(options: BatchLayerOptions): Promise<BatchLayer> {
    const instance = await DuckDBInstance.create(':memory:', {
      threads: String(options.config.batch.threads),
      memory_limit: options.config.batch.memoryLimit,
      ...(options.spillDir !== undefined ? { temp_directory: options.spillDir } : {}),
      ...encryptionSettings(options.keyring),
    });
    const connection = await instance.connect();
    // Partials are computed the same way whatever the machine's time zone.
    await connection.run(`SET GLOBAL TimeZone = 'UTC'`);
    // Nothing a run writes depends on row order (partials are aggregates; duplicates are found by file and row
    // after the clean files are written), and without it DuckDB writes Parquet in parallel.
    await connection.run(`SET GLOBAL preserve_insertion_order = false`);
    connection.closeSync();
    const transformVersions = new Map<string, number>();
    for (const source of options.sources.values()) {
      if (source.transformVersion === null || source.rulesJson === null) continue;
      const stream = options.config.streams.get(source.stream)!;
      // Clean records depend on the rules and on the raw schema they read: either changing makes a new version.
      const digest = createHash('sha256').update(JSON.stringify([source.transformVersion, stream.fields])).digest('hex').slice(0, 16);
      const version = await options.catalog.ensureTransformVersion(source.stream, digest, source.rulesJson);
      transformVersions.set(source.stream, version.version);
    }
    return new BatchLayer(options, instance, new ParquetKeys(options.keyring ?? null), transformVersions);
  }

  /** The catalog's number of a stream's current transform version; null for a stream without a transform. */
  transformVersion(stream: string): number | null {
    return this.transformVersions.get(stream) ?? null;
  }

  /**
   * Cleans the chunks delivery registered for a shard's `records` records up to `lastSeq` (one chunk per event-time
   * partition), without waiting for a run. Delivery asks for it after each seal (as an S3 event starts a Glue job
   * in the AWS design), so runs find new chunks clean and pay only for judging duplicates and computing views, and
   * `<stream>__clean` reads clean files instead of applying the rules at query time. The cleaning costs what it
   * costs in a run, paid as chunks arrive, on the batch layer's DuckDB threads. History (after a rules change),
   * imports and seals of fewer than `batch.cleanOnDeliveryMinRecords` records are left to runs, which clean a
   * partition's chunks together: seals of a few records every few ms (a low `delivery.maxSeconds`), each cleaned
   * alone after catalog reads that list the lake, kept the main thread and the batch layer's thread busy (in the
   * lambda invariant test with transforms, 25 runs in 35 s became 6 in 44–95 s, and under an extra busy core the
   * speed layer fell a minute behind).
   *
   * Each raw chunk gets a clean chunk of its own, so that a run whose W falls between two chunks of a partition
   * still finds clean chunks holding exactly its chunks. Answers when the clean that takes this delivery is done,
   * and never rejects: a failure is logged, and the next run cleans what is left. Nothing for a stream without a
   * transform.
   */
  cleanDelivered(stream: string, shard: number, lastSeq: number, records: number): Promise<void> {
    // Deciding here, before any catalog read: small chunks come every few ms, and each read lists the lake's chunks.
    if (this.closed || !this.transformVersions.has(stream) || records < this.options.config.batch.cleanOnDeliveryMinRecords) return Promise.resolve();
    const told = this.deliveredUncleaned.get(stream) ?? [];
    told.push({ shard, lastSeq });
    this.deliveredUncleaned.set(stream, told);
    // One clean waits per stream at most, and takes every delivery told until it starts: when chunks land faster
    // than they are cleaned (small ones, every few ms), cleans do not queue up behind each other.
    const waiting = this.eagerCleanWaiting.get(stream);
    if (waiting !== undefined) return waiting;
    const dedupe = this.options.sources.get(stream)?.dedupe ?? null;
    const take = async () => {
      this.eagerCleanWaiting.delete(stream);
      const taken = new Set((this.deliveredUncleaned.get(stream) ?? []).map((delivery) => `${delivery.shard}/${delivery.lastSeq}`));
      this.deliveredUncleaned.delete(stream);
      if (this.closed) return [];
      return (await this.options.catalog.chunks(stream)).filter(
        (chunk) => chunk.shard !== null && taken.has(`${chunk.shard}/${chunk.lastSeq}`),
      );
    };
    const work: Promise<void> = this.withConnection(async (connection) => {
      const cleaned = await this.cleanStream(connection, new FileSchemas(connection, this.keys), stream, take, true);
      // The next incremental run judges these records against the counted ones of the partitions up to the window
      // around theirs: the keys of both are read into the key index now, while nothing waits on them.
      if (dedupe === null || cleaned === null || cleaned.size === 0 || this.closed) return;
      const days = Math.max(1, Math.ceil(dedupe.withinMs / DAY_MS));
      const partitions = new Set([...cleaned.values()].flatMap((clean) => [...neighbourDays(clean.partition, days, -1), clean.partition, ...neighbourDays(clean.partition, days, 1)]));
      const version = this.transformVersions.get(stream)!;
      const around = (await this.options.catalog.cleanChunks(stream, version)).filter((clean) => partitions.has(clean.partition));
      if (around.reduce((keys, clean) => keys + clean.cleanRows, 0) > this.keyIndex.budget) return;
      await this.indexKeys(connection, stream, dedupe.keys, around);
      this.keyIndex.evict([...partitions].map((partition) => keyIndexSlot(stream, partition)));
    }).then(
      () => undefined,
      (error: unknown) => this.options.log?.(`cleaning the new chunks of "${stream}": ${(error as Error).message}`),
    );
    // A clean that failed before it took the deliveries leaves them to the next one.
    void work.finally(() => {
      if (this.eagerCleanWaiting.get(stream) === work) this.eagerCleanWaiting.delete(stream);
      this.eagerCleans.delete(work);
    });
    this.eagerCleanWaiting.set(stream, work);
    this.eagerCleans.add(work);
    return work;
  }

  private async withConnection<T>(action: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
    const connection = await this.instance.connect();
    try {
      return await action(connection);
    } finally {
      connection.closeSync();
    }
  }

  /** The views this layer computes. */
  get views(): ReadonlyMap<string, ViewDefinition> {
    return this.options.views;
  }

  /**
   * Starts a run and answers its status at once. Throws {@link NotFoundError} for an unknown view and
   * {@link BatchRunningError} when a running run covers any of the views.
   */
  start(request: BatchRequest = {}): BatchRunStatus {
    if (this.closed) throw new Error('the batch layer is closed');
    const names = request.views && request.views.length > 0 ? [...new Set(request.views)] : [...this.options.views.keys()];
    for (const name of names) {
      if (!this.options.views.has(name)) {
        const known = [...this.options.views.keys()];
        throw new NotFoundError(`unknown view "${name}"${known.length > 0 ? `; views: ${known.join(', ')}` : '; the config declares no views'}`);
      }
    }
    for (const run of this.runs.values()) {
      const overlap = run.state === 'running' ? names.find((name) => run.views.includes(name)) : undefined;
      if (overlap !== undefined) {
        throw new BatchRunningError(`batch run ${run.id} is running for view "${overlap}"; wait for it or follow it`, run.id);
      }
    }
    const run: Run = {
      id: randomUUID(),
      state: 'running',
      views: names,
      fromScratch: request.fromScratch === true,
      done: 0,
      total: 0,
      watermark: null,
      version: {},
      recomputed: {},
      startedAt: new Date().toISOString(),
      finishedAt: null,
      error: null,
      finished: Promise.resolve(),
    };
    this.runs.set(run.id, run);
    run.finished = this.execute(run).then(
      () => {
        run.state = 'succeeded';
      },
      (error: unknown) => {
        run.state = 'failed';
        run.error = error instanceof Error ? error.message : String(error);
        this.options.log?.(`batch run ${run.id} failed: ${run.error}`);
      },
    ).finally(() => {
      run.finishedAt = new Date().toISOString();
      this.forgetOldRuns();
    });
    return this.status(run.id)!;
  }

  /** A run's status, or null for an id never seen (or long forgotten). */
  status(id: string): BatchRunStatus | null {
    const run = this.runs.get(id);
    if (!run) return null;
    return {
      id: run.id,
      state: run.state,
      views: [...run.views],
      fromScratch: run.fromScratch,
      progress: run.state === 'succeeded' ? 1 : run.total === 0 ? 0 : Math.min(0.99, run.done / run.total),
      watermark: run.watermark,
      version: { ...run.version },
      recomputed: Object.fromEntries(Object.entries(run.recomputed).map(([view, partitions]) => [view, [...partitions]])),
      startedAt: run.startedAt,
      finishedAt: run.finishedAt,
      error: run.error,
    };
  }

  /** The runs remembered (running and the last finished ones), oldest first. */
  listRuns(): BatchRunStatus[] {
    return [...this.runs.keys()].map((id) => this.status(id)!);
  }

  /** Waits for a run to finish and answers its final status. */
  async wait(id: string): Promise<BatchRunStatus> {
    const run = this.runs.get(id);
    if (!run) throw new NotFoundError(`unknown batch run "${id}"`);
    await run.finished;
    return this.status(id)!;
  }

  /** Starts a run and waits for it; see {@link start}. A failed run answers its status, it does not throw. */
  async run(request: BatchRequest = {}): Promise<BatchRunStatus> {
    return this.wait(this.start(request).id);
  }

  /** Runs each view that declares `every` on that schedule; a tick while the view's run is going is skipped. */
  startSchedules(): void {
    for (const view of this.options.config.views.values()) {
      if (view.everyMs === null || !this.options.views.has(view.name)) continue;
      const timer = setInterval(() => {
        if (this.closed) return;
        try {
          this.start({ views: [view.name] });
        } catch (error) {
          if (!(error instanceof BatchRunningError)) this.options.log?.(`scheduled batch of "${view.name}": ${(error as Error).message}`);
        }
      }, view.everyMs);
      timer.unref();
      this.timers.push(timer);
    }
  }

  /** Stops the schedules, waits for running runs to end, and closes DuckDB. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.timers) clearInterval(timer);
    await Promise.all([...this.runs.values()].map((run) => run.finished));
    await Promise.all(this.eagerCleans);
    this.instance.closeSync();
  }

  private forgetOldRuns(): void {
    const finished = [...this.runs.values()].filter((run) => run.state !== 'running');
    for (const run of finished.slice(0, Math.max(0, finished.length - KEPT_RUNS))) this.runs.delete(run.id);
  }

  private async execute(run: Run): Promise<void> {
    const { catalog, store, config } = this.options;
    const views = run.views.map((name) => this.options.views.get(name)!);
    const sources = [...new Set(views.map((view) => view.source))];
    const snapshot = await catalog.snapshot(sources);
    run.watermark = watermarkOf(snapshot, sources.map((name) => config.streams.get(name)!));

    // Plan first (what each view recomputes), so progress counts the whole run.
    const plans = [];
    for (const view of views) {
      const stream = config.streams.get(view.source)!;
      const chunks = snapshot.chunks.get(view.source) ?? [];
      assertCovered(chunks, run.watermark[view.source] ?? {});
      const versions = await catalog.viewVersions(view.name);
      const current = versions.find((version) => version.current) ?? null;
      const source = this.options.sources.get(view.source)!;
      const dedupeDays = source.dedupe === null ? 0 : Math.max(1, Math.ceil(source.dedupe.withinMs / DAY_MS));
      const plan = planVersion(view, stream, chunks, current, run.fromScratch, source.transformVersion, dedupeDays);
      const replan = (displaced: ReadonlySet<string> | null) =>
        planVersion(view, stream, chunks, current, run.fromScratch, source.transformVersion, dedupeDays, displaced);
      plans.push({ view, stream, plan, replan, version: (versions[0]?.version ?? 0) + 1 });
      run.total += plan.tasks.length * partialRelations(view).length;
      run.recomputed[view.name] = [...new Set(plan.tasks.map((task) => task.partition))].sort();
    }
    run.total += 1; // the publish

    const computed: Computed[] = [];
    const connection = await this.instance.connect();
    try {
      const schemas = new FileSchemas(connection, this.keys);
      const cleanOf = new Map<string, Map<number, CleanChunkInfo>>();
      for (const name of sources) {
        const cleaned = await this.cleanStream(connection, schemas, name, snapshot.chunks.get(name) ?? []);
        if (cleaned) cleanOf.set(name, cleaned);
      }
      for (const entry of plans) {
        const { view, stream, version } = entry;
        let plan = entry.plan;
        if (plan.newCopies !== null) {
          const displaced = await this.judgeNewCopies(connection, stream.name, plan.newCopies, cleanOf.get(stream.name));
          if (displaced === null || displaced.size > 0) {
            plan = entry.replan(displaced);
            run.total += (plan.tasks.length - entry.plan.tasks.length) * partialRelations(view).length;
            run.recomputed[view.name] = [...new Set(plan.tasks.map((task) => task.partition))].sort();
          }
        }
        const written: string[] = [];
        computed.push({
          written,
          version: {
            view: view.name,
            version,
            watermark: { [view.source]: run.watermark[view.source] ?? {} },
            maxImportChunk: plan.maxImportChunk,
            planHash: plan.hash,
            fromScratch: plan.fromScratch,
            files: [
              ...plan.reused,
              ...(await this.computePartitions(connection, schemas, view, stream, plan.tasks, version, written, cleanOf.get(stream.name), () => run.done++)),
            ],
          },
        });
      }
      if (this.beforePublish) await this.beforePublish(run.id);
      // The flip: every view of the run gets its new version in one transaction, or none does.
      const unreferenced = await catalog.publishViewVersions(
        computed.map((c) => c.version),
        config.batch.keepVersions,
      );
      for (const c of computed) run.version[c.version.view] = c.version.version;
      // Files only forgotten versions listed: nothing reads them any more (readers bind the current version).
      for (const key of unreferenced) await store.delete(key).catch(() => undefined);
    } catch (error) {
      // Nothing was published: the files this run wrote are listed nowhere. Lake recovery would remove them
      // too; removing them now keeps the lake tidy until the next start.
      for (const c of computed) for (const key of c.written) await store.delete(key).catch(() => undefined);
      throw error;
    } finally {
      connection.closeSync();
    }
    // Serving answers from the version the speed layer holds in memory: the run ends once it holds the new ones,
    // so a read after the run sees them, and a read during the load answers from the version before.
    await this.options.afterPublish?.().catch((error: unknown) => this.options.log?.(`batch run ${run.id}: loading its versions for serving: ${(error as Error).message}`));
  }

  /**
   * Cleans the stream's raw chunks no clean chunk holds yet (see clean-stage.ts), one clean at a time per stream,
   * and answers the clean chunk of each of `chunks` (or of the chunks `chunks` answers when the clean starts);
   * null for a stream without a transform.
   */
  private async cleanStream(
    connection: DuckDBConnection,
    schemas: FileSchemas,
    name: string,
    chunks: readonly ChunkInfo[] | (() => Promise<readonly ChunkInfo[]>),
    separately = false,
  ): Promise<Map<number, CleanChunkInfo> | null> {
    const transformVersion = this.transformVersions.get(name);
    if (transformVersion === undefined) return null;
    const { catalog, store, config } = this.options;
    const previous = this.cleaning.get(name) ?? Promise.resolve();
    const work = previous.catch(() => undefined).then(async () => {
      // Files of older rules are never read again: the views' plans changed with the rules.
      for (const key of await catalog.dropCleanChunks(name, transformVersion)) await store.delete(key).catch(() => undefined);
      const written: string[] = [];
      try {
        return await cleanRawChunks(
          { catalog, store, connection, schemas, stream: config.streams.get(name)!, source: this.options.sources.get(name)!, transformVersion, keys: this.keys },
          typeof chunks === 'function' ? await chunks() : chunks,
          written,
          separately,
        );
      } catch (error) {
        for (const key of written) await store.delete(key).catch(() => undefined);
        throw error;
      }
    });
    this.cleaning.set(name, work);
    return work;
  }

  /**
   * Judges a run's new records against the counted ones (see {@link planVersion}) into the temp table
   * `new_copies`, and answers the partitions holding counted copies they displace. Null when the clean chunks do
   * not hold exactly the chunks to judge (as after a concurrent run cleaned past this run's W).
   *
   * The key index (key-index.ts) names the counted clean chunks holding a copy of a new record's key, and tells
   * whether two new records share one: only those chunks are read. When there are none and no new key repeats, no
   * new record has a copy, so none is a duplicate or displaces one, and nothing more is read.
   */
  private async judgeNewCopies(
    connection: DuckDBConnection,
    stream: string,
    newCopies: NonNullable<VersionPlan['newCopies']>,
    cleanOf: ReadonlyMap<number, CleanChunkInfo> | undefined,
  ): Promise<Set<string> | null> {
    const { store } = this.options;
    const records = this.options.sources.get(stream)!;
    if (cleanOf === undefined || records.dedupe === null) return null;
    const fresh = cleanChunksSql(store, this.keys, newCopies.fresh, cleanOf, IDENTITY_OPTIONS);
    const counted = newCopies.counted.length === 0 ? null : cleanChunksSql(store, this.keys, newCopies.counted, cleanOf);
    if (fresh === null || (newCopies.counted.length > 0 && counted === null)) return null;
    const cleanChunks = (raw: readonly ChunkInfo[]) => [...new Map(raw.map((chunk) => [cleanOf.get(chunk.id)!.id, cleanOf.get(chunk.id)!])).values()];
    // Null when the window's keys are more than the index may hold: the judging then reads them all.
    const indexed = await this.copiesIndexed(connection, stream, records.dedupe.keys, cleanChunks(newCopies.fresh), cleanChunks(newCopies.counted));
    if (indexed !== null && !indexed.repeated && indexed.holders.length === 0) {
      await connection.run(
        `CREATE OR REPLACE TEMP TABLE new_copies AS SELECT NULL::VARCHAR AS ${quoteIdent(FILE_COLUMN)}, NULL::BIGINT AS file_row_number,
           false AS __duplicate, NULL::VARCHAR AS __displaced WHERE false`,
      );
      return new Set();
    }
    const holding = indexed === null ? counted : lakeFilesSql(store, this.keys, indexed.holders.map((clean) => clean.cleanKey));
    await this.keys.registerNamed(connection, `${fresh}\n${holding ?? ''}`);
    await connection.run(`CREATE OR REPLACE TEMP TABLE new_copies AS ${records.newCopiesSql(fresh, holding, IDENTITY, PARTITION_COLUMN)!}`);
    const reader = await connection.runAndReadAll('SELECT DISTINCT __displaced FROM new_copies WHERE __displaced IS NOT NULL');
    return new Set(reader.getRows().map((row) => String(row[0])));
  }

  /**
   * Through the key index: whether two of the `fresh` clean chunks' records share a key hash (`repeated`), and the
   * `counted` clean chunks holding a key hash of one of them. Chunks the index lacks are read into it first (the
   * fresh ones stay, as later runs count them). Null when the index cannot hold them all within its budget.
   */
  private async copiesIndexed(
    connection: DuckDBConnection,
    stream: string,
    keyColumns: readonly string[],
    fresh: readonly CleanChunkInfo[],
    counted: readonly CleanChunkInfo[],
  ): Promise<{ repeated: boolean; holders: CleanChunkInfo[] } | null> {
    const index = this.keyIndex;
    const slot = (clean: CleanChunkInfo) => keyIndexSlot(stream, clean.partition);
    if (fresh.length === 0) return { repeated: false, holders: [] };
    const all = [...fresh, ...counted];
    if (all.reduce((keys, clean) => keys + clean.cleanRows, 0) > index.budget) return null;
    await this.indexKeys(connection, stream, keyColumns, all);
    const partitions = [...new Set(all.map(slot))];
    // Nothing below awaits: an eager clean adding (and evicting) meanwhile cannot take a partition away mid-lookup.
    if (!all.every((clean) => index.holds(slot(clean), clean.id))) return null;
    const probe = fresh.map((clean) => index.hashesOf(slot(clean), clean.id)).reduce(mergeKeyHashes);
    const freshIds = new Set(fresh.map((clean) => clean.id));
    const countedById = new Map(counted.map((clean) => [clean.id, clean]));
    const holders = new Set<CleanChunkInfo>();
    index.holders(partitions, probe, (chunkId) => freshIds.has(chunkId), (chunkId) => {
      const clean = countedById.get(chunkId);
      if (clean !== undefined) holders.add(clean);
    });
    const repeated = anyRepeated(probe);
    index.evict(partitions);
    return { repeated, holders: [...holders] };
  }

  /** Reads the keys of the clean chunks the key index does not hold into it, a query per partition. */
  private async indexKeys(connection: DuckDBConnection, stream: string, keyColumns: readonly string[], chunks: readonly CleanChunkInfo[]): Promise<void> {
    const missing = chunks.filter((clean) => !this.keyIndex.holds(keyIndexSlot(stream, clean.partition), clean.id));
    for (const [partition, group] of groupBy(missing, (clean) => clean.partition)) {
      this.keyIndex.add(keyIndexSlot(stream, partition), group.map((clean) => clean.id), await this.keyHashesOf(connection, keyColumns, group));
    }
  }

  /** The key hashes of the records of some clean chunks, sorted, each with its chunk's id. */
  private async keyHashesOf(connection: DuckDBConnection, keyColumns: readonly string[], chunks: readonly CleanChunkInfo[]): Promise<KeyHashes> {
    const keys = keyColumns.map(quoteIdent).join(', ');
    const sql = chunks
      .map((clean) => `SELECT ${keys}, ${clean.id}::INTEGER AS __chunk FROM (${lakeFilesSql(this.options.store, this.keys, [clean.cleanKey])!}) AS chunk`)
      .join(' UNION ALL ');
    await this.keys.registerNamed(connection, sql);
    return readKeyHashes(connection, sql, keyColumns);
  }

  /** Writes the partial files of the given tasks and answers them. */
  private async computePartitions(
    connection: DuckDBConnection,
    schemas: FileSchemas,
    view: ViewDefinition,
    stream: StreamConfig,
    tasks: readonly PartitionTask[],
    version: number,
    written: string[],
    cleanOf: ReadonlyMap<number, CleanChunkInfo> | undefined,
    step: () => void,
  ): Promise<ViewFile[]> {
    const { store } = this.options;
    const files: ViewFile[] = [];
    const records = this.options.sources.get(stream.name)!;
    // The rows exactly as the SQL engine's table shows them (schema evolution included).
    const raw = async (list: readonly ChunkInfo[]) =>
      viewQuery({ kind: 'raw', columns: stream.fields }, await schemas.group(list.map((chunk) => this.keys.file(store.location(chunk.key), chunk.key))));
    // The clean records of some chunks: from their clean chunks, or cleaned here when none hold exactly them.
    const clean = async (list: readonly ChunkInfo[]) => {
      const files = cleanOf ? cleanChunksSql(store, this.keys, list, cleanOf) : null;
      return files !== null ? { sql: files, filesOnly: true } : { sql: records.recordsSql(await raw(list)), filesOnly: records.transformVersion === null };
    };
    const file = quoteIdent(FILE_COLUMN);
    const whole = tasks.filter((task) => !task.delta);
    let deduped: ((partition: string) => Promise<string>) | null = null;
    if (records.dedupe !== null && whole.length > 0) {
      // The copies that may come first lie up to the window earlier, in the partitions before each one. One narrow
      // pass over every chunk the run needs (keys, event time, offsets) finds the duplicates; each partition then
      // reads its clean records less those, by file and row number.
      const needed = [...new Map(whole.flatMap((task) => [...task.earlier, ...task.chunks]).map((chunk) => [chunk.id, chunk])).values()];
      const all = cleanOf ? cleanChunksSql(store, this.keys, needed, cleanOf, IDENTITY_OPTIONS) : null;
      const own = new Map(whole.map((task) => [task.partition, cleanOf ? cleanChunksSql(store, this.keys, task.chunks, cleanOf, IDENTITY_OPTIONS) : null]));
      if (all !== null && [...own.values()].every((sql) => sql !== null)) {
        await this.keys.registerNamed(connection, [all, ...own.values()].join('\n'));
        await connection.run(`CREATE OR REPLACE TEMP TABLE run_duplicates AS ${records.duplicateRowsSql(all, IDENTITY)!}`);
        deduped = async (partition) =>
          `SELECT * EXCLUDE (${file}, file_row_number) FROM (${own.get(partition)!}) AS clean ANTI JOIN run_duplicates USING (${file}, file_row_number)`;
      } else {
        await connection.run(`CREATE OR REPLACE TEMP TABLE run_records AS ${records.dedupedSql(await raw(needed))}`);
        deduped = async (partition) => `SELECT * FROM run_records WHERE ${quoteIdent(PARTITION_COLUMN)} = ${sqlString(partition)}`;
      }
    }
    // A delta under dedupe: the partition's new clean records less those judged duplicates (judgeNewCopies). Its
    // clean chunks hold new chunks only, of this partition alone: the judging, which read them all, checked that.
    const dedupedDelta = async (chunks: readonly ChunkInfo[]) => {
      if (!(await anyNewDuplicate())) return { sql: cleanChunksSql(store, this.keys, chunks, cleanOf!)!, filesOnly: true };
      const fresh = cleanChunksSql(store, this.keys, chunks, cleanOf!, IDENTITY_OPTIONS)!;
      await this.keys.registerNamed(connection, fresh);
      const sql = `SELECT * EXCLUDE (${file}, file_row_number) FROM (${fresh}) AS clean
                ANTI JOIN (SELECT ${file}, file_row_number FROM new_copies WHERE __duplicate) AS duplicates USING (${file}, file_row_number)`;
      return { sql, filesOnly: false };
    };
    // Whether the judging found any new record a duplicate; when none is, deltas read their clean chunks as they are.
    let newDuplicates: boolean | null = null;
    const anyNewDuplicate = async () =>
      (newDuplicates ??= (await connection.runAndReadAll('SELECT EXISTS (SELECT 1 FROM new_copies WHERE __duplicate)')).getRows()[0]?.[0] === true);
    for (const { partition, chunks, delta } of tasks) {
      const { sql: cleaned, filesOnly } =
        records.dedupe === null
          ? await clean(chunks)
          : delta
            ? await dedupedDelta(chunks)
            : { sql: await deduped!(partition), filesOnly: false };
      // Each relation reads the source. When it is more than lake files (clean records made by a join, or by the
      // rules over raw chunks) or the files are encrypted (each read decrypts), the partition's records are made once
      // into memory instead, only the columns the view names (measured at 10M events: transforms over clean chunks
      // +43 % → +20 %, encryption +41 % → +27–33 %). Plain files are read as they are: copying 1 % new data into
      // memory cost more than reading its clean chunk once per relation (incremental runs +31 → +22 %, medians).
      await this.keys.registerNamed(connection, cleaned);
      let source = cleaned;
      if (!filesOnly || this.keys.enabled) {
        const columns = await viewColumnsOf(connection, view, cleaned);
        await connection.run(`CREATE OR REPLACE TEMP TABLE partition_records AS SELECT ${columns} FROM (${cleaned}) AS cleaned`);
        source = 'SELECT * FROM partition_records';
      }
      for (const relation of partialRelations(view)) {
        const staged = store.stagingPath(`${view.name}-${relation.name}`);
        const key = `views/${view.name}/v=${version}/${relation.name}/dt=${partition}/${delta ? 'delta' : 'part'}.parquet`;
        const dataKey = await this.keys.forWrite(connection, key);
        const reader = await connection.runAndReadAll(
          `COPY (SELECT *, ${sqlString(partition)} AS ${quoteIdent(PARTITION_OF_PARTIAL)} FROM (${relation.sql(source)}))
             TO ${sqlString(staged)} (${parquetCopyOptions(dataKey)})`,
        );
        const rows = Number(reader.getRows()[0]?.[0] ?? 0);
        const bytes = (await stat(staged)).size;
        await store.publish(staged, key);
        written.push(key);
        files.push({ relation: relation.name, partition, key, rows, bytes });
        step();
      }
    }
    for (const table of ['partition_records', 'run_records', 'run_duplicates', 'new_copies']) await connection.run(`DROP TABLE IF EXISTS ${table}`);
    return files;
  }
}

/**
 * The columns of `source` the view's SQL names (by word, so a name inside a string literal counts too: a column too
 * many costs a little memory, one too few fails the run loudly), as a select list; `*` when it names none.
 */
async function viewColumnsOf(connection: DuckDBConnection, view: ViewDefinition, source: string): Promise<string> {
  const described = await connection.runAndReadAll(`DESCRIBE SELECT * FROM (${source}) AS source`);
  const names = described.getRows().map((row) => String(row[0]));
  const text = view.sql.toLowerCase();
  const named = names.filter((name) => new RegExp(`(^|[^a-z0-9_])${name.toLowerCase().replace(/[^a-z0-9_]/g, '\\$&')}([^a-z0-9_]|$)`).test(text));
  return named.length === 0 ? '*' : named.map(quoteIdent).join(', ');
}

/** The key index's name for a stream's partition (one index serves every stream). */
function keyIndexSlot(stream: string, partition: string): string {
  return `${stream}/${partition}`;
}

/** The column naming each clean record's file, with its row number the identity duplicates are removed by. */
const FILE_COLUMN = '__clean_file';
const IDENTITY = [FILE_COLUMN, 'file_row_number'];
/** The `read_parquet` options that add {@link IDENTITY}. */
const IDENTITY_OPTIONS = `, filename = ${sqlString(FILE_COLUMN)}, file_row_number = true`;

/** Partials to compute for one partition: over all its chunks (`part`), or over its new chunks only (`delta`). */
export interface PartitionTask {
  readonly partition: string;
  readonly chunks: readonly ChunkInfo[];
  readonly delta: boolean;
  /** With dedupe, the chunks of the partitions up to the window before it, where earlier copies may lie. */
  readonly earlier: readonly ChunkInfo[];
}

/** The `dt=` partitions (event-time days, `YYYY-MM-DD`) `days` before and after one; none for `__unknown__`. */
function neighbourDays(partition: string, days: number, direction: -1 | 1): string[] {
  const start = Date.parse(`${partition}T00:00:00Z`);
  if (Number.isNaN(start)) return [];
  return Array.from({ length: days }, (_, i) => dayOf(start + direction * (i + 1) * DAY_MS));
}

/** What a view's next version computes and what it reuses. */
interface VersionPlan {
  readonly hash: string;
  readonly fromScratch: boolean;
  /** Partials to compute, by partition. */
  readonly tasks: readonly PartitionTask[];
  /** The current version's files this version lists again. */
  readonly reused: readonly ViewFile[];
  readonly maxImportChunk: number;
  /**
   * With dedupe and deltas, what the run judges the new records against before computing: every new chunk, and
   * the counted chunks of the partitions up to the window around theirs. Null otherwise.
   */
  readonly newCopies: { readonly fresh: readonly ChunkInfo[]; readonly counted: readonly ChunkInfo[] } | null;
}

/**
 * The incremental rule. A chunk is new when the current version does not cover it: a delivered chunk whose
 * lastSeq is past the current version's W for its shard, or an imported chunk whose id is past the largest
 * import the current version covers. A partition with new chunks gets a delta: its partials over the new
 * chunks only, listed beside the partition's files of the current version (partials merge exactly, so a
 * partition's files together give what one file over all its chunks gives; float sums may differ in the last
 * bits of their summation order). A partition is recomputed whole when the current version lacks its files or
 * it has gathered {@link MAX_FILES_PER_PARTITION} files; every partition is, when asked (`fromScratch`), when
 * there is no current version, or when the plan differs. Partitions without new chunks reuse their files.
 *
 * With dedupe (`dedupeDays` > 0, the window in days rounded up), a delta holds the new records the window
 * keeps, judged against the counted ones (`newCopies`). A new record that lands within the window before a
 * counted copy that was kept turns it into a duplicate, which a delta cannot take back: the run judges first,
 * then plans again with the partitions of such copies `displaced`, recomputed whole. With `displaced` null (the
 * run could not judge), each partition with new chunks and the window's worth of partitions after it are.
 */
export function planVersion(
  view: ViewDefinition,
  stream: StreamConfig,
  chunks: readonly ChunkInfo[],
  current: ViewVersionInfo | null,
  fromScratch: boolean,
  transformVersion: string | null = null,
  dedupeDays = 0,
  displaced: ReadonlySet<string> | null = new Set(),
): VersionPlan {
  const hash = planHash(view, stream.fields, transformVersion);
  const partitions = [...new Set(chunks.map((chunk) => chunk.partition))].sort();
  const maxImportChunk = Math.max(0, ...chunks.filter((chunk) => chunk.shard === null).map((chunk) => chunk.id));
  const scratch = fromScratch || current === null || current.planHash !== hash;
  const inPartition = (partition: string) => chunks.filter((chunk) => chunk.partition === partition);
  const earlier = (partition: string) => neighbourDays(partition, dedupeDays, -1).flatMap(inPartition);
  const whole = (partition: string): PartitionTask => ({ partition, chunks: inPartition(partition), delta: false, earlier: earlier(partition) });
  if (scratch) return { hash, fromScratch: true, tasks: partitions.map(whole), reused: [], maxImportChunk, newCopies: null };
  const covered = current.watermark[stream.name] ?? {};
  const isNew = (chunk: ChunkInfo) =>
    chunk.shard === null ? chunk.id > current.maxImportChunk : (chunk.lastSeq ?? 0) > (covered[String(chunk.shard)] ?? 0);
  const relations = partialRelations(view).map((relation) => relation.name);
  const changed = partitions.filter((partition) => inPartition(partition).some(isNew));
  const redo = new Set<string>();
  let newCopies: VersionPlan['newCopies'] = null;
  if (dedupeDays > 0 && changed.length > 0) {
    const around = new Set(changed.flatMap((partition) => [...neighbourDays(partition, dedupeDays, -1), partition, ...neighbourDays(partition, dedupeDays, 1)]));
    if (displaced !== null) {
      newCopies = { fresh: chunks.filter(isNew), counted: [...around].sort().flatMap(inPartition).filter((chunk) => !isNew(chunk)) };
      for (const partition of displaced) redo.add(partition);
    } else {
      for (const partition of changed) for (const day of [partition, ...neighbourDays(partition, dedupeDays, 1)]) redo.add(day);
    }
  }
  const tasks: PartitionTask[] = [];
  const reused: ViewFile[] = [];
  for (const partition of partitions) {
    const held = current.files.filter((file) => file.partition === partition);
    const fresh = inPartition(partition).filter(isNew);
    const counts = relations.map((relation) => held.filter((file) => file.relation === relation).length);
    if (redo.has(partition) || counts.some((count) => count === 0) || (fresh.length > 0 && Math.max(...counts) >= MAX_FILES_PER_PARTITION)) {
      tasks.push(whole(partition));
      continue;
    }
    reused.push(...held);
    if (fresh.length > 0) tasks.push({ partition, chunks: fresh, delta: true, earlier: [] });
  }
  return { hash, fromScratch: false, tasks, reused, maxImportChunk, newCopies };
}

/** W for the given streams: every shard's delivered seq at the snapshot, 0 for a shard that delivered nothing. */
function watermarkOf(snapshot: ChunkSnapshot, streams: readonly StreamConfig[]): Watermark {
  const watermark: Record<string, Record<string, number>> = {};
  for (const stream of streams) {
    const shards: Record<string, number> = {};
    for (let shard = 0; shard < stream.shards; shard++) shards[String(shard)] = snapshot.delivered[stream.name]?.[String(shard)] ?? 0;
    watermark[stream.name] = shards;
  }
  return watermark;
}

/** The invariant the snapshot gives: every delivered chunk it lists lies at or below W. A breach stops the run. */
function assertCovered(chunks: readonly ChunkInfo[], watermark: Readonly<Record<string, number>>): void {
  for (const chunk of chunks) {
    if (chunk.shard !== null && (chunk.lastSeq ?? 0) > (watermark[String(chunk.shard)] ?? 0)) {
      throw new Error(`chunk ${chunk.key} ends at seq ${chunk.lastSeq}, past the watermark ${watermark[String(chunk.shard)] ?? 0} of its shard`);
    }
  }
}
