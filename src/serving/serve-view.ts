import type { DuckDBConnection } from '@duckdb/node-api';
import { MalformedInputError, NotFoundError, QueryError } from '../errors.js';
import type { SpeedLayer, ViewSnapshot } from '../speed/index.js';
import { toJsonValue, typeName, type SqlColumn, type SqlRow } from '../sql/index.js';
import { quoteIdent } from '../util/duckdb.js';
import { mergeSql, type PartialRelations, type ViewDefinition } from '../views/index.js';

export type ViewLayer = 'batch' | 'speed' | 'merged';
export const VIEW_LAYERS: readonly ViewLayer[] = ['batch', 'speed', 'merged'];

export type FilterOp = 'eq' | 'gte' | 'gt' | 'lte' | 'lt';
const SQL_OPS: Record<FilterOp, string> = { eq: '=', gte: '>=', gt: '>', lte: '<=', lt: '<' };

export interface ViewFilter {
  readonly column: string;
  readonly op: FilterOp;
  /** The value as given; cast to the column's type in SQL, as a bound parameter. */
  readonly value: string;
}

export interface ViewRequest {
  readonly layer: ViewLayer;
  /** An older (kept) batch version to answer from instead of the current one; implies the batch layer. */
  readonly version: number | null;
  readonly filters: readonly ViewFilter[];
  readonly order: readonly { readonly column: string; readonly descending: boolean }[];
  readonly limit: number;
}

export const DEFAULT_LIMIT = 1000;
export const MAX_LIMIT = 100_000;

export interface ViewAnswer {
  readonly columns: SqlColumn[];
  readonly rows: SqlRow[];
  readonly provenance: {
    readonly batchVersion: number | null;
    /** The batch version's W per shard of the view's stream, seqs as decimal strings. */
    readonly watermark: Record<string, string>;
    /** The last seq the speed layer applied per shard, as decimal strings. */
    readonly speedSeq: Record<string, string>;
    /** Age in ms of the oldest durable record the view does not show yet; 0 when it shows every one. */
    readonly freshnessMs: number;
  };
}

/**
 * Reads `GET /v1/views/{view}` parameters: `layer=batch|speed|merged` (default merged); `<key>=v` equality and
 * `<key>.gte|gt|lte|lt=v` range filters on the view's group-by columns (repeated ones all apply); `order=col`
 * ascending, `order=-col` descending, several comma-separated, on any output column (default: the group-by
 * columns ascending); `limit` (default 1000, at most 100000); `version=N` answers from batch version N (the
 * current one or one of those kept), the batch layer alone: a past version has no speed layer of its own, so
 * `version` with `layer=speed|merged` answers 400. Unknown columns answer 400 naming them.
 */
export function parseViewRequest(view: ViewDefinition, query: Readonly<Record<string, unknown>>): ViewRequest {
  const keys = new Set(view.keys.map((key) => key.name));
  const outputs = new Set([...keys, ...view.measures.map((measure) => measure.name)]);
  const unknown: string[] = [];
  const notKeys: string[] = [];
  const filters: ViewFilter[] = [];
  let layer: ViewLayer | null = null;
  let version: number | null = null;
  let limit = DEFAULT_LIMIT;
  let order: { column: string; descending: boolean }[] = view.keys.map((key) => ({ column: key.name, descending: false }));
  for (const [name, raw] of Object.entries(query)) {
    const values = (Array.isArray(raw) ? raw : [raw]).map(String);
    const single = (): string => {
      if (values.length !== 1) throw new MalformedInputError(`"${name}" is given ${values.length} times; give it once`);
      return values[0]!;
    };
    if (name === 'layer') {
      const value = single();
      if (!(VIEW_LAYERS as readonly string[]).includes(value)) throw new MalformedInputError(`layer must be one of ${VIEW_LAYERS.join(', ')}, not "${value}"`);
      layer = value as ViewLayer;
    } else if (name === 'version') {
      const value = single();
      if (!/^[1-9]\d{0,8}$/.test(value)) throw new MalformedInputError(`version must be a positive integer, not "${value}"`);
      version = Number(value);
    } else if (name === 'limit') {
      const value = single();
      const n = Number(value);
      if (!/^\d+$/.test(value) || n < 1 || n > MAX_LIMIT) throw new MalformedInputError(`limit must be an integer from 1 to ${MAX_LIMIT}, not "${value}"`);
      limit = n;
    } else if (name === 'order') {
      order = single()
        .split(',')
        .map((part) => part.trim())
        .filter((part) => part !== '')
        .map((part) => ({ column: part.replace(/^-/, ''), descending: part.startsWith('-') }));
      for (const { column } of order) if (!outputs.has(column)) unknown.push(column);
    } else {
      const match = /^(.*)\.(gte|gt|lte|lt)$/.exec(name);
      const column = match ? match[1]! : name;
      const op: FilterOp = match ? (match[2] as FilterOp) : 'eq';
      if (!outputs.has(column)) unknown.push(column);
      else if (!keys.has(column)) notKeys.push(column);
      else for (const value of values) filters.push({ column, op, value });
    }
  }
  if (unknown.length > 0) {
    throw new MalformedInputError(
      `unknown column(s) ${[...new Set(unknown)].map((c) => `"${c}"`).join(', ')} of view "${view.name}"; columns: ${[...outputs].join(', ')}`,
    );
  }
  if (notKeys.length > 0) {
    throw new MalformedInputError(
      `filters apply to the group-by columns of view "${view.name}" (${[...keys].join(', ')}), not ${[...new Set(notKeys)].map((c) => `"${c}"`).join(', ')}`,
    );
  }
  if (version !== null && layer !== null && layer !== 'batch') {
    throw new MalformedInputError(`version=${version} answers from a batch version alone; it takes layer=batch, not layer=${layer}`);
  }
  return { layer: layer ?? (version !== null ? 'batch' : 'merged'), version, filters, order, limit };
}

