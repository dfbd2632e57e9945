import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { StreamStatus, Strata } from '../strata.js';
import { asSeq } from '../stream/index.js';

/**
 * Ack latency buckets in seconds: a group commit puts a healthy ack at a few milliseconds; the upper buckets
 * show a saturated disk or an ingest bound that producers wait on.
 */
const ACK_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Query latency buckets in seconds: view reads aim at tens of milliseconds, ad-hoc SQL may run up to its timeout. */
const QUERY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/**
 * The Prometheus metrics of one {@link Strata}, in a registry of their own (never prom-client's global one), so
 * that several instances in one process, as tests run them, neither clash nor mix their figures.
 *
 * Two kinds of figures:
 * - Pushed by the HTTP edge, once per request: ingest answers and ack latency ({@link observeIngest}), query
 *   latency ({@link observeQuery}). Ingest counts records per request, never per record: the hot path runs at
 *   hundreds of thousands of records a second.
 * - Read at scrape time from the layers' own status methods ({@link scrape}): ingest counters, delivery and
 *   speed lag, view freshness, batch versions. Nothing in the layers is instrumented for them, so a layer
 *   pays nothing between scrapes.
 */
export class StrataMetrics {
  readonly registry = new Registry();

  private readonly ingestRecords: Counter<'stream'>;
  private readonly ingestBytes: Counter<'stream'>;
  private readonly ingestRecordErrors: Counter<'stream'>;
  private readonly ingestRequests: Counter<'stream' | 'code'>;
  private readonly ingestAck: Histogram<'stream'>;
  private readonly deliveryLagRecords: Gauge<'stream' | 'shard'>;
  private readonly deliveryLagSeconds: Gauge<'stream' | 'shard'>;
  private readonly speedLagRecords: Gauge<'view' | 'shard'>;
  private readonly batchLagRecords: Gauge<'view' | 'shard'>;
  private readonly viewFreshness: Gauge<'view'>;
  private readonly batchVersion: Gauge<'view'>;
  private readonly batchLastSuccess: Gauge<'view'>;
  private readonly batchLastRunSeconds: Gauge<'view' | 'state'>;
  private readonly quarantined: Gauge<'stream'>;
  private readonly queryLatency: Histogram<'route'>;
  /** Configured stream names: a label value only ever comes from the config, never from a request's URL. */
  private readonly streams: ReadonlySet<string>;

