import { standardizedType, TIMESTAMP_TEXT_PATTERN, type ColumnType, type FieldSpec, type StandardizeOp, type TransformRules } from '../config/index.js';
import { quoteIdent, sqlString } from '../util/duckdb.js';

/**
 * SQL generation for a stream's transform: pure functions from validated rules to SQL text over a `source`
 * relation, so that the batch layer (over raw chunks) and the speed layer (over a micro-batch) run the one SQL.
 * Validation against DuckDB happens in compile-transform.ts; nothing here runs a query.
 */

/** The column naming why a record is quarantined; NULL for a clean record. */
export const QUARANTINE_REASON = '__quarantine_reason';

/** Columns the transform adds between its steps and removes again; a source must not use this prefix. */
const INTERNAL = '__transform_';

/** What the generator needs, all checked beforehand: the rules, and the SQL of defaults and derived columns. */
export interface TransformSqlInput {
  readonly fields: readonly FieldSpec[];
  readonly rules: TransformRules;
  /** Per field with a default: a typed SQL constant (checked by DuckDB to be a valid value). */
  readonly defaultLiterals: ReadonlyMap<string, string>;
  /** Derived column → its expression as DuckDB prints it back (one expression by construction), in order. */
  readonly deriveSql: ReadonlyMap<string, string>;
}

/**
 * The characters `trim` removes at both ends, as an RE2 class: ASCII space, tab, line feed, vertical tab, form feed,
 * carriage return and the no-break space, which pasted text often carries. (DuckDB's one-argument trim removes
 * spaces only.) A regular expression, not `trim(value, characters)`: DuckDB's two-argument trim walks the character
 * list for every character of every value, 2.4x slower over a high-cardinality column (1.43M ids: 170 → 70 ms), and
 * it gives the same strings (checked in test/transform).
 */
const TRIMMED = '[ \\t\\n\\x0B\\f\\r\\x{A0}]+';

/** SQL for one string operation applied to the SQL expression `value`. */
function stringOpSql(op: StandardizeOp, value: string): string {
  switch (op) {
    case 'trim':
      return `regexp_replace(${value}, '^${TRIMMED}|${TRIMMED}$', '', 'g')`;
    case 'collapse_spaces':
      // Every run of whitespace becomes one space; ends are left to `trim`.
      return `regexp_replace(${value}, '\\s+', ' ', 'g')`;
    case 'lower':
      return `lower(${value})`;
    case 'upper':
      return `upper(${value})`;
    case 'null_if_empty':
      return `nullif(${value}, '')`;
    case 'utc':
      throw new Error('utc is not a string operation');
  }
}

/** The operations of a string field that run before `utc` (all of them when there is none). */
function stringOpsBeforeUtc(field: FieldSpec, ops: readonly StandardizeOp[]): StandardizeOp[] {
  if (field.type !== 'string') return [];
  const utcAt = ops.indexOf('utc');
  return utcAt === -1 ? [...ops] : ops.slice(0, utcAt);
}

/** True when `utc` parses this field's text into a timestamp (on a timestamp field it changes nothing). */
function convertsToUtc(field: FieldSpec, rules: TransformRules): boolean {
  return field.type === 'string' && (rules.standardize.get(field.name) ?? []).includes('utc');
}

/** `{wall, zone}` of timestamp text, both '' when the text is no timestamp; see {@link utcFromPartsSql}. */
export function utcPartsSql(text: string): string {
  return `regexp_extract(${text}, ${sqlString(TIMESTAMP_TEXT_PATTERN.source)}, ['wall', 'zone'])`;
}

/**
 * The UTC timestamp of `{wall, zone}` parts, or NULL when they are no valid timestamp. Ingest's rules, in SQL: no
 * offset means UTC; `+02:00` is subtracted. It never reads the session's TimeZone (a TIMESTAMPTZ cast would), so
 * every DuckDB that runs it, in any process or zone, gives the same instant. TRY turns any failure (a 30 February,
 * an out-of-range year) into NULL, so a bad value quarantines its record instead of failing the query.
 */
