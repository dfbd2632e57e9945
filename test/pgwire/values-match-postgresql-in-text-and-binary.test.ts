import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OID } from '../../src/pgwire/types.js';
import { removeDir, tempDir, type RunningStrata } from '../fixtures/strata.js';
import { startWithPg } from './helpers.js';
import {
  bind,
  dataRowValues,
  describe as describeMessage,
  errorOf,
  execute,
  parse,
  rowDescription,
  sync,
  WireClient,
  type BackendMessage,
} from './wire-client.js';

/**
 * Each value as PostgreSQL 15 itself sends it, in text and in binary (format code 1): captured from a real
 * server for the same values, so that a driver decoding Strata's answers gets what PostgreSQL would give.
 */
const EXPECTED: readonly { sql: string; oid: number; binary: string; text: string }[] = [
  { sql: '1::SMALLINT', oid: OID.int2, binary: '0001', text: '1' },
  { sql: '-2::INTEGER', oid: OID.int4, binary: 'fffffffe', text: '-2' },
  { sql: '9007199254740993::BIGINT', oid: OID.int8, binary: '0020000000000001', text: '9007199254740993' },
  { sql: '1.5::FLOAT', oid: OID.float4, binary: '3fc00000', text: '1.5' },
  { sql: '0.1::FLOAT', oid: OID.float4, binary: '3dcccccd', text: '0.1' },
  { sql: '-2.25::DOUBLE', oid: OID.float8, binary: 'c002000000000000', text: '-2.25' },
  { sql: '1e20::DOUBLE', oid: OID.float8, binary: '4415af1d78b58c40', text: '1e+20' },
  { sql: '1e-5::DOUBLE', oid: OID.float8, binary: '3ee4f8b588e368f1', text: '1e-05' },
  { sql: '1.25::DECIMAL(10,2)', oid: OID.numeric, binary: '0002000000000002000109c4', text: '1.25' },
  { sql: '-0.0001::DECIMAL(10,4)', oid: OID.numeric, binary: '0001ffff400000040001', text: '-0.0001' },
  { sql: '12345678901234567890::HUGEINT', oid: OID.numeric, binary: '000500040000000004d2162e23340d801ed2', text: '12345678901234567890' },
  { sql: 'true', oid: OID.bool, binary: '01', text: 't' },
  { sql: "'héllo'", oid: OID.text, binary: '68c3a96c6c6f', text: 'héllo' },
  { sql: "DATE '2026-01-02'", oid: OID.date, binary: '0000251a', text: '2026-01-02' },
  { sql: "DATE '1999-12-31'", oid: OID.date, binary: 'ffffffff', text: '1999-12-31' },
  { sql: "DATE 'infinity'", oid: OID.date, binary: '7fffffff', text: 'infinity' },
  { sql: "TIMESTAMP '2026-01-02 03:04:05.123456'", oid: OID.timestamp, binary: '0002ea5dbb16f580', text: '2026-01-02 03:04:05.123456' },
  { sql: "TIMESTAMP '1970-01-01 00:00:00'", oid: OID.timestamp, binary: 'fffca2fec4c82000', text: '1970-01-01 00:00:00' },
  { sql: "TIMESTAMPTZ '2026-01-02 03:04:05+00'", oid: OID.timestamptz, binary: '0002ea5dbb151340', text: '2026-01-02 03:04:05+00' },
  { sql: "TIME '10:00:01.5'", oid: OID.time, binary: '0000000861db4b60', text: '10:00:01.5' },
  { sql: "INTERVAL '1 day 02:00:00'", oid: OID.interval, binary: '00000001ad2748000000000100000000', text: '1 day 02:00:00' },
  { sql: "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::UUID", oid: OID.uuid, binary: 'a0eebc999c0b4ef8bb6d6bb9bd380a11', text: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' },
  { sql: "from_hex('01ff00')", oid: OID.bytea, binary: '01ff00', text: '\\x01ff00' },
  // DuckDB re-serializes JSON (PostgreSQL's json keeps the text as given); the value is the same.
  { sql: '\'{"a": [1, 2]}\'::JSON', oid: OID.json, binary: Buffer.from('{"a":[1,2]}').toString('hex'), text: '{"a":[1,2]}' },
];

describe('values reach clients as PostgreSQL writes them', () => {
  let dir: string;
  let server: RunningStrata & { pgPort: number };
  let client: WireClient;

  beforeAll(async () => {
    dir = await tempDir();
    server = await startWithPg(dir);
    client = (await WireClient.startup(server.pgPort)).client;
  });

  afterAll(async () => {
    client?.close();
    await server?.close();
    await removeDir(dir);
  });

  async function runExtended(sql: string, params: (Buffer | null)[], resultFormats: number[], types: number[] = [], paramFormats: number[] = []): Promise<BackendMessage[]> {
    client.write(Buffer.concat([parse('', sql, types), bind('', '', params, resultFormats, paramFormats), describeMessage('P', ''), execute(''), sync()]));
    return client.readUntil('Z');
  }

  it('in the text and binary formats, with PostgreSQL type OIDs', async () => {
    const sql = `SELECT ${EXPECTED.map((value, i) => `${value.sql} AS c${i}`).join(', ')}`;
    for (const format of [0, 1] as const) {
      const messages = await runExtended(sql, [], [format]);
      const fields = rowDescription(messages.find((m) => m.type === 'T')!.body);
      const row = dataRowValues(messages.find((m) => m.type === 'D')!.body);
      EXPECTED.forEach((value, i) => {
        expect({ sql: value.sql, oid: fields[i]!.oid, format: fields[i]!.format }).toEqual({ sql: value.sql, oid: value.oid, format });
        const got = format === 1 ? row[i]!.toString('hex') : row[i]!.toString('utf8');
        expect({ sql: value.sql, value: got }).toEqual({ sql: value.sql, value: format === 1 ? value.binary : value.text });
      });
    }
  });

  it('sends NULL as a null field, and nested values as json', async () => {
    const messages = await runExtended("SELECT NULL::INTEGER AS a, [1, 2] AS b, {'k': TIMESTAMP '2026-01-02 03:04:05'} AS c", [], []);
    const fields = rowDescription(messages.find((m) => m.type === 'T')!.body);
    expect(fields.map((field) => field.oid)).toEqual([OID.int4, OID.json, OID.json]);
    const row = dataRowValues(messages.find((m) => m.type === 'D')!.body);
    expect(row[0]).toBeNull();
    expect(JSON.parse(row[1]!.toString())).toEqual([1, 2]);
    expect(JSON.parse(row[2]!.toString())).toEqual({ k: '2026-01-02T03:04:05.000Z' });
  });

  it('reads typed parameters in the binary format', async () => {
    const int4 = Buffer.alloc(4);
    int4.writeInt32BE(-7);
    const int8 = Buffer.alloc(8);
    int8.writeBigInt64BE(9007199254740993n);
    const float8 = Buffer.alloc(8);
    float8.writeDoubleBE(2.5);
    const types = [OID.int4, OID.int8, OID.float8, OID.bool, OID.timestamp, OID.bytea, OID.numeric, OID.text, OID.date];
    const params = [
      int4,
      int8,
      float8,
      Buffer.from([1]),
      Buffer.from('0002ea5dbb16f580', 'hex'),
      Buffer.from([0, 0x27, 0xff]),
      Buffer.from('0002000000000002000109c4', 'hex'),
      Buffer.from("it's", 'utf8'),
      Buffer.from('0000251a', 'hex'),
    ];
    const sql = 'SELECT $1 AS a, $2 AS b, $3 AS c, $4 AS d, $5 AS e, $6 AS f, $7 AS g, $8 AS h, $9 AS i';
    const messages = await runExtended(sql, params, [0], types, [1]);
    const row = dataRowValues(messages.find((m) => m.type === 'D')!.body).map((value) => value?.toString('utf8'));
    expect(row).toEqual(['-7', '9007199254740993', '2.5', 't', '2026-01-02 03:04:05.123456', '\\x0027ff', '1.25', "it's", '2026-01-02']);
  });

  it('refuses a text parameter that is not a value of its declared type (22P02), and the connection goes on', async () => {
    const messages = await runExtended('SELECT $1 AS n', [Buffer.from('12; DROP TABLE clicks')], [], [OID.int4]);
    const error = messages.find((m) => m.type === 'E');
    expect(errorOf(error!.body)).toMatchObject({ S: 'ERROR', C: '22P02' });
    expect(messages[messages.length - 1]!.body.toString()).toBe('I');
    const ok = await runExtended('SELECT $1 AS n', [Buffer.from('12')], [], [OID.int4]);
    expect(dataRowValues(ok.find((m) => m.type === 'D')!.body)[0]!.toString()).toBe('12');
  });
});
