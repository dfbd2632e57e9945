/**
 * DuckDB's types as PostgreSQL sees them: each answer column's type OID, and its values in PostgreSQL's text
 * and binary formats. The SQL engine answers values as JSON (src/sql/json-values.ts: BIGINT as a decimal
 * string, timestamps as ISO-8601 UTC, BLOB in DuckDB's escaped text...), so the encoders start from those.
 */
import type { SqlValue } from '../sql/index.js';
import { lookup } from './sql-text.js';

/** PostgreSQL type OIDs used on the wire (pg_type.oid, fixed since forever). */
export const OID = {
  bool: 16,
  bytea: 17,
  char: 18,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  json: 114,
  float4: 700,
  float8: 701,
  unknown: 705,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  timetz: 1266,
  numeric: 1700,
  uuid: 2950,
  jsonb: 3802,
} as const;

/** How a column's values are encoded; one per PostgreSQL type Strata answers in. */
export type PgKind =
  | 'bool'
  | 'int2'
  | 'int4'
  | 'int8'
  | 'float4'
  | 'float8'
  | 'numeric'
  | 'text'
  | 'bytea'
  | 'date'
  | 'time'
  | 'timetz'
  | 'timestamp'
  | 'timestamptz'
  | 'interval'
  | 'uuid'
  | 'json';

/** One answer column's PostgreSQL type. */
export interface PgType {
  readonly kind: PgKind;
  readonly oid: number;
  /** pg_type.typname. */
  readonly name: string;
  /** pg_type.typlen: bytes of the binary form, -1 when variable. */
  readonly size: number;
  /** The type modifier (atttypmod): numeric(p,s) as ((p << 16) | s) + 4, else -1. */
  readonly typmod: number;
  /** Digits after the point of a DECIMAL(w,s) column, so that 1.5 prints as 1.50 like PostgreSQL's numeric. */
  readonly scale: number;
}

const TYPES: Record<PgKind, Omit<PgType, 'typmod' | 'scale'>> = {
  bool: { kind: 'bool', oid: OID.bool, name: 'bool', size: 1 },
  int2: { kind: 'int2', oid: OID.int2, name: 'int2', size: 2 },
  int4: { kind: 'int4', oid: OID.int4, name: 'int4', size: 4 },
  int8: { kind: 'int8', oid: OID.int8, name: 'int8', size: 8 },
  float4: { kind: 'float4', oid: OID.float4, name: 'float4', size: 4 },
  float8: { kind: 'float8', oid: OID.float8, name: 'float8', size: 8 },
  numeric: { kind: 'numeric', oid: OID.numeric, name: 'numeric', size: -1 },
  text: { kind: 'text', oid: OID.text, name: 'text', size: -1 },
  bytea: { kind: 'bytea', oid: OID.bytea, name: 'bytea', size: -1 },
  date: { kind: 'date', oid: OID.date, name: 'date', size: 4 },
  time: { kind: 'time', oid: OID.time, name: 'time', size: 8 },
  timetz: { kind: 'timetz', oid: OID.timetz, name: 'timetz', size: 12 },
  timestamp: { kind: 'timestamp', oid: OID.timestamp, name: 'timestamp', size: 8 },
  timestamptz: { kind: 'timestamptz', oid: OID.timestamptz, name: 'timestamptz', size: 8 },
  interval: { kind: 'interval', oid: OID.interval, name: 'interval', size: 16 },
  uuid: { kind: 'uuid', oid: OID.uuid, name: 'uuid', size: 16 },
  json: { kind: 'json', oid: OID.json, name: 'json', size: -1 },
};

/** DuckDB type names (as the SQL engine reports them) that map one to one. */
const BY_DUCKDB_NAME: Record<string, PgKind> = {
  BOOLEAN: 'bool',
  TINYINT: 'int2',
  SMALLINT: 'int2',
  UTINYINT: 'int2',
  INTEGER: 'int4',
  USMALLINT: 'int4',
  BIGINT: 'int8',
  UINTEGER: 'int8',
  // Wider than int8: PostgreSQL's numeric holds them exactly.
  UBIGINT: 'numeric',
  HUGEINT: 'numeric',
  UHUGEINT: 'numeric',
  BIGNUM: 'numeric',
  VARINT: 'numeric',
  FLOAT: 'float4',
  DOUBLE: 'float8',
  VARCHAR: 'text',
  BLOB: 'bytea',
  DATE: 'date',
  TIME: 'time',
  TIME_NS: 'time',
  'TIME WITH TIME ZONE': 'timetz',
  TIMESTAMP: 'timestamp',
  TIMESTAMP_S: 'timestamp',
  TIMESTAMP_MS: 'timestamp',
  TIMESTAMP_NS: 'timestamp',
  'TIMESTAMP WITH TIME ZONE': 'timestamptz',
  INTERVAL: 'interval',
  UUID: 'uuid',
  JSON: 'json',
};

