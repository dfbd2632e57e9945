import type { Strata } from '../strata.js';

const escape = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/**
 * The page at `/` until the web console exists: what is running, the streams with their live figures,
 * and the calls to try. It refreshes itself every two seconds.
 */
export function landingPage(strata: Strata): string {
  const rows = [...strata.config.streams.values()]
    .map((stream) => {
      const stats = strata.ingestor.stats(stream.name);
      const shards = strata.stream.shards(stream.name);
      const records = shards.reduce((sum, shard) => sum + shard.lastSeq, 0);
      return `<tr><td>${escape(stream.name)}</td><td>${shards.length}</td><td>${records}</td><td>${stats.recordsPerSecond.toFixed(0)}</td></tr>`;
    })
    .join('');
  const example = [...strata.config.streams.keys()][0] ?? 'STREAM';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<title>Strata</title>
<style>body{font:15px system-ui,sans-serif;margin:2rem;max-width:60rem}table{border-collapse:collapse}
td,th{padding:.3rem .8rem;border-bottom:1px solid #ddd;text-align:left}code{background:#f4f4f4;padding:.1rem .3rem}</style>
</head><body>
<h1>Strata</h1>
<p>The stream log and the ingestion API are running. Streams:</p>
<table><thead><tr><th>stream</th><th>shards</th><th>records in the log</th><th>records/s</th></tr></thead><tbody>${rows}</tbody></table>
<p>Send records: <code>curl -H 'content-type: application/json' -d '{...}' http://HOST:PORT/v1/streams/${escape(example)}/records</code>;
state as JSON: <a href="/v1/streams">/v1/streams</a>; health: <a href="/health">/health</a>.</p>
</body></html>`;
}
