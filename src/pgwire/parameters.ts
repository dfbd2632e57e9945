/**
 * Bind parameters as SQL literals. The SQL engine takes one SQL text (the same entry point as `POST /v1/sql`,
 * so the same read-only checks apply), so each `$n` is replaced by a literal of its value, never spliced as
 * raw text: strings are quoted with their quotes doubled, typed values go through a CAST that DuckDB checks.
 *
 * A parameter without a declared type (OID 0, what the `pg` client sends) becomes a plain string literal,
 * which DuckDB converts to whatever the context needs (`WHERE amount > $1`, `LIMIT $1`), much as PostgreSQL
 * infers an unknown parameter's type. Where the context fixes no type (`SELECT $1 + 1`), cast it (`$1::INT`).
 */
import { PgError } from './errors.js';
import { quoteLiteral, tokenize, type Token } from './sql-text.js';
import { dateFromBinary, numericFromBinary, OID, timestampFromBinary } from './types.js';

/** DuckDB's type for each declared parameter type Strata converts with a CAST. */
const CAST_TYPES: Record<number, string> = {
  [OID.bool]: 'BOOLEAN',
  [OID.int2]: 'SMALLINT',
  [OID.int4]: 'INTEGER',
  [OID.int8]: 'BIGINT',
  [OID.oid]: 'BIGINT',
  [OID.float4]: 'FLOAT',
  [OID.float8]: 'DOUBLE',
  [OID.date]: 'DATE',
  [OID.time]: 'TIME',
  [OID.timetz]: 'TIMETZ',
  [OID.timestamp]: 'TIMESTAMP',
  [OID.timestamptz]: 'TIMESTAMPTZ',
  [OID.interval]: 'INTERVAL',
  [OID.uuid]: 'UUID',
  [OID.json]: 'JSON',
  [OID.jsonb]: 'JSON',
};

const TEXT_TYPES = new Set<number>([0, OID.text, OID.varchar, OID.bpchar, OID.name, OID.char, OID.unknown]);

/** A typed NULL for a parameter of type `oid` (for Describe, which runs a statement without values). */
export function nullLiteral(oid: number): string {
  const cast = Object.hasOwn(CAST_TYPES, oid) ? CAST_TYPES[oid] : oid === OID.numeric ? 'DECIMAL(38,10)' : oid === OID.bytea ? 'BLOB' : undefined;
  return cast ? `CAST(NULL AS ${cast})` : 'NULL';
}

/** The SQL literal for one Bind parameter: its bytes, format code (0 text, 1 binary) and declared type OID. */
export function parameterLiteral(value: Buffer | null, format: 0 | 1, oid: number, position: number): string {
  if (value === null) return nullLiteral(oid);
  const text = format === 1 ? binaryToText(value, oid, position) : value.toString('utf8');
  if (oid === OID.bytea || (format === 1 && oid === 0)) {
    // A binary parameter of no declared type is what the `pg` client sends for a Buffer: bytes.
    return `from_hex('${(format === 1 ? value : byteaFromText(text, position)).toString('hex')}')`;
  }
  if (TEXT_TYPES.has(oid)) return quoteLiteral(text);
  if (oid === OID.numeric) {
    if (!/^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(text) && !/^\s*NaN\s*$/i.test(text)) {
      throw new PgError('22P02', `invalid input syntax for type numeric: "${text}" (parameter $${position})`);
    }
    return /NaN/i.test(text) ? "CAST('NaN' AS DOUBLE)" : `(${text.trim()})`;
  }
  const cast = Object.hasOwn(CAST_TYPES, oid) ? CAST_TYPES[oid] : undefined;
  if (cast) return `CAST(${quoteLiteral(text)} AS ${cast})`;
  // Types Strata does not know travel as strings; DuckDB converts them in context or reports why not.
  return quoteLiteral(text);
}

/** Tokens of a parameter literal, to splice where `$n` stood. */
export function literalTokens(literal: string): Token[] {
  return tokenize(literal);
}

/** PostgreSQL's text forms of bytea: hex (`\xDEAD`) or the escape format. */
function byteaFromText(text: string, position: number): Buffer {
  if (text.startsWith('\\x')) {
    const hex = text.slice(2);
    if (!/^([0-9A-Fa-f]{2})*$/.test(hex)) throw new PgError('22P02', `invalid hexadecimal data in bytea parameter $${position}`);
    return Buffer.from(hex, 'hex');
  }
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\' && text[i + 1] === '\\') {
      bytes.push(0x5c);
      i++;
    } else if (text[i] === '\\' && /^[0-7]{3}$/.test(text.slice(i + 1, i + 4))) {
      bytes.push(parseInt(text.slice(i + 1, i + 4), 8));
      i += 3;
    } else {
      bytes.push(...Buffer.from(text[i]!, 'utf8'));
    }
  }
  return Buffer.from(bytes);
}

/** A binary-format parameter as the text its type would have. */
function binaryToText(data: Buffer, oid: number, position: number): string {
  const need = (length: number) => {
    if (data.length !== length) throw new PgError('22P03', `incorrect binary data format in parameter $${position}`);
  };
  switch (oid) {
    case OID.bool:
      need(1);
      return data[0] ? 'true' : 'false';
    case OID.int2:
      need(2);
      return String(data.readInt16BE(0));
    case OID.int4:
      need(4);
      return String(data.readInt32BE(0));
    case OID.oid:
      need(4);
      return String(data.readUInt32BE(0));
    case OID.int8:
      need(8);
      return String(data.readBigInt64BE(0));
    case OID.float4:
      need(4);
      return String(data.readFloatBE(0));
    case OID.float8:
      need(8);
      return String(data.readDoubleBE(0));
    case OID.numeric:
      return numericFromBinary(data);
    case OID.date:
      need(4);
      return dateFromBinary(data);
    case OID.timestamp:
      need(8);
      return timestampFromBinary(data);
    case OID.timestamptz:
      need(8);
      return `${timestampFromBinary(data)}+00`;
    case OID.uuid: {
      need(16);
      const hex = data.toString('hex');
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    }
    case OID.jsonb:
      if (data[0] !== 1) throw new PgError('22P03', `unsupported jsonb version in parameter $${position}`);
      return data.subarray(1).toString('utf8');
    case 0:
    case OID.bytea:
      return '';
    default:
      if (TEXT_TYPES.has(oid) || oid === OID.json) return data.toString('utf8');
      throw new PgError('0A000', `binary format for parameter $${position} of type OID ${oid} is not supported; send it as text`);
  }
}
