import { randomBytes } from 'node:crypto';
import { watch } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/index.js';
import { importFiles } from '../../src/ingest/index.js';
import { clicksConfig, removeDir, startInProcess, tempDir, waitForDelivery, type RunningStrata } from '../fixtures/strata.js';

const MARKER = 'plaintext-marker-5f3a9e';

function config(): ConfigInput {
  const base = clicksConfig(
    {
      delivery: { maxSeconds: 0.05 },
      speed: { intervalMs: 50 },
      views: { pages: 'SELECT page, count(*) AS views FROM clicks GROUP BY page' },
      policies: { producer: { allow: [{ actions: ['ingest'], resources: ['stream:clicks'] }] } },
    },
    2,
  );
  const clicks = base.streams.clicks!;
  return {
    ...base,
    streams: {
      clicks: { ...clicks, schema: { ...clicks.schema, country: 'string?' }, transform: { required: ['country'], standardize: { page: ['trim'] } } },
    },
  };
}

/** Every file under `dir`, recursively, with its bytes. */
async function filesUnder(dir: string): Promise<{ path: string; bytes: Buffer }[]> {
  const out: { path: string; bytes: Buffer }[] = [];
  for (const entry of await readdir(dir)) {
    const path = join(dir, entry);
    if ((await stat(path)).isDirectory()) out.push(...(await filesUnder(path)));
    else out.push({ path, bytes: await readFile(path) });
  }
  return out;
}

describe('an encrypted data directory', () => {
  let dir: string;
  let server: RunningStrata | null = null;
  const masterKey = randomBytes(32);
  beforeAll(async () => {
    dir = await tempDir('strata-plaintext-');
  });
  afterAll(async () => {
    await server?.close();
    await removeDir(dir);
  });

  it('holds neither a record nor a token in the clear after ingest, delivery, a batch run and SQL, and still serves them', async () => {
    server = await startInProcess(config(), join(dir, 'data'), { masterKey });
    const created = await fetch(`${server.url}/v1/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'producer_1', policies: ['producer'] }),
    });
    expect(created.status).toBe(201);
    const token = ((await created.json()) as { token: string }).token;

    const events = [
      { event_id: 'a', ts: '2026-11-25T10:00:00Z', user_id: 'u1', page: ` /${MARKER}/a `, country: 'DE', amount: 1 },
      { event_id: 'b', ts: '2026-11-24T10:00:00Z', user_id: 'u2', page: `/${MARKER}/b`, country: 'FR', amount: 2 },
      // Quarantined by the transform (no country): kept with its raw values, encrypted too.
      { event_id: 'c', ts: '2026-11-25T11:00:00Z', user_id: 'u3', page: `/${MARKER}/c`, country: null, amount: 3 },
    ];
    const answer = await fetch(`${server.url}/v1/streams/clicks/records`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(events),
    });
    expect(((await answer.json()) as { failed: number }).failed).toBe(0);
    // A record the schema refuses, sent over the Kinesis API: quarantined, and encrypted too.
    const kinesis = new KinesisClient({
      endpoint: server.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'producer_1', secretAccessKey: token },
      requestHandler: new NodeHttpHandler(),
    });
    const put = await kinesis.send(
      new PutRecordsCommand({
        StreamName: 'clicks',
        Records: [{ PartitionKey: 'k', Data: Buffer.from(JSON.stringify({ event_id: 'd', ts: 'not a time', user_id: 'u4', page: `/${MARKER}/d` })) }],
      }),
    );
    expect(put.FailedRecordCount).toBe(0);
    kinesis.destroy();

    // History imported from NDJSON: read through memory, never staged in the clear under the data directory.
    const history = join(dir, 'history.ndjson');
    await writeFile(history, `${JSON.stringify({ event_id: 'h', ts: '2026-11-20T10:00:00Z', user_id: 'u9', page: `/${MARKER}/h`, country: 'NL' })}\n`);
    const staged: string[] = [];
    const watcher = watch(join(dir, 'data', 'lake', '_staging'), (_event, name) => name && staged.push(String(name)));
    try {
      const imported = (await importFiles(server.strata, { table: 'clicks', files: [history] })).files[0]!;
      expect(imported, JSON.stringify(imported.error)).toMatchObject({ state: 'succeeded', rows: 1 });
    } finally {
      watcher.close();
    }
    expect(staged.filter((name) => name.includes('ndjson'))).toEqual([]);

    await waitForDelivery(server);
    const run1 = await server.strata.batch.run();
    expect([run1.state, run1.error]).toEqual(['succeeded', null]);
    // Served as if nothing were encrypted: the raw table, the clean and quarantine tables, the view in both layers.
    const sql = async (query: string) => (await server!.strata.sql.queryAll(query)).rows;
    expect(await sql('SELECT event_id FROM clicks ORDER BY event_id')).toEqual([{ event_id: 'a' }, { event_id: 'b' }, { event_id: 'c' }, { event_id: 'h' }]);
    expect(await sql('SELECT page FROM clicks__clean ORDER BY page')).toEqual([{ page: `/${MARKER}/a` }, { page: `/${MARKER}/b` }, { page: `/${MARKER}/h` }]);
    expect(await sql('SELECT event_id FROM clicks__quarantine ORDER BY event_id')).toEqual([{ event_id: 'c' }, { event_id: 'd' }]);
    const view = (await (await fetch(`${server.url}/v1/views/pages?layer=batch`)).json()) as { rows: { page: string; views: string }[] };
    expect(view.rows.map((row) => [row.page, Number(row.views)])).toEqual([
      [`/${MARKER}/a`, 1],
      [`/${MARKER}/b`, 1],
      [`/${MARKER}/h`, 1],
    ]);
    expect(await sql('SELECT count(*) AS n FROM pages__batch')).toEqual([{ n: '3' }]);
    await server.close();
    server = null;

    const files = await filesUnder(join(dir, 'data'));
    expect(files.some((file) => file.path.endsWith('.parquet'))).toBe(true);
    const admin = process.env.STRATA_ADMIN_TOKEN!;
    for (const file of files) {
      expect(file.bytes.includes(MARKER), `${file.path} holds the marker`).toBe(false);
      expect(file.bytes.includes(token), `${file.path} holds the token`).toBe(false);
      expect(file.bytes.includes(admin), `${file.path} holds the admin token`).toBe(false);
    }

    // Restarted with the key, the same answers; without it, no start.
    server = await startInProcess(config(), join(dir, 'data'), { masterKey });
    expect(await sql('SELECT count(*) AS n FROM clicks__quarantine')).toEqual([{ n: '2' }]);
    const again = (await (await fetch(`${server.url}/v1/views/pages`)).json()) as { rows: unknown[] };
    expect(again.rows).toHaveLength(3);
    await server.close();
    server = null;
    await expect(startInProcess(config(), join(dir, 'data'), { masterKey: null })).rejects.toThrow(/is encrypted/);
  });
});
