import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { Command, InvalidArgumentError, Option } from 'commander';
import { request } from './server-client.js';
import { renderTextTable, type Align } from './text-table.js';

type OutputFormat = 'table' | 'json' | 'csv';

interface SqlOptions {
  readonly url: string;
  readonly format: OutputFormat;
}

interface SqlAnswer {
  columns: { name: string; type: string }[];
  rows: Record<string, unknown>[];
}

const NUMERIC_TYPE = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL\(.*\))$/;

/** `strata sql "SELECT ..."`: runs ad-hoc SQL on a running Strata (`POST /v1/sql`) and prints the answer. */
export function sqlCommand(): Command {
  return new Command('sql')
    .description('run a read-only SQL query over the lake of a running Strata and print the answer')
    .argument('<sql>', 'one SELECT (or WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE) query; - reads it from stdin')
    .option('--url <url>', 'base URL of the Strata HTTP API', 'http://127.0.0.1:7070')
    .addOption(
      new Option('--format <format>', 'table: aligned text for a terminal; json: the API answer; csv: with a header row')
        .choices(['table', 'json', 'csv'])
        .default('table'),
    )
    .addHelpText(
      'after',
      [
        '',
        'Each stream is a table of its delivered records, with __shard, __seq and the partition dt (YYYY-MM-DD).',
        'Timestamps print as ISO-8601 UTC. Exits 1 with the error message when the query is refused or fails.',
        '',
        'Examples:',
        `  strata sql "SELECT page, count(*) AS views FROM clicks WHERE dt = '2026-11-25' GROUP BY page ORDER BY views DESC LIMIT 10"`,
        '  strata sql "FROM clicks LIMIT 5" --format json',
        '  strata sql - --format csv < report.sql > report.csv',
      ].join('\n'),
    )
    .action(async (sql: string, options: SqlOptions) => {
      const text = sql === '-' ? await readStdin() : sql;
      if (text.trim() === '') throw new InvalidArgumentError('no SQL given');
      await runSql(text, options);
    });
}

async function runSql(sql: string, options: SqlOptions): Promise<void> {
  const accept = options.format === 'csv' ? 'text/csv' : 'application/json';
  const response = await request(options.url, '/v1/sql', {
    method: 'POST',
    headers: { 'content-type': 'text/plain; charset=utf-8', accept },
    body: sql,
  });
  if (options.format !== 'table') {
    // As the server sends it, without holding a large answer; an answer cut off mid-way fails here.
    try {
      await pipeline(Readable.fromWeb(response.body! as WebReadableStream<Uint8Array>), process.stdout, { end: false });
    } catch (error) {
      throw new Error(`the answer was cut off: ${(error as Error).message}`);
    }
    if (options.format === 'json') process.stdout.write('\n');
    return;
  }
  const answer = (await response.json()) as SqlAnswer;
  console.log(renderAnswer(answer));
}

/** An answer as an aligned text table, NULL spelled out, with the row count below. */
export function renderAnswer(answer: SqlAnswer): string {
  const align: Align[] = answer.columns.map((column) => (NUMERIC_TYPE.test(column.type) ? 'right' : 'left'));
  const rows = answer.rows.map((row) => answer.columns.map((column) => cellText(row[column.name])));
  const count = `(${answer.rows.length} ${answer.rows.length === 1 ? 'row' : 'rows'})`;
  return `${renderTextTable(answer.columns.map((column) => column.name), rows, align)}\n${count}`;
}

function cellText(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
