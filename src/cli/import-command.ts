import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Command, InvalidArgumentError, Option } from 'commander';
import { Presets, SingleBar } from 'cli-progress';
import type { ImportJobView } from '../ingest/index.js';
import { getJson, postJson } from './server-client.js';
import { formatBytes } from './status-command.js';

interface ImportCommandOptions {
  readonly url: string;
  readonly format?: string;
  readonly schema?: Record<string, string>;
  readonly eventTime?: string;
  readonly allowDuplicate?: boolean;
}

/** How often the job is polled. */
const POLL_MS = 200;

/** `strata import TABLE FILE...`: bulk-imports NDJSON, CSV and Parquet files through a running Strata. */
export function importCommand(): Command {
  return new Command('import')
    .description('import NDJSON, CSV or Parquet files into a stream (as its history) or a table of the master dataset')
    .argument('<table>', 'a stream of the config (rows are checked against its schema) or the name of an imported table')
    .argument('<files...>', 'files to import; * and ? in the file name are expanded (e.g. data/2026-*.csv)')
    .addOption(new Option('--format <format>', 'the format of every file (default: from each extension)').choices(['ndjson', 'jsonl', 'json', 'csv', 'parquet']))
    .option('--schema <json>', 'columns of an imported table, as in a config: \'{"id":"string","amount":"double?"}\' (default: inferred)', parseSchema)
    .option('--event-time <column>', 'the timestamp column that partitions an imported table by day (default: none, dt=__unknown__)')
    .option('--allow-duplicate', 'import a file even if the same content was imported into the table before')
    .option('--url <url>', 'base URL of the Strata HTTP API', 'http://127.0.0.1:7070')
    .addHelpText(
      'after',
      [
        '',
        'Each file is imported whole or not at all: a malformed line names the file and line, and nothing of',
        'that file is registered; the other files are still imported. A file whose content was imported into',
        'the table before is refused unless --allow-duplicate. The server reads the files from its own disk,',
        'so they must be readable by the Strata process. Exits 1 if any file failed.',
        '',
        'Formats: .ndjson/.jsonl/.json (one JSON object a line, checked as HTTP ingest checks records), .csv',
        '(a header line, comma-separated, "-quoted; timestamps as ISO-8601 text, UTC unless an offset is given),',
        '.parquet (columns converted to the declared types when no value is lost).',
        '',
        'Examples:',
        '  strata import clicks backfill/clicks-2026-*.ndjson',
        `  strata import orders orders.csv --schema '{"order_id":"string","ts":"timestamp","total":"double?"}' --event-time ts`,
        '  strata import products exports/products.parquet --url http://127.0.0.1:7070',
      ].join('\n'),
    )
    .action(async (table: string, patterns: string[], options: ImportCommandOptions) => {
      const failed = await runImportCommand(table, patterns, options);
      if (failed > 0) process.exitCode = 1;
    });
}