/**
 * The PostgreSQL type of a column whose DuckDB type name is `duckdbType`. Nested types (LIST, ARRAY, STRUCT,
 * MAP, UNION) travel as json, written as the same JSON that `POST /v1/sql` answers; ENUM, BIT, NULL and
 * anything unknown travel as text.
 */
export function pgTypeOf(duckdbType: string): PgType {
  const exact = lookup(BY_DUCKDB_NAME, duckdbType);
  if (exact) return { ...TYPES[exact], typmod: -1, scale: -1 };
  const decimal = /^DECIMAL\((\d+),\s*(\d+)\)$/.exec(duckdbType);
  if (decimal) {
    const precision = Number(decimal[1]);
    const scale = Number(decimal[2]);
    return { ...TYPES.numeric, typmod: ((precision << 16) | scale) + 4, scale };
  }
  if (isNestedType(duckdbType)) return { ...TYPES.json, typmod: -1, scale: -1 };
  return { ...TYPES.text, typmod: -1, scale: -1 };
}

function isNestedType(duckdbType: string): boolean {
  return duckdbType.endsWith(']') || /^(STRUCT|MAP|UNION)\(/.test(duckdbType);
}

/**
 * The same mapping as {@link pgTypeOf}, as a SQL expression over a DuckDB type name column (`data_type` of
 * duckdb_columns()), for the catalog views that clients read (pg_attribute.atttypid and the like).
 */
export function pgOidSql(typeColumn: string): string {
  const cases = Object.entries(BY_DUCKDB_NAME).map(([name, kind]) => `WHEN '${name}' THEN ${TYPES[kind].oid}`);
  return (
    `(CASE ${typeColumn} ${cases.join(' ')} ELSE CASE ` +
    `WHEN ${typeColumn} LIKE 'DECIMAL(%' THEN ${OID.numeric} ` +
    `WHEN ${typeColumn} LIKE '%]' OR ${typeColumn} LIKE 'STRUCT(%' OR ${typeColumn} LIKE 'MAP(%' OR ${typeColumn} LIKE 'UNION(%' THEN ${OID.json} ` +
    `ELSE ${OID.text} END END)`
  );
}

/** PostgreSQL's display name of a type (format_type), per OID; typmod adds numeric's precision and scale. */
export const TYPE_DISPLAY_NAMES: Record<number, string> = {
  [OID.bool]: 'boolean',
  [OID.bytea]: 'bytea',
  [OID.char]: '"char"',
  [OID.name]: 'name',
  [OID.int8]: 'bigint',
  [OID.int2]: 'smallint',
  [OID.int4]: 'integer',
  [OID.text]: 'text',
  [OID.oid]: 'oid',
  [OID.json]: 'json',
  [OID.float4]: 'real',
  [OID.float8]: 'double precision',
  [OID.bpchar]: 'character',
  [OID.varchar]: 'character varying',
  [OID.date]: 'date',
  [OID.time]: 'time without time zone',
  [OID.timestamp]: 'timestamp without time zone',
  [OID.timestamptz]: 'timestamp with time zone',
  [OID.interval]: 'interval',
  [OID.timetz]: 'time with time zone',
  [OID.numeric]: 'numeric',
  [OID.uuid]: 'uuid',
  [OID.jsonb]: 'jsonb',
};

/** pg_type.typname per OID, for the catalog views. */
export const TYPE_NAMES: Record<number, string> = {
  [OID.bool]: 'bool',
  [OID.bytea]: 'bytea',
  [OID.char]: 'char',
  [OID.name]: 'name',
  [OID.int8]: 'int8',
  [OID.int2]: 'int2',
  [OID.int4]: 'int4',
  [OID.text]: 'text',
  [OID.oid]: 'oid',
  [OID.json]: 'json',
  [OID.float4]: 'float4',
  [OID.float8]: 'float8',
  [OID.unknown]: 'unknown',
  [OID.bpchar]: 'bpchar',
  [OID.varchar]: 'varchar',
  [OID.date]: 'date',
  [OID.time]: 'time',
  [OID.timestamp]: 'timestamp',
  [OID.timestamptz]: 'timestamptz',
  [OID.interval]: 'interval',
  [OID.timetz]: 'timetz',
  [OID.numeric]: 'numeric',
  [OID.uuid]: 'uuid',
  [OID.jsonb]: 'jsonb',
};

/** Type names as a cast may spell them (PostgreSQL's and DuckDB's), by PostgreSQL OID. */
const TYPE_NAME_OIDS: Record<string, number> = {
  bool: OID.bool, boolean: OID.bool,
  int2: OID.int2, smallint: OID.int2, tinyint: OID.int2,
  int: OID.int4, int4: OID.int4, integer: OID.int4,
  int8: OID.int8, bigint: OID.int8,
  float4: OID.float4, real: OID.float4, float: OID.float4,
  float8: OID.float8, double: OID.float8, 'double precision': OID.float8,
  numeric: OID.numeric, decimal: OID.numeric,
  text: OID.text, varchar: OID.text, string: OID.text, 'character varying': OID.text,
  bytea: OID.bytea, blob: OID.bytea,
  date: OID.date, time: OID.time, timestamp: OID.timestamp, timestamptz: OID.timestamptz,
  interval: OID.interval, uuid: OID.uuid, json: OID.json, jsonb: OID.json,
};

/** The OID of a type named in a cast, or undefined when Strata does not map it. */
export function oidOfTypeName(name: string): number | undefined {
  return lookup(TYPE_NAME_OIDS, name.toLowerCase());
}

// ---------------------------------------------------------------------------------------------------------
// Text format

/** One value in PostgreSQL's text format (DateStyle ISO, TimeZone UTC, bytea_output hex). */
export function encodeText(type: PgType, value: SqlValue): string {
  switch (type.kind) {
    case 'bool':
      return value === true ? 't' : 'f';
    case 'int2':
    case 'int4':
    case 'int8':
      return String(value);
    case 'float4':
      return typeof value === 'number' ? formatFloat4(value) : String(value);
    case 'float8':
      return typeof value === 'number' ? formatFloat8(value) : String(value);
    case 'numeric':
      return numericText(type, value);
    case 'bytea':
      return `\\x${blobBytes(String(value)).toString('hex')}`;
    case 'timestamp':
      return timestampText(String(value), false);
    case 'timestamptz':
      return timestampText(String(value), true);
    case 'interval':
      return intervalText(value);
    case 'json':
      return JSON.stringify(value);
    case 'text':
      return typeof value === 'string' ? value : JSON.stringify(value);
    case 'date':
      return dateText(String(value));
    default:
      // time, timetz, uuid: DuckDB's text is PostgreSQL's.
      return String(value);
  }
}

/** DuckDB's infinite dates come out as their int32 day counts' calendar dates; PostgreSQL says infinity. */
function dateText(text: string): string {
  if (/^5881580-07-1[01]$/.test(text)) return 'infinity';
  if (/^5877642-06-2[345] \(BC\)$/.test(text)) return '-infinity';
  return text.replace(/^(\d+-\d\d-\d\d) \(BC\)$/, '$1 BC');
}

/** float4 as PostgreSQL prints it: the shortest text that reads back as the same 32-bit float. */
function formatFloat4(value: number): string {
  if (!Number.isFinite(value)) return formatFloat8(value);
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = Number(value.toPrecision(digits));
    if (Math.fround(candidate) === value) return shortestText(candidate, 6);
  }
  return shortestText(value, 6);
}

