import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { ChunkWriter, Delivery } from '../../src/lake/index.js';
import { EmbeddedStream } from '../../src/stream/index.js';
import { openLake } from '../fixtures/lake.js';
import { clicksConfig, removeDir, tempDir } from '../fixtures/strata.js';

const SHARDS = 4;
const CHUNK = 50;

/**
 * Delivery writes the chunks of shards that keep up one at a time (all shards fill theirs at about the same
 * moment under steady load, and writing them together would take every core at once), and those of a shard a
 * whole chunk or more behind the log at once, beside the others.
 */
describe('delivery paces its chunk writes', () => {
  let dir: string;
  const closing: { close(): Promise<void> | void }[] = [];
  afterEach(async () => {
    for (const resource of closing.splice(0).reverse()) await resource.close();
    await removeDir(dir);
  });

  /** Delivers `chunksPerShard` full chunks of every shard, and answers the most chunk writes seen at once. */
  async function mostWritesAtOnce(chunksPerShard: number): Promise<number> {
    dir = await tempDir();
    const config = parseConfig(clicksConfig({ delivery: { maxRecords: CHUNK, maxSeconds: 60 } }, SHARDS));
    const stream = await EmbeddedStream.open({ dir: join(dir, 'log'), streams: { clicks: { shards: SHARDS } } });
    closing.push(stream);
    const { catalog, store } = await openLake(join(dir, 'data'));
    closing.push(catalog);
    await catalog.ensureTable('clicks', 'raw', config.streams.get('clicks')!.fields);
    for (let shard = 0; shard < SHARDS; shard++) {
      const lines = Array.from({ length: CHUNK * chunksPerShard }, (_, i) =>
        JSON.stringify({ event_id: `e${shard}-${i}`, ts: '2026-11-25T10:00:00Z', user_id: `u${i % 7}`, page: '/home', amount: i }),
      );
      await stream.append('clicks', shard, lines);
    }
    const writer = await ChunkWriter.open(store);
    closing.push(writer);
    let writing = 0;
    let most = 0;
    // Each write held a while, so that writes allowed to overlap do.
    const slowWriter = Object.assign(Object.create(writer) as ChunkWriter, {
      write: async (spec: Parameters<ChunkWriter['write']>[0]) => {
        most = Math.max(most, ++writing);
        try {
          await sleep(40);
          return await writer.write(spec);
        } finally {
          writing--;
        }
      },
    });
    const delivery = new Delivery({ stream, catalog, store, writer: slowWriter, config });
    await delivery.start();
    try {
      for (let i = 0; i < 600 && !stream.shards('clicks').every((s) => delivery.deliveredSeq('clicks', s.shard) === s.lastSeq); i++) await sleep(25);
    } finally {
      await delivery.stop();
    }
    const chunks = await catalog.chunks('clicks');
    expect(chunks).toHaveLength(SHARDS * chunksPerShard);
    expect(chunks.reduce((sum, chunk) => sum + chunk.rows, 0)).toBe(SHARDS * CHUNK * chunksPerShard);
    return most;
  }

  it('writes one chunk at a time while every shard keeps up', async () => {
    expect(await mostWritesAtOnce(1)).toBe(1);
  });

  it('writes the chunks of shards a chunk or more behind at once', async () => {
    expect(await mostWritesAtOnce(3)).toBeGreaterThan(1);
  });
});
