import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { AlertEvaluator, compileAlerts } from './alerts/index.js';
import { BatchLayer, batchTables, cleanTables } from './batch/index.js';
import { SqliteCatalog, type Catalog } from './catalog/index.js';
import type { ProjectConfig } from './config/index.js';
import { ConfigError } from './errors.js';
import { Ingestor, type IngestStats } from './ingest/index.js';
import { KinesisState } from './kinesis/index.js';
import { ChunkWriter, DeliveryThread, LocalObjectStore, recoverLake, type ObjectStore } from './lake/index.js';
import { StrataMetrics } from './metrics/index.js';
import { checkDataDirEncryption, loadServerKey, MASTER_KEY_ENV, parseMasterKey, Security, SqliteKeyring, type Keyring } from './security/index.js';
import { SpeedLayer } from './speed/index.js';
import { SqlEngine } from './sql/index.js';
import { asSeq, EmbeddedStream, type Stream } from './stream/index.js';
import { compileTransforms, QuarantineCounts, recordSource } from './transform/index.js';
import { compileViews, type ViewDefinition } from './views/index.js';

/** One shard's position in every layer. */
export interface ShardStatus {
  readonly shard: number;
  readonly firstSeq: number | null;
  readonly lastSeq: number;
  readonly deliveredSeq: number;
  readonly deliveryLagRecords: number;
  readonly deliveryLagSeconds: number;
  readonly logBytes: number;
}

/** One stream's state across the layers. */
export interface StreamStatus {
  readonly name: string;
  readonly shards: readonly ShardStatus[];
  readonly ingest: IngestStats;
  readonly lake: { readonly chunks: number; readonly rows: number; readonly bytes: number };
  /** Delivered records the stream's transform quarantines; null without a transform. */
  readonly quarantined: number | null;
}

export interface StrataOptions {
  readonly config: ProjectConfig;
  /** The data directory: the log, and later the lake and catalog, live under it. */
  readonly dataDir: string;
  /** Told about recovery events (a torn log tail cut) and other things an operator should see once. */
  readonly log?: (message: string) => void;
  /** Run delivery from the log into the lake (default true); tests of one layer may leave it off. */
  readonly deliver?: boolean;
  /** The bootstrap admin token; default: the environment's STRATA_ADMIN_TOKEN (unset: none, see Security.bootstrapAdmin). */
  readonly adminToken?: string;
  /**
   * The master key of encryption at rest (32 bytes); default: the environment's STRATA_MASTER_KEY (base64), or
   * none. null: none. See {@link checkDataDirEncryption} for when a start is refused.
   */
  readonly masterKey?: Buffer | null;
}

/**
 * One running Strata: the composition root that opens every layer over one data directory and closes them
 * in order. The HTTP server and the CLI are edges around it; tests drive it directly.
 */
export class Strata {
  /** This instance's Prometheus metrics (`GET /metrics`), in a registry of its own. */
  readonly metrics: StrataMetrics;

  private constructor(
    readonly config: ProjectConfig,
    readonly dataDir: string,
    readonly stream: Stream,
    readonly ingestor: Ingestor,
    readonly catalog: Catalog,
    readonly store: ObjectStore,
    readonly writer: ChunkWriter,
    readonly delivery: DeliveryThread,
    /** Ad-hoc read-only SQL over the lake (the Athena role). */
    readonly sql: SqlEngine,
    /** The compiled views of the config, by name. */
    readonly views: ReadonlyMap<string, ViewDefinition>,
    /** Batch runs over the master dataset, publishing view versions. */
    readonly batch: BatchLayer,
    /** Micro-batches of the views over the log past each current batch version's W. */
    readonly speed: SpeedLayer,
    /** The config's alert rules, evaluated as the speed layer updates (`GET /v1/alerts`). */
    readonly alerts: AlertEvaluator,
    /** API tokens, policies, sessions, rate limits and the audit log: what every edge asks before it acts. */
    readonly security: Security,
    /** What each stream's transform quarantines, counted over the lake. */
    private readonly quarantine: QuarantineCounts,
    /** Everything opened, in opening order; closed in reverse. */
    private readonly parts: readonly { close(): Promise<void> }[],
    private readonly lockPath: string,
    /** The data keys of encryption at rest; null when Strata runs without a master key (unencrypted). */
    readonly keyring: Keyring | null,
    /** The Kinesis API's quarantine and shard-iterator signer (src/kinesis). */
    readonly kinesis: KinesisState,
  ) {
    this.metrics = new StrataMetrics(this);
  }