function formatFloat8(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  return shortestText(value, 15);
}

/**
 * The shortest round-trip digits, laid out as PostgreSQL does: exponent form (`1e+20`, `1.5e-05`, two
 * exponent digits at least) when the decimal exponent is below -4 or at least `precision` (15 for float8,
 * 6 for float4), plain digits otherwise.
 */
function shortestText(value: number, precision: number): string {
  if (value === 0) return Object.is(value, -0) ? '-0' : '0';
  const [mantissa, exponentText] = value.toExponential().split('e') as [string, string];
  const exponent = Number(exponentText);
  if (exponent < -4 || exponent >= precision) {
    const sign = exponent < 0 ? '-' : '+';
    return `${mantissa}e${sign}${String(Math.abs(exponent)).padStart(2, '0')}`;
  }
  return String(value);
}

function numericText(type: PgType, value: SqlValue): string {
  if (typeof value === 'number') return type.scale >= 0 ? value.toFixed(type.scale) : String(value);
  return String(value);
}

const ISO_TIMESTAMP = /^([+-]?\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z$/;

/** `2026-11-25T10:00:00.120Z` → `2026-11-25 10:00:00.12` (and `+00` for timestamptz), as PostgreSQL prints it. */
function timestampText(iso: string, withZone: boolean): string {
  const match = ISO_TIMESTAMP.exec(iso);
  if (!match) return iso; // infinity, -infinity, or beyond a JavaScript Date: DuckDB's own text
  const [, year, month, day, hour, minute, second, fraction] = match;
  const micros = (fraction ?? '').slice(0, 6).replace(/0+$/, '');
  let yearText = year!;
  let era = '';
  if (yearText.startsWith('-')) {
    // ISO year -N is N+1 BC.
    yearText = String(1 - Number(yearText)).padStart(4, '0');
    era = ' BC';
  } else {
    yearText = yearText.replace(/^\+/, '');
  }
  return `${yearText}-${month}-${day} ${hour}:${minute}:${second}${micros ? `.${micros}` : ''}${withZone ? '+00' : ''}${era}`;
}

interface IntervalValue {
  months: number;
  days: number;
  micros: string | number;
}

function asInterval(value: SqlValue): IntervalValue {
  const v = (value ?? {}) as Partial<IntervalValue>;
  return { months: Number(v.months ?? 0), days: Number(v.days ?? 0), micros: v.micros ?? 0 };
}

/** An interval in PostgreSQL's default IntervalStyle (postgres): `1 year 2 mons 3 days 04:05:06.5`. */
function intervalText(value: SqlValue): string {
  const { months, days, micros } = asInterval(value);
  const parts: string[] = [];
  const years = Math.trunc(months / 12);
  const mons = months % 12;
  if (years !== 0) parts.push(`${years} year${Math.abs(years) === 1 ? '' : 's'}`);
  if (mons !== 0) parts.push(`${mons} mon${Math.abs(mons) === 1 ? '' : 's'}`);
  if (days !== 0) parts.push(`${days} day${Math.abs(days) === 1 ? '' : 's'}`);
  let us = BigInt(micros);
  if (us !== 0n || parts.length === 0) {
    const negative = us < 0n;
    if (negative) us = -us;
    const hours = us / 3_600_000_000n;
    const minutes = (us / 60_000_000n) % 60n;
    const seconds = (us / 1_000_000n) % 60n;
    const fraction = (us % 1_000_000n).toString().padStart(6, '0').replace(/0+$/, '');
    const clock = `${String(hours).padStart(2, '0')}:${String(minutes).padStart(2, '0')}:${String(seconds).padStart(2, '0')}`;
    parts.push(`${negative ? '-' : ''}${clock}${fraction ? `.${fraction}` : ''}`);
  }
  return parts.join(' ');
}

/** The bytes of a BLOB as the engine renders it: printable ASCII as is, `\\` for a backslash, `\xHH` otherwise. */
export function blobBytes(text: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c && text[i + 1] === '\\') {
      bytes.push(0x5c);
      i++;
    } else if (c === 0x5c && text[i + 1] === 'x' && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 2, i + 4))) {
      bytes.push(parseInt(text.slice(i + 2, i + 4), 16));
      i += 3;
    } else {
      bytes.push(c & 0xff);
    }
  }
  return Buffer.from(bytes);
}

