import type { Strata } from '../strata.js';

const escape = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/**
 * The page at `/` until the web console exists: what is running, the streams with their live figures, the
 * views, and the calls to try. It refreshes itself every two seconds.
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
  const views = [...strata.config.views.keys()]
    .map((name) => `<li><a href="/v1/views/${escape(name)}?limit=20">${escape(name)}</a> (merged batch and speed)</li>`)
    .join('');
  const example = [...strata.config.streams.keys()][0] ?? 'STREAM';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<title>Strata</title>
<style>body{font:15px system-ui,sans-serif;margin:2rem;max-width:60rem}table{border-collapse:collapse}
td,th{padding:.3rem .8rem;border-bottom:1px solid #ddd;text-align:left}code{background:#f4f4f4;padding:.1rem .3rem}</style>
</head><body>
<h1>Strata</h1>
<p>Strata is running: the stream log, delivery into the lake, the batch and speed layers and serving. Streams:</p>
<table><thead><tr><th>stream</th><th>shards</th><th>records in the log</th><th>records/s</th></tr></thead><tbody>${rows}</tbody></table>
<p>Send records: <code>curl -H 'content-type: application/json' -d '{...}' http://HOST:PORT/v1/streams/${escape(example)}/records</code>;
state as JSON: <a href="/v1/streams">/v1/streams</a>; tables: <a href="/v1/catalog/tables">/v1/catalog/tables</a>;
health: <a href="/health">/health</a>. SQL: <code>POST /v1/sql</code> or <code>strata sql "..."</code>.</p>
${views ? `<p>Views:</p><ul>${views}</ul>` : ''}
</body></html>`;
}
