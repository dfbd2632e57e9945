import type { DuckDBConnection, DuckDBVector } from '@duckdb/node-api';
import { quoteIdent } from '../util/duckdb.js';

/**
 * The de-duplication keys of a stream's clean chunks, as hashes, by event-time partition: which clean chunks may
 * hold a copy of a key. An incremental run judges its new records against the counted ones of the partitions
 * around theirs; without the index that meant reading every key of those partitions (4.3M at 10M events, ~60–100
 * ms for 1 % new data, and more with random keys, where no row group can be skipped). With it, a run reads its new
 * records' hashes (read when their chunk was cleaned, see BatchLayer.cleanDelivered), and then only the clean
 * chunks holding a copy of one, usually none.
 *
 * A hash is no proof: equal hashes only name the chunks to read, and the judging compares the keys themselves.
 * A hash absent from the index has no copy in the chunks it holds, since every key of a chunk is added. The hash
 * kept is DuckDB's 64-bit `hash` of the key columns, its top 53 bits as a double: one comparison per step, and two
 * of the 4.3M keys of a 10M-event window share one about once in 10^9 runs (a chunk read for nothing).
 *
 * A partition's hashes are kept sorted, with each one's clean chunk id, in runs of two arrays (12 bytes a key):
 * one run per chunk as it lands, merged into one when there are too many. A run's new hashes, sorted too, are
 * found by a galloping walk through each run in order, which costs less than as many random lookups into a hash
 * table of millions (300k lookups there: ~25 ms, cache misses mostly). Partitions are evicted least recently used
 * first beyond a budget of keys (`batch.dedupeIndexKeys`), and read again from their clean chunks when a run needs them.
 */

/** Runs a partition holds before they are merged into one (each run is walked by every lookup). */
const MAX_RUNS = 6;

/** Key hashes in ascending order, with the clean chunk id of each. */
export interface KeyHashes {
  readonly hash: Float64Array;
  readonly chunk: Int32Array;
  readonly length: number;
}

/** The merge of two sorted hash lists. */
export function mergeKeyHashes(a: KeyHashes, b: KeyHashes): KeyHashes {
  const length = a.length + b.length;
  const hash = new Float64Array(length);
  const chunk = new Int32Array(length);
  const { hash: aHash, chunk: aChunk, length: aLength } = a;
  const { hash: bHash, chunk: bChunk, length: bLength } = b;
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < aLength && j < bLength) {
    if (bHash[j]! < aHash[i]!) {
      hash[k] = bHash[j]!;
      chunk[k++] = bChunk[j++]!;
    } else {
      hash[k] = aHash[i]!;
      chunk[k++] = aChunk[i++]!;
    }
  }
  hash.set(aHash.subarray(i, aLength), k);
  chunk.set(aChunk.subarray(i, aLength), k);
  k += aLength - i;
  hash.set(bHash.subarray(j, bLength), k);
  chunk.set(bChunk.subarray(j, bLength), k);
  return { hash, chunk, length };
}

/** The entries of `hashes` whose chunk `keep` answers true for. */
function filtered(hashes: KeyHashes, keep: (chunkId: number) => boolean): KeyHashes {
  let length = 0;
  for (let i = 0; i < hashes.length; i++) if (keep(hashes.chunk[i]!)) length++;
  const kept = { hash: new Float64Array(length), chunk: new Int32Array(length), length };
  for (let i = 0, at = 0; i < hashes.length; i++) {
    if (!keep(hashes.chunk[i]!)) continue;
    kept.hash[at] = hashes.hash[i]!;
    kept.chunk[at++] = hashes.chunk[i]!;
  }
  return kept;
}

/** A partition's hashes: sorted runs, each with the chunks it holds. */
class PartitionKeys {
  readonly chunks = new Set<number>();
  runs: { hashes: KeyHashes; chunks: ReadonlySet<number> }[] = [];
  count = 0;

  add(hashes: KeyHashes, chunkIds: readonly number[]): void {
    this.runs.push({ hashes, chunks: new Set(chunkIds) });
    this.count += hashes.length;
    for (const id of chunkIds) this.chunks.add(id);
    if (this.runs.length > MAX_RUNS) {
      this.runs = [{ hashes: this.runs.map((run) => run.hashes).reduce(mergeKeyHashes), chunks: new Set(this.chunks) }];
    }
  }

  /** The hashes of one chunk held, sorted. */
  of(chunkId: number): KeyHashes {
    const run = this.runs.find((candidate) => candidate.chunks.has(chunkId))!;
    return run.chunks.size === 1 ? run.hashes : filtered(run.hashes, (id) => id === chunkId);
  }
}

export class KeyIndex {
  /** In order of use, least recent first. */
  private readonly partitions = new Map<string, PartitionKeys>();

  constructor(
    /** Keys held at most, beyond which least recently used partitions are evicted. */
    readonly budget: number,
  ) {}

  /** Whether the index holds the keys of this clean chunk. */
  holds(partition: string, chunkId: number): boolean {
    return this.partitions.get(partition)?.chunks.has(chunkId) ?? false;
  }

  /**
   * Adds every key of the given clean chunks of one partition (`hashes` sorted), but those of chunks held already
   * (a run and an eager clean may both have read one). Nothing is evicted until {@link evict}: a caller adds what
   * it needs, then checks it is all held.
   */
  add(partition: string, chunkIds: readonly number[], hashes: KeyHashes): void {
    let keys = this.partitions.get(partition);
    if (keys === undefined) this.partitions.set(partition, (keys = new PartitionKeys()));
    const held = keys.chunks;
    const fresh = chunkIds.filter((id) => !held.has(id));
    if (fresh.length === 0) return;
    keys.add(fresh.length === chunkIds.length ? hashes : filtered(hashes, (id) => !held.has(id)), fresh);
  }

