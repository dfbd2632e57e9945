import type { ColumnType, StreamConfig } from '../config/index.js';

/** Why one record was refused: the field (when one is at fault) and what is wrong with it. */
export interface RecordError {
  readonly field?: string;
  readonly message: string;
}

/**
 * What validation made of a record: an error, or valid, and whether a value had to be rewritten (when none
 * was, the producer's own JSON text of the record can be stored as it is, saving a serialization).
 */
export type Validation = RecordError | 'unchanged' | 'rewritten';

/**
 * Checks a parsed record against its stream's schema and rewrites it, in place, to its canonical form:
 * lossless coercions only (a numeric string to a number, an ISO-8601 string with any offset to a UTC
 * timestamp), so the log holds one spelling of every value.
 *
 * Choices a demanding user should know: a field the schema does not declare is refused (so a producer's
 * typo is caught at the door, not discovered in a report); a timestamp without an offset is read as UTC;
 * a number for a timestamp is milliseconds since the epoch.
 */
export type RecordValidator = (record: unknown) => Validation;

type Coerce = (value: unknown) => { value: unknown } | string;

const INTEGER_TEXT = /^-?\d+$/;
const NUMBER_TEXT = /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;
const TIMESTAMP_TEXT =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;
const DATE_TEXT = /^(\d{4})-(\d{2})-(\d{2})$/;
const INT64_MAX = 9223372036854775807n;
const INT64_MIN = -9223372036854775808n;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

