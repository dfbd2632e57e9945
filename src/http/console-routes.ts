import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import type { Principal } from '../security/index.js';
import type { Strata } from '../strata.js';

/**
 * Paths the console's client-side router answers. Each serves the console's page, so that a reload or a shared
 * link to `/views/page_minute` works; everything else keeps the API's JSON 404.
 */
export const CONSOLE_ROUTES = ['/', '/views', '/views/:view', '/dashboards', '/dashboards/:name', '/sql', '/catalog', '/catalog/:table', '/alerts'];

/** Where `index.html` of the console is replaced by the no-script summary of what runs. */
const SUMMARY_MARK = '<!--strata:summary-->';

/**
 * The console's built assets (`npm run build` writes them to `dist/web`): beside the compiled server in
 * `dist/http`, or, when the server runs from `src/http` (tests, tsx), under the package's `dist/web`.
 */
export function consoleDir(): string | null {
  const candidates = [new URL('../web/', import.meta.url), new URL('../../dist/web/', import.meta.url)].map((url) => fileURLToPath(url));
  return candidates.find((dir) => existsSync(join(dir, 'index.html'))) ?? null;
}

/**
 * The web console at `/` (built with Vite from `web/`): its hashed assets under `/assets/` (cached for a year:
 * a new build gets new names) and its page at every client route (never cached, so a new build shows at once).
 * Without a build, those routes answer a short page that says to run `npm run build`. Both carry, for clients
 * without JavaScript (and `curl`), a summary of the streams.
 */
export function registerConsoleRoutes(app: FastifyInstance, strata: Strata, dir: string | null = consoleDir()): void {
  const page = dir === null ? missingBuildPage() : readFileSync(join(dir, 'index.html'), 'utf8');
  if (dir !== null) {
    void app.register(fastifyStatic, {
      root: join(dir, 'assets'),
      prefix: '/assets/',
      decorateReply: false,
      index: false,
      immutable: true,
      maxAge: '365d',
    });
  }
  for (const route of CONSOLE_ROUTES) {
    app.get(route, async (request, reply) =>
      reply
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-cache')
        .send(page.replace(SUMMARY_MARK, () => streamSummary(strata, request.principal))),
    );
  }
}

const escape = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/**
 * The streams with their live figures, as HTML: what the console shows first, for a client that runs no script.
 * The page is open, so the figures are for a request that carries a token (or the session cookie), and only of
 * the streams it may read; others get a note on how to log in.
 */
function streamSummary(strata: Strata, principal: Principal | null | undefined): string {
  // Undefined too: a server built without the authentication hook (a test of these routes alone) shows no data.
  if (!principal) {
    return '<p>Log in to see the streams: open the URL <code>strata start</code> printed (it ends in <code>?token=...</code>), or send <code>Authorization: Bearer &lt;token&gt;</code>.</p>';
  }
  const rows = [...strata.config.streams.values()]
    .filter((stream) => strata.security.allows(principal, 'read', `stream:${stream.name}`))
    .map((stream) => {
      const shards = strata.stream.shards(stream.name);
      const records = shards.reduce((sum, shard) => sum + shard.lastSeq, 0);
      const rate = strata.ingestor.stats(stream.name).recordsPerSecond;
      return `<tr><td>${escape(stream.name)}</td><td>${shards.length}</td><td>${records}</td><td>${rate.toFixed(0)}</td></tr>`;
    })
    .join('');
  return (
    `<table><thead><tr><th>stream</th><th>shards</th><th>records in the log</th><th>records/s</th></tr></thead><tbody>${rows}</tbody></table>` +
    '<p>As JSON: <a href="/v1/streams">/v1/streams</a>, <a href="/v1/views">/v1/views</a>, ' +
    '<a href="/v1/catalog/tables">/v1/catalog/tables</a>, <a href="/health">/health</a>.</p>'
  );
}

function missingBuildPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Strata</title>
<style>body{font:15px system-ui,sans-serif;margin:2rem;max-width:60rem}td,th{padding:.3rem .8rem;text-align:left}code{background:#f4f4f4;padding:.1rem .3rem}</style>
</head><body>
<h1>Strata</h1>
<p>Strata is running, but the web console is not built: run <code>npm run build</code> (it writes <code>dist/web</code>) and restart.
The API works without it.</p>
${SUMMARY_MARK}
</body></html>`;
}
