import { afterEach, describe, expect, it } from 'vitest';
import { StrataProducer, type PutFailure, type StrataProducerOptions } from '../../src/client/index.js';
import { answerOk, sendJson, startFakeServer, type FakeServer, type SeenRequest } from './support/fake-server.js';
import type { ServerResponse } from 'node:http';

type Handler = (server: FakeServer, request: SeenRequest, res: ServerResponse) => void;

describe('StrataProducer retries', () => {
  const open: { close(): Promise<void> }[] = [];

  afterEach(async () => {
    // Producers first: closing one waits for its requests, which need the server.
    for (const item of open.splice(0).reverse()) await item.close();
  });

  async function setup(handle: Handler, options: Partial<StrataProducerOptions<{ id: number }>> = {}) {
    const server = await startFakeServer(handle);
    open.push(server);
    const producer = new StrataProducer<{ id: number }>({
      url: server.url,
      stream: 'clicks',
      initialBackoffMs: 1,
      maxBackoffMs: 20,
      ...options,
    });
    open.push(producer);
    return { server, producer };
  }

  /** Fails the first `n` requests with `fail`, then answers them like Strata. */
  const failFirst =
    (n: number, fail: (res: ServerResponse, index: number) => void): Handler =>
    (server, request, res) =>
      request.index < n ? fail(res, request.index) : answerOk(server, request, res);

  const ids = (records: Record<string, unknown>[]) => records.map((r) => r.id as number);
  /** Puts records with ids 0..count-1, flushes (so no batch waits out its linger) and answers their results. */
  const putAll = async (producer: StrataProducer<{ id: number }>, count: number) => {
    const puts = Array.from({ length: count }, (_, id) => producer.put({ id }));
    await producer.flush();
    return Promise.all(puts);
  };

  it('retries 503 with Retry-After, and every record ends acked exactly once', async () => {
    const { server, producer } = await setup(
      failFirst(3, (res) => sendJson(res, 503, { error: { code: 'overloaded', message: 'busy' } }, { 'retry-after': '0' })),
      { maxBatchRecords: 10, lingerMs: 60_000 },
    );
    const results = await putAll(producer, 20);

    expect(results.every((r) => r.ok)).toBe(true);
    expect(ids(server.accepted).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(server.requests).toHaveLength(5);
    expect(producer.stats).toMatchObject({ sent: 20, acked: 20, failed: 0, retries: 3, inFlight: 0 });
  });

  it('retries a reset connection and keeps put order with one request in flight', async () => {
    const { server, producer } = await setup(
      failFirst(2, (res) => res.socket?.destroy()),
      { maxBatchRecords: 5, maxInFlight: 1, lingerMs: 60_000 },
    );
    const results = await putAll(producer, 23);

    expect(results.every((r) => r.ok)).toBe(true);
    expect(ids(server.accepted)).toEqual(Array.from({ length: 23 }, (_, i) => i));
    expect(producer.stats.retries).toBe(2);
  });

  it('retries 408, 429, 500, 502 and 504', async () => {
    const statuses = [408, 429, 500, 502, 504];
    const { server, producer } = await setup(
      failFirst(statuses.length, (res, index) => sendJson(res, statuses[index]!, { error: { code: 'x', message: 'not now' } })),
    );
    const results = await putAll(producer, 3);

    expect(results.every((r) => r.ok)).toBe(true);
    expect(ids(server.accepted).sort()).toEqual([0, 1, 2]);
    expect(producer.stats.retries).toBe(5);
  });

  it('waits as long as Retry-After says rather than its own backoff', async () => {
    // The backoff alone would wait far past the test timeout; only honoring Retry-After: 0 lets this finish.
    const { producer } = await setup(
      failFirst(1, (res) => sendJson(res, 429, { error: { code: 'slow_down', message: 'later' } }, { 'retry-after': '0' })),
      { initialBackoffMs: 3_600_000, maxBackoffMs: 3_600_000 },
    );
    expect((await producer.put({ id: 1 })).ok).toBe(true);
  });

  it('gives up after maxRetries and fails each record of the batch, telling onFailure', async () => {
    const failures: PutFailure<{ id: number }>[] = [];
    const { server, producer } = await setup(
      (_server, _request, res) => sendJson(res, 503, { error: { code: 'overloaded', message: 'still busy' } }, { 'retry-after': '0' }),
      { maxRetries: 2, lingerMs: 60_000, onFailure: (failure) => failures.push(failure) },
    );
    const results = await Promise.all([producer.put({ id: 1 }), producer.put({ id: 2 }), producer.flush()]);

    expect(server.requests).toHaveLength(3);
    for (const result of results.slice(0, 2)) {
      expect(result).toMatchObject({ ok: false });
      expect(result && !result.ok && result.error.message).toMatch(/gave up after 3 attempts.*503 overloaded: still busy/);
    }
    expect(failures.map((f) => f.record)).toEqual([{ id: 1 }, { id: 2 }]);
    expect(producer.stats).toMatchObject({ sent: 2, acked: 0, failed: 2, retries: 2, inFlight: 0 });
  });

  it('fails the whole batch on 400 without retrying, with the server message', async () => {
    const { server, producer } = await setup(
      (_server, _request, res) => sendJson(res, 400, { error: { code: 'malformed_input', message: 'line 1: malformed JSON' } }),
      { lingerMs: 60_000 },
    );
    const puts = [producer.put({ id: 1 }), producer.put({ id: 2 })];
    await producer.flush();
    for (const result of await Promise.all(puts)) {
      expect(!result.ok && result.error).toEqual({ message: 'HTTP 400 malformed_input: line 1: malformed JSON' });
    }
    expect(server.requests).toHaveLength(1);
    expect(producer.stats.retries).toBe(0);
  });

  it('does not retry per-record errors of a 200 answer', async () => {
    const { server, producer } = await setup(
      (_server, request, res) =>
        sendJson(res, 200, {
          records: request.records.map((r) =>
            r.id === 1 ? { error: { field: 'id', message: 'is odd' } } : { shard: '1', seq: String(100 + (r.id as number)) },
          ),
          failed: 1,
        }),
      { lingerMs: 60_000 },
    );
    const puts = [producer.put({ id: 0 }), producer.put({ id: 1 }), producer.put({ id: 2 })];
    await producer.flush();

    expect(await Promise.all(puts)).toEqual([
      { ok: true, shard: '1', seq: '100' },
      { ok: false, error: { field: 'id', message: 'is odd' }, record: { id: 1 } },
      { ok: true, shard: '1', seq: '102' },
    ]);
    expect(server.requests).toHaveLength(1);
  });

  it('retries a server that is not listening until it gives up, without rejecting', async () => {
    const { server, producer } = await setup(answerOk, { maxRetries: 1 });
    await server.close();
    const result = await producer.put({ id: 1 });
    expect(!result.ok && result.error.message).toMatch(/gave up after 2 attempts; last error: network error/);
  });
});
