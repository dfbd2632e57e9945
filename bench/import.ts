/**
 * Bulk import (the Glue/DMS role): how fast files become registered Parquet in the lake.
 *
 * ~1M click events (~200 bytes each) are generated as an NDJSON file, then written as CSV and Parquet by
 * DuckDB (outside the timed part). Each file is imported into the `clicks` stream's table (historical data,
 * checked against the stream's schema) through the core `importFiles`, in-process, as the server's import
 * job runs it: hashing, validation, Parquet writing partitioned by day, registration.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DuckDBInstance } from '@duckdb/node-api';
import { parseConfig } from '../src/config/index.js';
import { importFiles, type ImportFormatName } from '../src/ingest/index.js';
import { Strata } from '../src/strata.js';
import { formatInt, numberFlag, round, type Benchmark } from './lib/benchmark.js';
import { CLICKS_STREAM, generateClickBodies } from './lib/clicks.js';
import { onCleanup } from './lib/cleanup.js';

const EVENTS_PER_BODY = 1_000;

interface FormatFigures {
  readonly rowsPerSecond: number;
  readonly megabytesPerSecond: number;
  readonly seconds: number;
  readonly bytes: number;
  readonly files: number;
}

/** Writes `events` click events as NDJSON (the generator's bodies, cycled with fresh ids), then CSV and Parquet. */
async function generateFiles(dir: string, events: number): Promise<Record<ImportFormatName, string>> {
  const ndjson = join(dir, 'clicks.ndjson');
  const bodies = Math.ceil(events / EVENTS_PER_BODY);
  const { bodies: generated } = generateClickBodies({ seed: 11, bodies, eventsPerBody: EVENTS_PER_BODY });
  const out = createWriteStream(ndjson);
  for (const body of generated) {
    if (!out.write(body)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  const csv = join(dir, 'clicks.csv');
  const parquet = join(dir, 'clicks.parquet');
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const read = `read_json('${ndjson}', format = 'newline_delimited', columns = {event_id: 'VARCHAR', ts: 'VARCHAR', user_id: 'VARCHAR', page: 'VARCHAR', amount: 'DOUBLE'})`;
    await connection.run(`COPY (SELECT * FROM ${read}) TO '${csv}' (FORMAT csv, HEADER true)`);
    await connection.run(`COPY (SELECT * REPLACE (ts::TIMESTAMP AS ts) FROM ${read}) TO '${parquet}' (FORMAT parquet, COMPRESSION zstd)`);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
  return { ndjson, csv, parquet };
}

const benchmark: Benchmark = {
  name: 'import',
  summary: 'bulk import: NDJSON, CSV and Parquet files of click events → registered Parquet, rows/s and MB/s',
  options: {
    'import-events': { type: 'string', description: 'click events in each generated file', default: '1000000' },
  },
  async run(values) {
    const events = numberFlag(values, 'import-events', 1_000_000, { min: 1_000, max: 20_000_000, integer: true });
    const dir = await mkdtemp(join(tmpdir(), 'strata-bench-import-'));
    const removeDir = onCleanup(() => rm(dir, { recursive: true, force: true }));
    try {
      const generated = performance.now();
      const files = await generateFiles(dir, events);
      console.log(`import (${formatInt(events)} click events per file into the clicks stream's table; files made in ${((performance.now() - generated) / 1000).toFixed(1)} s)`);
      const strata = await Strata.open({ config: parseConfig({ streams: { clicks: CLICKS_STREAM } }), dataDir: join(dir, 'data'), deliver: false });
      const figures: Partial<Record<ImportFormatName, FormatFigures>> = {};
      try {
        for (const format of ['ndjson', 'csv', 'parquet'] as const) {
          const bytes = (await stat(files[format])).size;
          const started = performance.now();
          const result = await importFiles(strata, { table: 'clicks', files: [files[format]] });
          const seconds = (performance.now() - started) / 1000;
          const file = result.files[0]!;
          if (file.state !== 'succeeded') throw new Error(`${format}: ${file.error?.message}`);
          if (file.rows !== events) throw new Error(`${format}: imported ${file.rows} rows of ${events}`);
          figures[format] = { rowsPerSecond: events / seconds, megabytesPerSecond: bytes / 1e6 / seconds, seconds, bytes, files: file.keys.length };
          console.log(
            `  ${format.padEnd(8)} ${formatInt(events / seconds).padStart(10)} rows/s  ${(bytes / 1e6 / seconds).toFixed(1).padStart(6)} MB/s` +
              `  (${(bytes / 1e6).toFixed(0)} MB in ${seconds.toFixed(2)} s, ${file.keys.length} partition file(s))`,
          );
        }
      } finally {
        await strata.close();
      }
      return Object.fromEntries(
        Object.entries(figures).map(([format, f]) => [
          format,
          { rowsPerSecond: round(f.rowsPerSecond, 0), megabytesPerSecond: round(f.megabytesPerSecond), seconds: round(f.seconds), bytes: f.bytes },
        ]),
      );
    } finally {
      await removeDir();
    }
  },
};

export default benchmark;