// ---------------------------------------------------------------------------------------------------------
// Binary format

/** Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 UTC). */
const PG_EPOCH_MICROS = 946_684_800_000_000n;
const PG_EPOCH_DAYS = 10_957;
const INT64_MAX = 0x7fffffffffffffffn;
const INT64_MIN = -0x8000000000000000n;

/** One value in PostgreSQL's binary format (what a client asking for format code 1 decodes). */
export function encodeBinary(type: PgType, value: SqlValue): Buffer {
  switch (type.kind) {
    case 'bool':
      return Buffer.from([value === true ? 1 : 0]);
    case 'int2': {
      const out = Buffer.allocUnsafe(2);
      out.writeInt16BE(Number(value));
      return out;
    }
    case 'int4': {
      const out = Buffer.allocUnsafe(4);
      out.writeInt32BE(Number(value));
      return out;
    }
    case 'int8': {
      const out = Buffer.allocUnsafe(8);
      out.writeBigInt64BE(BigInt(value as string | number));
      return out;
    }
    case 'float4': {
      const out = Buffer.allocUnsafe(4);
      out.writeFloatBE(floatOf(value));
      return out;
    }
    case 'float8': {
      const out = Buffer.allocUnsafe(8);
      out.writeDoubleBE(floatOf(value));
      return out;
    }
    case 'numeric':
      return numericBinary(numericText(type, value));
    case 'bytea':
      return blobBytes(String(value));
    case 'date': {
      const out = Buffer.allocUnsafe(4);
      out.writeInt32BE(dateDays(String(value)));
      return out;
    }
    case 'time': {
      const out = Buffer.allocUnsafe(8);
      out.writeBigInt64BE(timeMicros(String(value)));
      return out;
    }
    case 'timetz': {
      const text = String(value);
      const zone = /([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?$/.exec(text);
      const out = Buffer.allocUnsafe(12);
      out.writeBigInt64BE(timeMicros(zone ? text.slice(0, zone.index) : text));
      const offset = zone ? (zone[1] === '-' ? -1 : 1) * (Number(zone[2]) * 3600 + Number(zone[3] ?? 0) * 60 + Number(zone[4] ?? 0)) : 0;
      // PostgreSQL stores the zone as seconds west of Greenwich.
      out.writeInt32BE(-offset, 8);
      return out;
    }
    case 'timestamp':
    case 'timestamptz': {
      const out = Buffer.allocUnsafe(8);
      out.writeBigInt64BE(timestampMicros(String(value)));
      return out;
    }
    case 'interval': {
      const { months, days, micros } = asInterval(value);
      const out = Buffer.allocUnsafe(16);
      out.writeBigInt64BE(BigInt(micros));
      out.writeInt32BE(days, 8);
      out.writeInt32BE(months, 12);
      return out;
    }
    case 'uuid':
      return Buffer.from(String(value).replace(/-/g, ''), 'hex');
    case 'json':
    case 'text':
      // json's binary form is its text.
      return Buffer.from(encodeText(type, value), 'utf8');
  }
}

function floatOf(value: SqlValue): number {
  if (typeof value === 'number') return value;
  if (value === 'Infinity') return Infinity;
  if (value === '-Infinity') return -Infinity;
  return Number(value);
}

function dateDays(raw: string): number {
  const text = dateText(raw);
  if (text === 'infinity') return 0x7fffffff;
  if (text === '-infinity') return -0x80000000;
  const match = /^(\d+)-(\d\d)-(\d\d)( BC)?$/.exec(text);
  if (!match) throw new RangeError(`cannot encode date ${JSON.stringify(text)}`);
  const year = match[4] ? 1 - Number(match[1]) : Number(match[1]);
  const utc = new Date(0);
  utc.setUTCFullYear(year, Number(match[2]) - 1, Number(match[3]));
  return Math.round(utc.getTime() / 86_400_000) - PG_EPOCH_DAYS;
}

function timeMicros(text: string): bigint {
  const match = /^(\d\d):(\d\d):(\d\d)(?:\.(\d+))?$/.exec(text);
  if (!match) throw new RangeError(`cannot encode time ${JSON.stringify(text)}`);
  const fraction = BigInt((match[4] ?? '').slice(0, 6).padEnd(6, '0'));
  return ((BigInt(match[1]!) * 60n + BigInt(match[2]!)) * 60n + BigInt(match[3]!)) * 1_000_000n + fraction;
}

/** An ISO-8601 UTC timestamp as microseconds since 2000-01-01, exactly (BigInt, not a Date's milliseconds). */
function timestampMicros(text: string): bigint {
  if (text === 'infinity') return INT64_MAX;
  if (text === '-infinity') return INT64_MIN;
  const match = ISO_TIMESTAMP.exec(text);
  if (!match) throw new RangeError(`cannot encode timestamp ${JSON.stringify(text)}`);
  const [, year, month, day, hour, minute, second, fraction] = match;
  const utc = new Date(0);
  utc.setUTCFullYear(Number(year), Number(month) - 1, Number(day));
  utc.setUTCHours(Number(hour), Number(minute), Number(second));
  const micros = BigInt(utc.getTime()) * 1000n + BigInt((fraction ?? '').slice(0, 6).padEnd(6, '0'));
  return micros - PG_EPOCH_MICROS;
}

/**
 * numeric's binary form: ndigits, weight, sign, dscale (int16 each), then base-10000 digits (int16 each), the
 * first digit worth 10000^weight.
 */
export function numericBinary(text: string): Buffer {
  if (text === 'NaN') return header(0, 0, 0xc000, 0, []);
  const match = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(text.trim());
  if (!match) throw new RangeError(`cannot encode numeric ${JSON.stringify(text)}`);
  const negative = match[1] === '-';
  const integer = (match[2] ?? '').replace(/^0+/, '');
  const fraction = match[3] ?? '';
  const dscale = fraction.length;
  // Align to groups of four digits around the decimal point.
  const intPadded = integer.padStart(Math.ceil(integer.length / 4) * 4, '0');
  const fracPadded = fraction.padEnd(Math.ceil(fraction.length / 4) * 4, '0');
  const groups: number[] = [];
  for (let i = 0; i < intPadded.length; i += 4) groups.push(Number(intPadded.slice(i, i + 4)));
  const intGroups = groups.length;
  for (let i = 0; i < fracPadded.length; i += 4) groups.push(Number(fracPadded.slice(i, i + 4)));
  let weight = intGroups - 1;
  let start = 0;
  while (start < groups.length && groups[start] === 0) {
    start++;
    weight--;
  }
  let end = groups.length;
  while (end > start && groups[end - 1] === 0) end--;
  const digits = groups.slice(start, end);
  if (digits.length === 0) return header(0, 0, 0, dscale, []);
  return header(digits.length, weight, negative ? 0x4000 : 0, dscale, digits);
}

function header(ndigits: number, weight: number, sign: number, dscale: number, digits: number[]): Buffer {
  const out = Buffer.allocUnsafe(8 + 2 * digits.length);
  out.writeInt16BE(ndigits, 0);
  out.writeInt16BE(weight, 2);
  out.writeUInt16BE(sign, 4);
  out.writeInt16BE(dscale, 6);
  digits.forEach((digit, i) => out.writeInt16BE(digit, 8 + 2 * i));
  return out;
}

/** numeric's binary form back to its decimal text (for binary parameters). */
export function numericFromBinary(data: Buffer): string {
  if (data.length < 8) throw new RangeError('a binary numeric needs at least 8 bytes');
  const ndigits = data.readInt16BE(0);
  const weight = data.readInt16BE(2);
  const sign = data.readUInt16BE(4);
  const dscale = data.readInt16BE(6);
  if (sign === 0xc000) return 'NaN';
  if (data.length !== 8 + 2 * ndigits) throw new RangeError('a binary numeric has the wrong length');
  let integer = '';
  let fraction = '';
  for (let i = 0; i < ndigits; i++) {
    const digit = String(data.readInt16BE(8 + 2 * i)).padStart(4, '0');
    if (i <= weight) integer += digit;
    else fraction += digit;
  }
  // Groups between the last digit and the point, or between the point and the first digit, are zeros.
  if (weight >= ndigits) integer += '0000'.repeat(weight - ndigits + 1);
  if (weight < -1) fraction = '0000'.repeat(-weight - 1) + fraction;
  integer = integer.replace(/^0+/, '') || '0';
  fraction = fraction.padEnd(dscale, '0').slice(0, dscale);
  return `${sign === 0x4000 ? '-' : ''}${integer}${fraction ? `.${fraction}` : ''}`;
}

/** A binary timestamp parameter (microseconds since 2000-01-01) as ISO text DuckDB reads. */
export function timestampFromBinary(data: Buffer): string {
  const micros = data.readBigInt64BE(0);
  if (micros === INT64_MAX) return 'infinity';
  if (micros === INT64_MIN) return '-infinity';
  const unixMicros = micros + PG_EPOCH_MICROS;
  const millis = unixMicros / 1000n - (unixMicros % 1000n < 0n ? 1n : 0n);
  const sub = ((unixMicros % 1_000_000n) + 1_000_000n) % 1_000_000n;
  const iso = new Date(Number(millis)).toISOString();
  return `${iso.slice(0, 19).replace('T', ' ')}.${String(sub).padStart(6, '0')}`;
}

/** A binary date parameter (days since 2000-01-01) as `YYYY-MM-DD`. */
export function dateFromBinary(data: Buffer): string {
  const days = data.readInt32BE(0);
  if (days === 0x7fffffff) return 'infinity';
  if (days === -0x80000000) return '-infinity';
  return new Date((days + PG_EPOCH_DAYS) * 86_400_000).toISOString().slice(0, 10);
}
