import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { configSchema, durationMs, fieldsSchema, NOT_YET_SUPPORTED, type ColumnType, type ConfigInput } from './schema.js';
import { isEmptyTransform, resolveTransform, type TransformRules } from './transform-rules.js';
import { resolveAlerts, type AlertConfig } from './alert-rules.js';
import { findInlineSecrets } from './inline-secrets.js';
import type { PolicyAction, PolicyConfig, SecurityConfig, TlsConfig } from './policies-schema.js';

export {
  STANDARDIZE_OPS,
  standardizedType,
  TIMESTAMP_TEXT_PATTERN,
  type DedupeRule,
  type DefaultValue,
  type StandardizeOp,
  type TransformInput,
  type TransformRules,
} from './transform-rules.js';
export { COLUMN_TYPES, NAME_PATTERN, PANEL_CHARTS, type ColumnType, type ConfigInput } from './schema.js';
export { ALERT_LAYERS, type AlertConfig, type AlertInput, type AlertLayer, type AlertNotify } from './alert-rules.js';
export {
  ADMIN_POLICY,
  POLICY_ACTIONS,
  POLICY_RESOURCE_KINDS,
  type PolicyAction,
  type PolicyConfig,
  type SecurityConfig,
  type TlsConfig,
} from './policies-schema.js';

/** One declared column of a stream. */
export interface FieldSpec {
  readonly name: string;
  readonly type: ColumnType;
  readonly nullable: boolean;
}

/** A stream as the rest of Strata sees it, after validation. */
export interface StreamConfig {
  readonly name: string;
  readonly shards: number;
  /** The field whose value picks the shard; records without one are spread round-robin. */
  readonly partitionKey: string | null;
  /** The timestamp field that carries event time, used for partitioning and windows. */
  readonly eventTime: string | null;
  readonly fields: readonly FieldSpec[];
  /** Cleansing rules (compiled by src/transform); absent when the stream declares none. */
  readonly transform?: TransformRules;
}

/** A view as declared: its SQL and its batch schedule. Compiled (and refused if undecomposable) when Strata opens. */
export interface ViewConfig {
  readonly name: string;
  readonly sql: string;
  /** Run the view's batch this often (ms), or null for runs on demand only. */
  readonly everyMs: number | null;
}

/** A dashboard panel as declared; `x`, `y` and `series` are checked against the view's output columns once views compile. */
export type PanelConfig = z.output<typeof configSchema>['dashboards'][string]['panels'][number];

/** A dashboard of the web console, in declaration order of its panels. */
export interface DashboardConfig {
  readonly name: string;
  readonly panels: readonly PanelConfig[];
}

/** A validated project config. */
export interface ProjectConfig {
  readonly views: ReadonlyMap<string, ViewConfig>;
  readonly batch: z.output<typeof configSchema>['batch'];
  readonly streams: ReadonlyMap<string, StreamConfig>;
  readonly ingest: z.output<typeof configSchema>['ingest'];
  readonly log: z.output<typeof configSchema>['log'];
  readonly delivery: z.output<typeof configSchema>['delivery'];
  readonly sql: z.output<typeof configSchema>['sql'];
  readonly speed: z.output<typeof configSchema>['speed'];
  readonly dashboards: ReadonlyMap<string, DashboardConfig>;
  /** Alert rules, by name; their measure and `where` are checked against the compiled views when Strata opens. */
  readonly alerts: ReadonlyMap<string, AlertConfig>;
  /** Least-privilege policies for API tokens, by name (the built-in `admin` policy is not among them). */
  readonly policies: ReadonlyMap<string, PolicyConfig>;
  readonly security: SecurityConfig;
  /** Certificate and key files for HTTPS, as written (relative to the config file), or null for plain HTTP. */
  readonly tls: TlsConfig | null;
}

/** Types a `strata.config.ts`: `export default defineConfig({ streams: { ... } })`. */
export function defineConfig(config: ConfigInput): ConfigInput {
  return config;
}