export function utcFromPartsSql(parts: string): string {
  const wall = `struct_extract(${parts}, 'wall')`;
  const zone = `struct_extract(${parts}, 'zone')`;
  const hours = `CAST(substr(${zone}, 2, 2) AS INTEGER)`;
  const minutes = `CASE WHEN length(${zone}) > 3 THEN CAST(right(${zone}, 2) AS INTEGER) ELSE 0 END`;
  const offsetMinutes =
    `CASE WHEN ${zone} IN ('', 'Z', 'z') THEN 0 WHEN ${hours} > 23 OR ${minutes} > 59 THEN NULL ` +
    `ELSE (CASE WHEN starts_with(${zone}, '-') THEN -1 ELSE 1 END) * (${hours} * 60 + ${minutes}) END`;
  return `TRY(CASE WHEN ${wall} = '' THEN NULL ELSE CAST(regexp_replace(${wall}, '[Tt]', ' ') AS TIMESTAMP) - to_minutes(${offsetMinutes}) END)`;
}

/** Wraps `sql` as the FROM of the next step. */
const step = (select: string, from: string, where = '') => `SELECT ${select} FROM (${from}) AS step${where ? ` WHERE ${where}` : ''}`;

const internal = (what: string, field: string) => quoteIdent(`${INTERNAL}${what}_${field}`);

/** Fields whose value the transform may change: the ones a default, standardize or map rule names. */
function ruledFields(input: TransformSqlInput): FieldSpec[] {
  const { rules } = input;
  return input.fields.filter((field) => rules.defaults.has(field.name) || rules.standardize.has(field.name) || rules.map.has(field.name));
}

/**
 * The transform as a chain of projections over `source`. Every source column passes through in place (`* REPLACE`),
 * so offset columns and any other extra column come out untouched; derived columns follow, then the reason.
 * With `keepRaw`, each ruled field's raw value also travels along as an internal column, for {@link quarantineSql}.
 */
function pipelineSql(input: TransformSqlInput, source: string, keepRaw: boolean): string {
  const { rules } = input;
  let sql = `SELECT * FROM (${source}) AS source`;

  if (keepRaw) {
    const copies = ruledFields(input).map((field) => `${quoteIdent(field.name)} AS ${internal('raw', field.name)}`);
    if (copies.length > 0) sql = step(['*', ...copies].join(', '), sql);
  }

  // 1. defaults, then the string operations (up to a `utc`, which converts in the next steps).
  const repaired: string[] = [];
  for (const field of input.fields) {
    const literal = input.defaultLiterals.get(field.name);
    const ops = stringOpsBeforeUtc(field, rules.standardize.get(field.name) ?? []);
    if (literal === undefined && ops.length === 0) continue;
    let value = quoteIdent(field.name);
    if (literal !== undefined) value = `coalesce(${value}, ${literal})`;
    for (const op of ops) value = stringOpSql(op, value);
    repaired.push(`${value} AS ${quoteIdent(field.name)}`);
  }
  if (repaired.length > 0) sql = step(`* REPLACE (${repaired.join(', ')})`, sql);

  // 2. `utc` on string fields: parse once into parts, convert, and flag a value that did not convert.
  const converted = input.fields.filter((field) => convertsToUtc(field, rules));
  if (converted.length > 0) {
    const parts = converted.map((field) => `${utcPartsSql(quoteIdent(field.name))} AS ${internal('parts', field.name)}`);
    sql = step(['*', ...parts].join(', '), sql);
    const values = converted.map((field) => `${utcFromPartsSql(internal('parts', field.name))} AS ${internal('utc', field.name)}`);
    sql = step(['*', ...values].join(', '), sql);
    const drop = converted.flatMap((field) => [internal('parts', field.name), internal('utc', field.name)]);
    const replace = converted.map((field) => `${internal('utc', field.name)} AS ${quoteIdent(field.name)}`);
    const flags = converted.map(
      (field) => `(${quoteIdent(field.name)} IS NOT NULL AND ${internal('utc', field.name)} IS NULL) AS ${internal('unconverted', field.name)}`,
    );
    sql = step([`* EXCLUDE (${drop.join(', ')}) REPLACE (${replace.join(', ')})`, ...flags].join(', '), sql);
  }

  // 3. map, compared with the standardized value. Entries are sorted so that their declared order (which cannot
  // matter: keys are distinct) does not change the SQL, nor therefore the transform's version.
  const mapped: string[] = [];
  for (const field of input.fields) {
    const entries = rules.map.get(field.name);
    if (!entries || entries.size === 0) continue;
    const column = quoteIdent(field.name);
    const whens = [...entries]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([from, to]) => `WHEN ${sqlString(from)} THEN ${to === null ? 'CAST(NULL AS VARCHAR)' : sqlString(to)}`);
    mapped.push(`CASE ${column} ${whens.join(' ')} ELSE ${column} END AS ${column}`);
  }
  if (mapped.length > 0) sql = step(`* REPLACE (${mapped.join(', ')})`, sql);

  // 4. the reason: the first failed standardization (in schema order), else the first missing required field.
  const failures = [
    ...converted.map((field) => `WHEN ${internal('unconverted', field.name)} THEN ${sqlString(`standardize: ${field.name} could not be converted`)}`),
    ...rules.required.map((name) => `WHEN ${quoteIdent(name)} IS NULL THEN ${sqlString(`required: ${name} is missing`)}`),
  ];
  const reason = failures.length > 0 ? `CASE ${failures.join(' ')} END` : 'CAST(NULL AS VARCHAR)';
  const flags = converted.map((field) => internal('unconverted', field.name));
  sql = step(`*${flags.length > 0 ? ` EXCLUDE (${flags.join(', ')})` : ''}, ${reason} AS ${quoteIdent(QUARANTINE_REASON)}`, sql);

  // 5. derived columns, one step each so that a column can use the ones before it, computed for records not
  // quarantined yet (NULL on the others). TRY keeps a record whose expression fails (a bad cast) from failing the
  // whole query; wrapping the value in a struct tells a failure (NULL struct) from a NULL result ({value: NULL}),
  // and evaluates the expression once. The CASE is load-bearing too: DuckDB's common-subexpression optimizer
  // hoists a repeated subexpression out of TRY (where it throws again) but does not look inside CASE branches.
  const reasonColumn = quoteIdent(QUARANTINE_REASON);
  for (const [name, expression] of input.deriveSql) {
    const attempt = internal('derive', name);
    sql = step(`*, CASE WHEN ${reasonColumn} IS NULL THEN TRY({'value': ${expression}}) END AS ${attempt}`, sql);
    const failed = `CASE WHEN ${reasonColumn} IS NULL AND ${attempt} IS NULL THEN ${sqlString(`derive: ${name} could not be computed`)} ELSE ${reasonColumn} END`;
    sql = step(`* EXCLUDE (${attempt}) REPLACE (${failed} AS ${reasonColumn}), struct_extract(${attempt}, 'value') AS ${quoteIdent(name)}`, sql);
  }
  if (input.deriveSql.size > 0) sql = step(`* EXCLUDE (${quoteIdent(QUARANTINE_REASON)}), ${quoteIdent(QUARANTINE_REASON)}`, sql);
  return sql;
}

