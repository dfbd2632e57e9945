import type { FieldSpec } from './index.js';
import { DURATION_PATTERN, NAME_PATTERN, type ColumnType } from './schema.js';
import type { StandardizeOp, TransformInput } from './transform-schema.js';

export { STANDARDIZE_OPS, type StandardizeOp, type TransformInput } from './transform-schema.js';

/**
 * Timestamp text as ingest accepts it (src/ingest/record-validator.ts): a date, an optional time with up to nine
 * fraction digits, and an optional offset (`Z`, `+02`, `+0200`, `+02:00`); no offset means UTC. Group 1 is the
 * wall-clock part, group 2 the offset. `utc` on a string field parses by it, in SQL (RE2 syntax), and timestamp
 * defaults are checked against it.
 */
export const TIMESTAMP_TEXT_PATTERN = /^(\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?)\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;

/** A value a default may hold: a JSON value already checked to fit its field's type (never null). */
export type DefaultValue = string | number | boolean | readonly unknown[] | { readonly [key: string]: unknown };

/** De-duplication: which columns identify a record, and the event-time window a copy is caught in. */
export interface DedupeRule {
  /** Fields or derived columns, in declaration order. */
  readonly keys: readonly string[];
  /** The window as declared, e.g. `"24h"`. */
  readonly within: string;
}

/**
 * A stream's cleansing rules, validated against its schema. Each map keeps declaration order. How they apply,
 * and in which order, is src/transform's to say (see src/transform/index.ts).
 */
export interface TransformRules {
  readonly dedupe: DedupeRule | null;
  readonly required: readonly string[];
  readonly defaults: ReadonlyMap<string, DefaultValue>;
  readonly standardize: ReadonlyMap<string, readonly StandardizeOp[]>;
  /** Per string field, `from → to` (to may be null: the value becomes missing). */
  readonly map: ReadonlyMap<string, ReadonlyMap<string, string | null>>;
  /** Derived column → its SQL scalar expression, in declaration order (a column may use the ones before it). */
  readonly derive: ReadonlyMap<string, string>;
}

/** Operations that read and write strings; `utc` is the only one that also applies to timestamps. */
const STRING_OPS: ReadonlySet<StandardizeOp> = new Set(['trim', 'collapse_spaces', 'lower', 'upper', 'null_if_empty']);

