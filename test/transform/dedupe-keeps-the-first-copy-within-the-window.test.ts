import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TransformInput } from '../../src/config/index.js';
import { dedupeSql, newCopiesSql } from '../../src/transform/clean-sql.js';
import { seededRandom } from '../fixtures/strata.js';
import { clicksStream, planFor, RecordTable, type TestRecord } from './support.js';

/** A timestamp `hours` after a fixed instant, in ingest's canonical spelling. */
const at = (hours: number) => new Date(Date.UTC(2026, 2, 1) + hours * 3_600_000).toISOString();

describe('de-duplication by key within an event-time window', () => {
  let table: RecordTable;
  beforeAll(async () => {
    table = await RecordTable.open();
  });
  afterAll(async () => table.close());

  /** The kept records' (event_id, __shard, __seq, page), in event-time then offset order. */
  async function kept(transform: TransformInput, records: TestRecord[], schema?: Record<string, string>): Promise<unknown[][]> {
    const plan = await planFor(transform, schema);
    const source = await table.source(clicksStream(transform, schema), records);
    const clean = `SELECT * FROM (${plan.cleanSql(source)}) WHERE __quarantine_reason IS NULL`;
    const rows = await table.query(`${plan.dedupeSql(clean)} ORDER BY ts, __shard, __seq`);
    return rows.map((row) => [row.event_id, row.__shard, Number(row.__seq), row.page ?? null]);
  }

  const within24h = { dedupe: { key: 'event_id', within: '24h' } };

  it('describes the rule for the layers', async () => {
    const plan = await planFor({ dedupe: { key: ['event_id', 'page'], within: '1.5h' } });
    expect(plan.dedupe).toEqual({ keys: ['event_id', 'page'], eventTime: 'ts', within: '1.5h', withinMs: 5_400_000 });
    expect((await planFor({ required: ['page'] })).dedupe).toBeNull();
  });

  it('keeps the first copy of a retried record, whatever its offset, and other keys untouched', async () => {
    const rows = await kept(within24h, [
      { event_id: 'a', ts: at(0), page: 'first', __shard: 1, __seq: 5 },
      { event_id: 'b', ts: at(0), page: 'other', __shard: 0, __seq: 6 },
      { event_id: 'a', ts: at(0), page: 'retry', __shard: 1, __seq: 9 },
      // A copy on another shard (no partition key, round-robin): the lower shard wins the tie.
      { event_id: 'a', ts: at(0), page: 'other shard', __shard: 0, __seq: 100 },
    ]);
    expect(rows).toEqual([
      ['b', 0, 6, 'other'],
      ['a', 0, 100, 'other shard'],
    ]);
  });

  it('orders copies by event time, not arrival: an earlier event that arrives later wins', async () => {
    const rows = await kept(within24h, [
      { event_id: 'a', ts: at(2), page: 'arrived first', __shard: 0, __seq: 1 },
      { event_id: 'a', ts: at(1), page: 'happened first', __shard: 0, __seq: 2 },
    ]);
    expect(rows).toEqual([['a', 0, 2, 'happened first']]);
  });

  it('keeps a copy that comes the window or more after the copy before it, as a new record', async () => {
    const rows = await kept(within24h, [
      { event_id: 'a', ts: at(0), page: 'kept' },
      { event_id: 'a', ts: at(23.99), page: 'duplicate' },
      { event_id: 'b', ts: at(0), page: 'kept' },
      { event_id: 'b', ts: at(24), page: 'exactly the window later: new' },
      { event_id: 'c', ts: at(0), page: 'kept' },
      { event_id: 'c', ts: at(30), page: 'after the window: new' },
    ]);
    expect(rows.map((row) => [row[0], row[3]])).toEqual([
      ['a', 'kept'],
      ['b', 'kept'],
      ['c', 'kept'],
      ['b', 'exactly the window later: new'],
      ['c', 'after the window: new'],
    ]);
  });

  it('measures the window from the copy just before, dropped or not: copies every 20h under 24h are one record', async () => {
    const rows = await kept(within24h, [0, 20, 40, 60].map((hours) => ({ event_id: 'a', ts: at(hours), page: `${hours}h` })));
    expect(rows.map((row) => row[3])).toEqual(['0h']);
  });

  it('compares composite keys whole, and keeps records whose key has a NULL part', async () => {
    const rows = await kept({ dedupe: { key: ['event_id', 'page'], within: '1h' } }, [
      { event_id: 'a', ts: at(0), page: '/x' },
      { event_id: 'a', ts: at(0), page: '/y' },
      { event_id: 'a', ts: at(0), page: '/x' },
      { event_id: 'a', ts: at(0), page: null },
      { event_id: 'a', ts: at(0), page: null },
    ]);
    expect(rows.map((row) => row[3])).toEqual(['/x', '/y', null, null]);
  });

  it('keeps a record whose event time is NULL: no window can be measured', async () => {
    const schema = { event_id: 'string', ts: 'timestamp?', page: 'string?' };
    const rows = await kept(within24h, [
      { event_id: 'a', ts: null },
      { event_id: 'a', ts: null },
      { event_id: 'a', ts: at(0) },
    ], schema);
    expect(rows.map((row) => row[2])).toEqual([3, 1, 2]);
  });

  it('compares the clean key: standardization runs first, and a derived column can be the key', async () => {
    const transform = {
      standardize: { event_id: ['trim', 'lower'] },
      derive: { visit: "user_id || '/' || page" },
      dedupe: { key: ['event_id', 'visit'], within: '10m' },
    } satisfies TransformInput;
    const rows = await kept(transform, [
      { event_id: 'A1', ts: at(0), user_id: 'u', page: '/p' },
      { event_id: ' a1 ', ts: at(0.1), user_id: 'u', page: '/p' },
      { event_id: 'a1', ts: at(0.1), user_id: 'v', page: '/p' },
    ]);
    expect(rows.map((row) => row[2])).toEqual([1, 3]);
  });

  it('passes every row when the stream declares no dedupe rule', async () => {
    const rows = await kept({ required: ['event_id'] }, [
      { event_id: 'a', ts: at(0) },
      { event_id: 'a', ts: at(0) },
    ]);
    expect(rows).toHaveLength(2);
  });

  it('judges new copies against counted ones exactly as de-duplicating everything would, and names every counted copy it displaces', async () => {
    // Random rounds of counted and new copies of a few keys over three days, with equal times (offsets, unique as
    // the log's, break the tie in any order), NULL keys and NULL times. Whatever the draw: each new copy's fate
    // equals its fate in the dedupe of all copies (one left out of the answer has no other copy, so it is kept),
    // and the counted copies named as displaced (here by id, as the
    // partition column) are exactly those whose fate differs between the dedupe of the counted copies alone and
    // that of all copies (what an incremental run cannot add as a delta).
    const random = seededRandom(20261125);
    const pick = <T>(values: readonly T[]) => values[Math.floor(random() * values.length)]!;
    const within = 24 * 3_600_000;
    const keptIds = async (source: string) => new Set((await table.query(`SELECT id FROM (${dedupeSql(['event_id'], 'ts', within, source)})`)).map((row) => Number(row.id)));
    let displacing = 0;
    for (let round = 0; round < 200; round++) {
      const copies = Array.from({ length: 4 + Math.floor(random() * 10) }, (_, i) => {
        const ts = random() < 0.1 ? 'NULL' : `TIMESTAMP '2026-03-01' + INTERVAL ${pick([0, 1, 6, 12, 23, 24, 30, 47, 48, 60])} HOUR`;
        return `(${i}, ${random() < 0.1 ? 'NULL' : `'${pick(['a', 'b', 'c'])}'`}, ${ts}, ${pick([0, 1, 2])}, ${pick([1, 2, 3]) * 100 + i}, ${random() < 0.4})`;
      });
      await table.db.run(
        `CREATE OR REPLACE TABLE copies AS SELECT * FROM (VALUES ${copies.join(', ')}) AS copies(id, event_id, ts, __shard, __seq, fresh)`,
      );
      const counted = 'SELECT * FROM copies WHERE NOT fresh';
      const judged = await table.query(
        `SELECT id, __duplicate, __displaced FROM (${newCopiesSql(['event_id'], 'ts', within, 'SELECT * FROM copies WHERE fresh', counted, ['id'], 'id')}) ORDER BY id`,
      );
      const keptOfAll = await keptIds('SELECT * FROM copies');
      const keptOfCounted = await keptIds(counted);
      const freshIds = (await table.query('SELECT id FROM copies WHERE fresh ORDER BY id')).map((row) => Number(row.id));
      // A new copy left out has no other copy: it is kept, and displaces nothing.
      const judgedIds = judged.map((row) => Number(row.id));
      expect(judgedIds.filter((id) => !freshIds.includes(id)), `round ${round}`).toEqual([]);
      for (const id of freshIds) if (!judgedIds.includes(id)) expect(keptOfAll.has(id), `round ${round}, copy ${id} left out`).toBe(true);
      for (const row of judged) expect(row.__duplicate, `round ${round}, copy ${String(row.id)}`).toBe(!keptOfAll.has(Number(row.id)));
      const changed = (await table.query(counted)).map((row) => Number(row.id)).filter((id) => keptOfAll.has(id) !== keptOfCounted.has(id));
      const displaced = judged.filter((row) => row.__displaced !== null).map((row) => Number(row.__displaced));
      expect(new Set(displaced), `round ${round}`).toEqual(new Set(changed));
      if (changed.length > 0) displacing++;
    }
    // The draw exercises both answers.
    expect(displacing).toBeGreaterThan(20);
    expect(displacing).toBeLessThan(180);
  });
});