/** See {@link TransformPlan.cleanSql}. */
export function cleanSql(input: TransformSqlInput, source: string): string {
  return pipelineSql(input, source, false);
}

/** See {@link TransformPlan.quarantineSql}. */
export function quarantineSql(input: TransformSqlInput, source: string): string {
  const raw = ruledFields(input);
  const drop = [...[...input.deriveSql.keys()].map(quoteIdent), ...raw.map((field) => internal('raw', field.name))];
  const restore = raw.map((field) => `${internal('raw', field.name)} AS ${quoteIdent(field.name)}`);
  const select = `*${drop.length > 0 ? ` EXCLUDE (${drop.join(', ')})` : ''}${restore.length > 0 ? ` REPLACE (${restore.join(', ')})` : ''}`;
  return step(select, pipelineSql(input, source, true), `${quoteIdent(QUARANTINE_REASON)} IS NOT NULL`);
}

/** The offset columns that break ties between copies with the same event time. */
export const DEDUPE_TIE_BREAK = ['__shard', '__seq'] as const;

/** See {@link TransformPlan.dedupeSql}. */
export function dedupeSql(keys: readonly string[], eventTime: string, withinMs: number, source: string): string {
  const { numbered, kept, previous } = dedupeWindow(keys, eventTime, withinMs, '*', source);
  return step(`* EXCLUDE (${previous})`, numbered, kept);
}

/**
 * The rows of `source` that {@link dedupeSql} leaves out, as their `identity` columns only. The window reads just
 * the keys, the event time, the offsets and the identity, so over Parquet it costs a narrow scan: the batch layer
 * finds a run's duplicates this way and removes them from each partition by an anti-join.
 */
