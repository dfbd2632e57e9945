/**
 * Ingest benchmark: Strata's HTTP ingest API driven from a separate load-generator process, against the
 * JSON.parse-only rate of the same events (the ceiling of a one-thread ingest path), the machine's measured
 * durable limit (shared/MACHINE.md) and the issue's target floor.
 *
 * The server runs as `node bin/strata.js start` over a temp config and data dir (on the real disk, so its
 * acks wait for real fdatasyncs); the load generator is bench/ingest-load.ts. Both share the machine's cores.
 * By default it runs twice, without and with encryption at rest (STRATA_MASTER_KEY), and prints the cost.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { LoadResult } from './ingest-load.js';
import { formatInt, formatRatio, numberFlag, round, stringFlag, type Benchmark, type BenchValues } from './lib/benchmark.js';
import { CLICKS_STREAM, generateClickBodies } from './lib/clicks.js';
import { onCleanup } from './lib/cleanup.js';
import { summarizeCpuProfile, type ProfileSummary } from './lib/cpu-profile.js';
import { backgroundLoad } from './lib/proc-cpu.js';
import { cpuProfileOf, filesystemOf, REPO_ROOT, startStrata } from './lib/strata-process.js';

/** The issue's floor for durable ingest, events/s. */
export const TARGET_EVENTS_PER_SECOND = 300_000;
/** shared/MACHINE.md: durable ingest with two threads parsing on this 2-core machine kind (≈ 1.15M measured). */
export const MACHINE_DURABLE_LIMIT = 1_100_000;
/** shared/MACHINE.md: the same on one thread. */
export const MACHINE_SINGLE_THREAD_LIMIT = 790_000;

/** Distinct request bodies built up front; the load cycles through them. */
const BODIES = 200;
/** Same seed in both processes, so the ceiling parses byte-identical bodies. */
const SEED = 1;
/** Cores used by other processes (before or during the run) above which the figures are flagged as disturbed. */
const BUSY_MACHINE_CORES = 0.15;
/** Bounds on the load process beyond its planned duration (startup, drain). */
const LOAD_GRACE_MS = 90_000;

/**
 * Events/s of splitting the bodies into lines and `JSON.parse`-ing each, on this thread, for `seconds` (after a
 * short JIT warm-up): the floor of what any one-thread ingest path must spend per event.
 */
export function measureParseCeiling(bodies: readonly Buffer[], seconds: number): { eventsPerSecond: number; events: number } {
  let sink = 0;
  const parseBody = (body: Buffer): number => {
    const text = body.toString('utf8');
    let count = 0;
    for (let start = 0; start < text.length; ) {
      let end = text.indexOf('\n', start);
      if (end === -1) end = text.length;
      if (end > start) {
        const record = JSON.parse(text.slice(start, end)) as { user_id?: string };
        sink += record.user_id?.length ?? 0;
        count++;
      }
      start = end + 1;
    }
    return count;
  };
  const run = (ms: number) => {
    let events = 0;
    const startedAt = performance.now();
    let elapsed = 0;
    // Bounded by time and, independently, by count.
    for (let i = 0; i < 10_000_000 && (elapsed = performance.now() - startedAt) < ms; i++) {
      events += parseBody(bodies[i % bodies.length]!);
    }
    return { events, elapsed };
  };
  run(Math.min(300, seconds * 1000));
  const { events, elapsed } = run(seconds * 1000);
  if (sink < 0) console.log(sink);
  return { eventsPerSecond: events / (elapsed / 1000), events };
}

export interface LoadRun {
  readonly result: LoadResult;
  readonly stderr: string;
}

/** Runs bench/ingest-load.ts as its own process and reads its one-line JSON result. */
export async function runLoadProcess(args: string[], timeoutMs: number): Promise<LoadRun> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'bench', 'ingest-load.ts'), ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stopChild = onCleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-4000)));
  try {
    const code = await new Promise<number | string>((resolveExit, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`the load generator did not finish within ${timeoutMs} ms`));
      }, timeoutMs);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.once('exit', (exitCode, signal) => {
        clearTimeout(timer);
        resolveExit(exitCode ?? signal ?? 'unknown');
      });
    });
    const line = stdout.trim().split('\n').reverse().find((l) => l.startsWith('{'));
    if (code !== 0 || line === undefined) throw new Error(`the load generator failed (exit ${code}):\n${stderr}${stdout}`);
    return { result: JSON.parse(line) as LoadResult, stderr };
  } finally {
    await stopChild();
  }
}

