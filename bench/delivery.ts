/**
 * Delivery (the Firehose role): how fast the log becomes Parquet in the lake.
 *
 * 1. Drain: a log already holding N events (4 shards) is delivered from scratch, in-process; the figure is
 *    records/s from log to registered Parquet.
 * 2. Sustained: the HTTP server ingests at full speed from a separate load process for a while, with delivery
 *    running in the same server process as in production; the delivery lag is sampled every 250 ms. Lag that
 *    stays bounded (and drains soon after the load stops) means delivery keeps up with ingest.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../src/config/index.js';
import { Strata } from '../src/strata.js';
import { type Benchmark, formatInt, formatRatio, numberFlag, round } from './lib/benchmark.js';
import { CLICKS_STREAM, generateClickBodies } from './lib/clicks.js';
import { onCleanup } from './lib/cleanup.js';
import { startStrata } from './lib/strata-process.js';
import { runLoadProcess } from './ingest.js';

const INGEST_TARGET = 300_000;

async function drain(events: number): Promise<{ recordsPerSecond: number; megabytesPerSecond: number; seconds: number; files: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-bench-delivery-'));
  const removeDir = onCleanup(() => rm(dir, { recursive: true, force: true }));
  // Chunks seal on size here: the time bound would only add its wait to the last partial chunk of each shard.
  const config = parseConfig({ streams: { clicks: CLICKS_STREAM }, delivery: { maxSeconds: 0.2 } });
  const strata = await Strata.open({ config, dataDir: dir, deliver: false });
  try {
    const { bodies } = generateClickBodies({ seed: 7, bodies: 200, eventsPerBody: 500 });
    const lines = bodies.map((body) => body.toString('utf8').trimEnd().split('\n'));
    let bytes = 0;
    for (let written = 0, i = 0; written < events; i++) {
      const batch = lines[i % lines.length]!;
      await Promise.all([0, 1, 2, 3].map((shard) => strata.stream.append('clicks', shard, batch.slice(shard * 125, shard * 125 + 125))));
      written += batch.length;
      bytes += bodies[i % bodies.length]!.length;
    }
    const total = strata.stream.shards('clicks').reduce((sum, shard) => sum + shard.lastSeq, 0);
    const started = performance.now();
    await strata.delivery.start();
    for (let i = 0; i < 100_000; i++) {
      if (strata.stream.shards('clicks').every((s) => strata.delivery.deliveredSeq('clicks', s.shard) === s.lastSeq)) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const seconds = (performance.now() - started) / 1000;
    const files = (await strata.catalog.chunks('clicks')).length;
    return { recordsPerSecond: total / seconds, megabytesPerSecond: bytes / 1e6 / seconds, seconds, files };
  } finally {
    await strata.close();
    await removeDir();
  }
}

interface LagSample {
  readonly at: number;
  readonly records: number;
  readonly seconds: number;
}

async function lagOf(url: string): Promise<{ records: number; seconds: number }> {
  const body = (await (await fetch(`${url}/v1/streams`)).json()) as {
    streams: { shards: { deliveryLagRecords: number; deliveryLagSeconds: number }[] }[];
  };
  const shards = body.streams[0]!.shards;
  return {
    records: shards.reduce((sum, s) => sum + s.deliveryLagRecords, 0),
    seconds: Math.max(...shards.map((s) => s.deliveryLagSeconds)),
  };
}

const benchmark: Benchmark = {
  name: 'delivery',
  summary: 'log → Parquet: drain rate, and delivery lag under sustained HTTP ingest',
  options: {
    'delivery-events': { type: 'string', description: 'events in the log for the drain measurement', default: '2000000' },
    'delivery-seconds': { type: 'string', description: 'seconds of sustained ingest while sampling the lag', default: '15' },
  },
  async run(values) {
    const events = numberFlag(values, 'delivery-events', 2_000_000, { min: 10_000, max: 50_000_000, integer: true });
    const seconds = numberFlag(values, 'delivery-seconds', 15, { min: 2, max: 600 });

    const drained = await drain(events);
    console.log('delivery (log → zstd Parquet, 4 shards, default chunk bounds: 100,000 records / 64 MiB / 10 s)');
    console.log(
      `  drain           ${formatInt(drained.recordsPerSecond).padStart(10)} records/s  ${drained.megabytesPerSecond.toFixed(1)} MB/s` +
        `  (${formatInt(events)} events in ${drained.seconds.toFixed(2)} s, ${drained.files} files; ${formatRatio(drained.recordsPerSecond / INGEST_TARGET)} the 300,000/s ingest target)`,
    );

    const server = await startStrata({ config: { streams: { clicks: CLICKS_STREAM } } });
    const samples: LagSample[] = [];
    try {
      let loading = true;
      const started = performance.now();
      const sampler = (async () => {
        while (loading) {
          const lag = await lagOf(server.url);
          samples.push({ at: (performance.now() - started) / 1000, ...lag });
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      })();
      const args = ['--url', server.url, '--concurrency', '16', '--warmup', '1', '--seconds', String(seconds), '--batch', '500'];
      args.push('--bodies', '200', '--seed', '7', '--server-pid', String(server.pid));
      const { result } = await runLoadProcess(args, (seconds + 60) * 1000);
      loading = false;
      await sampler;
      const stopped = performance.now();
      let drainAfter = NaN;
      for (let i = 0; i < 1200; i++) {
        const lag = await lagOf(server.url);
        if (lag.records === 0) {
          drainAfter = (performance.now() - stopped) / 1000;
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const maxRecords = Math.max(...samples.map((s) => s.records));
      const maxSeconds = Math.max(...samples.map((s) => s.seconds));
      const lastHalf = samples.filter((s) => s.at > seconds / 2);
      const maxLateRecords = Math.max(0, ...lastHalf.map((s) => s.records));
      console.log(
        `  sustained       ${formatInt(result.eventsPerSecond).padStart(10)} events/s ingested over HTTP for ${seconds} s with delivery in the same process`,
      );
      console.log(
        `  lag             max ${formatInt(maxRecords)} records, ${maxSeconds.toFixed(1)} s (second half: max ${formatInt(maxLateRecords)} records); ` +
          `drained ${Number.isNaN(drainAfter) ? 'NOT within 120 s' : `${drainAfter.toFixed(1)} s after the load stopped`}`,
      );
      return {
        drainRecordsPerSecond: round(drained.recordsPerSecond, 0),
        drainMegabytesPerSecond: round(drained.megabytesPerSecond),
        drainEvents: events,
        drainFiles: drained.files,
        sustainedIngestEventsPerSecond: round(result.eventsPerSecond, 0),
        maxLagRecords: maxRecords,
        maxLagSeconds: round(maxSeconds),
        secondHalfMaxLagRecords: maxLateRecords,
        drainedAfterSeconds: Number.isNaN(drainAfter) ? null : round(drainAfter),
      };
    } finally {
      await server.stop();
    }
  },
};

export default benchmark;