  static async open(options: StrataOptions): Promise<Strata> {
    const dataDir = resolve(options.dataDir);
    const fromEnv = process.env[MASTER_KEY_ENV];
    const masterKey = options.masterKey !== undefined ? options.masterKey : fromEnv !== undefined ? parseMasterKey(fromEnv, MASTER_KEY_ENV) : null;
    // Encryption at rest is settled first: a missing or wrong key is refused before anything is created or opened
    // for writing (not even the lock), so that a refused start changes nothing.
    const encryption = checkDataDirEncryption(dataDir, masterKey);
    await mkdir(dataDir, { recursive: true });
    const lockPath = await lockDataDir(dataDir);
    const opened: { close(): Promise<void> }[] = [];
    try {
      // An undecomposable view stops Strata here, before anything is opened, naming the view and construct.
      const views = await compileViews(options.config);
      // Bad transform rules stop Strata here too, naming the stream and the rule (DuckDB checks derive).
      const transforms = await compileTransforms(options.config);
      // An alert on a measure its view lacks, or whose condition names anything but group-by columns, stops here too.
      const alertRules = await compileAlerts(options.config.alerts, views);
      const sources = new Map(
        [...options.config.streams.values()].map((stream) => [stream.name, recordSource(stream, transforms.get(stream.name) ?? null)]),
      );
      // Made only once the config compiled, so that a config error does not leave a new directory encrypted.
      let keyring: SqliteKeyring | null = null;
      if (encryption === 'plain') {
        options.log?.('encryption at rest is off: no master key (set STRATA_MASTER_KEY or pass --key-file to encrypt a new data directory)');
      } else {
        keyring = encryption === 'create' ? SqliteKeyring.create(dataDir, masterKey!) : SqliteKeyring.open(dataDir, masterKey!);
        opened.push(keyring);
      }
      const catalog = new SqliteCatalog(join(dataDir, 'catalog.db'));
      opened.push(catalog);
      for (const stream of options.config.streams.values()) {
        await catalog.ensureTable(stream.name, 'raw', stream.fields);
      }
      const store = new LocalObjectStore(join(dataDir, 'lake'));
      await store.init();
      const removed = await recoverLake(store, catalog);
      if (removed.length > 0) options.log?.(`recovery: removed ${removed.length} lake file(s) the catalog does not list`);
      // Seals token secrets (for the Kinesis API's Signature V4) and signs shard iterators. With encryption at rest
      // it is a data key of the keyring, so `strata keys rotate` (which re-wraps data keys) keeps it; without, a key
      // file outside the data directory.
      const serverKey = await loadServerKey({ masterKey: keyring ? keyring.keyFor('security/server-key').key : null, dataDir });
      const security = await Security.open({
        serverKey,
        store: catalog,
        config: options.config,
        adminToken: options.adminToken ?? process.env.STRATA_ADMIN_TOKEN,
        // Under the lake, the one tree SQL may read: `strata_audit` is mirrored there (see src/security/audit.ts).
        auditDir: join(dataDir, 'lake', '_audit'),
        log: options.log,
      });
      opened.push(security);
      // `<view>__speed` and `<view>` come from the speed layer, opened later: the engine asks at query time.
      const speedRef: { layer?: SpeedLayer } = {};
      const batchDerived = batchTables(catalog, store, sources, views, keyring);
      const batchRef: { layer?: BatchLayer } = {};
      const cleanDerived = cleanTables(catalog, store, sources, (stream) => batchRef.layer?.transformVersion(stream) ?? null, keyring);
      // Records the Kinesis API accepted but the schema refuses: kept beside the lake, unioned into `<stream>__quarantine`.
      const kinesis = await KinesisState.open({ quarantineDir: join(dataDir, 'lake', '_kinesis_quarantine'), config: options.config, serverKey, keyring });
      opened.push(kinesis);
      const sql = await SqlEngine.open({
        keyring,
        catalog,
        store,
        lakeDir: join(dataDir, 'lake'),
        spillDir: join(dataDir, 'sql-spill'),
        timeoutMs: options.config.sql.timeoutSeconds * 1000,
        memoryLimit: options.config.sql.memoryLimit,
        derivedTables: async () => [...kinesis.quarantine.withQuarantineTables(await cleanDerived()), ...(await batchDerived()), ...(speedRef.layer?.derivedTables() ?? []), ...(await security.derivedTables())],
      });
      opened.push(sql);
      const deliveryRef: { thread?: DeliveryThread } = {};
      const stream = await EmbeddedStream.open({
        dir: join(dataDir, 'stream'),
        streams: Object.fromEntries([...options.config.streams.values()].map((s) => [s.name, { shards: s.shards }])),
        segmentBytes: options.config.log.segmentBytes,
        onTruncate: (info) =>
          options.log?.(`recovery: cut ${info.cutBytes} bytes of ${info.reason} at the tail of ${info.path}`),
        onDurable: (name, shard, seq) => deliveryRef.thread?.noteDurable(name, shard, seq),
        keyring,
        onCorrupt: (info) =>
          options.log?.(`log: corrupt frame at byte ${info.position} of ${info.path} (${info.reason}): seqs ${info.fromSeq}-${info.toSeq} are kept out of every read`),
      });
      opened.push(stream);
      const writer = await ChunkWriter.open(store, { keyring });
      opened.push(writer);
      const delivery = new DeliveryThread(dataDir, options.config, stream, options.log, keyring ? masterKey : null);
      deliveryRef.thread = delivery;
      if (options.deliver ?? true) await delivery.start();
      opened.push({ close: () => delivery.stop() });
      const batch = await BatchLayer.open({
        catalog,
        store,
        config: options.config,
        views,
        sources,
        spillDir: join(dataDir, 'batch-spill'),
        log: options.log,
        keyring,
        afterPublish: async () => speedRef.layer?.loadPublished(),
      });
      opened.push(batch);
      batchRef.layer = batch;
      // New chunks are cleaned as they land, so that runs find them clean (see BatchLayer.cleanDelivered).
      delivery.onDelivered = (name, shard, seq, records) => void batch.cleanDelivered(name, shard, seq, records);
      batch.startSchedules();
      const speed = await SpeedLayer.open({
        catalog,
        stream,
        store,
        config: options.config,
        views,
        sources,
        stagingDir: join(dataDir, 'speed-staging'),
        keyring,
        log: options.log,
      });
      opened.push(speed);
      speedRef.layer = speed;
      // Opened after the speed layer it reads, so closed before it.
      const alerts = await AlertEvaluator.open({ rules: alertRules, speed, intervalMs: options.config.speed.intervalMs, log: options.log });
      opened.push(alerts);
      const ingestor = new Ingestor(stream, options.config);
      const quarantine = new QuarantineCounts(sources, async (count) => Number((await sql.queryAll(count)).rows[0]?.n ?? 0));
      return new Strata(options.config, dataDir, stream, ingestor, catalog, store, writer, delivery, sql, views, batch, speed, alerts, security, quarantine, opened, lockPath, keyring, kinesis);
    } catch (error) {
      for (const part of opened.reverse()) await part.close();
      await rm(lockPath, { force: true });
      throw error;
    }
  }

