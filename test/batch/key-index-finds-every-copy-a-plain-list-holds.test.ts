import { describe, expect, it } from 'vitest';
import { anyRepeated, KeyIndex, type KeyHashes } from '../../src/batch/key-index.js';
import { seededRandom } from '../fixtures/strata.js';

/** Sorted hashes of one chunk from plain numbers. */
function hashesOf(values: readonly number[], chunkId: number): KeyHashes {
  const sorted = [...values].sort((a, b) => a - b);
  return { hash: Float64Array.from(sorted), chunk: new Int32Array(sorted.length).fill(chunkId), length: sorted.length };
}

interface Entry {
  partition: string;
  chunk: number;
  hash: number;
}

/**
 * The key index against a plain list of (partition, chunk, hash): through adds of single chunks and of several at
 * once, merges of runs, chunks added twice, lookups that skip the new chunks' own runs, and eviction.
 */
describe('the key index', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`finds every copy a plain list holds, and only those (seed ${seed})`, () => {
      const random = seededRandom(seed);
      // Few distinct hashes, so that copies are common; values up to 2^53 like the index's.
      const pool = Array.from({ length: 400 }, () => Math.floor(random() * 2 ** 53));
      const draw = () => pool[Math.floor(random() * pool.length)]!;
      const partitions = ['s/2026-11-20', 's/2026-11-21', 's/2026-11-22'];
      const index = new KeyIndex(1_000_000);
      const list: Entry[] = [];
      let nextChunk = 1;

      for (let step = 0; step < 60; step++) {
        const partition = partitions[Math.floor(random() * partitions.length)]!;
        const chunks = Array.from({ length: 1 + Math.floor(random() * 3) }, () => nextChunk++);
        const entries = chunks.flatMap((chunk) => Array.from({ length: Math.floor(random() * 40) }, () => ({ partition, chunk, hash: draw() })));
        const sorted = [...entries].sort((a, b) => a.hash - b.hash);
        const hashes = { hash: Float64Array.from(sorted.map((e) => e.hash)), chunk: Int32Array.from(sorted.map((e) => e.chunk)), length: sorted.length };
        index.add(partition, chunks, hashes);
        list.push(...entries);
        // Adding a chunk held already changes nothing (a run and an eager clean may both read one).
        if (random() < 0.2) index.add(partition, [chunks[0]!], hashesOf(entries.filter((e) => e.chunk === chunks[0]).map((e) => e.hash), chunks[0]!));

        for (const chunk of chunks) {
          expect(index.holds(partition, chunk)).toBe(true);
          const own = index.hashesOf(partition, chunk);
          expect([...own.hash.subarray(0, own.length)]).toEqual(list.filter((e) => e.chunk === chunk).map((e) => e.hash).sort((a, b) => a - b));
        }

        // A lookup of the new chunks' hashes in every partition, skipping runs of new chunks only.
        const probe = hashesOf(entries.map((e) => e.hash), 0);
        const fresh = new Set(chunks);
        const found = new Map<number, number>();
        index.holders(partitions, probe, (chunk) => fresh.has(chunk), (chunk) => found.set(chunk, (found.get(chunk) ?? 0) + 1));
        // Every copy in another chunk is visited once per equal probe hash; new chunks' copies only from runs
        // holding other chunks too (after a merge), so they are left out of the comparison.
        const expected = new Map<number, number>();
        for (const p of probe.hash) {
          for (const e of list) if (e.hash === p && !fresh.has(e.chunk)) expected.set(e.chunk, (expected.get(e.chunk) ?? 0) + 1);
        }
        for (const chunk of fresh) found.delete(chunk);
        expect(found).toEqual(expected);
        expect(anyRepeated(probe)).toBe(new Set(entries.map((e) => e.hash)).size < entries.length);
      }
      expect(index.size).toBe(list.length);
    });
  }

  it('evicts least recently used partitions beyond its budget, never those asked to keep', () => {
    const index = new KeyIndex(10);
    index.add('a', [1], hashesOf([1, 2, 3, 4, 5, 6], 1));
    index.add('b', [2], hashesOf([1, 2, 3, 4, 5, 6], 2));
    index.evict(['a', 'b']);
    expect(index.size).toBe(12);
    // 'a' was looked up last, so 'b' goes first.
    index.holders(['a'], hashesOf([3], 0), () => false, () => undefined);
    index.evict([]);
    expect(index.holds('a', 1)).toBe(true);
    expect(index.holds('b', 2)).toBe(false);
    expect(index.size).toBe(6);
  });
});
