import { describe, expect, it } from 'vitest';
import { CopyIndex, type CopyRow } from '../../src/speed/copy-index.js';
import { seededRandom } from '../fixtures/strata.js';

/** The rules of dedupe-keys.ts over a plain list of copies: what the index must answer, found by brute force. */
class PlainCopies {
  copies: { row: CopyRow; order: number; covered: boolean }[] = [];
  constructor(private readonly withinUs: number) {}

  private sameKey(a: CopyRow, b: CopyRow): boolean {
    return a.fingerprint !== null && b.fingerprint !== null && a.fingerprint.every((word, i) => word === b.fingerprint![i]);
  }

  add(row: CopyRow, order: number, covered: boolean): void {
    if (row.fingerprint !== null) this.copies.push({ row, order, covered });
  }

  holds(row: CopyRow): boolean {
    return this.copies.some((copy) => this.sameKey(copy.row, row) && copy.row.shard === row.shard && copy.row.seq === row.seq);
  }

  givesWay(row: CopyRow, order: number): boolean {
    return this.copies.some(
      (copy) =>
        this.sameKey(copy.row, row) &&
        !(copy.row.shard === row.shard && copy.row.seq === row.seq) &&
        Math.abs(copy.row.timeUs - row.timeUs) < this.withinUs &&
        (copy.covered || copy.order < order),
    );
  }

  cover(watermark: readonly number[]): string[] {
    const newly = this.copies.filter((copy) => !copy.covered && copy.row.shard >= 0 && copy.row.seq <= watermark[copy.row.shard]!);
    for (const copy of newly) copy.covered = true;
    const giveWay = new Set<string>();
    for (const covered of newly) {
      for (const copy of this.copies) {
        if (copy.covered || !this.sameKey(copy.row, covered.row)) continue;
        if (covered.order > copy.order && Math.abs(copy.row.timeUs - covered.row.timeUs) < this.withinUs) giveWay.add(`${copy.row.shard}/${copy.row.seq}`);
      }
    }
    return [...giveWay].sort();
  }

  evictCovered(beforeUs: number): void {
    this.copies = this.copies.filter((copy) => !(copy.covered && copy.row.timeUs < beforeUs));
  }
}

describe('the copy index de-duplication looks keys up in', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`answers as a brute-force search of every copy does, through adds, covers, evictions and compactions (seed ${seed})`, () => {
      const random = seededRandom(seed);
      const withinUs = 1_000_000;
      const index = new CopyIndex(withinUs);
      const plain = new PlainCopies(withinUs);
      const shards = 3;
      const seqs = [0, 0, 0];
      const watermark = [0, 0, 0];
      let order = 1;
      // Few keys, so that most have several copies; some keys NULL, some times missing.
      const fingerprintOf = (key: number): [number, number, number, number] => [key * 2654435761 >>> 0, key, 7, key & 0xff];
      const copyRow = (shard: number, seq: number): CopyRow => {
        const key = Math.floor(random() * 60);
        return {
          fingerprint: random() < 0.03 ? null : fingerprintOf(key),
          timeUs: random() < 0.03 ? NaN : Math.floor(random() * 5_000_000),
          shard,
          seq,
        };
      };
      for (let step = 0; step < 400; step++) {
        const action = random();
        if (action < 0.6) {
          // A micro-batch: new speed copies, each judged against everything held.
          const rows = Array.from({ length: 1 + Math.floor(random() * 8) }, () => {
            const shard = Math.floor(random() * shards);
            return copyRow(shard, ++seqs[shard]!);
          });
          const orders = rows.map(() => order++);
          rows.forEach((row, i) => {
            index.add(row, orders[i]!, false);
            plain.add(row, orders[i]!, false);
          });
          for (const [i, row] of rows.entries()) expect(index.givesWay(row, orders[i]!)).toBe(plain.givesWay(row, orders[i]!));
        } else if (action < 0.75) {
          // Covered copies loaded from the lake (imported ones without offsets among them), each added once.
          for (let i = 0; i < 5; i++) {
            const imported = random() < 0.3;
            const row = imported ? { ...copyRow(-1, NaN) } : copyRow(Math.floor(random() * shards), Math.floor(random() * 50));
            if (!imported && index.holds(row)) continue;
            expect(index.holds(row)).toBe(plain.holds(row));
            index.add(row, 0, true);
            plain.add(row, 0, true);
          }
        } else if (action < 0.9) {
          for (let shard = 0; shard < shards; shard++) watermark[shard] = Math.min(seqs[shard]!, watermark[shard]! + Math.floor(random() * 10));
          const giveWay = index.cover(watermark).map(({ shard, seq }) => `${shard}/${seq}`).sort();
          expect(giveWay).toEqual(plain.cover(watermark));
        } else {
          const before = Math.floor(random() * 5_000_000);
          index.evictCovered(before);
          plain.evictCovered(before);
        }
        expect(index.size).toBe(plain.copies.length);
      }
      // Every copy still answers as the list does, after whatever compactions the evictions caused.
      for (const { row, order: at } of plain.copies) {
        if (row.shard >= 0) expect(index.holds(row)).toBe(true);
        expect(index.givesWay(row, at)).toBe(plain.givesWay(row, at));
      }
      // Most copies covered and evicted: the index compacts, and answers the same after.
      expect(index.cover(seqs).map(({ shard, seq }) => `${shard}/${seq}`).sort()).toEqual(plain.cover(seqs));
      index.evictCovered(4_000_000);
      plain.evictCovered(4_000_000);
      expect(index.size).toBe(plain.copies.length);
      for (const { row, order: at } of plain.copies) expect(index.givesWay(row, at)).toBe(plain.givesWay(row, at));
      const late = Array.from({ length: 50 }, () => copyRow(0, ++seqs[0]!));
      for (const row of late) {
        index.add(row, order, false);
        plain.add(row, order, false);
        expect(index.givesWay(row, order)).toBe(plain.givesWay(row, order));
        order++;
      }
    });
  }

  it('evicts covered copies and forgets everything on demand, and its memory shrinks back', () => {
    const index = new CopyIndex(1000);
    for (let i = 0; i < 100_000; i++) index.add({ fingerprint: [i, 0, 0, i], timeUs: i, shard: 0, seq: i + 1 }, i + 1, false);
    const grown = index.bytes;
    index.cover([50_000]);
    index.evictCovered(Infinity);
    expect(index.size).toBe(50_000);
    expect(index.holds({ fingerprint: [10, 0, 0, 10], timeUs: 10, shard: 0, seq: 11 })).toBe(false);
    expect(index.holds({ fingerprint: [60_000, 0, 0, 60_000], timeUs: 60_000, shard: 0, seq: 60_001 })).toBe(true);
    index.clear();
    expect(index.size).toBe(0);
    expect(index.bytes).toBeLessThan(grown / 50);
  });
});