export function duplicateRowsSql(keys: readonly string[], eventTime: string, withinMs: number, source: string, identity: readonly string[]): string {
  const columns = [...new Set([...keys, eventTime, ...DEDUPE_TIE_BREAK, ...identity])].map(quoteIdent).join(', ');
  const keyList = keys.map(quoteIdent).join(', ');
  // Only keys held more than once can have a duplicate, and most keys are held once, so the window orders few
  // rows. The repeated keys are found by sorting the keys' 64-bit hashes and comparing neighbours, which costs
  // less than grouping the keys themselves (10M keys held once: 1.7 → 1.0 s): a sort of fixed-width values
  // instead of a hash table of 10M strings, and an empty result skips the second scan. A hash shared by two
  // keys only adds candidates: the window compares the keys themselves.
  const narrow = `SELECT ${columns} FROM (${source}) AS source`;
  const present = keys.map((key) => `${quoteIdent(key)} IS NOT NULL`).join(' AND ');
  const hash = quoteIdent(`${INTERNAL}key_hash`);
  const before = quoteIdent(`${INTERNAL}hash_before`);
  const hashes = `SELECT hash(${keyList}) AS ${hash} FROM (${narrow}) AS narrow WHERE ${present}`;
  const repeated = `SELECT DISTINCT ${hash} FROM (SELECT ${hash}, lag(${hash}) OVER (ORDER BY ${hash}) AS ${before} FROM (${hashes}) AS hashes) AS sorted WHERE ${hash} = ${before}`;
  const candidates = `SELECT * FROM (${narrow}) AS narrow WHERE ${present} AND hash(${keyList}) IN (${repeated})`;
  const { numbered, kept } = dedupeWindow(keys, eventTime, withinMs, '*', candidates);
  return `SELECT ${identity.map(quoteIdent).join(', ')} FROM (${numbered}) AS numbered WHERE (${kept}) IS NOT TRUE`;
}

/**
 * De-duplication of new records against the records a view version already counted, for an incremental run that
 * adds the new ones as deltas. `fresh` holds the new clean records (with `identity`), `counted` the counted clean
 * records where copies of them may lie (the partitions up to the window around theirs; null for none); both need
 * the keys, the event time, the offsets and `partition`. One row per new record with another copy, new or counted
 * (a record without one is kept and displaces nothing, so it is left out): its `identity`, `__duplicate`
 * (the window leaves it out, exactly as {@link dedupeSql} over all the records would, since a record's fate
 * depends only on the time of the copy before it) and `__displaced` (the `partition` of the counted copy it turns
 * into a duplicate, by landing within the window before one that was kept; else NULL). A delta cannot take a
 * counted record back, so the run recomputes those partitions whole. Adding records only ever shortens the gap
 * to a copy's predecessor, so no other counted record changes.
 *
 * Only counted copies of the new records' keys are read past the key columns (a semi-join), so the cost is a
 * scan of the window's keys, not a window over every record in it.
 */
