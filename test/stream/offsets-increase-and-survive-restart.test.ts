import { afterEach, describe, expect, it } from 'vitest';
import { asSeq, EmbeddedStream, hashPartitionKey, shardForKey, UnknownStreamError } from '../../src/stream/index.js';
import { removeDir, tempDir } from '../fixtures/strata.js';

const records = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => Buffer.from(`${prefix}-${i}`));

describe('embedded stream: offsets', () => {
  let dir: string;
  afterEach(async () => removeDir(dir));

  it('hands out strictly increasing, consecutive seqs per shard, starting at 1', async () => {
    dir = await tempDir();
    const log = await EmbeddedStream.open({ dir, streams: { s: { shards: 2 } } });
    const firsts = await Promise.all([
      log.append('s', 0, records('a', 3)),
      log.append('s', 0, records('b', 2)),
      log.append('s', 1, records('c', 4)),
      log.append('s', 0, records('d', 1)),
    ]);
    expect(firsts.map(Number)).toEqual([1, 4, 1, 6]);
    expect(log.shards('s').map((s) => s.lastSeq)).toEqual([6, 4]);
    const back = await log.read('s', 0, asSeq(1), 100);
    expect(back.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(back.map((r) => r.data.toString())).toEqual(['a-0', 'a-1', 'a-2', 'b-0', 'b-1', 'd-0']);
    await log.close();
  });

  it('keeps every record and continues the seqs after a restart', async () => {
    dir = await tempDir();
    let log = await EmbeddedStream.open({ dir, streams: { s: { shards: 1 } } });
    await log.append('s', 0, records('before', 5));
    await log.close();
    log = await EmbeddedStream.open({ dir, streams: { s: { shards: 1 } } });
    expect(log.shards('s')[0]!.lastSeq).toBe(5);
    const next = await log.append('s', 0, records('after', 2));
    expect(next).toBe(6);
    const all = await log.read('s', 0, asSeq(1), 100);
    expect(all.map((r) => r.data.toString())).toEqual([
      ...records('before', 5).map(String),
      ...records('after', 2).map(String),
    ]);
    await log.close();
  });

  it('reads from any offset, with a limit, and sees nothing past the last durable record', async () => {
    dir = await tempDir();
    const log = await EmbeddedStream.open({ dir, streams: { s: { shards: 1 } } });
    for (let i = 0; i < 10; i++) await log.append('s', 0, records(`batch${i}`, 10));
    const middle = await log.read('s', 0, asSeq(37), 5);
    expect(middle.map((r) => r.seq)).toEqual([37, 38, 39, 40, 41]);
    expect(middle[0]!.data.toString()).toBe('batch3-6');
    expect(await log.read('s', 0, asSeq(101), 10)).toEqual([]);
    await log.close();
  });

  it('refuses an unknown stream or shard', async () => {
    dir = await tempDir();
    const log = await EmbeddedStream.open({ dir, streams: { s: { shards: 1 } } });
    await expect(log.append('nope', 0, records('x', 1))).rejects.toThrow(UnknownStreamError);
    await expect(log.append('s', 1, records('x', 1))).rejects.toThrow(/no shard 1/);
    await log.close();
  });

  it('wakes a waiting consumer when records become durable', async () => {
    dir = await tempDir();
    const log = await EmbeddedStream.open({ dir, streams: { s: { shards: 1 } } });
    const waiting = log.waitForAppend('s', 0, asSeq(0), 10_000);
    await log.append('s', 0, records('x', 3));
    expect(await waiting).toBe(3);
    expect(await log.waitForAppend('s', 0, asSeq(3), 20)).toBe(3);
    await log.close();
  });
});

describe('partitioning', () => {
  it('maps a key to the same shard every time, and spreads keys over every shard', () => {
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 10_000; i++) counts[shardForKey(`user-${i}`, 4)]!++;
    for (const count of counts) expect(count).toBeGreaterThan(2000);
    expect(shardForKey('user-42', 4)).toBe(shardForKey('user-42', 4));
  });

  it('hashes with FNV-1a as documented: the key-to-shard function is part of the on-disk contract', () => {
    // The published FNV-1a 32-bit test vectors.
    expect(hashPartitionKey('')).toBe(0x811c9dc5);
    expect(hashPartitionKey('a')).toBe(0xe40c292c);
    expect(hashPartitionKey('foobar')).toBe(0xbf9cf968);
    // Equal hash ranges: 0xbf9cf968 lies in the third quarter of the 32-bit space, 0xe40c292c in the fourth.
    expect(shardForKey('foobar', 4)).toBe(2);
    expect(shardForKey('a', 4)).toBe(3);
  });
});
