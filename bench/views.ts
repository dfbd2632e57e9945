/**
 * Views: how soon an ingested event shows in the merged view, and how fast the merged view answers.
 *
 * 1. Ingest → visible under load: a Strata server (child process) with the clicks stream and the page_minute
 *    view of examples/clickstream (no batch schedule) takes `--views-rate` events/s over HTTP from a
 *    rate-limited producer in this process (bodies of 500 events, sent on a fixed schedule, not as fast as
 *    possible). Spread over the run, each probe POSTs one event with a page of its own (`/probe-<n>`) and polls
 *    `GET /v1/views/page_minute?page=/probe-<n>` every 5 ms; ack → visible is from the ingest ack to the answer
 *    of the first poll that shows the row. Two batch runs during the load exercise the hand-over from the
 *    speed layer to a batch version; the freshnessMs of every poll answer is kept.
 * 2. Merged-view queries: after the load, `--views-keys` events with distinct pages (one minute) are ingested
 *    and a batch run publishes them, so the view holds about that many groups (plus the load's). Then timed,
 *    one at a time, each a full HTTP round trip:
 *    - point lookup: `?page=P&minute=M` (equality on every group-by column of the view);
 *    - group-by: `?order=-views&limit=10`: the merge re-aggregates every group of the merged view (batch
 *      partials ∪ speed partials, GROUP BY page, minute) and answers the top 10 by views, so the figure is the
 *      group-by over all keys, not the JSON rendering of a large answer.
 * 3. Ingest → visible again, on a second server whose stream declares every kind of transform rule (dedupe
 *    included), beside the figure with none (`--views-transforms off` skips it).
 */
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { type Benchmark, type BenchValues, formatInt, formatRatio, numberFlag, round, stringFlag } from './lib/benchmark.js';
import { authHeaders } from './lib/auth.js';
import { CLICKS_STREAM, CLICKS_TRANSFORM, generateClickBodies } from './lib/clicks.js';
import { summarizeCpuProfile } from './lib/cpu-profile.js';
import { processCpuSeconds } from './lib/proc-cpu.js';
import { cpuProfileOf, REPO_ROOT, startStrata } from './lib/strata-process.js';

const VISIBLE_TARGET_P99_MS = 250;
const POINT_TARGET_P99_MS = 10;
const GROUP_BY_TARGET_P99_MS = 200;
const POLL_EVERY_MS = 5;
const PROBE_TIMEOUT_MS = 15_000;
const EVENTS_PER_BODY = 500;
/** Most load requests in flight; past it the producer falls behind its schedule (and says so). */
const MAX_IN_FLIGHT = 32;

interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

