import { z } from 'zod';
import { alertSchema } from './alerts-schema.js';
import { transformSchema } from './transform-schema.js';
import { policiesSchema, securitySchema, tlsSchema } from './policies-schema.js';

/** Column types a stream schema may declare; a trailing `?` marks the column nullable. */
export const COLUMN_TYPES = ['string', 'int', 'bigint', 'double', 'boolean', 'timestamp', 'date', 'json'] as const;
export type ColumnType = (typeof COLUMN_TYPES)[number];

/**
 * Names of streams and fields reach file paths and SQL, so they are restricted to a safe identifier shape
 * everywhere: no path separators, quotes or spaces can ever come in through a name.
 */
export const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

const name = (what: string) =>
  z.string().regex(NAME_PATTERN, `${what} must start with a letter or _ and hold only letters, digits and _ (at most 63)`);

const columnType = z
  .string()
  .refine((value) => (COLUMN_TYPES as readonly string[]).includes(value.endsWith('?') ? value.slice(0, -1) : value), {
    error: (issue) => `unknown type ${JSON.stringify(issue.input)}; expected one of ${COLUMN_TYPES.join(', ')}, with ? for nullable`,
  });

/** A schema object, `{"id": "string", "amount": "double?"}`: a stream's `schema`, or a bulk import's `--schema`. */
export const fieldsSchema = z
  .record(name('a field name'), columnType)
  .refine((fields) => Object.keys(fields).length > 0, 'declares no fields');

const streamSchema = z.strictObject({
  partitionKey: z.string().optional(),
  eventTime: z.string().optional(),
  shards: z.number().int().min(1).max(1024).default(1),
  schema: fieldsSchema,
  /** Cleansing rules, checked against `schema` by resolveTransform (transform-rules.ts). */
  transform: transformSchema.optional(),
});

const ingestSchema = z.strictObject({
  /** Largest request body accepted, in bytes (413 above). */
  maxBodyBytes: z.number().int().min(1024).default(5 * 1024 * 1024),
  /** Most records one request may carry (413 above). */
  maxRecordsPerRequest: z.number().int().min(1).default(10_000),
  /** Bytes of accepted records waiting for their sync, across streams; over it, ingest answers 503. */
  maxPendingBytes: z.number().int().min(1024 * 1024).default(256 * 1024 * 1024),
});

const logSchema = z.strictObject({
  /** A segment is sealed at this size; retention deletes whole segments. */
  segmentBytes: z.number().int().min(64 * 1024).default(64 * 1024 * 1024),
});

const deliverySchema = z.strictObject({
  /** A chunk is sealed once it holds this many records of one shard... */
  maxRecords: z.number().int().min(1).max(10_000_000).default(100_000),
  /** ...or this many bytes of records... */
  maxBytes: z.number().int().min(1024).max(1024 * 1024 * 1024).default(64 * 1024 * 1024),
  /** ...or when its first record has waited this long (seconds, fractions allowed). */
  maxSeconds: z.number().positive().max(3600).default(10),
});

const sqlSchema = z.strictObject({
  /** An ad-hoc SQL query running longer is cancelled (seconds, fractions allowed). */
  timeoutSeconds: z.number().positive().max(86_400).default(30),
  /** DuckDB's memory limit for ad-hoc SQL, all queries together; beyond it sorts and joins spill to disk. */
  memoryLimit: z
    .string()
    .regex(/^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i, 'expected a size such as "512MB" or "4GB"')
    .default('4GB'),
});

/** A duration such as `500ms`, `30s`, `1m`, `2h`: a view's batch schedule. */
export const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

const DURATION_UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration's milliseconds (`"1m"` → 60000), or null when the text is not a duration. */
export function durationMs(text: string): number | null {
  const match = DURATION_PATTERN.exec(text);
  return match ? Number(match[1]) * DURATION_UNIT_MS[match[2]!]! : null;
}

/** A view: its SQL, or `{ sql, every }` with a batch schedule. */
const viewSchema = z.union([
  z.string().min(1),
  z.strictObject({
    sql: z.string().min(1),
    every: z.string().regex(DURATION_PATTERN, 'expected a duration such as "30s", "1m" or "1h"').optional(),
  }),
]);

