/**
 * The ingest benchmark's load generator, run by bench/ingest.ts as its own process (so that it and the
 * server share the machine's cores as real producers and Strata would):
 *
 *   node --import tsx bench/ingest-load.ts --url http://127.0.0.1:PORT --concurrency 16 --warmup 2 --seconds 10
 *
 * It builds its request bodies before it starts the clock, keeps `concurrency` POSTs in flight over
 * keep-alive connections, counts only events whose request was answered 200 with `"failed":0`, and prints
 * one JSON line ({@link LoadResult}) on stdout. Events acknowledged during the measured window count toward
 * the rate; requests still in flight when it closes are drained and counted only in `totalAckedEvents`.
 */
import { Agent, request } from 'node:http';
import { parseArgs } from 'node:util';
import { authHeaders } from './lib/auth.js';
import { generateClickBodies } from './lib/clicks.js';
import { busyCores, machineTicks, processCpuSeconds } from './lib/proc-cpu.js';

/** What the load generator prints, as one JSON line. */
export interface LoadResult {
  readonly concurrency: number;
  readonly eventsPerRequest: number;
  readonly measuredSeconds: number;
  /** Acked events and requests whose answer arrived inside the measured window. */
  readonly events: number;
  readonly requests: number;
  readonly bodyBytes: number;
  readonly eventsPerSecond: number;
  readonly megabytesPerSecond: number;
  readonly latencyMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number };
  /** Requests refused, failed or timed out (over the whole run), with the first few reasons. */
  readonly errors: number;
  readonly errorSamples: readonly string[];
  /** Every event acked during the run: warm-up, measured window and drain. */
  readonly totalAckedEvents: number;
  /** Answers fully parsed and checked (one record result with a seq per event). */
  readonly answersChecked: number;
  /**
   * CPU over the measured window, in cores (1.0 = one core busy all the time): this process, the server, and
   * the whole machine (so 2.0 on this machine means both cores were saturated). Null where /proc is missing.
   */
  readonly cpu: { readonly loadGenerator: number; readonly server: number | null; readonly machineBusy: number | null };
}

/** Hard bounds, whatever the flags say. */
const MAX_REQUESTS = 50_000_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** After a failed request a worker pauses this long, so a dead server is not hammered in a tight loop. */
const ERROR_PAUSE_MS = 20;
/** Every this many answers one is parsed in full and checked record by record. */
const FULL_CHECK_EVERY = 64;
const ERROR_SAMPLES_KEPT = 5;
/** Bytes kept from the end of an answer for the cheap `"failed":0}` check. */
const TAIL_BYTES = 32;

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    stream: { type: 'string', default: 'clicks' },
    concurrency: { type: 'string', default: '16' },
    warmup: { type: 'string', default: '2' },
    seconds: { type: 'string', default: '10' },
    batch: { type: 'string', default: '500' },
    bodies: { type: 'string', default: '200' },
    seed: { type: 'string', default: '1' },
    'server-pid': { type: 'string' },
  },
  strict: true,
});

function positive(name: string, raw: string | undefined, integer: boolean): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) throw new Error(`--${name}: bad value ${raw}`);
  return n;
}

if (values.url === undefined || !/^http:\/\/127\.0\.0\.1:\d+$/.test(values.url)) {
  throw new Error('--url http://127.0.0.1:PORT is required (the benchmark talks to loopback only)');
}
const port = Number(new URL(values.url).port);
const concurrency = positive('concurrency', values.concurrency, true);
const warmupMs = positive('warmup', values.warmup, false) * 1000;
const measureMs = positive('seconds', values.seconds, false) * 1000;
const eventsPerRequest = positive('batch', values.batch, true);
const serverPid = values['server-pid'] === undefined ? null : positive('server-pid', values['server-pid'], true);
const path = `/v1/streams/${encodeURIComponent(values.stream)}/records`;

const { bodies } = generateClickBodies({
  seed: positive('seed', values.seed, true),
  bodies: Math.max(1, positive('bodies', values.bodies, true)),
  eventsPerBody: eventsPerRequest,
});

interface CpuSnapshot {
  readonly at: number;
  readonly self: NodeJS.CpuUsage;
  readonly server: number | null;
  readonly machine: { busy: number; total: number } | null;
}

function snapshot(): CpuSnapshot {
  return {
    at: performance.now(),
    self: process.cpuUsage(),
    server: serverPid === null ? null : processCpuSeconds(serverPid),
    machine: machineTicks(),
  };
}

interface Answer {
  readonly status: number;
  readonly tail: string;
  readonly full: Buffer | null;
}

const agent = new Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });

/** POSTs one body; answers the status and the end of the answer (all of it when `keepAll`). */
function post(body: Buffer, keepAll: boolean): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: '127.0.0.1',
        port,
        method: 'POST',
        path,
        headers: { 'content-type': 'application/x-ndjson', 'content-length': body.length, ...authHeaders() },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let tail: Buffer = Buffer.alloc(0);
        res.on('data', (chunk: Buffer) => {
          if (keepAll) chunks.push(chunk);
          tail = chunk.length >= TAIL_BYTES ? chunk.subarray(chunk.length - TAIL_BYTES) : Buffer.concat([tail, chunk]).subarray(-TAIL_BYTES);
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, tail: tail.toString('utf8'), full: keepAll ? Buffer.concat(chunks) : null }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Checks a full answer: one record result per event, each with a shard and a seq. */
function checkFullAnswer(full: Buffer): string | null {
  const answer = JSON.parse(full.toString('utf8')) as { records?: { shard?: string; seq?: string }[]; failed?: number };
  if (answer.failed !== 0) return `failed: ${answer.failed}`;
  if (!Array.isArray(answer.records) || answer.records.length !== eventsPerRequest) {
    return `expected ${eventsPerRequest} record results, got ${answer.records?.length}`;
  }
  for (const record of answer.records) {
    if (typeof record.seq !== 'string' || typeof record.shard !== 'string') return `a record result without a seq: ${JSON.stringify(record)}`;
  }
  return null;
}

const latencies: number[] = [];
let measuredEvents = 0;
let measuredRequests = 0;
let measuredBytes = 0;
let totalAckedEvents = 0;
let errors = 0;
let answersChecked = 0;
let started = 0;
const errorSamples: string[] = [];

function noteError(reason: string): void {
  errors++;
  if (errorSamples.length < ERROR_SAMPLES_KEPT) errorSamples.push(reason);
}

const begin = performance.now();
const measureFrom = begin + warmupMs;
const measureTo = measureFrom + measureMs;

async function worker(first: number): Promise<void> {
  let next = first;
  while (performance.now() < measureTo && started < MAX_REQUESTS) {
    started++;
    const body = bodies[next % bodies.length]!;
    next += concurrency;
    const fullCheck = started % FULL_CHECK_EVERY === 1;
    const sent = performance.now();
    let problem: string | null = null;
    try {
      const answer = await post(body, fullCheck);
      if (answer.status !== 200) problem = `HTTP ${answer.status}: ${answer.full?.toString('utf8').slice(0, 200) ?? answer.tail}`;
      else if (!answer.tail.endsWith('"failed":0}')) problem = `answer does not end in "failed":0}: …${answer.tail}`;
      else if (answer.full !== null) {
        problem = checkFullAnswer(answer.full);
        answersChecked++;
      }
    } catch (error) {
      problem = (error as Error).message;
    }
    const done = performance.now();
    if (problem !== null) {
      noteError(problem);
      await new Promise((r) => setTimeout(r, ERROR_PAUSE_MS));
      continue;
    }
    totalAckedEvents += eventsPerRequest;
    if (done >= measureFrom && done < measureTo) {
      measuredEvents += eventsPerRequest;
      measuredRequests++;
      measuredBytes += body.length;
      latencies.push(done - sent);
    }
  }
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

let cpuFrom: CpuSnapshot | null = null;
let cpuTo: CpuSnapshot | null = null;
const fromTimer = setTimeout(() => (cpuFrom = snapshot()), warmupMs);
const toTimer = setTimeout(() => (cpuTo = snapshot()), warmupMs + measureMs);

await Promise.all(Array.from({ length: concurrency }, (_, i) => worker(i)));
clearTimeout(fromTimer);
clearTimeout(toTimer);
cpuFrom ??= snapshot();
cpuTo ??= snapshot();
agent.destroy();

const seconds = measureMs / 1000;
const sorted = latencies.sort((a, b) => a - b);
const r3 = (n: number) => Math.round(n * 1000) / 1000;
const from: CpuSnapshot = cpuFrom;
const to: CpuSnapshot = cpuTo;
const wallSeconds = Math.max(1e-9, (to.at - from.at) / 1000);
const result: LoadResult = {
  concurrency,
  eventsPerRequest,
  measuredSeconds: seconds,
  events: measuredEvents,
  requests: measuredRequests,
  bodyBytes: measuredBytes,
  eventsPerSecond: measuredEvents / seconds,
  megabytesPerSecond: measuredBytes / seconds / 1e6,
  latencyMs: { p50: r3(percentile(sorted, 50)), p90: r3(percentile(sorted, 90)), p99: r3(percentile(sorted, 99)), max: r3(sorted[sorted.length - 1] ?? NaN) },
  errors,
  errorSamples,
  totalAckedEvents,
  answersChecked,
  cpu: {
    loadGenerator: r3((to.self.user + to.self.system - from.self.user - from.self.system) / 1e6 / wallSeconds),
    server: from.server === null || to.server === null ? null : r3((to.server - from.server) / wallSeconds),
    machineBusy: from.machine === null || to.machine === null ? null : r3(busyCores(from.machine, to.machine)),
  },
};
process.stdout.write(JSON.stringify(result) + '\n');
