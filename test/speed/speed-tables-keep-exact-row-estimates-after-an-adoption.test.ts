import { afterEach, describe, expect, it } from 'vitest';
import { ingest } from '../batch/support.js';
import { clicksConfig, removeDir, startInProcess, tempDir, waitForDelivery, waitForView, type RunningStrata } from '../fixtures/strata.js';

const VIEW = `SELECT page, count(*) AS views FROM clicks GROUP BY page`;
const PAGES = 2000;

interface Answer {
  rows: { page: string; views: number }[];
  provenance: { batchVersion: number | null; speedSeq: Record<string, string> };
}

/**
 * DuckDB plans the merge's joins from its estimates of each table's rows, and forgets deleted rows only once a
 * later write commits with no older read still open. An adoption deletes the covered speed partials while reads
 * may be open; on a stream gone quiet no write follows, so unless the speed layer rebuilds the tables it emptied,
 * they keep their old estimate and the merge builds its hash joins on the (large) batch side.
 */
describe('speed tables after an adoption', () => {
  let dir: string;
  let server: RunningStrata;
  afterEach(async () => {
    await server?.close();
    await removeDir(dir);
  });

  it('have their exact row count as DuckDB estimate, even when a read was open during the adoption', async () => {
    dir = await tempDir();
    server = await startInProcess(clicksConfig({ delivery: { maxRecords: PAGES, maxSeconds: 60 }, speed: { intervalMs: 50 }, views: { hits: VIEW } }, 1), dir);
    const events = Array.from({ length: PAGES }, (_, i) => ({ event_id: `e${i}`, ts: '2026-11-25T10:00:00Z', user_id: `u${i}`, page: `/p${i}`, amount: 1 }));
    await ingest(server, events);
    await waitForView<Answer>(server, 'hits', 'the speed layer', (answer) => answer.provenance.speedSeq['0'] === String(PAGES));
    await waitForDelivery(server);

    // A read holds its snapshot while a batch run publishes a version covering every record and a step adopts it.
    let release = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    let opened = () => {};
    const open = new Promise<void>((resolve) => (opened = resolve));
    const held = server.strata.speed.withSnapshot('hits', async () => {
      opened();
      await gate;
    });
    await open;
    const run = await server.strata.batch.run();
    expect(run.state).toBe('succeeded');
    for (let i = 0; i < 400 && server.strata.speed.status()[0]!.batchVersion !== 1; i++) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(server.strata.speed.status()[0]!.batchVersion).toBe(1);
    release();
    await held;

    const answer = (await (await fetch(`${server.url}/v1/views/hits?limit=${PAGES + 1}`)).json()) as Answer;
    expect(answer.provenance.batchVersion).toBe(1);
    expect(answer.rows).toHaveLength(PAGES);
    expect(answer.rows.every((row) => Number(row.views) === 1)).toBe(true);
    const tables = await server.strata.speed.withSnapshot('hits', async (_, connection) => {
      const listed = (await connection.runAndReadAll(`SELECT table_name, estimated_size FROM duckdb_tables() WHERE NOT temporary AND table_name LIKE '%speed%'`)).getRows();
      const counted = [];
      for (const [name, estimate] of listed) {
        const rows = (await connection.runAndReadAll(`SELECT count(*) FROM "${String(name)}"`)).getRows()[0]![0];
        counted.push({ name: String(name), estimate: Number(estimate), rows: Number(rows) });
      }
      return counted;
    });
    expect(tables.length).toBeGreaterThan(0);
    for (const table of tables) expect(table).toEqual({ name: table.name, estimate: 0, rows: 0 });
  });
});