const batchSchema = z.strictObject({
  /** View versions kept per view (the current one included); the files only older ones use are deleted. */
  keepVersions: z.number().int().min(1).max(1000).default(5),
  /** DuckDB threads for batch runs; 1 leaves the other core to ingest and delivery on a 2-core machine. */
  threads: z.number().int().min(1).max(256).default(1),
  /** DuckDB's memory limit for batch runs; beyond it aggregations spill to disk. */
  memoryLimit: z
    .string()
    .regex(/^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i, 'expected a size such as "512MB" or "4GB"')
    .default('4GB'),
  /**
   * Keys of de-duplicated streams the batch layer keeps in memory (12 bytes each), so that incremental runs judge
   * new records without reading every key of the window around them (src/batch/key-index.ts). A run whose window
   * holds more reads the keys from the lake instead; 0 always does.
   */
  dedupeIndexKeys: z.number().int().min(0).max(1_000_000_000).default(8_000_000),
  /**
   * Deliveries (a shard's sealed records) of at least this many records are cleaned as they land (streams with a
   * transform), so runs find them clean; smaller ones are left to the next run, which cleans a partition's small
   * chunks in one file (a clean costs a few ms besides its records: catalog reads, a COPY, an fsync). 0 cleans
   * every delivery at once.
   */
  cleanOnDeliveryMinRecords: z.number().int().min(0).default(10_000),
});

const speedSchema = z.strictObject({
  /** The speed layer's micro-batch interval: new records become visible in the merged views within about this. */
  intervalMs: z.number().int().min(10).max(60_000).default(200),
  /**
   * Micro-batches held per shard before runs of the oldest small ones are folded into one range each (their partial
   * rows merged in memory, beside the micro-batches), down to half as many, so that a long wait for the next batch
   * run does not pile up partial rows per micro-batch. At a step every 100-150 ms under load, 128 is 13-19 s of
   * micro-batches: a batch run every few seconds rarely needs a fold.
   */
  maxRangesPerShard: z.number().int().min(2).max(100_000).default(128),
  /**
   * DuckDB threads of the speed layer (micro-batches, version loads and serving reads share them). 1 by default:
   * a micro-batch is a few thousand records, too small to gain from a second thread, and on a 2-core machine the
   * reads, micro-batches and a version's load each on a thread of its own share the cores better than when one
   * query's tasks take both (ingest→visible p99 about 20 % lower in the views bench).
   */
  threads: z.number().int().min(1).max(256).default(1),
});

/** The chart types a dashboard panel may draw. */
export const PANEL_CHARTS = ['line', 'bar', 'area', 'number', 'table'] as const;

/** A dashboard panel: a view drawn as a chart; `x`, `y` and `series` name the view's output columns. */
const panelSchema = z.strictObject({
  view: z.string().min(1),
  chart: z.enum(PANEL_CHARTS),
  x: z.string().min(1).optional(),
  y: z.string().min(1),
  series: z.string().min(1).optional(),
  title: z.string().min(1).max(200).optional(),
});

/** A dashboard of the web console: panels over views, live. */
const dashboardSchema = z.strictObject({
  panels: z.array(panelSchema).min(1, 'declares no panels').max(50),
});

/** Top-level keys that later parts of Strata will read; refused until they exist, so nothing passes silently. */
export const NOT_YET_SUPPORTED: readonly string[] = [];

export const configSchema = z.strictObject({
  streams: z.record(name('a stream name'), streamSchema),
  ingest: ingestSchema.default(ingestSchema.parse({})),
  log: logSchema.default(logSchema.parse({})),
  delivery: deliverySchema.default(deliverySchema.parse({})),
  sql: sqlSchema.default(sqlSchema.parse({})),
  views: z.record(name('a view name'), viewSchema).default({}),
  batch: batchSchema.default(batchSchema.parse({})),
  speed: speedSchema.default(speedSchema.parse({})),
  dashboards: z.record(name('a dashboard name'), dashboardSchema).default({}),
  // Alert rules over views: see alerts-schema.ts (checked against the compiled views in src/alerts).
  alerts: z.record(name('an alert name'), alertSchema).default({}),
  // Who may do what (policies), abuse limits (security) and certificate files (tls): see policies-schema.ts.
  policies: policiesSchema.default({}),
  security: securitySchema.default(securitySchema.parse({})),
  tls: tlsSchema.optional(),
});

/** The config as a user writes it (defaults may be left out). */
export type ConfigInput = z.input<typeof configSchema>;