  constructor(private readonly strata: Strata) {
    this.streams = new Set(strata.config.streams.keys());
    const registers = [this.registry];
    this.ingestRecords = new Counter({
      name: 'strata_ingest_records_total',
      help: 'Records accepted into the stream log (durable and acked), by stream, since the process started.',
      labelNames: ['stream'],
      registers,
    });
    this.ingestBytes = new Counter({
      name: 'strata_ingest_bytes_total',
      help: 'Bytes of accepted records as stored in the log (JSON text), by stream, since the process started.',
      labelNames: ['stream'],
      registers,
    });
    this.ingestRecordErrors = new Counter({
      name: 'strata_ingest_record_errors_total',
      help: 'Records refused by schema validation (a per-record error in the ingest answer), by stream.',
      labelNames: ['stream'],
      registers,
    });
    this.ingestRequests = new Counter({
      name: 'strata_ingest_requests_total',
      help: 'HTTP ingest requests answered, by stream and status code (413, 429 and 503 are refusals of a whole request).',
      labelNames: ['stream', 'code'],
      registers,
    });
    this.ingestAck = new Histogram({
      name: 'strata_ingest_ack_seconds',
      help: 'Time from an ingest request received to its 200 answer (every accepted record durable), by stream.',
      labelNames: ['stream'],
      buckets: ACK_BUCKETS,
      registers,
    });
    this.deliveryLagRecords = new Gauge({
      name: 'strata_delivery_lag_records',
      help: 'Records in the log that delivery has not yet sealed into the lake, by stream and shard.',
      labelNames: ['stream', 'shard'],
      registers,
    });
    this.deliveryLagSeconds = new Gauge({
      name: 'strata_delivery_lag_seconds',
      help: 'Age of the oldest record delivery has not yet sealed into the lake (0 when none waits), by stream and shard.',
      labelNames: ['stream', 'shard'],
      registers,
    });
    this.speedLagRecords = new Gauge({
      name: 'strata_speed_lag_records',
      help: 'Records in the log past the speed layer\'s last applied seq, by view and shard of its stream.',
      labelNames: ['view', 'shard'],
      registers,
    });
    this.batchLagRecords = new Gauge({
      name: 'strata_batch_lag_records',
      help: 'Records in the log past the watermark W of the view\'s current batch version, by view and shard.',
      labelNames: ['view', 'shard'],
      registers,
    });
    this.viewFreshness = new Gauge({
      name: 'strata_view_freshness_seconds',
      help: 'Age of the oldest durable record a view does not show yet (0 when it shows every one), by view.',
      labelNames: ['view'],
      registers,
    });
    this.batchVersion = new Gauge({
      name: 'strata_batch_version',
      help: 'The view\'s current batch version (0 before the first successful run), by view.',
      labelNames: ['view'],
      registers,
    });
    this.batchLastSuccess = new Gauge({
      name: 'strata_batch_last_success_timestamp_seconds',
      help: 'Unix time at which the view\'s current batch version was published (absent before the first successful run).',
      labelNames: ['view'],
      registers,
    });
    this.batchLastRunSeconds = new Gauge({
      name: 'strata_batch_last_run_duration_seconds',
      help: 'How long the last finished batch run covering the view took, by view and its outcome (succeeded or failed).',
      labelNames: ['view', 'state'],
      registers: [this.registry],
    });
    this.quarantined = new Gauge({
      name: 'strata_quarantine_records',
      help: "Delivered records the stream's transform quarantines, by stream (streams with a transform only).",
      labelNames: ['stream'],
      registers: [this.registry],
    });
    this.queryLatency = new Histogram({
      name: 'strata_http_query_seconds',
      help: 'Time from a query request received to the last byte of its answer, by route.',
      labelNames: ['route'],
      buckets: QUERY_BUCKETS,
      registers,
    });
  }

  /** The Content-Type of {@link scrape}'s text. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Notes one answered ingest request; `seconds` from the request received to its answer. */
  observeIngest(stream: string, statusCode: number, seconds: number): void {
    if (!this.streams.has(stream)) return;
    this.ingestRequests.inc({ stream, code: String(statusCode) });
    if (statusCode === 200) this.ingestAck.observe({ stream }, seconds);
  }

  /** Notes one answered query request; `route` as fastify names it (`/v1/views/:view`), never the raw URL. */
  observeQuery(route: string, seconds: number): void {
    this.queryLatency.observe({ route }, seconds);
  }

  /** Every metric in the Prometheus text format, the read-at-scrape figures taken now. */
  async scrape(): Promise<string> {
    const readings = await this.read();
    // Applied in one synchronous block after every await, so a concurrent scrape never serializes half of a
    // reading; each read-at-scrape metric is reset first, so a series that no longer applies disappears.
    this.apply(readings);
    return this.registry.metrics();
  }

