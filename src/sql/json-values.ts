import {
  DuckDBTypeId,
  JsonDuckDBValueConverter,
  type DuckDBDecimalValue,
  type DuckDBType,
  type DuckDBTimestampMillisecondsValue,
  type DuckDBTimestampNanosecondsValue,
  type DuckDBTimestampSecondsValue,
  type DuckDBTimestampTZValue,
  type DuckDBTimestampValue,
  type DuckDBValueConverter,
  type Json,
} from '@duckdb/node-api';

/** One value of an answer, as JSON. */
export type SqlValue = Json;

/** One row of an answer: column name → value. Column names are unique (duplicates get `:1`, `:2`...). */
export type SqlRow = Record<string, SqlValue>;

/** Widest DECIMAL whose every value survives a trip through a double unchanged (15 significant digits). */
const MAX_EXACT_DECIMAL_WIDTH = 15;

const NANOS_PER_SECOND = 1_000_000_000n;
/** The range of a JavaScript Date, in seconds either side of the epoch. */
const MAX_DATE_SECONDS = 8_640_000_000_000n;

/**
 * How every answer of the SQL engine renders DuckDB values as JSON, one rule per type so that a column's JSON
 * type never depends on its values:
 * - TIMESTAMP (and _S, _MS, _NS, WITH TIME ZONE): ISO-8601 in UTC, `2026-11-25T10:00:00.000Z`, with 3 fraction
 *   digits, or 6 (9 for TIMESTAMP_NS) when the value has microseconds (nanoseconds); `infinity`/`-infinity`.
 * - DATE: `YYYY-MM-DD`; TIME: `HH:MM:SS[.ffffff]`.
 * - Integers up to 32 bits: numbers. BIGINT, UBIGINT, HUGEINT, UHUGEINT, BIGNUM: always decimal strings (they
 *   may outgrow 2^53; API.md: big integers are strings), so `count(*)` answers `"3"`.
 * - DOUBLE, FLOAT: numbers; NaN and ±Infinity, which JSON lacks, as the strings `NaN`, `Infinity`, `-Infinity`.
 * - DECIMAL(w,s): a number when w ≤ 15 (exact in a double), else a decimal string.
 * - JSON columns: the parsed JSON value. LIST, ARRAY: arrays; STRUCT: objects; MAP: `[{key, value}]`; all
 *   with their items converted by these same rules.
 * - VARCHAR, UUID, ENUM, BLOB, BIT: strings; INTERVAL: `{months, days, micros}` (micros a string); NULL: null.
 */
export const toJsonValue: DuckDBValueConverter<Json> = (value, type, converter) => {
  if (value == null) return null;
  switch (type.typeId) {
    case DuckDBTypeId.TIMESTAMP:
    case DuckDBTypeId.TIMESTAMP_TZ: {
      const timestamp = value as DuckDBTimestampValue | DuckDBTimestampTZValue;
      return (timestamp.isFinite && isoTimestamp(timestamp.micros * 1000n, 6)) || String(timestamp);
    }
    case DuckDBTypeId.TIMESTAMP_MS: {
      const timestamp = value as DuckDBTimestampMillisecondsValue;
      return (timestamp.isFinite && isoTimestamp(timestamp.millis * 1_000_000n, 3)) || String(timestamp);
    }
    case DuckDBTypeId.TIMESTAMP_S: {
      const timestamp = value as DuckDBTimestampSecondsValue;
      return (timestamp.isFinite && isoTimestamp(timestamp.seconds * NANOS_PER_SECOND, 3)) || String(timestamp);
    }
    case DuckDBTypeId.TIMESTAMP_NS: {
      const timestamp = value as DuckDBTimestampNanosecondsValue;
      return (timestamp.isFinite && isoTimestamp(timestamp.nanos, 9)) || String(timestamp);
    }
    case DuckDBTypeId.DECIMAL: {
      const decimal = value as DuckDBDecimalValue;
      return decimal.width <= MAX_EXACT_DECIMAL_WIDTH ? Number(decimal.toString()) : decimal.toString();
    }
    case DuckDBTypeId.VARCHAR:
      if (type.alias === 'JSON') {
        try {
          return JSON.parse(value as string) as Json;
        } catch {
          return value as string;
        }
      }
      return value as string;
    default:
      // Passing our converter on makes nested values (a list of timestamps) follow the same rules.
      return JsonDuckDBValueConverter(value, type, converter);
  }
};

/**
 * A timestamp given in nanoseconds since the epoch as ISO-8601 UTC. Fraction digits: 3, or more when the value
 * has them, up to `maxDigits`. Null outside the range of a JavaScript Date (beyond ±275,000 years), where the
 * caller falls back to DuckDB's own text.
 */
export function isoTimestamp(nanos: bigint, maxDigits: 3 | 6 | 9): string | null {
  const fraction = ((nanos % NANOS_PER_SECOND) + NANOS_PER_SECOND) % NANOS_PER_SECOND;
  const seconds = (nanos - fraction) / NANOS_PER_SECOND;
  if (seconds > MAX_DATE_SECONDS || seconds < -MAX_DATE_SECONDS) return null;
  const whole = new Date(Number(seconds) * 1000).toISOString().slice(0, -5);
  let digits = fraction.toString().padStart(9, '0');
  if (maxDigits < 9 || digits.endsWith('000')) digits = digits.slice(0, 6);
  if (maxDigits < 6 || digits.endsWith('000')) digits = digits.slice(0, 3);
  return `${whole}.${digits}Z`;
}

/** The type name an answer reports for a column: DuckDB's, with aliases such as `JSON` kept. */
export function typeName(type: DuckDBType): string {
  return type.alias ?? type.toString();
}
