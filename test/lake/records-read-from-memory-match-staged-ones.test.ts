import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BLOB, blobValue, DuckDBInstance } from '@duckdb/node-api';
import { afterEach, describe, expect, it } from 'vitest';
import type { FieldSpec } from '../../src/config/index.js';
import { OFFSET_COLUMNS, readJsonColumns } from '../../src/lake/index.js';
import { readJsonText } from '../../src/lake/chunk-writer.js';
import { sqlString } from '../../src/util/duckdb.js';
import { removeDir, tempDir } from '../fixtures/strata.js';

/** One field of every Strata type. */
const FIELDS: FieldSpec[] = [
  { name: 's', type: 'string', nullable: true },
  { name: 'i', type: 'int', nullable: true },
  { name: 'b', type: 'bigint', nullable: true },
  { name: 'd', type: 'double', nullable: true },
  { name: 't', type: 'boolean', nullable: true },
  { name: 'ts', type: 'timestamp', nullable: true },
  { name: 'dt', type: 'date', nullable: true },
  { name: 'j', type: 'json', nullable: true },
];

/** Records as ingest stores them (canonical values), with the edge cases both readers must agree on. */
const LINES = [
  `{"__shard":0,"__seq":1,"s":"a\\u00e9\\"x\\\\n","i":-2147483648,"b":"9007199254740993","d":1.5,"t":true,"ts":"2026-11-25T10:00:00.000Z","dt":"2026-11-25","j":{"a":[1,2,{"b":null}]},"extra":5}`,
  `{"__shard":0,"__seq":2}`,
  `{"__shard":0,"__seq":3,"s":null,"i":null,"b":12,"d":3,"t":false,"ts":"2026-11-25T10:00:00.123456Z","dt":null,"j":"text"}`,
  `{"__shard":1,"__seq":4,"j":null,"d":1e300,"b":-9223372036854775808,"ts":"0001-01-01T00:00:00.000Z","s":""}`,
  `{"__shard":1,"__seq":5,"j":[1,"x"],"d":-0.0,"s":"\\ud83d\\ude00 emoji \u00fc","i":2147483647}`,
];

describe('records read from memory', () => {
  let dir: string;
  afterEach(async () => removeDir(dir));

  it('give exactly the rows and types read_json gives over the same NDJSON staged in a file', async () => {
    dir = await tempDir();
    const ndjson = Buffer.from(`${LINES.join('\n')}\n`, 'utf8');
    const staged = join(dir, 'records.ndjson');
    await writeFile(staged, ndjson);
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    try {
      await connection.run(`SET TimeZone = 'UTC'`);
      await connection.run(
        `CREATE TABLE staged AS SELECT * FROM read_json(${sqlString(staged)}, format = 'newline_delimited', columns = ${readJsonColumns(FIELDS, OFFSET_COLUMNS)})`,
      );
      await connection.run(`CREATE TABLE held AS ${readJsonText(FIELDS, OFFSET_COLUMNS)}`, [blobValue(ndjson)], [BLOB]);
      const rows = async (table: string) => (await connection.runAndReadAll(`SELECT * FROM ${table} ORDER BY __seq`)).getRowObjectsJson();
      const types = async (table: string) => (await connection.runAndReadAll(`DESCRIBE ${table}`)).getRowObjectsJson();
      expect(await rows('held')).toEqual(await rows('staged'));
      expect(await types('held')).toEqual(await types('staged'));
      expect(await rows('held')).toHaveLength(LINES.length);
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
  });
});