  private async read(): Promise<Readings> {
    const now = Date.now();
    const streams = await this.strata.streamStatus();
    const lastSeqs = new Map(streams.map((stream) => [stream.name, stream.shards.map((shard) => shard.lastSeq)]));
    const speed = this.strata.speed.status();
    // Several views of one stream often stand at the same seq: read each record once.
    const appendedAt = new Map<string, Promise<number | null>>();
    const appendedAtOf = (stream: string, shard: number, seq: number) => {
      const key = `${stream}/${shard}/${seq}`;
      let at = appendedAt.get(key);
      if (!at) {
        at = this.strata.stream.read(stream, shard, asSeq(seq), 1).then(([record]) => record?.appendedAt ?? null);
        appendedAt.set(key, at);
      }
      return at;
    };
    const views: ViewReading[] = await Promise.all(
      speed.map(async (view) => {
        const lastSeq = lastSeqs.get(view.stream) ?? [];
        const shards = lastSeq.map((last, shard) => {
          const speedSeq = view.speedSeq[String(shard)] ?? 0;
          const watermark = view.watermark[String(shard)] ?? 0;
          return { shard, speedLag: Math.max(0, last - speedSeq), batchLag: Math.max(0, last - watermark), speedSeq };
        });
        // The serving layer's own figure (provenance.freshnessMs) needs a serving read, which waits its turn on
        // the speed layer; this one reads at most one record per lagging shard and waits for nothing.
        let freshness = 0;
        for (const { shard, speedLag, speedSeq } of shards) {
          if (speedLag === 0) continue;
          const at = await appendedAtOf(view.stream, shard, speedSeq + 1);
          if (at !== null) freshness = Math.max(freshness, (now - at) / 1000);
        }
        const published = (await this.strata.catalog.viewVersions(view.view)).find((version) => version.current) ?? null;
        return {
          view: view.view,
          shards,
          freshness,
          version: published?.version ?? 0,
          publishedAt: published === null ? null : Date.parse(published.createdAt) / 1000,
        };
      }),
    );
    return { streams, views };
  }

  private apply({ streams, views }: Readings): void {
    for (const metric of [this.ingestRecords, this.ingestBytes, this.ingestRecordErrors]) metric.reset();
    for (const metric of [this.deliveryLagRecords, this.deliveryLagSeconds, this.speedLagRecords, this.batchLagRecords]) metric.reset();
    for (const metric of [this.viewFreshness, this.batchVersion, this.batchLastSuccess, this.batchLastRunSeconds]) metric.reset();
    // Runs are remembered oldest first: the last finished one per view wins.
    const lastRun = new Map<string, { state: string; seconds: number }>();
    for (const run of this.strata.batch.listRuns()) {
      if (run.finishedAt === null) continue;
      const seconds = (Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 1000;
      for (const view of run.views) lastRun.set(view, { state: run.state, seconds });
    }
    for (const [view, run] of lastRun) this.batchLastRunSeconds.set({ view, state: run.state }, run.seconds);
    this.quarantined.reset();
    for (const stream of streams) {
      const labels = { stream: stream.name };
      if (stream.quarantined !== null) this.quarantined.set(labels, stream.quarantined);
      // The ingestor's running totals: set as counters, so a restart reads as the counter reset it is.
      this.ingestRecords.inc(labels, stream.ingest.accepted);
      this.ingestBytes.inc(labels, stream.ingest.bytes);
      this.ingestRecordErrors.inc(labels, stream.ingest.failed);
      for (const shard of stream.shards) {
        const shardLabels = { stream: stream.name, shard: String(shard.shard) };
        this.deliveryLagRecords.set(shardLabels, shard.deliveryLagRecords);
        this.deliveryLagSeconds.set(shardLabels, shard.deliveryLagSeconds);
      }
    }
    for (const view of views) {
      for (const shard of view.shards) {
        const labels = { view: view.view, shard: String(shard.shard) };
        this.speedLagRecords.set(labels, shard.speedLag);
        this.batchLagRecords.set(labels, shard.batchLag);
      }
      this.viewFreshness.set({ view: view.view }, view.freshness);
      this.batchVersion.set({ view: view.view }, view.version);
      if (view.publishedAt !== null) this.batchLastSuccess.set({ view: view.view }, view.publishedAt);
    }
  }
}

/** What one scrape read from the layers. */
interface Readings {
  readonly streams: readonly StreamStatus[];
  readonly views: readonly ViewReading[];
}

interface ViewReading {
  readonly view: string;
  readonly shards: readonly { readonly shard: number; readonly speedLag: number; readonly batchLag: number }[];
  readonly freshness: number;
  readonly version: number;
  /** Unix seconds at which the current version was published, null before the first. */
  readonly publishedAt: number | null;
}