/** Loads and validates `strata.config.json` or `strata.config.ts` (or `.js`/`.mjs`/`.mts`). */
export async function loadConfig(path: string): Promise<ProjectConfig> {
  const absolute = resolve(path);
  let raw: unknown;
  const extension = extname(absolute);
  if (extension === '.json') {
    let text: string;
    try {
      text = await readFile(absolute, 'utf8');
    } catch (error) {
      throw new ConfigError(`cannot read config ${path}: ${(error as Error).message}`);
    }
    try {
      raw = JSON.parse(text);
    } catch (error) {
      throw new ConfigError(`config ${path} is not valid JSON: ${(error as Error).message}`);
    }
  } else if (['.ts', '.mts', '.js', '.mjs'].includes(extension)) {
    try {
      // tsx compiles the TypeScript config on the fly, so a project needs no build step of its own.
      const { tsImport } = await import('tsx/esm/api');
      const module = (await tsImport(pathToFileURL(absolute).href, import.meta.url)) as { default?: unknown };
      raw = module.default;
      // A config outside an ESM package is compiled as CommonJS, whose default export arrives wrapped once more.
      if (typeof raw === 'object' && raw !== null && Object.keys(raw).length === 1 && 'default' in raw) {
        raw = (raw as { default: unknown }).default;
      }
    } catch (error) {
      throw new ConfigError(`cannot load config ${path}: ${(error as Error).message}`);
    }
    if (raw === undefined) throw new ConfigError(`config ${path} has no default export; export default defineConfig({...})`);
  } else {
    throw new ConfigError(`config ${path}: expected a .json or .ts file`);
  }
  // Views are compiled (and an undecomposable one refused) when Strata opens, before anything else starts:
  // the config layer stays below every other layer.
  return parseConfig(raw, path);
}

/** `"1m"` → 60000. */
export function parseDuration(text: string): number {
  const ms = durationMs(text);
  if (ms === null) throw new ConfigError(`expected a duration such as "30s", "1m" or "1h", got ${JSON.stringify(text)}`);
  return ms;
}

/** `{"id": "string", "amount": "double?"}` as field specs, in declaration order. */
function toFieldSpecs(schema: Record<string, string>): FieldSpec[] {
  return Object.entries(schema).map(([field, type]) => ({
    name: field,
    type: (type.endsWith('?') ? type.slice(0, -1) : type) as ColumnType,
    nullable: type.endsWith('?'),
  }));
}

/**
 * Parses a schema object outside a config (a bulk import's `--schema`) by the same rules as a stream's
 * `schema`: safe field names, known types, `?` for nullable. Throws {@link ConfigError} naming each problem.
 */
export function parseFieldSpecs(raw: unknown, source = 'schema'): FieldSpec[] {
  const parsed = fieldsSchema.safeParse(raw);
  if (!parsed.success) {
    const messages = parsed.error.issues.map((issue) => {
      const at = issue.path.map(String).join('.');
      const message = issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message;
      return at ? `${at}: ${message}` : message;
    });
    throw new ConfigError(`${source}: ${messages.join('; ')}`);
  }
  return toFieldSpecs(parsed.data);
}