  /**
   * Every stream's state across the layers, as `GET /v1/streams` and `strata status` show it: per shard the
   * last and delivered seq and the delivery lag (records, and seconds since the oldest undelivered record was
   * appended); per stream the ingest rate and counters and what the lake holds.
   */
  async streamStatus(): Promise<StreamStatus[]> {
    const now = Date.now();
    const tables = new Map((await this.catalog.tables()).map((table) => [table.name, table]));
    const out: StreamStatus[] = [];
    for (const stream of this.config.streams.values()) {
      const shards: ShardStatus[] = [];
      for (const shard of this.stream.shards(stream.name)) {
        const deliveredSeq = this.delivery.deliveredSeq(stream.name, shard.shard);
        const lagRecords = shard.lastSeq - deliveredSeq;
        let lagSeconds = 0;
        if (lagRecords > 0) {
          const [oldest] = await this.stream.read(stream.name, shard.shard, asSeq(deliveredSeq + 1), 1);
          if (oldest) lagSeconds = Math.max(0, (now - oldest.appendedAt) / 1000);
        }
        shards.push({
          shard: shard.shard,
          firstSeq: shard.firstSeq,
          lastSeq: shard.lastSeq,
          deliveredSeq,
          deliveryLagRecords: lagRecords,
          deliveryLagSeconds: lagSeconds,
          logBytes: shard.bytes,
        });
      }
      const table = tables.get(stream.name);
      out.push({
        name: stream.name,
        shards,
        ingest: this.ingestor.stats(stream.name),
        lake: { chunks: table?.chunks ?? 0, rows: table?.rows ?? 0, bytes: table?.bytes ?? 0 },
        quarantined: await this.quarantinedCount(stream.name, table?.rows ?? 0),
      });
    }
    return out;
  }

  /**
   * What the stream's transform quarantines (null without a transform) plus what the Kinesis API quarantined;
   * the count is recomputed when either the lake's rows or the Kinesis quarantine grew.
   */
  private async quarantinedCount(stream: string, rows: number): Promise<number | null> {
    const viaKinesis = this.kinesis.quarantine.count(stream);
    const ruled = await this.quarantine.of(stream, rows + viaKinesis);
    return ruled ?? (viaKinesis > 0 ? viaKinesis : null);
  }

  async close(): Promise<void> {
    for (const part of [...this.parts].reverse()) await part.close();
    await rm(this.lockPath, { force: true });
  }
}

/**
 * Takes the data directory for this process: two Strata processes writing one log would corrupt it. A lock
 * left by a killed process (its pid no longer running) is taken over, since recovery makes its state safe.
 */
export async function lockDataDir(dataDir: string): Promise<string> {
  const lockPath = join(dataDir, 'strata.lock');
  try {
    await writeFile(lockPath, String(process.pid), { flag: 'wx' });
    return lockPath;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const holder = Number((await readFile(lockPath, 'utf8').catch(() => '')).trim());
  if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isRunning(holder)) {
    throw new ConfigError(`data directory ${dataDir} is in use by process ${holder}`);
  }
  await writeFile(lockPath, String(process.pid));
  return lockPath;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
