import { afterEach, describe, expect, it } from 'vitest';
import { asSeq } from '../../src/stream/index.js';
import { clicksConfig, postRecords, removeDir, startInProcess, tempDir, type RunningStrata } from '../fixtures/strata.js';

const click = (i: number, patch: Record<string, unknown> = {}) => ({
  event_id: `e${i}`,
  ts: '2026-11-25T10:00:00Z',
  user_id: `u${i % 7}`,
  page: '/home',
  amount: i,
  ...patch,
});

type Answer = { records: ({ shard: string; seq: string } | { error: { field?: string; message: string } })[]; failed: number };

describe('HTTP ingest API', () => {
  let dir: string;
  let server: RunningStrata;
  afterEach(async () => {
    await server.close();
    await removeDir(dir);
  });

  async function start(overrides = {}) {
    dir = await tempDir();
    server = await startInProcess(clicksConfig(overrides), dir);
    return server;
  }

  const logged = async (stream = 'clicks') => {
    let total = 0;
    for (const shard of server.strata.stream.shards(stream)) total += shard.lastSeq;
    return total;
  };

  it('accepts one object, an array, or NDJSON and answers each record offset in order', async () => {
    await start();
    const one = await postRecords(server.url, 'clicks', JSON.stringify(click(1)));
    expect(one.status).toBe(200);
    expect(one.body).toEqual({ records: [{ shard: expect.any(String), seq: '1' }], failed: 0 });

    const array = await postRecords(server.url, 'clicks', JSON.stringify([click(2), click(3)]));
    expect((array.body as Answer).records).toHaveLength(2);

    const ndjson = await postRecords(server.url, 'clicks', `${JSON.stringify(click(4))}\n\n${JSON.stringify(click(5))}\n`, 'application/x-ndjson');
    expect(ndjson.status).toBe(200);
    expect((ndjson.body as Answer).failed).toBe(0);
    expect(await logged()).toBe(5);
  });

  it('accepts the valid records of a batch and names the field of each invalid one', async () => {
    await start();
    const { status, body } = await postRecords(
      server.url,
      'clicks',
      JSON.stringify([click(1), click(2, { amount: 'lots' }), click(3), click(4, { user_id: undefined }), click(5)]),
    );
    expect(status).toBe(200);
    const answer = body as Answer;
    expect(answer.failed).toBe(2);
    expect(answer.records[1]).toEqual({ error: { field: 'amount', message: 'expected a number, got the string "lots"' } });
    expect(answer.records[3]).toEqual({ error: { field: 'user_id', message: 'is required' } });
    // The accepted ones are durable and readable at the offsets the answer gave.
    for (const i of [0, 2, 4]) {
      const { shard, seq } = answer.records[i] as { shard: string; seq: string };
      const [stored] = await server.strata.stream.read('clicks', Number(shard), asSeq(Number(seq)), 1);
      expect(JSON.parse(stored!.data.toString()).event_id).toBe(`e${i + 1}`);
    }
  });

  it('answers 404 for an unknown stream', async () => {
    await start();
    const { status, body } = await postRecords(server.url, 'nope', JSON.stringify(click(1)));
    expect(status).toBe(404);
    expect(body).toEqual({ error: { code: 'not_found', message: 'unknown stream "nope"' } });
  });

  it('answers 400 naming the line of malformed JSON, and accepts nothing of that body', async () => {
    await start();
    const array = await postRecords(server.url, 'clicks', `[\n${JSON.stringify(click(1))},\n{"event_id": }\n]`);
    expect(array.status).toBe(400);
    expect((array.body as { error: { message: string } }).error.message).toMatch(/^line 3, column 14/);
    const ndjson = await postRecords(
      server.url,
      'clicks',
      `${JSON.stringify(click(1))}\n${JSON.stringify(click(2))}\n{"event_id": "e3",\n`,
      'application/x-ndjson',
    );
    expect(ndjson.status).toBe(400);
    expect(ndjson.body).toMatchObject({ error: { code: 'malformed_input', message: expect.stringMatching(/^line 3: malformed JSON/) } });
    expect(await logged()).toBe(0);
  });

  it('answers 413 for a body over the byte limit and for too many records', async () => {
    await start({ ingest: { maxBodyBytes: 4096, maxRecordsPerRequest: 5 } });
    const big = await postRecords(server.url, 'clicks', JSON.stringify(Array.from({ length: 40 }, (_, i) => click(i))));
    expect(big.status).toBe(413);
    expect(big.body).toMatchObject({ error: { code: 'too_large' } });
    const many = await postRecords(server.url, 'clicks', JSON.stringify(Array.from({ length: 6 }, (_, i) => click(i))));
    expect(many.status).toBe(413);
    expect(many.body).toMatchObject({ error: { message: 'a request may carry at most 5 records' } });
    expect(await logged()).toBe(0);
  });

  it('answers 415 for an unsupported content type', async () => {
    await start();
    const { status, body } = await postRecords(server.url, 'clicks', 'event_id=e1', 'application/x-www-form-urlencoded');
    expect(status).toBe(415);
    expect(body).toMatchObject({ error: { code: 'unsupported_media_type', message: expect.stringContaining('application/x-ndjson') } });
  });

  it('answers 503 with Retry-After when records waiting for disk exceed the bound', async () => {
    await start({ ingest: { maxPendingBytes: 1024 * 1024 } });
    // Stall the disk: appends never become durable, so their bytes stay pending.
    const stalled = server.strata.stream as unknown as { append: (...args: unknown[]) => Promise<never> };
    stalled.append = () => new Promise<never>(() => {});
    const body = JSON.stringify(Array.from({ length: 4000 }, (_, i) => click(i, { page: '/'.padEnd(100, 'x') })));
    // Every request the stalled disk holds stays unanswered; abort them all at the end.
    const abort = new AbortController();
    const send = () =>
      fetch(`${server.url}/v1/streams/clicks/records`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: abort.signal,
      });
    const held: Promise<unknown>[] = [];
    try {
      for (let i = 0; i < 100; i++) {
        // A request that lands before the bound is full is held by the stalled disk, not answered: it only adds
        // to the pending bytes, so the next one must see the bound crossed.
        const probe = send();
        const answer = await Promise.race([probe, new Promise<null>((resolve) => setTimeout(() => resolve(null), 500))]);
        if (answer === null) {
          held.push(probe.catch(() => null));
          continue;
        }
        expect(answer.status).toBe(503);
        expect(answer.headers.get('retry-after')).toBe('1');
        expect(await answer.json()).toMatchObject({ error: { code: 'overloaded' } });
        expect(held.length).toBeGreaterThan(0);
        return;
      }
      throw new Error('never answered 503');
    } finally {
      abort.abort();
      await Promise.all(held);
    }
  });

  it('shows streams with last seq per shard and answers /health', async () => {
    await start();
    await postRecords(server.url, 'clicks', JSON.stringify(Array.from({ length: 20 }, (_, i) => click(i))));
    const health = await fetch(`${server.url}/health`);
    expect(await health.json()).toEqual({ status: 'ok' });
    const streams = (await (await fetch(`${server.url}/v1/streams`)).json()) as {
      streams: { name: string; shards: { shard: string; lastSeq: string }[]; accepted: number }[];
    };
    expect(streams.streams).toHaveLength(1);
    expect(streams.streams[0]!.name).toBe('clicks');
    expect(streams.streams[0]!.shards.map((s) => s.shard)).toEqual(['0', '1', '2', '3']);
    expect(streams.streams[0]!.shards.reduce((sum, s) => sum + Number(s.lastSeq), 0)).toBe(20);
    expect(streams.streams[0]!.accepted).toBe(20);
  });
});