/** Validates a config object; every error names the stream, field and what is wrong. */
export function parseConfig(raw: unknown, source = 'config'): ProjectConfig {
  const problems: string[] = [];
  // First, and whatever else is wrong: a credential in the config must be moved out before anything else.
  const secrets = findInlineSecrets(raw);
  if (secrets.length > 0) {
    throw new ConfigError(
      `${source}: ${secrets.join('; ')}. Credentials do not belong in the config: pass them in the environment ` +
        '(e.g. STRATA_ADMIN_TOKEN) or keep them in a file and name its path',
    );
  }
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
    for (const key of NOT_YET_SUPPORTED) {
      if (key in raw) problems.push(`${key}: not supported by this version of Strata yet`);
    }
  }
  if (problems.length > 0) throw new ConfigError(`${source}: ${problems.join('; ')}`);

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const messages = parsed.error.issues.map((issue) => {
      const at = issue.path.map(String).join('.') || '(top level)';
      if (issue.code === 'unrecognized_keys') return `${at}: unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
      if (issue.code === 'invalid_key') return `${at}: ${issue.issues[0]?.message ?? issue.message}`;
      return `${at}: ${issue.message}`;
    });
    throw new ConfigError(`${source}: ${messages.join('; ')}`);
  }

  const streams = new Map<string, StreamConfig>();
  for (const [name, stream] of Object.entries(parsed.data.streams)) {
    const fields = toFieldSpecs(stream.schema);
    const byName = new Map(fields.map((field) => [field.name, field]));
    if (stream.partitionKey !== undefined) {
      const key = byName.get(stream.partitionKey);
      if (!key) problems.push(`streams.${name}.partitionKey: "${stream.partitionKey}" is not a field of the schema`);
      else if (key.type === 'json') problems.push(`streams.${name}.partitionKey: "${key.name}" is json; a partition key must be a scalar`);
    }
    if (stream.eventTime !== undefined) {
      const time = byName.get(stream.eventTime);
      if (!time) problems.push(`streams.${name}.eventTime: "${stream.eventTime}" is not a field of the schema`);
      else if (time.type !== 'timestamp') {
        problems.push(`streams.${name}.eventTime: "${time.name}" is ${time.type}; event time must be a timestamp field`);
      }
    }
    const transform = stream.transform && resolveTransform(name, fields, stream.eventTime ?? null, stream.transform);
    if (transform) problems.push(...transform.problems);
    streams.set(name, {
      name,
      shards: stream.shards,
      partitionKey: stream.partitionKey ?? null,
      eventTime: stream.eventTime ?? null,
      fields,
      ...(transform && !isEmptyTransform(transform.rules) ? { transform: transform.rules } : {}),
    });
  }
  const views = new Map<string, ViewConfig>();
  for (const [name, view] of Object.entries(parsed.data.views)) {
    // `<view>` and `<view>__batch` become SQL tables beside the streams' tables.
    if (streams.has(name)) problems.push(`views.${name}: a view cannot have the name of a stream`);
    if (name.endsWith('__batch') || name.endsWith('__speed')) problems.push(`views.${name}: a view name cannot end in __batch or __speed`);
    const declared = typeof view === 'string' ? { sql: view, every: undefined } : view;
    const everyMs = declared.every === undefined ? null : parseDuration(declared.every);
    if (everyMs !== null && everyMs < 1000) problems.push(`views.${name}.every: run a batch at most once a second`);
    views.set(name, { name, sql: declared.sql, everyMs });
  }
  const dashboards = new Map<string, DashboardConfig>();
  for (const [name, dashboard] of Object.entries(parsed.data.dashboards)) {
    dashboard.panels.forEach((panel, i) => {
      if (!views.has(panel.view)) problems.push(`dashboards.${name}.panels.${i}.view: "${panel.view}" is not a view of the config`);
      if (panel.x === undefined && ['line', 'area', 'bar'].includes(panel.chart)) problems.push(`dashboards.${name}.panels.${i}.x: a ${panel.chart} chart needs x`);
    });
    dashboards.set(name, { name, panels: dashboard.panels });
  }
  const alerts = resolveAlerts(parsed.data.alerts, new Set(views.keys()));
  problems.push(...alerts.problems);
  const policies = new Map<string, PolicyConfig>(
    Object.entries(parsed.data.policies).map(([name, policy]) => [
      name,
      { name, allow: policy.allow.map((rule) => ({ actions: rule.actions as PolicyAction[], resources: rule.resources })) },
    ]),
  );
  if (problems.length > 0) throw new ConfigError(`${source}: ${problems.join('; ')}`);
  if (streams.size === 0) throw new ConfigError(`${source}: streams: declare at least one stream`);
  return {
    streams,
    ingest: parsed.data.ingest,
    log: parsed.data.log,
    delivery: parsed.data.delivery,
    sql: parsed.data.sql,
    views,
    batch: parsed.data.batch,
    speed: parsed.data.speed,
    dashboards,
    alerts: alerts.alerts,
    policies,
    security: parsed.data.security,
    tls: parsed.data.tls ?? null,
  };
}