/**
 * Answers a view from one snapshot (one batch version and exactly the speed partials past its W).
 *
 * The batch layer is the version's merged rows, computed once when the speed layer loaded the version. The
 * merged layer re-merges only the groups the speed layer holds: every other group's merged value is its batch
 * value, so the answer is those batch rows (an anti-join on the speed layer's keys) plus the view's merge over
 * the batch and speed partials of the speed layer's groups alone (a semi-join). That keeps a query over a view
 * of millions of groups to the size of its recent ones. Filters name group-by columns only, which every
 * relation carries, so they apply before either merge. Filter values are bound parameters cast to the
 * column's type; a value the type cannot take answers 400.
 */
export async function serveView(speed: SpeedLayer, name: string, request: ViewRequest): Promise<ViewAnswer> {
  return speed.withSnapshot(name, async (snapshot, connection) => {
    const view = snapshot.view;
    const types = await columnTypes(snapshot, connection);
    const where = request.filters.map(
      (filter, i) => `${quoteIdent(filter.column)} ${SQL_OPS[filter.op]} CAST($${i + 1} AS ${types.get(filter.column)!})`,
    );
    const condition = where.join(' AND ');
    const narrow = (relation: string, extra?: string) => {
      const conditions = [...(where.length > 0 ? [condition] : []), ...(extra !== undefined ? [extra] : [])];
      return conditions.length > 0 ? `SELECT * FROM (${relation}) AS relation WHERE ${conditions.join(' AND ')}` : relation;
    };
    const each = (relations: PartialRelations, map: (sql: string) => string): PartialRelations => ({
      scalar: map(relations.scalar),
      sketches: Object.fromEntries(Object.entries(relations.sketches).map(([measure, sql]) => [measure, map(sql)])),
    });
    // Every statement runs prepared (kept per view version and size of the speed layer), with the filter values bound.
    const run = async (sql: string) => {
      try {
        const prepared = await snapshot.prepare(sql);
        request.filters.forEach((filter, i) => prepared.bindVarchar(i + 1, filter.value));
        return await prepared.runAndReadAll();
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        if (/Conversion Error|Could not convert|invalid/i.test(message)) throw new MalformedInputError(`a filter value does not fit its column: ${message}`);
        throw new QueryError(message);
      }
    };
    let rows: string;
    let past: { version: number; watermark: Readonly<Record<string, number>> } | null = null;
    if (request.version !== null && request.version !== snapshot.batchVersion) {
      const kept = await snapshot.versionPartials(request.version);
      if (kept === null) throw new NotFoundError(`view "${view.name}" has no version ${request.version} (it was never published, or is no longer kept)`);
      rows = mergeSql(view, each(kept.partials, (sql) => narrow(sql)));
      past = { version: request.version, watermark: kept.watermark };
    } else if (request.layer === 'batch') {
      rows = narrow(snapshot.batchRows);
    } else if (request.layer === 'speed') {
      rows = mergeSql(view, each(snapshot.speed, (sql) => narrow(sql)));
    } else if (view.keys.length === 0) {
      rows = mergeSql(view, each(snapshot.merged, (sql) => narrow(sql)));
    } else if (
      speedHoldsNone(snapshot) ||
      firstKeyNotHeld(snapshot, request) ||
      (request.filters.length > 0 && (await run(`SELECT 1 FROM (${narrow(snapshot.speed.scalar)}) AS speed LIMIT 1`)).currentRowCount === 0)
    ) {
      // The speed layer holds none of the groups the filters select (a lookup of groups only the batch version
      // holds, the common case for all but the latest minutes), or none at all (a quiet stream after a batch
      // run): their merged rows are the batch rows as they are, read by one filtered scan of the version's merged
      // rows, sorted by the group keys, instead of the merge.
      rows = narrow(snapshot.batchRows);
    } else if (request.filters.length > 0 && (await run(`SELECT 1 FROM (${narrow(snapshot.batchRows)}) AS batch LIMIT 1`)).currentRowCount === 0) {
      // The batch version holds none of the groups the filters select (a lookup of groups new since W, as the
      // latest minutes' are): their merged rows are the speed layer's merge alone, one filtered scan of each
      // speed table (the batch rows are sorted by the group keys, so this check skips most of them).
      rows = mergeSql(view, each(snapshot.speed, (sql) => narrow(sql)));
    } else {
      const keys = view.keys.map((key) => quoteIdent(key.name));
      // Filters name group-by columns only, so the speed layer's groups a filtered batch row may match pass them too.
      const speedKeys = `SELECT DISTINCT ${keys.join(', ')} FROM (${narrow(snapshot.speed.scalar)})`;
      const matches = keys.map((key) => `speed_key.${key} IS NOT DISTINCT FROM relation.${key}`).join(' AND ');
      const held = `EXISTS (SELECT 1 FROM (${speedKeys}) AS speed_key WHERE ${matches})`;
      const overlap = each(snapshot.batch, (sql) => narrow(sql, held));
      const recent = mergeSql(view, {
        scalar: `SELECT * FROM (${overlap.scalar}) UNION ALL BY NAME SELECT * FROM (${narrow(snapshot.speed.scalar)})`,
        sketches: Object.fromEntries(
          Object.entries(overlap.sketches).map(([measure, sql]) => [measure, `SELECT * FROM (${sql}) UNION ALL BY NAME SELECT * FROM (${narrow(snapshot.speed.sketches[measure]!)})`]),
        ),
      });
      rows = `SELECT * FROM (${narrow(snapshot.batchRows, `NOT ${held}`)}) UNION ALL BY NAME SELECT * FROM (${recent})`;
    }
    const orderBy = request.order.map(({ column, descending }) => `${quoteIdent(column)} ${descending ? 'DESC' : 'ASC'} NULLS LAST`);
    const sql = `SELECT * FROM (${rows}) AS view ${orderBy.length > 0 ? `ORDER BY ${orderBy.join(', ')}` : ''} LIMIT ${request.limit}`;
    const reader = await run(sql);
    const names = reader.columnNames();
    const columns = reader.columnTypes().map((type, i) => ({ name: names[i]!, type: typeName(type) }));
    const answerRows = reader.convertRowObjects(toJsonValue) as SqlRow[];
    const strings = (seqs: Readonly<Record<string, number>>) => Object.fromEntries(Object.entries(seqs).map(([shard, seq]) => [shard, String(seq)]));
    return {
      columns,
      rows: answerRows,
      provenance: past
        ? // Another version: its own W, and no speed layer (the speed layer complements the current one).
          { batchVersion: past.version, watermark: strings(past.watermark), speedSeq: {}, freshnessMs: snapshot.freshnessMs }
        : {
            batchVersion: snapshot.batchVersion,
            watermark: strings(snapshot.watermark),
            speedSeq: strings(snapshot.speedSeq),
            freshnessMs: snapshot.freshnessMs,
          },
    };
  });
}