/** Sum over the shards of the stream's lastSeq, from `GET /v1/streams`. */
async function loggedEvents(url: string, stream: string): Promise<bigint> {
  const response = await fetch(`${url}/v1/streams`, { signal: AbortSignal.timeout(5000) });
  if (response.status !== 200) throw new Error(`GET /v1/streams answered ${response.status}`);
  const body = (await response.json()) as { streams: { name: string; shards: { lastSeq: string }[] }[] };
  const found = body.streams.find((s) => s.name === stream);
  if (!found) throw new Error(`GET /v1/streams does not list stream ${stream}`);
  return found.shards.reduce((sum, shard) => sum + BigInt(shard.lastSeq), 0n);
}

function printProfile(profile: ProfileSummary, path: string): void {
  console.log(`  server CPU profile  ${path} (${profile.idlePercent}% idle samples; % below are of busy samples)`);
  console.log('    top self time:');
  for (const f of profile.topSelf) console.log(`      ${f.selfPercent.toFixed(1).padStart(5)}%  ${f.frame}`);
  console.log("    Strata's functions by inclusive time:");
  for (const f of profile.topStrataTotal) console.log(`      ${f.totalPercent.toFixed(1).padStart(5)}%  ${f.frame}`);
}

/** What one server run needs: the flags, the bodies, the machine's background load. */
interface RunSetup {
  readonly seconds: number;
  readonly warmup: number;
  readonly concurrency: number;
  readonly batch: number;
  readonly tempRoot: string;
  readonly cpuProfDir: string | undefined;
  readonly bytesPerEvent: number;
  readonly ceiling: { eventsPerSecond: number };
  readonly background: number | null;
  readonly filesystem: string;
}

/**
 * One measured run: a fresh server (with `env`, e.g. STRATA_MASTER_KEY for encryption at rest) over a fresh data
 * dir, the load process against it, then its printed block under `label`. Answers its figures.
 */