function http(url: string, method: 'GET' | 'POST', body?: Buffer | string, contentType = 'application/json'): Promise<HttpAnswer> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...authHeaders() };
    const payload = body === undefined ? undefined : typeof body === 'string' ? Buffer.from(body) : body;
    if (payload !== undefined) {
      headers['content-type'] = contentType;
      headers['content-length'] = payload.length;
    }
    const req = request(
      { agent, host: target.hostname, port: target.port, method, path: `${target.pathname}${target.search}`, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.setTimeout(60_000, () => req.destroy(new Error(`${method} ${target.pathname}: no answer within 60 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

async function json<T>(url: string, method: 'GET' | 'POST', body?: Buffer | string, contentType?: string): Promise<T> {
  const answer = await http(url, method, body, contentType);
  if (answer.status < 200 || answer.status > 299) throw new Error(`${method} ${url} answered ${answer.status}: ${answer.body.slice(0, 300)}`);
  return JSON.parse(answer.body) as T;
}

interface ViewBody {
  readonly rows: Record<string, unknown>[];
  readonly provenance: { batchVersion: number | null; freshnessMs: number };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function stats(values: readonly number[]): { n: number; p50: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? NaN };
}

const benchStarted = performance.now();
/** A progress line on stderr, so a slow phase shows which one it is. */
function progress(what: string): void {
  console.error(`  [views +${((performance.now() - benchStarted) / 1000).toFixed(1)} s] ${what}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The page_minute view as examples/clickstream declares it, without its batch schedule. */
async function pageMinuteSql(): Promise<string> {
  const config = JSON.parse(await readFile(join(REPO_ROOT, 'examples', 'clickstream', 'strata.config.json'), 'utf8')) as {
    views: { page_minute: { sql: string } };
  };
  return config.views.page_minute.sql;
}

interface BatchRun {
  readonly startedAtS: number;
  seconds: number;
  state: string;
  version: unknown;
}

/** Starts a batch run of page_minute and follows it to its end. */
async function batchRun(url: string, t0: number): Promise<BatchRun> {
  const started = performance.now();
  const run: BatchRun = { startedAtS: (started - t0) / 1000, seconds: NaN, state: 'starting', version: null };
  const { id } = await json<{ id: string }>(`${url}/v1/batch/runs`, 'POST', JSON.stringify({ views: ['page_minute'] }));
  for (;;) {
    const status = await json<{ state: string; version: unknown; error: unknown }>(`${url}/v1/batch/runs/${encodeURIComponent(id)}`, 'GET');
    run.state = status.state;
    run.version = status.version;
    if (status.state !== 'running') {
      if (status.state !== 'succeeded') run.state = `${status.state}: ${JSON.stringify(status.error)}`;
      break;
    }
    await sleep(50);
  }
  run.seconds = (performance.now() - started) / 1000;
  return run;
}

interface LoadPhase {
  readonly targetRate: number;
  readonly ackedEvents: number;
  readonly achievedRate: number;
  readonly lateSends: number;
  readonly loadErrors: number;
  readonly visibleMs: number[];
  readonly probeTimeouts: number;
  readonly pollMs: number[];
  readonly freshness: number[];
  readonly batchVersionsSeen: number[];
  readonly batchRuns: BatchRun[];
}

async function loadPhase(url: string, rate: number, seconds: number, probes: number): Promise<LoadPhase> {
  const { bodies } = generateClickBodies({ seed: 7, bodies: 200, eventsPerBody: EVENTS_PER_BODY });
  const ingest = `${url}/v1/streams/clicks/records`;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let ackedEvents = 0;
  let lateSends = 0;
  let loadErrors = 0;
  let inFlight = 0;
  const pending = new Set<Promise<void>>();
  let producerSeconds: number | undefined;

  // The producer: body k is due at t0 + k * 500 / rate; sent when due (or when a slot frees, counted as late).
  const producer = (async () => {
    const interval = (EVENTS_PER_BODY / rate) * 1000;
    for (let k = 0; ; k++) {
      const due = t0 + k * interval;
      if (due >= end) break;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      while (inFlight >= MAX_IN_FLIGHT) await sleep(1);
      if (performance.now() - due > 50) lateSends++;
      inFlight++;
      const sent = http(ingest, 'POST', bodies[k % bodies.length]!, 'application/x-ndjson')
        .then((answer) => {
          if (answer.status === 200 && answer.body.endsWith('"failed":0}')) ackedEvents += EVENTS_PER_BODY;
          else loadErrors++;
        })
        .catch(() => {
          loadErrors++;
        })
        .finally(() => {
          inFlight--;
          pending.delete(sent);
        });
      pending.add(sent);
    }
    await Promise.all([...pending]);
    producerSeconds = (performance.now() - t0) / 1000;
  })();

  const visibleMs: number[] = [];
  const pollMs: number[] = [];
  const freshness: number[] = [];
  const versions = new Set<number>();
  let probeTimeouts = 0;
  const probe = async (n: number): Promise<void> => {
    const page = `/probe-${n}`;
    const event = { event_id: `probe-${n}-${Date.now()}`, ts: new Date().toISOString(), user_id: 'user-probe', page, amount: 1 };
    const ack = await http(ingest, 'POST', `${JSON.stringify(event)}\n`, 'application/x-ndjson');
    if (ack.status !== 200 || !ack.body.endsWith('"failed":0}')) throw new Error(`probe ${n}: ingest answered ${ack.status}: ${ack.body.slice(0, 200)}`);
    const ackedAt = performance.now();
    const query = `${url}/v1/views/page_minute?page=${encodeURIComponent(page)}`;
    for (;;) {
      const asked = performance.now();
      const answer = await json<ViewBody>(query, 'GET');
      const answered = performance.now();
      pollMs.push(answered - asked);
      freshness.push(answer.provenance.freshnessMs);
      if (answer.provenance.batchVersion !== null) versions.add(answer.provenance.batchVersion);
      if (answer.rows.length > 0) {
        visibleMs.push(answered - ackedAt);
        return;
      }
      if (answered - ackedAt > PROBE_TIMEOUT_MS) {
        probeTimeouts++;
        return;
      }
      const next = asked + POLL_EVERY_MS - performance.now();
      if (next > 0) await sleep(next);
    }
  };

  // Probes start on a fixed schedule over the run (after a short warm-up); they may overlap.
  const probeTasks: Promise<void>[] = [];
  const batchTasks: Promise<BatchRun>[] = [];
  const spacing = ((seconds - 1) * 1000) / probes;
  const batchAt = [seconds / 3, (2 * seconds) / 3].map((s) => t0 + s * 1000);
  for (let n = 0; n < probes; n++) {
    const due = t0 + 1000 + n * spacing;
    while (batchAt.length > 0 && batchAt[0]! <= due) {
      const at = batchAt.shift()!;
      const wait = at - performance.now();
      if (wait > 0) await sleep(wait);
      batchTasks.push(batchRun(url, t0));
    }
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    probeTasks.push(probe(n));
  }
  await Promise.all(probeTasks);
  await producer;
  const loadSeconds = Math.min((performance.now() - t0) / 1000, producerSeconds ?? Infinity);
  const batchRuns = await Promise.all(batchTasks);
  return {
    targetRate: rate,
    ackedEvents,
    achievedRate: ackedEvents / loadSeconds,
    lateSends,
    loadErrors,
    visibleMs,
    probeTimeouts,
    pollMs,
    freshness,
    batchVersionsSeen: [...versions].sort((a, b) => a - b),
    batchRuns,
  };
}

/** Ingests `keys` events, each with a page of its own, all in one minute: that many new groups. */
async function ingestKeys(url: string, keys: number): Promise<number> {
  const perBody = 5000;
  const minute = Date.UTC(2026, 10, 25, 8, 0, 0);
  const ingest = `${url}/v1/streams/clicks/records`;
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < keys) {
      const from = next;
      next = Math.min(keys, next + perBody);
      let lines = '';
      for (let i = from; i < next; i++) {
        lines += `${JSON.stringify({
          event_id: `key-${i}`,
          ts: new Date(minute + (i % 60_000)).toISOString(),
          user_id: `user-${String(i % 100_000).padStart(6, '0')}`,
          page: `/key/${String(i).padStart(7, '0')}`,
          amount: (i % 1000) / 10,
        })}\n`;
      }
      const answer = await http(ingest, 'POST', lines, 'application/x-ndjson');
      if (answer.status !== 200 || !answer.body.endsWith('"failed":0}')) throw new Error(`key ingest answered ${answer.status}: ${answer.body.slice(0, 200)}`);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return (performance.now() - started) / 1000;
}

/** Waits until delivery lags by no record (at most 60 s); answers the seconds waited, NaN when it did not. */
async function waitForDelivery(url: string): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < 60_000) {
    const body = await json<{ streams: { shards: { deliveryLagRecords: number }[] }[] }>(`${url}/v1/streams`, 'GET');
    if (body.streams.every((stream) => stream.shards.every((shard) => shard.deliveryLagRecords === 0))) return (performance.now() - started) / 1000;
    await sleep(100);
  }
  return NaN;
}

/** Times `count` GETs one at a time, stopping early once `budgetMs` is spent (after at least 5). */
async function timeQueries(url: string, count: number, budgetMs = Infinity): Promise<number[]> {
  const times: number[] = [];
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    if (times.length >= 5 && performance.now() - started > budgetMs) break;
    const asked = performance.now();
    const answer = await http(url, 'GET');
    if (answer.status !== 200) throw new Error(`GET ${url} answered ${answer.status}: ${answer.body.slice(0, 300)}`);
    times.push(performance.now() - asked);
  }
  return times;
}

function line(label: string, s: { n: number; p50: number; p99: number; max: number }, target: number, unit = 'ms'): string {
  return (
    `  ${label.padEnd(26)} p50 ${s.p50.toFixed(1).padStart(7)} ${unit}  p99 ${s.p99.toFixed(1).padStart(7)} ${unit}  max ${s.max.toFixed(1).padStart(7)} ${unit}` +
    `  (n=${s.n}; p99 ${formatRatio(s.p99 / target)} the ${target} ms target)`
  );
}

const figures = (s: { n: number; p50: number; p99: number; max: number }, target: number) => ({
  n: s.n,
  p50Ms: round(s.p50),
  p99Ms: round(s.p99),
  maxMs: round(s.max),
  p99ToTarget: round(s.p99 / target, 3),
});

async function run(values: BenchValues) {
  const rate = numberFlag(values, 'views-rate', 50_000, { min: 1000, max: 2_000_000, integer: true });
  const seconds = numberFlag(values, 'views-seconds', 15, { min: 3, max: 600 });
  const probes = numberFlag(values, 'views-probes', 100, { min: 1, max: 10_000, integer: true });
  const keys = numberFlag(values, 'views-keys', 1_000_000, { min: 1000, max: 20_000_000, integer: true });
  const pointQueries = numberFlag(values, 'views-point-queries', 300, { min: 1, max: 100_000, integer: true });
  const groupQueries = numberFlag(values, 'views-groupby-queries', 20, { min: 1, max: 10_000, integer: true });
  const budgetSeconds = numberFlag(values, 'views-query-seconds', 10, { min: 1, max: 3600 });
  const cpuProfDir = stringFlag(values, 'cpu-prof');

  const sql = await pageMinuteSql();
  const server = await startStrata({ config: { streams: { clicks: CLICKS_STREAM }, views: { page_minute: { sql } } }, cpuProfDir });
  let load: LoadPhase;
  let keySeconds: number;
  let handOver: BatchRun;
  let point: number[];
  let groupBy: number[];
  let pointKey: { page: string; minute: string };
  let groupRows: Record<string, unknown>[];
  let deliveredAfter: number;
  let finalProvenance: ViewBody['provenance'] | undefined;
  /** Server CPU in cores (all its threads, DuckDB's included) over a phase. */
  const cores: Record<string, number | null> = {};
  const measureCores = async <T>(phase: string, work: () => Promise<T>): Promise<T> => {
    const cpu0 = processCpuSeconds(server.pid);
    const t0 = performance.now();
    const result = await work();
    const cpu1 = processCpuSeconds(server.pid);
    cores[phase] = cpu0 === null || cpu1 === null ? null : round((cpu1 - cpu0) / ((performance.now() - t0) / 1000));
    return result;
  };
  try {
    load = await measureCores('load', () => loadPhase(server.url, rate, seconds, probes));
    progress('load phase done');

    keySeconds = await ingestKeys(server.url, keys);
    progress(`${keys} keys ingested`);
    // Let delivery put every record in the lake first, so the batch run publishes the keys and the timed queries
    // read mostly batch partials, as a view does in steady state.
    deliveredAfter = await waitForDelivery(server.url);
    progress('delivered');
    handOver = await batchRun(server.url, performance.now());
    progress(`batch run ${handOver.state}`);
    // Wait until the view shows every durable record (the speed layer caught up past the new version).
    for (let i = 0; i < 600; i++) {
      const body = await json<ViewBody>(`${server.url}/v1/views/page_minute?limit=1`, 'GET');
      finalProvenance = body.provenance;
      if (body.provenance.freshnessMs === 0) break;
      await sleep(100);
    }
    progress(`view fresh (freshnessMs ${finalProvenance?.freshnessMs})`);
    const sample = await json<ViewBody>(`${server.url}/v1/views/page_minute?page=${encodeURIComponent(`/key/${String(Math.floor(keys / 2) + 7).padStart(7, '0')}`)}`, 'GET');
    const row = sample.rows[0];
    if (row === undefined) throw new Error('the key rows are not in the view after the batch run');
    pointKey = { page: String(row.page), minute: String(row.minute) };
    const pointUrl = `${server.url}/v1/views/page_minute?page=${encodeURIComponent(pointKey.page)}&minute=${encodeURIComponent(pointKey.minute)}`;
    const check = await json<ViewBody>(pointUrl, 'GET');
    if (check.rows.length !== 1) throw new Error(`the point lookup answered ${check.rows.length} rows, expected 1`);
    await timeQueries(pointUrl, 3);
    point = await measureCores('pointLookups', () => timeQueries(pointUrl, pointQueries, budgetSeconds * 1000));
    progress('point lookups timed');
    const groupUrl = `${server.url}/v1/views/page_minute?order=-views&limit=10`;
    groupRows = (await json<ViewBody>(groupUrl, 'GET')).rows;
    groupBy = await measureCores('groupBy', () => timeQueries(groupUrl, groupQueries, budgetSeconds * 1000));
    progress('group-by timed');
  } catch (error) {
    const output = server.output();
    throw new Error(`${(error as Error).message}${output ? `\nserver output:\n${output}` : ''}`);
  } finally {
    await server.stop();
  }
  finalProvenance ??= { batchVersion: null, freshnessMs: NaN };

  // The same load against a stream with every kind of transform rule (de-duplication included): the speed layer
  // cleans each micro-batch before its partials, and the batch runs during the load clean the new chunks.
  let transformed: LoadPhase | null = null;
  if (values['views-transforms'] !== 'off') {
    const withTransforms = await startStrata({
      config: { streams: { clicks: { ...CLICKS_STREAM, transform: CLICKS_TRANSFORM } }, views: { page_minute: { sql } } },
    });
    try {
      transformed = await loadPhase(withTransforms.url, rate, seconds, probes);
      progress('load phase with transforms done');
    } catch (error) {
      const output = withTransforms.output();
      throw new Error(`${(error as Error).message}${output ? `\nserver output:\n${output}` : ''}`);
    } finally {
      await withTransforms.stop();
    }
  }

  const visible = stats(load.visibleMs);
  const polls = stats(load.pollMs);
  const fresh = stats(load.freshness);
  const pointStats = stats(point);
  const groupStats = stats(groupBy);
  console.log(`views (page_minute of examples/clickstream, merged layer, one Strata process, ${rate.toLocaleString('en-US')} events/s offered)`);
  console.log(
    `  load                       ${formatInt(load.achievedRate)} events/s acked over HTTP for ${seconds} s ` +
      `(${formatInt(load.ackedEvents)} events; ${load.lateSends} bodies sent > 50 ms late, ${load.loadErrors} errors)`,
  );
  console.log(line('ingest ack → visible', visible, VISIBLE_TARGET_P99_MS) + (load.probeTimeouts > 0 ? `; ${load.probeTimeouts} probes NOT visible within ${PROBE_TIMEOUT_MS / 1000} s` : ''));
  const visibleTransformed = transformed && stats(transformed.visibleMs);
  if (transformed && visibleTransformed) {
    const cost = ((visibleTransformed.p50 - visible.p50) / visible.p50) * 100;
    console.log(
      line('… with transforms on', visibleTransformed, VISIBLE_TARGET_P99_MS) +
        `; p50 cost ${cost.toFixed(1)} % (target < 25 %); ${formatInt(transformed.achievedRate)} events/s acked` +
        (transformed.probeTimeouts > 0 ? `; ${transformed.probeTimeouts} probes NOT visible within ${PROBE_TIMEOUT_MS / 1000} s` : ''),
    );
  }
  console.log(`  ${'probe poll (filtered GET)'.padEnd(26)} p50 ${polls.p50.toFixed(1).padStart(7)} ms  p99 ${polls.p99.toFixed(1).padStart(7)} ms  max ${polls.max.toFixed(1).padStart(7)} ms  (n=${polls.n}, under load)`);
  console.log(`  ${'freshnessMs in answers'.padEnd(26)} p50 ${fresh.p50.toFixed(0).padStart(7)} ms  p99 ${fresh.p99.toFixed(0).padStart(7)} ms  max ${fresh.max.toFixed(0).padStart(7)} ms  (batch versions seen: ${load.batchVersionsSeen.join(', ') || 'none'})`);
  for (const b of load.batchRuns) {
    console.log(`  batch run during load      started at ${b.startedAtS.toFixed(1)} s, ${b.state} in ${b.seconds.toFixed(2)} s, version ${JSON.stringify(b.version)}`);
  }
  console.log(
    `  ${formatInt(keys)} keys ingested in ${keySeconds.toFixed(1)} s, delivered ${deliveredAfter.toFixed(1)} s later; batch run ${handOver.state} in ${handOver.seconds.toFixed(2)} s ` +
      `(version ${JSON.stringify(handOver.version)}); view then at freshnessMs ${finalProvenance.freshnessMs}`,
  );
  console.log(line('point lookup (page+minute)', pointStats, POINT_TARGET_P99_MS));
  console.log(line(`group-by ~${formatInt(keys)} keys`, groupStats, GROUP_BY_TARGET_P99_MS) + ` top row views=${String(groupRows[0]?.views)}`);
  console.log(
    `  (each figure is a full HTTP round trip from this process, queries one at a time, each kind stopped after ${budgetSeconds} s;` +
      ' the group-by is ?order=-views&limit=10 over the whole merged view)',
  );

  const coreText = Object.entries(cores).map(([phase, n]) => `${phase} ${n === null ? '?' : n.toFixed(2)}`).join(', ');
  console.log(`  server CPU (cores, all threads incl. DuckDB's; 2 on this machine): ${coreText}`);

  let profile = null;
  if (cpuProfDir !== undefined) {
    const path = await cpuProfileOf(cpuProfDir, server.pid);
    if (path === null) console.log(`  server CPU profile: none found in ${cpuProfDir}`);
    else {
      profile = await summarizeCpuProfile(path);
      console.log(`  server CPU profile  ${path} (${profile.idlePercent}% idle samples; % below are of busy samples)`);
      console.log('    top self time:');
      for (const f of profile.topSelf) console.log(`      ${f.selfPercent.toFixed(1).padStart(5)}%  ${f.frame}`);
      console.log("    Strata's functions by inclusive time:");
      for (const f of profile.topStrataTotal) console.log(`      ${f.totalPercent.toFixed(1).padStart(5)}%  ${f.frame}`);
    }
  }

  return {
    offeredEventsPerSecond: rate,
    ackedEventsPerSecond: round(load.achievedRate, 0),
    loadSeconds: seconds,
    lateSends: load.lateSends,
    loadErrors: load.loadErrors,
    ackToVisible: { ...figures(visible, VISIBLE_TARGET_P99_MS), timeouts: load.probeTimeouts },
    ...(transformed && visibleTransformed
      ? { ackToVisibleWithTransforms: { ...figures(visibleTransformed, VISIBLE_TARGET_P99_MS), timeouts: transformed.probeTimeouts } }
      : {}),
    pollUnderLoad: { p50Ms: round(polls.p50), p99Ms: round(polls.p99), maxMs: round(polls.max) },
    freshnessMs: { p50: fresh.p50, p99: fresh.p99, max: fresh.max },
    batchRunsDuringLoad: load.batchRuns.map((b) => ({ at: round(b.startedAtS), seconds: round(b.seconds), state: b.state })),
    keys,
    keyIngestSeconds: round(keySeconds),
    keyDeliverySeconds: round(deliveredAfter),
    keyBatchRunSeconds: round(handOver.seconds),
    pointLookup: figures(pointStats, POINT_TARGET_P99_MS),
    groupBy: figures(groupStats, GROUP_BY_TARGET_P99_MS),
    serverCores: cores,
    ...(profile ? { profile: { topSelf: profile.topSelf.slice(0, 10) } } : {}),
  };
}

const benchmark: Benchmark = {
  name: 'views',
  summary: 'merged view: ingest → visible latency under load, point lookup and group-by latency over ~1M keys',
  options: {
    'views-rate': { type: 'string', description: 'events/s the producer offers during the visibility run', default: '50000' },
    'views-seconds': { type: 'string', description: 'seconds of load during the visibility run', default: '15' },
    'views-probes': { type: 'string', description: 'marker events timed from ack to visible', default: '100' },
    'views-keys': { type: 'string', description: 'distinct groups added before the query timings', default: '1000000' },
    'views-point-queries': { type: 'string', description: 'point lookups timed', default: '300' },
    'views-groupby-queries': { type: 'string', description: 'group-by queries timed', default: '20' },
    'views-query-seconds': { type: 'string', description: 'time budget per query kind: timing stops early when spent (after 5)', default: '10' },
    'views-transforms': { type: 'string', description: 'on: also time ingest → visible with every transform rule on; off: skip it', default: 'on' },
    'cpu-prof': { type: 'string', description: 'run the server under node --cpu-prof, keep the profile in DIR and print its top frames' },
  },
  run,
};

export default benchmark;
