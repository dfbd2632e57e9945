import { Command } from 'commander';
import { getJson } from './server-client.js';

interface StreamsAnswer {
  streams: {
    name: string;
    shards: {
      shard: string;
      lastSeq: string;
      deliveredSeq: string;
      deliveryLagRecords: number;
      deliveryLagSeconds: number;
      logBytes: number;
    }[];
    recordsPerSecond: number;
    accepted: number;
    failed: number;
    lake: { chunks: number; rows: number; bytes: number };
    /** Present when the stream declares a transform. */
    quarantined?: number;
  }[];
  /** Per view: its batch version and W, and the speed layer's last seq per shard (absent from older servers). */
  views?: {
    view: string;
    stream: string;
    batchVersion: number | null;
    watermark: Record<string, string>;
    speedSeq: Record<string, string>;
    ranges: number;
    /** Estimated memory of the view's state (absent from older servers; null until first measured). */
    memory?: { speedGroupKeys: number; speedBytes: number; speedBytesPerGroupKey: number; batchGroupKeys: number; batchBytes: number } | null;
  }[];
}

const number = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 1 });

/** Bytes for people: 1.2 MB. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** Renders `GET /v1/streams` as the text `strata status` prints. */
export function renderStatus(answer: StreamsAnswer): string {
  const lines: string[] = [];
  for (const stream of answer.streams) {
    lines.push(
      `stream ${stream.name}: ${stream.shards.length} shards, ${number(stream.recordsPerSecond)} records/s, ` +
        `${number(stream.accepted)} accepted and ${number(stream.failed)} refused since start`,
    );
    const rows = [
      ['shard', 'last seq', 'delivered seq', 'lag (records)', 'lag (s)', 'log'],
      ...stream.shards.map((s) => [
        s.shard,
        s.lastSeq,
        s.deliveredSeq,
        number(s.deliveryLagRecords),
        s.deliveryLagSeconds.toFixed(1),
        formatBytes(s.logBytes),
      ]),
    ];
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
    for (const row of rows) lines.push(`  ${row.map((cell, c) => cell.padEnd(widths[c]!)).join('  ')}`.trimEnd());
    lines.push(`  lake: ${number(stream.lake.chunks)} chunk files, ${number(stream.lake.rows)} rows, ${formatBytes(stream.lake.bytes)}`);
    if (stream.quarantined !== undefined) lines.push(`  quarantined: ${number(stream.quarantined)} records (SQL: ${stream.name}__quarantine)`);
  }
  for (const view of answer.views ?? []) {
    // Records past W, per shard: what the speed layer holds and the next batch run will take over.
    const speedRecords = Object.entries(view.speedSeq).reduce((n, [shard, seq]) => n + Number(seq) - Number(view.watermark[shard] ?? 0), 0);
    lines.push(
      `view ${view.view} (${view.stream}): batch ${view.batchVersion === null ? 'none yet' : `v${view.batchVersion}`} ` +
        `covers ${number(Object.values(view.watermark).reduce((n, seq) => n + Number(seq), 0))} records; ` +
        `speed layer ${number(speedRecords)} records past W in ${number(view.ranges)} micro-batches`,
    );
    const memory = view.memory;
    if (memory) {
      lines.push(
        `  memory: speed ${number(memory.speedGroupKeys)} group keys, ${formatBytes(memory.speedBytes)} ` +
          `(${formatBytes(memory.speedBytesPerGroupKey)} per key); batch version in memory ${number(memory.batchGroupKeys)} group keys, ${formatBytes(memory.batchBytes)}`,
      );
    }
  }
  return lines.join('\n');
}

export function statusCommand(): Command {
  return new Command('status')
    .description('per stream: last and delivered seq per shard, delivery lag, and what the lake holds')
    .option('--url <url>', 'the Strata server', 'http://127.0.0.1:7070')
    .option('--json', 'print the JSON answer of GET /v1/streams')
    .addHelpText('after', '\nExamples:\n  strata status --url http://127.0.0.1:7070\n  strata status --json | jq \'.streams[].shards\'')
    .action(async (options: { url: string; json?: boolean }) => {
      const answer = await getJson<StreamsAnswer>(options.url, '/v1/streams');
      console.log(options.json ? JSON.stringify(answer, null, 2) : renderStatus(answer));
    });
}
