/**
 * Query latency over the PostgreSQL wire protocol beside the same queries through `POST /v1/sql`.
 *
 * A Strata server (child process) with the clicks stream takes `--pgwire-events` events over HTTP; once
 * delivery has them all in the lake, two queries run one at a time, `--pgwire-queries` times each, through
 * the unmodified `pg` client (one connection) and through `POST /v1/sql` (fetch, keep-alive), timing each
 * from send to the last row received:
 * - aggregate: a GROUP BY over every event in the lake, top 10 pages;
 * - point: one event by its id (a `$1` parameter over the wire, a literal over HTTP).
 * Both paths end in the same SQL engine, so the difference is the protocol and its encoding: the wire's
 * text rows against HTTP's JSON.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { type Benchmark, formatInt, numberFlag, round } from './lib/benchmark.js';
import { CLICKS_STREAM, generateClickBodies } from './lib/clicks.js';
import { startStrata } from './lib/strata-process.js';

const EVENTS_PER_BODY = 500;
const WARM_UP = 10;
const DELIVERY_TIMEOUT_MS = 120_000;

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function timeEach(times: number, action: () => Promise<unknown>): Promise<{ p50: number; p99: number }> {
  for (let i = 0; i < WARM_UP; i++) await action();
  const samples: number[] = [];
  for (let i = 0; i < times; i++) {
    const started = performance.now();
    await action();
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

const benchmark: Benchmark = {
  name: 'pgwire',
  summary: 'query latency over the PostgreSQL wire protocol (pg client) beside POST /v1/sql',
  options: {
    'pgwire-events': { type: 'string', description: 'events in the lake before the queries', default: '200000' },
    'pgwire-queries': { type: 'string', description: 'timed runs of each query on each path', default: '200' },
  },
  async run(values) {
    const events = numberFlag(values, 'pgwire-events', 200_000, { min: EVENTS_PER_BODY, max: 50_000_000, integer: true });
    const queries = numberFlag(values, 'pgwire-queries', 200, { min: 10, max: 100_000, integer: true });
    // The same token opens HTTP (the admin token) and the wire (user admin, SCRAM-SHA-256).
    const token = randomBytes(24).toString('base64url');
    const strata = await startStrata({ config: { streams: { clicks: CLICKS_STREAM } }, pg: true, env: { STRATA_ADMIN_TOKEN: token } });
    const headers = { authorization: `Bearer ${token}` };
    const client = new pg.Client({ host: '127.0.0.1', port: strata.pgPort!, user: 'admin', password: token, database: 'strata' });
    try {
      const { bodies } = generateClickBodies({ seed: 7, bodies: Math.ceil(events / EVENTS_PER_BODY), eventsPerBody: EVENTS_PER_BODY });
      for (const body of bodies) {
        const response = await fetch(`${strata.url}/v1/streams/clicks/records`, {
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/x-ndjson' },
          body,
        });
        if (response.status !== 200) throw new Error(`ingest answered ${response.status}: ${await response.text()}`);
        await response.arrayBuffer();
      }
      const deadline = Date.now() + DELIVERY_TIMEOUT_MS;
      for (;;) {
        const status = (await (await fetch(`${strata.url}/v1/streams`, { headers })).json()) as {
          streams: { shards: { lastSeq: string; deliveredSeq: string }[] }[];
        };
        if (status.streams.every((stream) => stream.shards.every((shard) => shard.lastSeq === shard.deliveredSeq))) break;
        if (Date.now() > deadline) throw new Error('delivery did not catch up in time');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }

      await client.connect();
      const sqlOverHttp = async (sql: string) => {
        const response = await fetch(`${strata.url}/v1/sql`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ sql }) });
        if (response.status !== 200) throw new Error(`POST /v1/sql answered ${response.status}: ${await response.text()}`);
        return (await response.json()) as { rows: Record<string, unknown>[] };
      };
      const eventId = String((await client.query('SELECT event_id FROM clicks ORDER BY __seq LIMIT 1 OFFSET 100')).rows[0].event_id);
      const aggregate = 'SELECT page, count(*) AS n, sum(amount) AS revenue FROM clicks GROUP BY page ORDER BY n DESC LIMIT 10';
      const point = 'SELECT * FROM clicks WHERE event_id = $1';
      const pointLiteral = `SELECT * FROM clicks WHERE event_id = '${eventId.replace(/'/g, "''")}'`;
      if ((await client.query(point, [eventId])).rowCount !== 1) throw new Error('the point query found no event');

      const results = {
        aggregate: {
          wire: await timeEach(queries, () => client.query(aggregate)),
          http: await timeEach(queries, () => sqlOverHttp(aggregate)),
        },
        point: {
          wire: await timeEach(queries, () => client.query(point, [eventId])),
          http: await timeEach(queries, () => sqlOverHttp(pointLiteral)),
        },
      };

      const ms = (n: number) => `${n.toFixed(2)} ms`.padStart(10);
      console.log(`\npgwire: ${formatInt(events)} events in the lake, ${formatInt(queries)} runs of each query, one at a time`);
      console.log(`  ${'query'.padEnd(38)} ${'wire p50'.padStart(10)} ${'wire p99'.padStart(10)} ${'HTTP p50'.padStart(10)} ${'HTTP p99'.padStart(10)}`);
      const line = (name: string, result: (typeof results)['point']) =>
        console.log(`  ${name.padEnd(38)} ${ms(result.wire.p50)} ${ms(result.wire.p99)} ${ms(result.http.p50)} ${ms(result.http.p99)}`);
      line('aggregate (GROUP BY page over the lake)', results.aggregate);
      line('point (one event by id)', results.point);
      const figures = (result: (typeof results)['point']) => ({
        wireP50Ms: round(result.wire.p50),
        wireP99Ms: round(result.wire.p99),
        httpP50Ms: round(result.http.p50),
        httpP99Ms: round(result.http.p99),
      });
      return { events, queries, aggregate: figures(results.aggregate), point: figures(results.point) };
    } finally {
      await client.end().catch(() => undefined);
      await strata.stop();
    }
  },
};

export default benchmark;