/** Milliseconds since the epoch for a calendar date and time, or NaN when a part is out of range. */
function utcMillis(year: number, month: number, day: number, hour: number, minute: number, second: number): number {
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  const ok =
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    date.getUTCHours() === hour &&
    date.getUTCMinutes() === minute &&
    date.getUTCSeconds() === second;
  return ok ? date.getTime() : NaN;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Two ASCII digits at `at` as a number, or -1. */
function twoDigits(text: string, at: number): number {
  const a = text.charCodeAt(at) - 48;
  const b = text.charCodeAt(at + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/**
 * True when `text` already is canonical (`YYYY-MM-DDTHH:MM:SS.sssZ`, a valid instant), checked without regex
 * or Date: most producers send this spelling, and this check is on the ingest hot path.
 */
function isCanonicalTimestamp(text: string): boolean {
  if (text.length !== 24 || text[4] !== '-' || text[7] !== '-' || text[10] !== 'T' || text[13] !== ':') return false;
  if (text[16] !== ':' || text[19] !== '.' || text[23] !== 'Z') return false;
  const hi = twoDigits(text, 0);
  const lo = twoDigits(text, 2);
  const month = twoDigits(text, 5);
  const day = twoDigits(text, 8);
  const ms = twoDigits(text, 20);
  const msLast = text.charCodeAt(22) - 48;
  if (hi < 0 || lo < 0 || ms < 0 || msLast < 0 || msLast > 9 || month < 1 || month > 12 || day < 1) return false;
  const year = hi * 100 + lo;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (year < 1 || day > (month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!)) return false;
  const hour = twoDigits(text, 11);
  const minute = twoDigits(text, 14);
  const second = twoDigits(text, 17);
  return hour >= 0 && hour < 24 && minute >= 0 && minute < 60 && second >= 0 && second < 60;
}

/** Canonical timestamp text: ISO-8601 in UTC with milliseconds, or microseconds when the input had them. */
export function parseTimestamp(value: unknown): string | null {
  if (typeof value === 'string' && isCanonicalTimestamp(value)) return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || Math.abs(value) > 8.64e15) return null;
    return new Date(value).toISOString();
  }
  if (typeof value !== 'string') return null;
  const match = TIMESTAMP_TEXT.exec(value);
  if (!match) return null;
  const [, y, mo, d, h = '0', mi = '0', s = '0', fraction = '', zone] = match;
  const base = utcMillis(Number(y), Number(mo), Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(base) || Number(y) < 1) return null;
  let offsetMinutes = 0;
  if (zone !== undefined && zone !== 'Z' && zone !== 'z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const hours = Number(digits.slice(0, 2));
    const minutes = digits.length > 2 ? Number(digits.slice(2, 4)) : 0;
    if (hours > 23 || minutes > 59) return null;
    offsetMinutes = sign * (hours * 60 + minutes);
  }
  // Sub-microsecond digits cannot be stored (timestamps have microsecond precision downstream).
  if (fraction.length > 6 && /[1-9]/.test(fraction.slice(6))) return null;
  const micros = fraction.slice(0, 6).padEnd(6, '0');
  const millis = base - offsetMinutes * 60_000 + Number(micros.slice(0, 3));
  const iso = new Date(millis).toISOString();
  return micros.slice(3) === '000' ? iso : `${iso.slice(0, -1)}${micros.slice(3)}Z`;
}

const COERCERS: Record<ColumnType, Coerce> = {
  string: (value) => (typeof value === 'string' ? { value } : `expected a string, got ${describe(value)}`),
  int: (value) => {
    const number = typeof value === 'string' && INTEGER_TEXT.test(value) ? Number(value) : value;
    if (typeof number === 'number' && Number.isInteger(number) && number >= -2147483648 && number <= 2147483647) {
      return { value: number };
    }
    return `expected a 32-bit integer, got ${describe(value)}`;
  },
  bigint: (value) => {
    if (typeof value === 'number') {
      if (Number.isSafeInteger(value)) return { value };
      return `expected a 64-bit integer, got ${describe(value)} (send integers beyond 2^53 as decimal strings)`;
    }
    if (typeof value === 'string' && INTEGER_TEXT.test(value)) {
      const big = BigInt(value);
      if (big < INT64_MIN || big > INT64_MAX) return `${describe(value)} is outside the 64-bit integer range`;
      const number = Number(big);
      return { value: Number.isSafeInteger(number) ? number : big.toString() };
    }
    return `expected a 64-bit integer, got ${describe(value)}`;
  },
  double: (value) => {
    if (typeof value === 'number') return { value };
    if (typeof value === 'string' && NUMBER_TEXT.test(value)) return { value: Number(value) };
    return `expected a number, got ${describe(value)}`;
  },
  boolean: (value) => {
    if (typeof value === 'boolean') return { value };
    if (value === 'true' || value === 'false') return { value: value === 'true' };
    return `expected true or false, got ${describe(value)}`;
  },
  timestamp: (value) => {
    const iso = parseTimestamp(value);
    return iso === null ? `expected an ISO-8601 timestamp or epoch milliseconds, got ${describe(value)}` : { value: iso };
  },
  date: (value) => {
    const match = typeof value === 'string' ? DATE_TEXT.exec(value) : null;
    if (match && !Number.isNaN(utcMillis(Number(match[1]), Number(match[2]), Number(match[3]), 0, 0, 0))) return { value };
    return `expected a date YYYY-MM-DD, got ${describe(value)}`;
  },
  json: (value) => ({ value }),
};

/** Builds the validator for one stream's schema. */
export function compileRecordValidator(stream: StreamConfig): RecordValidator {
  const fields = stream.fields.map((field) => ({ ...field, coerce: COERCERS[field.type] }));
  const known = new Set(fields.map((field) => field.name));
  return (record) => {
    if (typeof record !== 'object' || record === null || Array.isArray(record)) {
      return { message: `a record must be a JSON object, got ${describe(record)}` };
    }
    const object = record as Record<string, unknown>;
    let present = 0;
    let rewritten = false;
    for (const field of fields) {
      const value = object[field.name];
      if (value === undefined || value === null) {
        if (!field.nullable) return { field: field.name, message: value === null ? 'must not be null' : 'is required' };
        if (value === null) present++;
        continue;
      }
      present++;
      const result = field.coerce(value);
      if (typeof result === 'string') return { field: field.name, message: result };
      if (result.value !== value) {
        object[field.name] = result.value;
        rewritten = true;
      }
    }
    let keys = 0;
    // JSON.parse makes plain objects with own keys only ("__proto__" included), so for-in counts exactly them.
    for (const _key in object) keys++;
    if (keys !== present) {
      for (const key in object) {
        if (!known.has(key)) return { field: key, message: `is not in the schema of stream "${stream.name}"` };
      }
    }
    return rewritten ? 'rewritten' : 'unchanged';
  };
}