async function measureRun(setup: RunSetup, label: string, env: Readonly<Record<string, string>>) {
  const { seconds, warmup, concurrency, batch, tempRoot, cpuProfDir, bytesPerEvent, ceiling, background, filesystem } = setup;
  const shards = CLICKS_STREAM.shards;
  const server = await startStrata({ config: { streams: { clicks: CLICKS_STREAM } }, tempRoot, cpuProfDir, env });
  let load: LoadResult;
  let logged: bigint;
  let profilePath: string | null = null;
  try {
    const args = ['--url', server.url, '--concurrency', String(concurrency), '--warmup', String(warmup)];
    args.push('--seconds', String(seconds), '--batch', String(batch), '--bodies', String(BODIES), '--seed', String(SEED));
    args.push('--server-pid', String(server.pid));
    ({ result: load } = await runLoadProcess(args, (warmup + seconds) * 1000 + LOAD_GRACE_MS));
    logged = await loggedEvents(server.url, 'clicks');
  } catch (error) {
    const output = server.output();
    throw new Error(`${(error as Error).message}${output ? `\nserver output:\n${output}` : ''}`);
  } finally {
    await server.stop();
    if (cpuProfDir !== undefined) profilePath = await cpuProfileOf(cpuProfDir, server.pid);
  }

  const rate = load.eventsPerSecond;
  const logOk = logged >= BigInt(load.totalAckedEvents);
  const toTarget = rate / TARGET_EVENTS_PER_SECOND;
  const toLimit = rate / MACHINE_DURABLE_LIMIT;
  const toSingle = rate / MACHINE_SINGLE_THREAD_LIMIT;
  const toCeiling = rate / ceiling.eventsPerSecond;
  const cpu = load.cpu;
  console.log(
    `ingest${label} (HTTP, NDJSON, ${batch} events/request, ${concurrency} in flight, ${shards} shards, durable acks; ` +
      `${seconds} s measured after ${warmup} s warm-up)`,
  );
  console.log(
    `  events/s        ${formatInt(rate).padStart(10)}   (${formatRatio(toTarget)} the ${formatInt(TARGET_EVENTS_PER_SECOND)} target; ` +
      `${formatRatio(toLimit)} the machine's 1.1M durable limit, ${formatRatio(toSingle)} its 0.79M one-thread limit)`,
  );
  console.log(`  MB/s            ${load.megabytesPerSecond.toFixed(1).padStart(10)}   (${bytesPerEvent.toFixed(0)} B/event)`);
  console.log(
    `  ack latency     p50 ${load.latencyMs.p50.toFixed(1)} ms  p90 ${load.latencyMs.p90.toFixed(1)} ms  ` +
      `p99 ${load.latencyMs.p99.toFixed(1)} ms  max ${load.latencyMs.max.toFixed(1)} ms  (${formatInt(load.requests)} requests)`,
  );
  console.log(
    `  JSON.parse only ${formatInt(ceiling.eventsPerSecond).padStart(10)}   events/s on one thread (ceiling; ingest is ${formatRatio(toCeiling)} of it)`,
  );
  // Cores that neither the server nor the load generator used during the window: other processes (and the
  // kernel's own threads, which stay near 0.03 here in a quiet run).
  const others = cpu.server !== null && cpu.machineBusy !== null ? Math.max(0, cpu.machineBusy - cpu.server - cpu.loadGenerator) : null;
  if (cpu.server !== null && cpu.machineBusy !== null) {
    console.log(
      `  CPU (cores)     server ${cpu.server.toFixed(2)}, load generator ${cpu.loadGenerator.toFixed(2)}, ` +
        `machine ${cpu.machineBusy.toFixed(2)} of ${cpus().length} (others ${others!.toFixed(2)} during, ` +
        `${background === null ? '?' : background.toFixed(2)} before the run)`,
    );
  }
  const disturbed = Math.max(background ?? 0, others ?? 0);
  if (disturbed > BUSY_MACHINE_CORES) {
    console.log(`  WARNING         other processes used up to ${disturbed.toFixed(2)} cores around the run: figures are low and noisy`);
  }
  console.log(
    `  errors          ${load.errors}${load.errorSamples.length > 0 ? `  (first: ${load.errorSamples.join(' | ')})` : ''}`,
  );
  console.log(
    `  log check       ${logOk ? 'ok' : 'MISMATCH'}: ${logged} events in the log ${logOk ? '>=' : '<'} ${load.totalAckedEvents} acked ` +
      `(${load.answersChecked} answers checked record by record)`,
  );
  console.log(`  data dir        ${filesystem} under ${tempRoot}${filesystem === 'tmpfs' ? '  (tmpfs: fdatasync is free, NOT durable figures)' : ''}`);
  let profile: ProfileSummary | null = null;
  if (cpuProfDir !== undefined) {
    if (profilePath === null) console.log(`  server CPU profile: none found in ${cpuProfDir}`);
    else {
      profile = await summarizeCpuProfile(profilePath);
      printProfile(profile, profilePath);
    }
  }
  if (load.errors > 0 || !logOk) process.exitCode = 1;

  return {
    eventsPerSecond: Math.round(rate),
    megabytesPerSecond: round(load.megabytesPerSecond),
    latencyMs: load.latencyMs,
    requests: load.requests,
    errors: load.errors,
    parseCeilingEventsPerSecond: Math.round(ceiling.eventsPerSecond),
    ratioToParseCeiling: round(toCeiling, 3),
    ratioToTarget: round(toTarget, 3),
    ratioToMachineDurableLimit: round(toLimit, 3),
    ratioToMachineOneThreadLimit: round(toSingle, 3),
    logCheck: logOk ? 'ok' : 'MISMATCH',
    loggedEvents: logged.toString(),
    ackedEvents: load.totalAckedEvents,
    cpuCores: { ...cpu, othersDuring: others === null ? null : round(others, 3), othersBefore: background === null ? null : round(background, 3) },
    config: { seconds, warmup, concurrency, eventsPerRequest: batch, shards, bytesPerEvent: round(bytesPerEvent, 1), filesystem },
    ...(profile ? { profile: { path: profilePath, topSelf: profile.topSelf.slice(0, 10) } } : {}),
  };
}

/** The issue's bound on what encryption at rest may cost ingest throughput. */
export const MAX_ENCRYPTION_COST = 0.25;

