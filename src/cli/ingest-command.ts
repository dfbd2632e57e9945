import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { InvalidArgumentError, Command } from 'commander';
import { Presets, SingleBar } from 'cli-progress';
import { StrataProducer, type PutError } from '../client/index.js';
import { authHeaders } from './server-client.js';
import { parsePositiveInt } from './arguments.js';

/** Malformed-line messages printed as they are found; past this many only their count is shown. */
const MAX_LINE_MESSAGES = 10;
/** Failure reasons listed in the final summary. */
const MAX_SUMMARY_FAILURES = 5;

interface IngestOptions {
  readonly url: string;
  readonly batch: number;
  readonly linger?: number;
}

/** A record's failure, with the input line it came from. */
interface LineFailure {
  readonly line: number;
  readonly error: PutError;
}

/** `strata ingest STREAM FILE|-`: streams an NDJSON file (or stdin) into a stream through the producer SDK. */
export function ingestCommand(): Command {
  return new Command('ingest')
    .description('send the records of an NDJSON file (or stdin) to a stream of a running Strata')
    .argument('<stream>', 'the stream to put records to')
    .argument('<file>', 'NDJSON file, one JSON object per line; - reads stdin')
    .option('--url <url>', 'base URL of the Strata HTTP API', 'http://127.0.0.1:7070')
    .option('--batch <n>', 'records per request', parsePositiveInt, 500)
    .option('--linger <ms>', 'how long a request waits for more records before it is sent (default 50)', parseNonNegativeInt)
    .addHelpText(
      'after',
      [
        '',
        'Blank lines are skipped; a line that is not JSON is reported with its number and not sent.',
        'Exits 0 when every record was acked, 1 otherwise.',
        '',
        'Examples:',
        '  strata ingest clicks clicks.ndjson --url http://127.0.0.1:7070',
        '  gunzip -c clicks.ndjson.gz | strata ingest clicks - --batch 1000',
      ].join('\n'),
    )
    .action(async (stream: string, file: string, options: IngestOptions) => {
      const failed = await runIngest(stream, file, options);
      // exitCode rather than exit(): stdout may still be draining to a pipe.
      if (failed > 0) process.exitCode = 1;
    });
}

function parseNonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number of milliseconds, 0 or more');
  return n;
}

/** Runs one ingest and prints its summary; answers how many records failed. */
async function runIngest(stream: string, file: string, options: IngestOptions): Promise<number> {
  const { input, totalBytes } = await openInput(file);
  // The read loop waits once this many records are unresolved: two full rounds of requests, so the producer
  // always has the next batches ready, and memory stays bounded however large the file.
  const bufferLimit = Math.max(options.batch * 8, 1000);
  const producer = new StrataProducer({
    url: options.url,
    stream,
    headers: authHeaders(),
    maxBatchRecords: options.batch,
    maxBufferedRecords: bufferLimit,
    ...(options.linger !== undefined ? { lingerMs: options.linger } : {}),
  });

  const failures: LineFailure[] = [];
  let malformed = 0;
  let bytesRead = 0;
  const started = performance.now();
  const progress = startProgress(totalBytes, () => ({ ...producer.stats, failed: producer.stats.failed + malformed, bytesRead }));

  const reportFailure = (failure: LineFailure) => {
    // Keep the earliest lines, whatever order their batches were answered in.
    failures.push(failure);
    failures.sort((a, b) => a.line - b.line);
    if (failures.length > MAX_SUMMARY_FAILURES) failures.pop();
  };

  try {
    let lineNumber = 0;
    for await (const line of readLines(input, (n) => (bytesRead += n))) {
      lineNumber++;
      const text = line.trim();
      if (text.length === 0) continue;
      let record: unknown;
      try {
        record = JSON.parse(text);
      } catch (error) {
        malformed++;
        if (malformed <= MAX_LINE_MESSAGES) progress.log(`line ${lineNumber}: not valid JSON, not sent: ${(error as Error).message}`);
        continue;
      }
      if (typeof record !== 'object' || record === null || Array.isArray(record)) {
        malformed++;
        if (malformed <= MAX_LINE_MESSAGES) progress.log(`line ${lineNumber}: not a JSON object, not sent`);
        continue;
      }
      const at = lineNumber;
      void producer.put(record).then((result) => {
        if (!result.ok) reportFailure({ line: at, error: result.error });
      });
      // Backpressure: stop reading until the producer has caught up, so the file is never held in memory.
      if (producer.buffered >= bufferLimit) await producer.waitForCapacity();
    }
  } finally {
    await producer.close();
    progress.stop();
  }

  const stats = producer.stats;
  const seconds = (performance.now() - started) / 1000;
  const failed = stats.failed + malformed;
  const rate = seconds > 0 ? stats.acked / seconds : 0;
  const lines = [`sent ${stats.sent}, acked ${stats.acked}, failed ${failed}, ${Math.round(rate)} events/s in ${seconds.toFixed(1)} s`];
  if (malformed > 0) lines.push(`${malformed} line(s) were not JSON objects and were not sent`);
  if (malformed > MAX_LINE_MESSAGES) lines.push(`(only the first ${MAX_LINE_MESSAGES} of them were listed above)`);
  if (failures.length > 0) {
    lines.push(`first failures${stats.failed > failures.length ? ` (${failures.length} of ${stats.failed})` : ''}:`);
    for (const { line, error } of failures) {
      lines.push(`  line ${line}: ${error.field !== undefined ? `field ${error.field}: ` : ''}${error.message}`);
    }
  }
  process.stdout.write(lines.join('\n') + '\n');
  return failed;
}