/** The type a field has after its standardization: `utc` turns a string field into a timestamp. */
export function standardizedType(field: FieldSpec, ops: readonly StandardizeOp[] = []): ColumnType {
  return field.type === 'string' && ops.includes('utc') ? 'timestamp' : field.type;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Why `value` cannot be a default of a `type` field, or null when it fits. */
function defaultMisfit(value: unknown, type: ColumnType): string | null {
  const shown = JSON.stringify(value);
  switch (type) {
    case 'string':
      return typeof value === 'string' ? null : `${shown} is not a string`;
    case 'int':
      return Number.isInteger(value) && (value as number) >= -(2 ** 31) && (value as number) < 2 ** 31 ? null : `${shown} is not a 32-bit integer`;
    case 'bigint':
      if (Number.isSafeInteger(value)) return null;
      // Beyond 2^53 a JSON number loses digits, so big values come as decimal strings, as ingest accepts them.
      if (typeof value === 'string' && /^-?\d{1,19}$/.test(value) && BigInt(value) >= INT64_MIN && BigInt(value) <= INT64_MAX) return null;
      return `${shown} is not a 64-bit integer (write one beyond 2^53 as a decimal string)`;
    case 'double':
      return typeof value === 'number' && Number.isFinite(value) ? null : `${shown} is not a number`;
    case 'boolean':
      return typeof value === 'boolean' ? null : `${shown} is not true or false`;
    case 'timestamp':
      return typeof value === 'string' && TIMESTAMP_TEXT_PATTERN.test(value) ? null : `${shown} is not an ISO-8601 timestamp`;
    case 'date':
      return typeof value === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(value) ? null : `${shown} is not a date YYYY-MM-DD`;
    case 'json':
      return null;
  }
}

/**
 * Checks a stream's declared `transform` against its fields and returns the rules, or the problems, each naming
 * the stream, the rule and the field: an unknown column, an operation that does not apply to the field's type, a
 * default that does not fit it, a derived column named like a field. What only the engine can judge (a `derive`
 * expression, a timestamp default's calendar date) is checked when the transform compiles (src/transform).
 */
export function resolveTransform(
  stream: string,
  fields: readonly FieldSpec[],
  eventTime: string | null,
  declared: TransformInput,
): { rules: TransformRules; problems: string[] } {
  const at = `streams.${stream}.transform`;
  const problems: string[] = [];
  const byName = new Map(fields.map((field) => [field.name, field]));
  // DuckDB resolves identifiers without regard to case, so `Page` would be the field `page` in SQL.
  const fieldByLowerName = new Map(fields.map((field) => [field.name.toLowerCase(), field]));
  const deriveNames = Object.keys(declared.derive ?? {});
  const notAField = (name: string) =>
    deriveNames.includes(name)
      ? `"${name}" is a derived column; derived columns are computed after the other rules`
      : `"${name}" is not a field of the schema`;

  const required: string[] = [];
  for (const name of declared.required ?? []) {
    if (!byName.has(name)) problems.push(`${at}.required: ${notAField(name)}`);
    else if (required.includes(name)) problems.push(`${at}.required: lists "${name}" twice`);
    else required.push(name);
  }

  const defaults = new Map<string, DefaultValue>();
  for (const [name, value] of Object.entries(declared.defaults ?? {})) {
    const field = byName.get(name);
    if (!field) problems.push(`${at}.defaults.${name}: ${notAField(name)}`);
    else if (value === null || value === undefined) problems.push(`${at}.defaults.${name}: a default cannot be null`);
    else {
      const misfit = defaultMisfit(value, field.type);
      if (misfit !== null) problems.push(`${at}.defaults.${name}: ${misfit}, and ${name} is ${field.type}`);
      else defaults.set(name, value as DefaultValue);
    }
  }

  const standardize = new Map<string, readonly StandardizeOp[]>();
  for (const [name, declaredOps] of Object.entries(declared.standardize ?? {})) {
    const field = byName.get(name);
    if (!field) {
      problems.push(`${at}.standardize.${name}: ${notAField(name)}`);
      continue;
    }
    const ops = typeof declaredOps === 'string' ? [declaredOps] : declaredOps;
    let type: ColumnType = field.type;
    for (const op of ops) {
      if (op === 'utc' && (type === 'string' || type === 'timestamp')) type = 'timestamp';
      else if (op === 'utc') problems.push(`${at}.standardize.${name}: utc applies to timestamps and to strings holding them, and ${name} is ${type}`);
      else if (STRING_OPS.has(op) && type !== 'string') {
        const after = type === field.type ? '' : ' after utc';
        problems.push(`${at}.standardize.${name}: ${op} applies to strings, and ${name} is ${type}${after}`);
      }
    }
    standardize.set(name, ops);
  }

  const map = new Map<string, ReadonlyMap<string, string | null>>();
  for (const [name, entries] of Object.entries(declared.map ?? {})) {
    const field = byName.get(name);
    if (!field) problems.push(`${at}.map.${name}: ${notAField(name)}`);
    else {
      const type = standardizedType(field, standardize.get(name));
      if (type !== 'string') problems.push(`${at}.map.${name}: only string fields can be mapped, and ${name} is ${type}`);
      else map.set(name, new Map(Object.entries(entries)));
    }
  }

  const derive = new Map<string, string>();
  const derivedLowerNames = new Set<string>();
  for (const [name, sql] of Object.entries(declared.derive ?? {})) {
    const clash = fieldByLowerName.get(name.toLowerCase());
    if (!NAME_PATTERN.test(name)) problems.push(`${at}.derive.${name}: a derived column name must start with a letter or _ and hold only letters, digits and _ (at most 63)`);
    else if (name.startsWith('__')) problems.push(`${at}.derive.${name}: names starting with __ are kept for Strata's own columns`);
    else if (clash) problems.push(`${at}.derive.${name}: clashes with the field "${clash.name}" of the schema; derive a column under another name`);
    else if (derivedLowerNames.has(name.toLowerCase())) problems.push(`${at}.derive.${name}: another derived column has this name (names ignore case in SQL)`);
    else {
      derive.set(name, sql);
      derivedLowerNames.add(name.toLowerCase());
    }
  }

  let dedupe: DedupeRule | null = null;
  if (declared.dedupe) {
    const keys = typeof declared.dedupe.key === 'string' ? [declared.dedupe.key] : declared.dedupe.key;
    const before = problems.length;
    for (const key of keys) {
      const field = byName.get(key);
      if (!field && !derive.has(key)) problems.push(`${at}.dedupe.key: "${key}" is neither a field of the schema nor a derived column`);
      else if (field?.type === 'json') problems.push(`${at}.dedupe.key: "${key}" is json; a dedupe key must be a scalar`);
    }
    if (new Set(keys).size !== keys.length) problems.push(`${at}.dedupe.key: names a column twice`);
    const within = DURATION_PATTERN.exec(declared.dedupe.within);
    if (!within) problems.push(`${at}.dedupe.within: expected a duration such as "10m", "24h" or "7d"`);
    else if (Number(within[1]) === 0) problems.push(`${at}.dedupe.within: the window must be longer than zero`);
    // The window is measured between copies' event times; without an event time there is nothing to measure.
    if (eventTime === null) problems.push(`${at}.dedupe: the stream declares no eventTime, and the dedupe window is measured in event time`);
    if (problems.length === before) dedupe = { keys, within: declared.dedupe.within };
  }

  return { rules: { dedupe, required, defaults, standardize, map, derive }, problems };
}

/** True when the rules do nothing: a `transform: {}` block. */
export function isEmptyTransform(rules: TransformRules): boolean {
  return (
    rules.dedupe === null &&
    rules.required.length === 0 &&
    rules.defaults.size === 0 &&
    rules.standardize.size === 0 &&
    rules.map.size === 0 &&
    rules.derive.size === 0
  );
}
