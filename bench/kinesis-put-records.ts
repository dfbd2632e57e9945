/**
 * Kinesis API benchmark: PutRecords through the unmodified AWS SDK (500 records a call, several calls in flight)
 * against `strata start`, beside HTTP ingest of the same events at the same batch size and concurrency, from the
 * same load process, so the two figures differ only by the edge (SigV4, base64 in JSON, per-record answers).
 *
 *   npm run bench -- --only kinesis
 *   node --import tsx bench/kinesis-put-records.ts [--seconds 10 --concurrency 8]   (after `npm run build`)
 */
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { KinesisClient, PutRecordsCommand, type PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { formatInt, numberFlag, round, stringFlag, type Benchmark, type BenchValues } from './lib/benchmark.js';
import { CLICKS_STREAM, generateClickBodies } from './lib/clicks.js';
import { runAllCleanups } from './lib/cleanup.js';
import { startStrata } from './lib/strata-process.js';

/** Distinct request batches built up front; the load cycles through them. */
const BATCHES = 100;
/** AWS's limit per PutRecords call. */
const MAX_BATCH = 500;

interface LoadFigures {
  readonly eventsPerSecond: number;
  readonly megabytesPerSecond: number;
  readonly latencyMs: { readonly p50: number; readonly p99: number };
  readonly calls: number;
  /** Calls that failed, plus records a PutRecords answer failed. */
  readonly errors: number;
}

/**
 * Runs `send` from `concurrency` loops for `warmup` then `seconds`, counting only what completes in the measured
 * window. `send` answers the records it got accepted.
 */
async function drive(
  concurrency: number,
  warmup: number,
  seconds: number,
  eventsPerCall: number,
  bytesPerCall: number,
  send: (i: number) => Promise<number>,
): Promise<LoadFigures> {
  const startedAt = performance.now();
  const measureFrom = startedAt + warmup * 1000;
  const stopAt = measureFrom + seconds * 1000;
  const latencies: number[] = [];
  let events = 0;
  let calls = 0;
  let errors = 0;
  let next = 0;
  const loop = async () => {
    while (performance.now() < stopAt) {
      const i = next++;
      const began = performance.now();
      let accepted = 0;
      try {
        accepted = await send(i);
      } catch {
        errors++;
        continue;
      }
      const ended = performance.now();
      if (began >= measureFrom && ended <= stopAt) {
        events += accepted;
        calls++;
        errors += eventsPerCall - accepted;
        latencies.push(ended - began);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  latencies.sort((a, b) => a - b);
  const at = (q: number) => round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0, 1);
  return {
    eventsPerSecond: Math.round(events / seconds),
    megabytesPerSecond: round((calls * bytesPerCall) / seconds / 1e6, 1),
    latencyMs: { p50: at(0.5), p99: at(0.99) },
    calls,
    errors,
  };
}

async function run(values: BenchValues) {
  const seconds = numberFlag(values, 'seconds', 10, { min: 1, max: 600 });
  const warmup = numberFlag(values, 'warmup', 2, { min: 0, max: 60 });
  const concurrency = numberFlag(values, 'concurrency', 8, { min: 1, max: 256, integer: true });
  const batch = numberFlag(values, 'batch', MAX_BATCH, { min: 1, max: MAX_BATCH, integer: true });
  const tempRoot = resolve(stringFlag(values, 'temp-dir') ?? tmpdir());

  const { bodies, bytes, events } = generateClickBodies({ seed: 1, bodies: BATCHES, eventsPerBody: batch });
  // The same events as Kinesis records: each line's bytes, keyed by its user (Strata routes by user_id anyway).
  const batches: PutRecordsRequestEntry[][] = bodies.map((body) =>
    body
      .toString('utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => ({ Data: Buffer.from(line, 'utf8'), PartitionKey: (JSON.parse(line) as { user_id: string }).user_id })),
  );
  const bytesPerCall = bytes / bodies.length;

  const server = await startStrata({ config: { streams: { clicks: CLICKS_STREAM } }, tempRoot });
  const token = process.env.STRATA_ADMIN_TOKEN!;
  const client = new KinesisClient({
    endpoint: server.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'admin', secretAccessKey: token },
    requestHandler: new NodeHttpHandler({ httpAgent: { keepAlive: true, maxSockets: concurrency } }),
    maxAttempts: 1,
  });
  try {
    console.log(`kinesis: PutRecords via @aws-sdk/client-kinesis vs HTTP ingest, ${batch} events a call, ${concurrency} in flight, ${seconds} s each (≈ ${Math.round(bytes / events)} B/event)`);
    const kinesis = await drive(concurrency, warmup, seconds, batch, bytesPerCall, async (i) => {
      const answer = await client.send(new PutRecordsCommand({ StreamName: 'clicks', Records: batches[i % batches.length]! }));
      return batch - (answer.FailedRecordCount ?? 0);
    });
    const http = await drive(concurrency, warmup, seconds, batch, bytesPerCall, async (i) => {
      const response = await fetch(`${server.url}/v1/streams/clicks/records`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson', authorization: `Bearer ${token}` },
        body: bodies[i % bodies.length]!,
      });
      const answer = (await response.json()) as { failed?: number };
      if (response.status !== 200) throw new Error(`HTTP ingest answered ${response.status}`);
      return batch - (answer.failed ?? 0);
    });
    const line = (name: string, figures: LoadFigures) =>
      console.log(
        `  ${name.padEnd(22)} ${formatInt(figures.eventsPerSecond).padStart(10)} events/s  ${String(figures.megabytesPerSecond).padStart(6)} MB/s of events  ` +
          `p50 ${figures.latencyMs.p50} ms  p99 ${figures.latencyMs.p99} ms  errors ${figures.errors}`,
      );
    line('Kinesis PutRecords', kinesis);
    line('HTTP ingest (NDJSON)', http);
    const ratio = kinesis.eventsPerSecond / Math.max(1, http.eventsPerSecond);
    console.log(`  Kinesis / HTTP         ${(ratio * 100).toFixed(0).padStart(9)}%   (same load process, same events; both acks wait for fdatasync)`);
    return { kinesis, http, kinesisOverHttp: round(ratio, 3), batch, concurrency, seconds };
  } finally {
    client.destroy();
    await server.stop();
  }
}

const benchmark: Benchmark = {
  name: 'kinesis',
  summary: 'Kinesis PutRecords through the AWS SDK (500 records a call), beside HTTP ingest of the same events',
  options: {
    seconds: { type: 'string', description: 'measured duration, seconds', default: '10' },
    warmup: { type: 'string', description: 'warm-up before measuring, seconds', default: '2' },
    concurrency: { type: 'string', description: 'requests in flight', default: '8' },
    batch: { type: 'string', description: 'events per request (at most 500 for Kinesis)', default: '500' },
    'temp-dir': { type: 'string', description: "where the server's temp config and data dir go (must be a real disk)", default: 'the system temp dir' },
  },
  run,
};

export default benchmark;

// Run directly (`node --import tsx bench/kinesis-put-records.ts`), with this module's flags alone.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: Object.fromEntries(Object.keys(benchmark.options).map((name) => [name, { type: 'string' as const }])),
    strict: true,
  });
  try {
    await benchmark.run(values);
  } catch (error) {
    console.error((error as Error).message);
    process.exitCode = 1;
  } finally {
    await runAllCleanups();
  }
}
