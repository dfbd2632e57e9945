import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ServerResponse } from 'node:http';
import { StrataProducer, type StrataProducerOptions } from '../../src/client/index.js';
import { answerOk, startFakeServer, type FakeServer, type SeenRequest } from './support/fake-server.js';

type Handler = (server: FakeServer, request: SeenRequest, res: ServerResponse) => void;
type Rec = { id: number; pad?: string };

/** Longer than any test runs: a batch that waits for it would time the test out. */
const FOREVER = 600_000;

describe('StrataProducer batching', () => {
  const open: { close(): Promise<void> }[] = [];

  afterEach(async () => {
    for (const item of open.splice(0).reverse()) await item.close();
  });

  async function setup(options: Partial<StrataProducerOptions<Rec>>, handle: Handler = answerOk) {
    const server = await startFakeServer(handle);
    open.push(server);
    const producer = new StrataProducer<Rec>({ url: server.url, stream: 'clicks', ...options });
    open.push(producer);
    return { server, producer };
  }

  const sizes = (server: FakeServer) => server.requests.map((r) => r.records.length);

  it('sends a batch as soon as it holds maxBatchRecords, without waiting out the linger', async () => {
    const { server, producer } = await setup({ maxBatchRecords: 10, lingerMs: FOREVER });
    const results = await Promise.all(Array.from({ length: 30 }, (_, id) => producer.put({ id })));

    expect(results.every((r) => r.ok)).toBe(true);
    expect(sizes(server)).toEqual([10, 10, 10]);
    expect(server.requests.every((r) => r.contentType === 'application/x-ndjson')).toBe(true);
    expect(server.accepted.map((r) => r.id)).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });

  it('sends a partial batch lingerMs after its first record', async () => {
    const { server, producer } = await setup({ maxBatchRecords: 1000, lingerMs: 20 });
    const first = await Promise.all(Array.from({ length: 7 }, (_, id) => producer.put({ id })));
    expect(first.every((r) => r.ok)).toBe(true);
    expect(sizes(server)).toEqual([7]);

    const second = await Promise.all([producer.put({ id: 7 }), producer.put({ id: 8 }), producer.put({ id: 9 })]);
    expect(second.every((r) => r.ok)).toBe(true);
    expect(sizes(server)).toEqual([7, 3]);
  });

  it('keeps each request within maxBatchBytes of NDJSON and fills it as far as the next record allows', async () => {
    const maxBatchBytes = 1000;
    const { server, producer } = await setup({ maxBatchBytes, lingerMs: FOREVER });
    const records: Rec[] = Array.from({ length: 25 }, (_, id) => ({ id, pad: 'x'.repeat(60 + (id % 7) * 10) }));
    const puts = records.map((record) => producer.put(record));
    await producer.flush();
    expect((await Promise.all(puts)).every((r) => r.ok)).toBe(true);

    const lineBytes = (r: Rec) => Buffer.byteLength(JSON.stringify(r)) + 1;
    let next = 0;
    for (const request of server.requests) {
      const expected = request.records.reduce((sum, r) => sum + lineBytes(r as Rec), 0);
      expect(request.bytes).toBe(expected);
      expect(request.bytes).toBeLessThanOrEqual(maxBatchBytes);
      next += request.records.length;
      // Every batch but the last was cut only because the next record would not fit.
      if (next < records.length) expect(request.bytes + lineBytes(records[next]!)).toBeGreaterThan(maxBatchBytes);
    }
    expect(server.requests.length).toBeGreaterThan(1);
    expect(server.accepted).toEqual(records);
  });

  it('accepts a record exactly maxBatchBytes long as a batch of its own', async () => {
    const record: Rec = { id: 1, pad: '' };
    const bytes = Buffer.byteLength(JSON.stringify(record)) + 1;
    const { server, producer } = await setup({ maxBatchBytes: bytes, lingerMs: FOREVER });
    const results = await Promise.all([producer.put(record), producer.put({ id: 2, pad: '' })]);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(sizes(server)).toEqual([1, 1]);
  });

  it('never has more than maxInFlight requests open at once', async () => {
    const held: (() => void)[] = [];
    let open = 0;
    let mostOpen = 0;
    const { server, producer } = await setup({ maxBatchRecords: 1, maxInFlight: 2, lingerMs: 0 }, (self, request, res) => {
      open++;
      mostOpen = Math.max(mostOpen, open);
      held.push(() => {
        open--;
        answerOk(self, request, res);
      });
    });
    const puts = Array.from({ length: 6 }, (_, id) => producer.put({ id }));
    expect(producer.stats.inFlight).toBe(2);
    expect(producer.buffered).toBe(6);

    for (let answered = 0; answered < 6; answered++) {
      await vi.waitFor(() => expect(held.length).toBeGreaterThan(0));
      held.shift()!();
    }
    expect((await Promise.all(puts)).every((r) => r.ok)).toBe(true);
    expect(mostOpen).toBe(2);
    expect(server.requests).toHaveLength(6);
    expect(producer.stats.inFlight).toBe(0);
  });
});