  /** The hashes of a clean chunk the index holds (see {@link holds}), sorted. */
  hashesOf(partition: string, chunkId: number): KeyHashes {
    const keys = this.partitions.get(partition);
    if (keys === undefined || !keys.chunks.has(chunkId)) throw new Error(`the key index does not hold clean chunk ${chunkId}`);
    return keys.of(chunkId);
  }

  /**
   * Calls `visit(chunkId)` for every key of the partitions equal to a hash of `probe` (sorted), once per copy held,
   * but in runs that hold only chunks `skip` answers true for. Marks the partitions as just used.
   */
  holders(partitions: readonly string[], probe: KeyHashes, skip: (chunkId: number) => boolean, visit: (chunkId: number) => void): void {
    for (const partition of partitions) {
      const keys = this.partitions.get(partition);
      if (keys === undefined) continue;
      this.partitions.delete(partition);
      this.partitions.set(partition, keys);
      for (const run of keys.runs) if (![...run.chunks].every(skip)) walkEqual(run.hashes, probe, visit);
    }
  }

  /** Keys held, over all partitions. */
  get size(): number {
    let total = 0;
    for (const keys of this.partitions.values()) total += keys.count;
    return total;
  }

  /** Evicts the least recently used partitions but `keep` while the index is over its budget. */
  evict(keep: readonly string[]): void {
    let total = this.size;
    for (const [partition, keys] of this.partitions) {
      if (total <= this.budget) break;
      if (keep.includes(partition)) continue;
      this.partitions.delete(partition);
      total -= keys.count;
    }
  }
}

/** Whether two entries of sorted `hashes` are equal. */
export function anyRepeated(hashes: KeyHashes): boolean {
  for (let i = 1; i < hashes.length; i++) if (hashes.hash[i] === hashes.hash[i - 1]) return true;
  return false;
}

/**
 * Calls `visit(chunk)` for every entry of `held` equal to an entry of `probe`, both sorted. For each probe hash,
 * the first entry not below it is found by galloping from the last one found (doubling steps, then halving), so
 * a probe of n hashes into m costs about n log(m / n) comparisons, walking `held` in order.
 */
function walkEqual(held: KeyHashes, probe: KeyHashes, visit: (chunkId: number) => void): void {
  const { hash: heldHash, chunk: heldChunk, length: heldLength } = held;
  const { hash: probeHash, length: probeLength } = probe;
  let at = 0;
  for (let i = 0; i < probeLength && at < heldLength; i++) {
    const hash = probeHash[i]!;
    if (heldHash[at]! < hash) {
      let last = at; // below the hash
      let step = 1;
      while (last + step < heldLength && heldHash[last + step]! < hash) {
        last += step;
        step *= 2;
      }
      let end = Math.min(last + step, heldLength); // not below it, or the end
      while (end - last > 1) {
        const middle = (last + end) >>> 1;
        if (heldHash[middle]! < hash) last = middle;
        else end = middle;
      }
      at = end;
    }
    for (let k = at; k < heldLength && heldHash[k] === hash; k++) visit(heldChunk[k]!);
  }
}

/**
 * The key hashes of each record of `sql` whose key columns are all present (a NULL key has no copies), sorted,
 * with the clean chunk id of the record: `sql` must yield the key columns and `__chunk` (INTEGER).
 */
export async function readKeyHashes(connection: DuckDBConnection, sql: string, keyColumns: readonly string[]): Promise<KeyHashes> {
  const keys = keyColumns.map(quoteIdent);
  const result = await connection.run(
    `SELECT CAST(h >> 11 AS DOUBLE), __chunk
       FROM (SELECT hash(${keys.join(', ')}) AS h, __chunk FROM (${sql}) AS records
             WHERE ${keys.map((key) => `${key} IS NOT NULL`).join(' AND ')}) AS hashes
      ORDER BY h`,
  );
  const length = Number(result.rowCount);
  const hashes = { hash: new Float64Array(length), chunk: new Int32Array(length), length };
  let at = 0;
  for (let c = 0; c < result.chunkCount; c++) {
    const chunk = result.getChunk(c);
    copyColumn(chunk.getColumnVector(0), hashes.hash, at, chunk.rowCount);
    copyColumn(chunk.getColumnVector(1), hashes.chunk, at, chunk.rowCount);
    at += chunk.rowCount;
  }
  return hashes;
}

/**
 * Copies a vector of non-NULL numbers into `target` at `at`. The node API keeps each vector's values in a typed
 * array (`items`, not part of its typed surface); copying it whole is 5x faster than `getItem` per value (1.1M
 * values: 20 against 100 ms), which decides whether loading the index costs more than the scan it saves. A vector
 * without it (another API version) is read value by value.
 */
function copyColumn(vector: DuckDBVector, target: Float64Array | Int32Array, at: number, rows: number): void {
  const items = (vector as unknown as { items?: unknown }).items;
  if ((items instanceof Float64Array || items instanceof Int32Array) && items.length >= rows && items.constructor === target.constructor) {
    target.set(items.subarray(0, rows), at);
    return;
  }
  for (let i = 0; i < rows; i++) target[at + i] = vector.getItem(i) as number;
}