/** The input stream, and its size when it is a regular file (the progress total). */
async function openInput(file: string): Promise<{ input: Readable; totalBytes: number | null }> {
  if (file === '-') return { input: process.stdin, totalBytes: null };
  let info;
  try {
    info = await stat(file);
  } catch (error) {
    throw new Error(`cannot read ${file}: ${(error as Error).message}`);
  }
  if (info.isDirectory()) throw new Error(`cannot read ${file}: it is a directory`);
  return { input: createReadStream(file), totalBytes: info.isFile() && info.size > 0 ? info.size : null };
}

/**
 * Splits a byte stream into lines, pulling the next chunk only when the consumer asks for the next line:
 * that pull is the backpressure. Lines are cut at byte 0x0A, which never occurs inside a multi-byte UTF-8
 * character, so decoding each whole line is safe. A final line without a newline counts too.
 */
async function* readLines(input: Readable, onBytes: (n: number) => void): AsyncGenerator<string> {
  let carry: Buffer[] = [];
  for await (const chunk of input as AsyncIterable<Buffer | string>) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    onBytes(bytes.length);
    let start = 0;
    let newline = bytes.indexOf(10, start);
    while (newline !== -1) {
      const piece = bytes.subarray(start, newline);
      yield carry.length > 0 ? Buffer.concat([...carry, piece]).toString('utf8') : piece.toString('utf8');
      carry = [];
      start = newline + 1;
      newline = bytes.indexOf(10, start);
    }
    if (start < bytes.length) carry.push(bytes.subarray(start));
  }
  if (carry.length > 0) yield Buffer.concat(carry).toString('utf8');
}

interface ProgressFigures {
  readonly sent: number;
  readonly acked: number;
  readonly failed: number;
  readonly bytesRead: number;
}

interface Progress {
  /** Prints a message on stderr without garbling the bar. */
  log(message: string): void;
  stop(): void;
}

/**
 * Progress on stderr, so stdout holds only the summary: a bar on a terminal (measured in bytes read when the
 * file size is known), a plain line every second otherwise, so logs of a piped run stay readable.
 */
function startProgress(totalBytes: number | null, figures: () => ProgressFigures): Progress {
  let lastAcked = 0;
  let lastAt = performance.now();
  let rate = 0;
  const measure = () => {
    const now = figures();
    const at = performance.now();
    if (at - lastAt >= 500) {
      rate = ((now.acked - lastAcked) * 1000) / (at - lastAt);
      lastAcked = now.acked;
      lastAt = at;
    }
    return { ...now, rate: Math.round(rate) };
  };

  if (!process.stderr.isTTY) {
    const timer = setInterval(() => {
      const now = measure();
      process.stderr.write(`sent ${now.sent}, acked ${now.acked}, failed ${now.failed}, ${now.rate} events/s\n`);
    }, 1000);
    return { log: (message) => process.stderr.write(message + '\n'), stop: () => clearInterval(timer) };
  }

  const counts = 'sent {sent} | acked {acked} | failed {failed} | {rate} events/s';
  const bar = new SingleBar(
    {
      stream: process.stderr,
      hideCursor: true,
      format: totalBytes !== null ? `{bar} {percentage}% | ${counts}` : `read {value} bytes | ${counts}`,
    },
    Presets.shades_classic,
  );
  const payload = () => {
    const { sent, acked, failed, rate } = measure();
    return { sent, acked, failed, rate };
  };
  bar.start(totalBytes ?? 0, 0, payload());
  const timer = setInterval(() => bar.update(figures().bytesRead, payload()), 200);
  return {
    log: (message) => {
      // Clear the bar's line, print above it; the next update redraws it.
      process.stderr.write(`\r\x1b[K${message}\n`);
    },
    stop: () => {
      clearInterval(timer);
      bar.update(figures().bytesRead, payload());
      bar.stop();
    },
  };
}