/** True when the speed layer has applied nothing past W: its partials are empty. */
function speedHoldsNone(snapshot: ViewSnapshot): boolean {
  return Object.entries(snapshot.speedSeq).every(([shard, seq]) => seq === (snapshot.watermark[shard] ?? 0));
}

/**
 * True when the request looks up a value of the first group-by column that no speed range's filter holds: the
 * speed partials hold none of the groups it selects, found without a scan of them (under load a lookup of a group
 * only the batch holds scanned ~1M speed rows for nothing).
 */
function firstKeyNotHeld(snapshot: ViewSnapshot, request: ViewRequest): boolean {
  const first = snapshot.view.keys[0]?.name;
  if (first === undefined) return false;
  const lookup = request.filters.find((filter) => filter.column === first && filter.op === 'eq');
  return lookup !== undefined && !snapshot.mayHoldFirstKey(lookup.value);
}

/** Per view, its output columns' DuckDB types (they never change while Strata runs). */
const typeCache = new WeakMap<ViewDefinition, Map<string, string>>();

async function columnTypes(snapshot: ViewSnapshot, connection: DuckDBConnection): Promise<Map<string, string>> {
  const cached = typeCache.get(snapshot.view);
  if (cached) return cached;
  const reader = await connection.runAndReadAll(`SELECT * FROM (${mergeSql(snapshot.view, snapshot.empty)}) LIMIT 0`);
  const names = reader.columnNames();
  const types = new Map(reader.columnTypes().map((type, i) => [names[i]!, type.toString()]));
  typeCache.set(snapshot.view, types);
  return types;
}

