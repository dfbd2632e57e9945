import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';

/**
 * The speed layer's DuckDB runs without the checkpoint's vacuum (`max_vacuum_tasks = 0`, see SpeedLayer.open):
 * the vacuum made micro-batch commits of 100-600 ms under load. That rests on DuckDB still freeing a row group
 * once every row in it is deleted, as adoptions delete the ranges a batch version covers. If a DuckDB upgrade
 * stopped doing so, the speed layer's memory would grow without bound: this checks the property itself.
 */
describe('the speed layer DuckDB without vacuum', () => {
  it('frees the memory of partial rows that later adoptions delete, which turning checkpoints off would not', async () => {
    const memoryAfterCycles = async (settings: Record<string, string>) => {
      const instance = await DuckDBInstance.create(':memory:', { threads: '1', ...settings });
      const connection = await instance.connect();
      try {
        await connection.run('CREATE TABLE partials (page VARCHAR, bucket SMALLINT, rank TINYINT, first BIGINT)');
        const used = async () =>
          Number((await connection.runAndReadAll('SELECT sum(memory_usage_bytes) FROM duckdb_memory()')).getRows()[0]![0]);
        let early = 0;
        for (let step = 0; step < 80; step++) {
          // A micro-batch's rows, then an adoption dropping what is older than 20 micro-batches.
          await connection.run(
            `INSERT INTO partials SELECT '/p' || (i % 5000), (i % 4096)::SMALLINT, 1, ${step} FROM range(${step * 50_000}, ${(step + 1) * 50_000}) t(i)`,
          );
          if (step >= 20) await connection.run(`DELETE FROM partials WHERE first = ${step - 20}`);
          if (step === 25) early = await used();
        }
        return { early, late: await used() };
      } finally {
        connection.closeSync();
        instance.closeSync();
      }
    };
    const withoutVacuum = await memoryAfterCycles({ max_vacuum_tasks: '0' });
    // Same rows held throughout (20 micro-batches): memory stays level (it swings 45-55 MB here as checkpoints come).
    expect(withoutVacuum.late).toBeLessThan(withoutVacuum.early * 1.6);
    // The control: with no checkpoint at all, deleted rows are never freed.
    const neverCheckpointed = await memoryAfterCycles({ checkpoint_threshold: '1TB' });
    expect(neverCheckpointed.late).toBeGreaterThan(neverCheckpointed.early * 2);
  });
});