function parseSchema(value: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (error) {
    throw new InvalidArgumentError(`not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidArgumentError('expected a JSON object of column names and types, e.g. {"id":"string","amount":"double?"}');
  }
  return parsed as Record<string, string>;
}

/** Runs one import and prints its summary; answers how many files failed. */
async function runImportCommand(table: string, patterns: string[], options: ImportCommandOptions): Promise<number> {
  const files = await expandFiles(patterns);
  const started = performance.now();
  const { id } = await postJson<{ id: string }>(options.url, `/v1/tables/${encodeURIComponent(table)}/imports`, {
    files,
    ...(options.format !== undefined ? { format: options.format } : {}),
    ...(options.schema !== undefined ? { schema: options.schema } : {}),
    ...(options.eventTime !== undefined ? { eventTime: options.eventTime } : {}),
    ...(options.allowDuplicate === true ? { allowDuplicate: true } : {}),
  });
  const progress = startProgress();
  let job: ImportJobView;
  const reported = new Set<number>();
  try {
    for (;;) {
      job = await getJson<ImportJobView>(options.url, `/v1/imports/${encodeURIComponent(id)}`);
      job.files.forEach((file, i) => {
        if ((file.state === 'succeeded' || file.state === 'failed') && !reported.has(i)) {
          reported.add(i);
          progress.log(file.state === 'succeeded' ? `imported ${file.path}: ${count(file.rows)} rows` : `FAILED ${file.error?.message ?? file.path}`);
        }
      });
      progress.update(job);
      if (job.state !== 'running') break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    progress.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  const failed = job.files.filter((file) => file.state === 'failed');
  const bytes = job.files.filter((file) => file.state === 'succeeded').reduce((sum, file) => sum + file.bytes, 0);
  const lines = [
    `imported ${job.files.length - failed.length} of ${job.files.length} file(s) into "${table}": ${count(job.rows)} rows, ` +
      `${formatBytes(bytes)} in ${seconds.toFixed(1)} s (${count(job.rows / seconds)} rows/s, ${(bytes / 1e6 / seconds).toFixed(1)} MB/s)`,
  ];
  if (failed.length > 0) {
    lines.push('failed (nothing of these files was imported):');
    for (const file of failed) lines.push(`  ${file.path}: ${file.error?.message ?? 'unknown error'}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
  return failed.length;
}

const count = (n: number) => Math.round(n).toLocaleString('en-US');

/**
 * The files the arguments name, as absolute paths (the server resolves nothing against the CLI's directory).
 * `*` and `?` in the last path segment are expanded against that directory's listing, sorted; a pattern that
 * matches nothing is an error, as is a wildcard in a directory name.
 */
export async function expandFiles(patterns: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const pattern of patterns) {
    const absolute = resolve(pattern);
    const name = basename(absolute);
    const dir = dirname(absolute);
    if (/[*?]/.test(dir)) throw new Error(`${pattern}: wildcards are expanded in the file name only, not in directories`);
    if (!/[*?]/.test(name)) {
      files.push(absolute);
      continue;
    }
    const matcher = new RegExp(`^${name.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
    let entries: string[];
    try {
      entries = await readdir(dir);
    } catch (error) {
      throw new Error(`${pattern}: cannot list ${dir}: ${(error as Error).message}`);
    }
    const matched: string[] = [];
    for (const entry of entries.sort()) {
      if (!matcher.test(entry) || entry.startsWith('.')) continue;
      const path = join(dir, entry);
      if ((await stat(path)).isFile()) matched.push(path);
    }
    if (matched.length === 0) throw new Error(`${pattern}: no file matches`);
    files.push(...matched);
  }
  return [...new Set(files)];
}

interface Progress {
  update(job: ImportJobView): void;
  log(message: string): void;
  stop(): void;
}

/** Progress on stderr: a bar on a terminal, a plain line every second otherwise. */
function startProgress(): Progress {
  const describe = (job: ImportJobView) => {
    const current = job.files.findIndex((file) => file.state === 'running' || file.state === 'pending');
    const at = current === -1 ? job.files.length : current + 1;
    return { file: `${at}/${job.files.length}`, name: basename(job.files[Math.min(at, job.files.length) - 1]?.path ?? ''), rows: count(job.rows) };
  };
  if (!process.stderr.isTTY) {
    let last = 0;
    return {
      update: (job) => {
        if (job.state === 'running' && performance.now() - last < 1000) return;
        last = performance.now();
        const { file, name, rows } = describe(job);
        process.stderr.write(`importing: ${Math.round(job.progress * 100)}% (file ${file}: ${name}), ${rows} rows\n`);
      },
      log: (message) => process.stderr.write(message + '\n'),
      stop: () => {},
    };
  }
  const bar = new SingleBar(
    { stream: process.stderr, hideCursor: true, format: '{bar} {percentage}% | file {file} {name} | {rows} rows' },
    Presets.shades_classic,
  );
  bar.start(1000, 0, { file: '', name: '', rows: '0' });
  return {
    update: (job) => bar.update(Math.round(job.progress * 1000), describe(job)),
    log: (message) => process.stderr.write(`\r\x1b[K${message}\n`),
    stop: () => bar.stop(),
  };
}