async function run(values: BenchValues) {
  const seconds = numberFlag(values, 'seconds', 10, { min: 1, max: 600 });
  const warmup = numberFlag(values, 'warmup', 2, { min: 0, max: 60 });
  const concurrency = numberFlag(values, 'concurrency', 16, { min: 1, max: 1024, integer: true });
  const batch = numberFlag(values, 'batch', 500, { min: 1, max: 10_000, integer: true });
  const ceilingSeconds = numberFlag(values, 'ceiling-seconds', 2, { min: 0.5, max: 60 });
  const tempRoot = resolve(stringFlag(values, 'temp-dir') ?? tmpdir());
  const cpuProfDir = stringFlag(values, 'cpu-prof');
  const encryption = stringFlag(values, 'encryption') ?? 'both';
  if (!['both', 'on', 'off'].includes(encryption)) throw new Error(`--encryption: expected both, on or off, got ${JSON.stringify(encryption)}`);

  // Other processes' load, taken before ours starts: the figures below assume the machine is otherwise idle.
  const background = await backgroundLoad();
  const { bodies, bytes, events } = generateClickBodies({ seed: SEED, bodies: BODIES, eventsPerBody: batch });
  const ceiling = measureParseCeiling(bodies, ceilingSeconds);
  const setup: RunSetup = {
    seconds,
    warmup,
    concurrency,
    batch,
    tempRoot,
    cpuProfDir,
    bytesPerEvent: bytes / events,
    ceiling,
    background,
    filesystem: filesystemOf(tempRoot),
  };

  // Without a master key, then with one: the same load, a fresh data dir each. A STRATA_MASTER_KEY in this
  // environment would reach the plain run's server too, so it is set aside while the benchmark runs.
  const inherited = process.env.STRATA_MASTER_KEY;
  delete process.env.STRATA_MASTER_KEY;
  let plain: Awaited<ReturnType<typeof measureRun>> | null;
  let encrypted: Awaited<ReturnType<typeof measureRun>> | null;
  try {
    plain = encryption === 'on' ? null : await measureRun(setup, '', {});
    if (plain !== null && encryption === 'both') console.log();
    encrypted = encryption === 'off' ? null : await measureRun(setup, ' with encryption at rest', { STRATA_MASTER_KEY: randomBytes(32).toString('base64') });
  } finally {
    if (inherited !== undefined) process.env.STRATA_MASTER_KEY = inherited;
  }
  if (plain === null) return { encrypted };
  if (encrypted === null) return plain;
  const cost = 1 - encrypted.eventsPerSecond / plain.eventsPerSecond;
  console.log(
    `  encryption cost ${(cost * 100).toFixed(1).padStart(9)}%   (${formatInt(encrypted.eventsPerSecond)} vs ${formatInt(plain.eventsPerSecond)} events/s plain; ` +
      `the bound is ${MAX_ENCRYPTION_COST * 100} %${cost > MAX_ENCRYPTION_COST ? ': OVER' : ''})`,
  );
  // On a shared machine the two runs rarely get the same cores; events per server CPU-second (the delivery thread
  // included, which opens every frame again) is the steadier comparison.
  const perCore = (r: typeof plain) => (r.cpuCores.server !== null && r.cpuCores.server > 0 ? r.eventsPerSecond / r.cpuCores.server : null);
  const plainPerCore = perCore(plain);
  const encryptedPerCore = perCore(encrypted);
  const cpuCost = plainPerCore !== null && encryptedPerCore !== null ? 1 - encryptedPerCore / plainPerCore : null;
  if (cpuCost !== null) {
    console.log(
      `  per server core ${(cpuCost * 100).toFixed(1).padStart(9)}%   (${formatInt(encryptedPerCore!)} vs ${formatInt(plainPerCore!)} events per server CPU-second)`,
    );
  }
  return {
    ...plain,
    encrypted: { eventsPerSecond: encrypted.eventsPerSecond, megabytesPerSecond: encrypted.megabytesPerSecond, latencyMs: encrypted.latencyMs, errors: encrypted.errors, logCheck: encrypted.logCheck, cpuCores: encrypted.cpuCores },
    encryptionCostPercent: round(cost * 100, 1),
    encryptionCpuCostPercent: cpuCost === null ? null : round(cpuCost * 100, 1),
  };
}

const benchmark: Benchmark = {
  name: 'ingest',
  summary: "HTTP ingest of NDJSON click events from a separate process, vs the JSON.parse ceiling and the machine's limit",
  options: {
    seconds: { type: 'string', description: 'measured duration, seconds', default: '10' },
    warmup: { type: 'string', description: 'warm-up before measuring, seconds', default: '2' },
    concurrency: { type: 'string', description: 'requests in flight', default: '16' },
    batch: { type: 'string', description: 'events per request', default: '500' },
    'ceiling-seconds': { type: 'string', description: 'how long the JSON.parse ceiling is timed, seconds', default: '2' },
    'temp-dir': { type: 'string', description: "where the server's temp config and data dir go (must be a real disk)", default: 'the system temp dir' },
    'cpu-prof': { type: 'string', description: 'run the server under node --cpu-prof, keep the profile in DIR and print its top frames' },
    encryption: { type: 'string', description: 'encryption at rest: both (a plain run, then an encrypted one, and the cost), on or off', default: 'both' },
  },
  run,
};

export default benchmark;
