import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TransformInput } from '../../src/config/index.js';
import { clicksStream, planFor, RecordTable, type TestRecord } from './support.js';

const TS = '2026-03-01T10:00:00.000Z';
/** A record the stream's schema accepts, with what the test sets on top. */
const record = (fields: TestRecord = {}): TestRecord => ({ event_id: 'e1', ts: TS, user_id: 'u1', ...fields });

describe('each transform rule, run by DuckDB over staged records', () => {
  let table: RecordTable;
  beforeAll(async () => {
    table = await RecordTable.open();
  });
  afterAll(async () => table.close());

  /** The clean rows of `records` under `transform`, in source order. */
  async function clean(transform: TransformInput, records: TestRecord[]): Promise<Record<string, unknown>[]> {
    const plan = await planFor(transform);
    const source = await table.source(clicksStream(transform), records);
    return table.query(`${plan.cleanSql(source)} ORDER BY __seq`);
  }

  describe('defaults', () => {
    it('fill a NULL field and leave a present one', async () => {
      const rows = await clean({ defaults: { country: 'unknown', qty: 1 } }, [record(), record({ country: 'FR', qty: 7 })]);
      expect(rows.map((row) => [row.country, row.qty])).toEqual([
        ['unknown', 1],
        ['FR', 7],
      ]);
    });

    it('read a timestamp default by ingest rules: its offset is applied', async () => {
      const schema = { event_id: 'string', ts: 'timestamp', seen: 'timestamp?' };
      const transform = { defaults: { seen: '2026-01-01T02:00:00+02:00' } };
      const plan = await planFor(transform, schema);
      const source = await table.source(clicksStream(transform, schema), [{ event_id: 'e', ts: TS }]);
      expect((await table.query(plan.cleanSql(source)))[0]!.seen).toBe('2026-01-01 00:00:00');
    });

    it('fill fields of every type with values of that type', async () => {
      const schema = { event_id: 'string', ts: 'timestamp', big: 'bigint?', ratio: 'double?', flag: 'boolean?', day: 'date?', payload: 'json?' };
      const transform = {
        defaults: { big: '9223372036854775807', ratio: 0.25, flag: false, day: '2026-03-01', payload: { tags: ['a'] } },
      } satisfies TransformInput;
      const plan = await planFor(transform, schema);
      const source = await table.source(clicksStream(transform, schema), [{ event_id: 'e', ts: TS }]);
      const [row] = await table.query(plan.cleanSql(source));
      expect(row).toMatchObject({ big: '9223372036854775807', ratio: 0.25, flag: false, day: '2026-03-01', payload: '{"tags":["a"]}' });
    });
  });

  describe('standardize', () => {
    it.each([
      ['trim', ' \t/Home\u00a0\n', '/Home'],
      ['collapse_spaces', 'New   York\t City', 'New York City'],
      ['lower', 'ÉCOLE /Home', 'école /home'],
      ['upper', 'straße', 'STRAẞE'], // DuckDB maps ß to capital ẞ, one character for one
      ['null_if_empty', '', null],
    ] as const)('%s', async (op, input, expected) => {
      const rows = await clean({ standardize: { page: op } }, [record({ page: input }), record({ page: null })]);
      expect(rows.map((row) => row.page)).toEqual([expected, null]);
    });

    it('trim removes the listed whitespace at both ends only, and nothing else', async () => {
      const cases: [string, string][] = [
        ['\t\n\u000b\f\r \u00a0a  b\u00a0 \r\f\u000b\n\t', 'a  b'], // every listed character, at both ends; inside kept
        [' \u00a0 ', ''], // whitespace only
        ['\u2002a\u3000', '\u2002a\u3000'], // other Unicode spaces are not listed
        ['é ', 'é'],
        ['x', 'x'],
        ['', ''],
      ];
      const rows = await clean({ standardize: { page: 'trim' } }, cases.map(([input]) => record({ page: input })));
      expect(rows.map((row) => row.page)).toEqual(cases.map(([, expected]) => expected));
    });

    it('applies a field\'s operations in the order listed', async () => {
      const rows = await clean({ standardize: { page: ['trim', 'null_if_empty'], country: ['null_if_empty', 'trim'] } }, [
        record({ page: '   ', country: '   ' }),
      ]);
      expect(rows[0]).toMatchObject({ page: null, country: '' });
    });

    it('utc on a timestamp field keeps the value: ingest already stored it as UTC', async () => {
      const rows = await clean({ standardize: { ts: 'utc' } }, [record({ ts: '2026-03-01T10:00:00.123456Z' })]);
      expect(rows[0]).toMatchObject({ ts: '2026-03-01 10:00:00.123456', __quarantine_reason: null });
    });

    it('utc on a string field parses ISO-8601 text with any offset into a UTC timestamp', async () => {
      const cases: [string, string][] = [
        ['2026-03-01T10:00:00Z', '2026-03-01 10:00:00'],
        ['2026-03-01T10:00:00+02:00', '2026-03-01 08:00:00'],
        ['2026-03-01 10:00:00.5-0530', '2026-03-01 15:30:00.5'],
        ['2026-03-01t10:00+02', '2026-03-01 08:00:00'],
        ['2026-03-01T10:00:00', '2026-03-01 10:00:00'],
        ['2026-03-01', '2026-03-01 00:00:00'],
        ['2026-03-01T00:30:00.123456789z', '2026-03-01 00:30:00.123456'],
      ];
      const plan = await planFor({ standardize: { local_time: 'utc' } });
      expect(plan.columns.find((column) => column.name === 'local_time')!.sqlType).toBe('TIMESTAMP');
      const rows = await clean({ standardize: { local_time: 'utc' } }, cases.map(([text]) => record({ local_time: text })));
      expect(rows.map((row) => row.local_time)).toEqual(cases.map(([, utc]) => utc));
      expect(rows.every((row) => row.__quarantine_reason === null)).toBe(true);
    });

    it('a string that is no timestamp quarantines its record instead of failing the query', async () => {
      const bad = ['yesterday', '', '2026-02-30T10:00:00Z', '2026-03-01T10:00:00+24:00', '2026-03-01T10:00:00 Europe/Paris'];
      const rows = await clean({ standardize: { local_time: ['trim', 'utc'] } }, [...bad.map((text) => record({ local_time: text })), record()]);
      expect(rows.map((row) => row.__quarantine_reason)).toEqual([
        ...bad.map(() => 'standardize: local_time could not be converted'),
        null, // NULL stays NULL: nothing to convert
      ]);
    });
  });

  describe('map', () => {
    it('replaces listed values, leaves others, and maps to null', async () => {
      const transform = { map: { country: { UK: 'GB', 'N/A': null } } };
      const rows = await clean(transform, [record({ country: 'UK' }), record({ country: 'FR' }), record({ country: 'N/A' }), record()]);
      expect(rows.map((row) => row.country)).toEqual(['GB', 'FR', null, null]);
    });
  });

  describe('required', () => {
    it('quarantines a record missing the field and keeps the others', async () => {
      const rows = await clean({ required: ['user_id', 'page'] }, [record({ page: '/a' }), record({ user_id: null, page: '/a' }), record()]);
      expect(rows.map((row) => row.__quarantine_reason)).toEqual([null, 'required: user_id is missing', 'required: page is missing']);
    });

    it('is satisfied by a default, and failed by null_if_empty or a map to null', async () => {
      const transform = {
        required: ['country', 'page', 'user_id'],
        defaults: { country: 'unknown' },
        standardize: { page: ['trim', 'null_if_empty'] },
        map: { user_id: { anonymous: null } },
      } satisfies TransformInput;
      const rows = await clean(transform, [
        record({ page: '/a' }),
        record({ page: '  ' }),
        record({ page: '/a', user_id: 'anonymous' }),
      ]);
      expect(rows.map((row) => row.__quarantine_reason)).toEqual([null, 'required: page is missing', 'required: user_id is missing']);
      expect(rows[0]!.country).toBe('unknown');
    });
  });

  describe('derive', () => {
    it('adds columns typed by DuckDB, each able to use the fields and the columns derived before it', async () => {
      const transform = {
        derive: { revenue_cents: 'CAST(round(amount * 100) AS BIGINT)', big: 'revenue_cents > 1000', label: "page || ':' || upper(country)" },
      };
      const plan = await planFor(transform);
      expect(plan.columns.slice(-3).map((column) => [column.name, column.sqlType, column.origin])).toEqual([
        ['revenue_cents', 'BIGINT', 'derived'],
        ['big', 'BOOLEAN', 'derived'],
        ['label', 'VARCHAR', 'derived'],
      ]);
      const rows = await clean(transform, [record({ amount: 12.345, page: '/a', country: 'fr' }), record()]);
      expect(rows.map((row) => [row.revenue_cents, row.big, row.label, row.__quarantine_reason])).toEqual([
        ['1235', true, '/a:FR', null],
        [null, null, null, null], // a NULL result is a value, not a failure
      ]);
    });

    it('quarantines a record on which the expression fails, naming the column', async () => {
      // The repeated cast is on purpose: DuckDB's common-subexpression optimizer would hoist it out of a bare TRY.
      const transform = { derive: { twice: 'CAST(page AS INTEGER) + CAST(page AS INTEGER)', qty_from_page: 'CAST(page AS INTEGER)' } };
      const rows = await clean(transform, [record({ page: '12' }), record({ page: 'twelve' })]);
      expect(rows.map((row) => [row.twice, row.qty_from_page, row.__quarantine_reason])).toEqual([
        [24, 12, null],
        // Quarantined by the first column; the next one is not computed for it.
        [null, null, 'derive: twice could not be computed'],
      ]);
    });
  });

  it('runs defaults, then standardize, then map, then required, then derive', async () => {
    const transform = {
      required: ['country'],
      defaults: { country: ' uk ' },
      standardize: { country: ['trim', 'upper'], page: 'lower' },
      // Compared after standardization: 'uk' can no longer match, 'UK' does.
      map: { country: { uk: 'no', UK: 'GB' }, page: { '/HOME': 'no', '/home': '/' } },
      derive: { where_from: "country || page" },
    } satisfies TransformInput;
    const rows = await clean(transform, [record({ page: '/HOME' }), record({ page: '/Home', country: 'de' })]);
    expect(rows.map((row) => [row.country, row.page, row.where_from, row.__quarantine_reason])).toEqual([
      ['GB', '/', 'GB/', null],
      ['DE', '/', 'DE/', null],
    ]);
  });

  it('names the first failure: standardize, then required in listed order, then derive', async () => {
    const transform = {
      required: ['page', 'user_id'],
      standardize: { local_time: 'utc' },
      derive: { n: 'CAST(country AS INTEGER)' },
    } satisfies TransformInput;
    const rows = await clean(transform, [
      record({ local_time: 'bad', user_id: null, country: 'x' }),
      record({ user_id: null, country: 'x' }),
      record({ page: '/a', user_id: null, country: 'x' }),
      record({ page: '/a', country: 'x' }),
      record({ page: '/a', country: '7' }),
    ]);
    expect(rows.map((row) => row.__quarantine_reason)).toEqual([
      'standardize: local_time could not be converted',
      'required: page is missing',
      'required: user_id is missing',
      'derive: n could not be computed',
      null,
    ]);
  });

  it('passes extra columns through untouched and in place, derived columns and the reason after them', async () => {
    const transform = { standardize: { page: 'upper' }, derive: { page_length: 'length(page)' } } satisfies TransformInput;
    const plan = await planFor(transform);
    const staged = await table.source(clicksStream(transform), [record({ page: '/a' })]);
    const source = `SELECT 'tag' AS batch_tag, *, 42 AS "__extra" FROM (${staged})`;
    const columns = await table.columns(plan.cleanSql(source));
    expect(columns.map((column) => column.name)).toEqual([
      'batch_tag',
      '__shard',
      '__seq',
      ...clicksStream(transform).fields.map((field) => field.name),
      '__extra',
      'page_length',
      '__quarantine_reason',
    ]);
    const [row] = await table.query(plan.cleanSql(source));
    expect(row).toMatchObject({ batch_tag: 'tag', __shard: 0, __seq: '1', __extra: 42, page: '/A', page_length: '2' });
  });

  it('gives quarantined records with their raw values and the reason, and only them', async () => {
    const transform = {
      required: ['user_id'],
      defaults: { country: 'unknown' },
      standardize: { page: ['trim', 'lower'], local_time: ['trim', 'utc'] },
      derive: { n: 'length(page)' },
    } satisfies TransformInput;
    const plan = await planFor(transform);
    const source = await table.source(clicksStream(transform), [
      record({ page: ' /A ', local_time: ' 2026-03-01T10:00:00Z ' }),
      record({ page: ' /B ', local_time: ' soon ' }),
      record({ page: ' /C ', user_id: null }),
    ]);
    const rows = await table.query(`${plan.quarantineSql(source)} ORDER BY __seq`);
    expect(rows).toEqual([
      expect.objectContaining({ __seq: '2', page: ' /B ', local_time: ' soon ', country: null, __quarantine_reason: 'standardize: local_time could not be converted' }),
      expect.objectContaining({ __seq: '3', page: ' /C ', local_time: null, country: null, __quarantine_reason: 'required: user_id is missing' }),
    ]);
    expect(Object.keys(rows[0]!)).not.toContain('n');
    // The raw columns keep their raw types, so quarantined records can be replayed through the rules as they are.
    const columns = await table.columns(plan.quarantineSql(source));
    expect(columns.find((column) => column.name === 'local_time')!.type).toBe('VARCHAR');
  });

  it('describes its clean columns as cleanSql yields them, and binds views against emptyCleanSql', async () => {
    const transform = { standardize: { local_time: 'utc' }, required: ['page'], derive: { cents: 'amount * 100' } } satisfies TransformInput;
    const plan = await planFor(transform);
    const source = await table.source(clicksStream(transform), []);
    const yielded = await table.columns(plan.cleanSql(source));
    for (const column of plan.columns) {
      expect(yielded.find((c) => c.name === column.name)?.type, column.name).toBe(column.sqlType);
    }
    expect(plan.columns.find((column) => column.name === 'page')!.nullable).toBe(false);
    expect(plan.columns.find((column) => column.name === 'country')!.nullable).toBe(true);
    const empty = await table.columns(plan.emptyCleanSql());
    expect(empty).toEqual(plan.columns.map((column) => ({ name: column.name, type: column.sqlType })));
  });
});