export function newCopiesSql(
  keys: readonly string[],
  eventTime: string,
  withinMs: number,
  fresh: string,
  counted: string | null,
  identity: readonly string[],
  partition: string,
): string {
  const keyList = keys.map(quoteIdent).join(', ');
  const time = quoteIdent(eventTime);
  const judging = [...new Set([...keys, eventTime, ...DEDUPE_TIE_BREAK, partition])];
  const offsets = judging.map(quoteIdent).join(', ');
  const carried = [...new Set([...judging, ...identity])].map(quoteIdent).join(', ');
  const ids = identity.map(quoteIdent).join(', ');
  const isNew = quoteIdent(`${INTERNAL}new`);
  const wasKept = quoteIdent(`${INTERNAL}was_kept`);
  const previous = quoteIdent(`${INTERNAL}previous`);
  const next = (what: string) => quoteIdent(`${INTERNAL}next_${what}`);
  const order = dedupeOrder(eventTime);
  const windowMicros = Math.round(withinMs * 1000);
  // Only the keys held more than once among the new records, or also among the counted ones, go through the
  // windows: most new records have no copy (1 % new data over 10M events: the judging 155 → 120 ms).
  const countedCopies =
    counted === null
      ? null
      : `SELECT ${offsets}, false AS ${isNew} FROM (${counted}) AS counted SEMI JOIN (SELECT DISTINCT ${keyList} FROM fresh) AS fresh_keys USING (${keyList})`;
  const copiedKeys =
    `SELECT ${keyList} FROM fresh GROUP BY ALL HAVING count(*) > 1` + (countedCopies === null ? '' : ` UNION SELECT ${keyList} FROM counted_copies`);
  const copies =
    `SELECT *, true AS ${isNew} FROM fresh SEMI JOIN (${copiedKeys}) AS copied USING (${keyList})` +
    (countedCopies === null ? '' : ` UNION ALL BY NAME SELECT * FROM counted_copies`);
  // Whether each counted copy was kept among the counted ones alone (its predecessor among them, by the same rule).
  const counting = `lag(${time}) OVER (PARTITION BY ${keyList}, ${isNew} ORDER BY ${order})`;
  const judged = `SELECT *, CASE WHEN NOT ${isNew} THEN ${keptSql(keys, eventTime, counting, windowMicros)} END AS ${wasKept} FROM (${copies}) AS copies`;
  const ordered = `OVER (PARTITION BY ${keyList} ORDER BY ${order})`;
  const windowed =
    `SELECT *, lag(${time}) ${ordered} AS ${previous}, lead(${time}) ${ordered} AS ${next('time')}, ` +
    `lead(${isNew}) ${ordered} AS ${next('new')}, lead(${wasKept}) ${ordered} AS ${next('was_kept')}, ` +
    `lead(${quoteIdent(partition)}) ${ordered} AS ${next('partition')} FROM (${judged}) AS judged`;
  const displaces =
    `${time} IS NOT NULL AND ${next('new')} IS FALSE AND ${next('was_kept')} IS TRUE AND ` +
    `epoch_us(${next('time')}) - epoch_us(${time}) < ${windowMicros}`;
  return (
    `WITH fresh AS MATERIALIZED (SELECT ${carried} FROM (${fresh}) AS fresh)` +
    (countedCopies === null ? ' ' : `, counted_copies AS MATERIALIZED (${countedCopies}) `) +
    `SELECT ${ids}, (${keptSql(keys, eventTime, previous, windowMicros)}) IS NOT TRUE AS __duplicate, ` +
    `CASE WHEN ${displaces} THEN ${next('partition')} END AS __displaced ` +
    `FROM (${windowed}) AS windowed WHERE ${isNew}`
  );
}

/** The order copies of a key are judged in: event time, then offsets, nulls last (spelled out: DuckDB's default null order is a setting). */
function dedupeOrder(eventTime: string): string {
  return [quoteIdent(eventTime), ...DEDUPE_TIE_BREAK.map(quoteIdent)].map((column) => `${column} ASC NULLS LAST`).join(', ');
}

/** When a copy is kept, given `previous`, the event time of the copy before it: no key, no time, no copy before, or one the window or more before. */
function keptSql(keys: readonly string[], eventTime: string, previous: string, windowMicros: number): string {
  const time = quoteIdent(eventTime);
  return [
    ...keys.map((key) => `${quoteIdent(key)} IS NULL`),
    `${time} IS NULL`,
    `${previous} IS NULL`,
    `epoch_us(${time}) - epoch_us(${previous}) >= ${windowMicros}`,
  ].join(' OR ');
}

/** The window both de-duplication queries share: each row with the event time of the copy before it, and when a row is kept. */
function dedupeWindow(keys: readonly string[], eventTime: string, withinMs: number, columns: string, source: string) {
  const time = quoteIdent(eventTime);
  const previous = quoteIdent(`${INTERNAL}previous`);
  const partition = keys.map(quoteIdent).join(', ');
  const kept = keptSql(keys, eventTime, previous, Math.round(withinMs * 1000));
  const numbered = `SELECT ${columns}, lag(${time}) OVER (PARTITION BY ${partition} ORDER BY ${dedupeOrder(eventTime)}) AS ${previous} FROM (${source}) AS source`;
  return { numbered, kept, previous };
}

/** Whether a clean record (one that is not quarantined) can hold NULL in the field after the rules. */
export function cleanNullable(field: FieldSpec, rules: TransformRules): boolean {
  if (rules.required.includes(field.name)) return false;
  let nullable = field.nullable && !rules.defaults.has(field.name);
  // A failed `utc` conversion quarantines the record, so it keeps the field's nullability; these two add NULLs.
  if ((rules.standardize.get(field.name) ?? []).includes('null_if_empty')) nullable = true;
  if ([...(rules.map.get(field.name)?.values() ?? [])].includes(null)) nullable = true;
  return nullable;
}

/** The field's type after the rules, as a Strata column type. */
export function cleanFieldType(field: FieldSpec, rules: TransformRules): ColumnType {
  return standardizedType(field, rules.standardize.get(field.name));
}
