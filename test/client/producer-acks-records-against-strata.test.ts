import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StrataProducer, type PutFailure, type PutResult, type StrataProducerOptions } from '../../src/client/index.js';
import { click, startStrata, type TestServer } from './support/strata-server.js';

describe('StrataProducer against a running Strata', () => {
  let server: TestServer;
  const producers: StrataProducer[] = [];
  const producer = (options: Partial<StrataProducerOptions> = {}) => {
    const p = new StrataProducer({ url: server.url, stream: 'clicks', ...options });
    producers.push(p);
    return p;
  };

  beforeEach(async () => {
    server = await startStrata();
  });

  afterEach(async () => {
    for (const p of producers.splice(0)) await p.close();
    await server.close();
  });

  it('acks every record of many batches with an offset, and the log holds them all', async () => {
    const p = producer({ maxBatchRecords: 100 });
    const results = await Promise.all(Array.from({ length: 1234 }, (_, n) => p.put(click(n))));

    expect(results.every((r) => r.ok)).toBe(true);
    const seqsByShard = new Map<string, Set<string>>();
    for (const result of results) {
      if (!result.ok) continue;
      expect(['0', '1', '2']).toContain(result.shard);
      const seqs = seqsByShard.get(result.shard) ?? new Set<string>();
      seqs.add(result.seq);
      seqsByShard.set(result.shard, seqs);
    }
    // Each shard's seqs are distinct and run 1..n: nothing was written twice or skipped.
    for (const seqs of seqsByShard.values()) {
      const sorted = [...seqs].map(Number).sort((a, b) => a - b);
      expect(sorted).toEqual(Array.from({ length: sorted.length }, (_, i) => i + 1));
    }
    expect(await server.recordsInLog('clicks')).toBe(1234);
    expect(p.stats).toMatchObject({ sent: 1234, acked: 1234, failed: 0, retries: 0, inFlight: 0 });
    expect(p.buffered).toBe(0);
  });

  it('fails invalid records with the field named while the valid ones of the same batch are acked', async () => {
    const failures: PutFailure[] = [];
    const p = producer({ lingerMs: 60_000, onFailure: (failure) => failures.push(failure) });
    const bad = click(1, { amount: 'lots' });
    const stray = click(2, { colour: 'red' });
    const puts = [p.put(click(0)), p.put(bad), p.put(stray), p.put(click(3))];
    await p.flush();
    const [first, second, third, fourth] = await Promise.all(puts);

    expect(first!.ok).toBe(true);
    expect(fourth!.ok).toBe(true);
    expect(second).toMatchObject({ ok: false, error: { field: 'amount' }, record: bad });
    expect(third).toMatchObject({ ok: false, error: { field: 'colour' }, record: stray });
    expect(failures.map((f) => f.record)).toEqual([bad, stray]);
    // One request carried all four: the failures did not hold back the valid records.
    expect(p.stats).toMatchObject({ sent: 4, acked: 2, failed: 2, retries: 0 });
    expect(await server.recordsInLog('clicks')).toBe(2);
  });

  it('flush sends what is lingering and waits for it; close refuses later puts', async () => {
    const p = producer({ lingerMs: 60_000 });
    const settled: PutResult[] = [];
    for (let n = 0; n < 10; n++) void p.put(click(n)).then((r) => settled.push(r));
    expect(p.buffered).toBe(10);

    await p.flush();
    expect(settled).toHaveLength(10);
    expect(settled.every((r) => r.ok)).toBe(true);
    expect(p.buffered).toBe(0);
    expect(await server.recordsInLog('clicks')).toBe(10);

    const beforeClose = p.put(click(10));
    await p.close();
    expect((await beforeClose).ok).toBe(true);

    const record = click(11);
    const afterClose = await p.put(record);
    expect(afterClose).toMatchObject({ ok: false, record });
    expect(!afterClose.ok && afterClose.error.message).toMatch(/closed/);
    expect(await server.recordsInLog('clicks')).toBe(11);
    await p.close();
  });

  it('waitForCapacity resolves once the buffer is under its bound, and put past the bound drops nothing', async () => {
    const p = producer({ lingerMs: 60_000, maxBufferedRecords: 10, maxBatchRecords: 4 });
    const puts = Array.from({ length: 25 }, (_, n) => p.put(click(n)));
    expect(p.buffered).toBeGreaterThanOrEqual(10);

    await p.waitForCapacity();
    expect(p.buffered).toBeLessThan(10);

    await p.flush();
    expect((await Promise.all(puts)).every((r) => r.ok)).toBe(true);
    expect(await server.recordsInLog('clicks')).toBe(25);
  });

  it('fails every record of a batch with the server message when the stream does not exist', async () => {
    const p = producer({ stream: 'nope' });
    const results = await Promise.all([p.put(click(0)), p.put(click(1))]);
    for (const result of results) {
      expect(result.ok).toBe(false);
      expect(!result.ok && result.error.message).toMatch(/404.*unknown stream "nope"/);
    }
    expect(p.stats).toMatchObject({ failed: 2, retries: 0 });
  });

  it('fails a batch over the server record limit with its 413 message, without retrying', async () => {
    await server.close();
    server = await startStrata({
      streams: { clicks: { shards: 2, schema: { event_id: 'string', ts: 'timestamp', user_id: 'string', page: 'string', amount: 'double?' } } },
      ingest: { maxRecordsPerRequest: 5 },
    });
    const p = producer({ maxBatchRecords: 8, lingerMs: 60_000 });
    const puts = Array.from({ length: 8 }, (_, n) => p.put(click(n)));
    const results = await Promise.all(puts);
    for (const result of results) expect(!result.ok && result.error.message).toMatch(/413.*at most 5 records/);
    expect(p.stats).toMatchObject({ sent: 8, acked: 0, failed: 8, retries: 0 });
    expect(await server.recordsInLog('clicks')).toBe(0);
  });

  it('fails a record larger than maxBatchBytes at once, and one that is not JSON-serializable', async () => {
    const p = producer({ maxBatchBytes: 200 });
    const big = click(0, { page: 'x'.repeat(300) });
    const tooBig = await p.put(big);
    expect(tooBig).toMatchObject({ ok: false, record: big });
    expect(!tooBig.ok && tooBig.error.message).toMatch(/maxBatchBytes \(200\)/);

    const cyclic: Record<string, unknown> = click(1);
    cyclic.self = cyclic;
    const unserializable = await p.put(cyclic);
    expect(!unserializable.ok && unserializable.error.message).toMatch(/cannot be serialized/);

    expect((await p.put(click(2))).ok).toBe(true);
    expect(p.stats).toMatchObject({ sent: 1, acked: 1, failed: 2 });
  });
});
