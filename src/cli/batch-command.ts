import { Command } from 'commander';
import { Presets, SingleBar } from 'cli-progress';
import { getJson, request } from './server-client.js';

/** `GET /v1/batch/runs/{id}` as the CLI reads it. */
interface RunAnswer {
  id: string;
  state: 'running' | 'succeeded' | 'failed';
  progress: number;
  views: string[];
  fromScratch: boolean;
  watermark: Record<string, Record<string, string>> | null;
  version: Record<string, number>;
  recomputed: Record<string, string[]>;
  error: string | null;
}

const POLL_MS = 200;

/** The closing summary: each view's new version, what it recomputed, and W. */
export function renderSummary(run: RunAnswer, seconds: number): string {
  if (run.state === 'failed') return `batch run ${run.id} failed after ${seconds.toFixed(1)} s: ${run.error ?? 'unknown error'}`;
  const lines = [`batch run ${run.id} succeeded in ${seconds.toFixed(1)} s${run.fromScratch ? ' (from scratch)' : ''}`];
  for (const view of run.views) {
    const partitions = run.recomputed[view] ?? [];
    lines.push(`  ${view}: version ${run.version[view] ?? '?'}, ${partitions.length} partition(s) recomputed${partitions.length > 0 ? ` (${partitions.join(', ')})` : ''}`);
  }
  for (const [stream, shards] of Object.entries(run.watermark ?? {})) {
    lines.push(`  watermark ${stream}: ${Object.entries(shards).map(([shard, seq]) => `${shard}=${seq}`).join(' ')}`);
  }
  return lines.join('\n');
}

/** `strata batch [VIEW...]`: starts a batch run on a running Strata, follows it, and prints a summary. */
export function batchCommand(): Command {
  return new Command('batch')
    .description('run the batch layer: compute views over the delivered chunks and publish new view versions')
    .argument('[views...]', 'the views to compute (default: all)')
    .option('--from-scratch', 'recompute every partition instead of only those with new chunks')
    .option('--url <url>', 'base URL of the Strata HTTP API', 'http://127.0.0.1:7070')
    .addHelpText('after', '\nExamples:\n  strata batch\n  strata batch page_minute --from-scratch --url http://127.0.0.1:7070')
    .action(async (views: string[], options: { url: string; fromScratch?: boolean }) => {
      const started = performance.now();
      const response = await request(options.url, '/v1/batch/runs', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...(views.length > 0 ? { views } : {}), fromScratch: options.fromScratch === true }),
      });
      const { id } = (await response.json()) as { id: string };
      console.log(await followRun(options.url, id, started));
    });
}

/** Follows a run to its end with a progress display; answers its summary, or throws it when the run failed. */
export async function followRun(url: string, id: string, started = performance.now()): Promise<string> {
  const progress = progressReporter(id);
  let run: RunAnswer;
  try {
    for (;;) {
      run = await getJson<RunAnswer>(url, `/v1/batch/runs/${encodeURIComponent(id)}`);
      progress.update(run.progress);
      if (run.state !== 'running') break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    progress.stop();
  }
  const summary = renderSummary(run, (performance.now() - started) / 1000);
  if (run.state === 'failed') throw new Error(summary);
  return summary;
}

/** A progress bar on a terminal; plain lines at each tenth otherwise (logs, CI). */
function progressReporter(id: string): { update(progress: number): void; stop(): void } {
  if (!process.stderr.isTTY) {
    let last = -1;
    process.stderr.write(`batch run ${id} started\n`);
    return {
      update: (progress) => {
        const tenth = Math.floor(progress * 10);
        if (tenth > last) {
          last = tenth;
          process.stderr.write(`batch run ${id}: ${Math.round(progress * 100)}%\n`);
        }
      },
      stop: () => {},
    };
  }
  const bar = new SingleBar({ stream: process.stderr, hideCursor: true, format: `{bar} {percentage}% | batch run ${id}` }, Presets.shades_classic);
  bar.start(100, 0);
  return { update: (progress) => bar.update(Math.round(progress * 100)), stop: () => bar.stop() };
}
