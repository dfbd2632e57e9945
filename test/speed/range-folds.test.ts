import { describe, expect, it } from 'vitest';
import { planRangeFolds, type SeqRange } from '../../src/speed/range-folds.js';

/**
 * The speed layer keeps each shard's partial rows per micro-batch (a range of seqs) and folds old ranges into
 * one past `speed.maxRangesPerShard`. A fold rereads the rows of every range it merges and holds up the step
 * that runs it, so it must come rarely: once the bound is reached, not at every micro-batch after.
 */
describe('which micro-batch ranges the speed layer folds', () => {
  const MAX_RECORDS = 50_000;
  /** `count` ranges of `size` seqs each, from seq `first`. */
  const ranges = (count: number, size: number, first = 1): SeqRange[] =>
    Array.from({ length: count }, (_, i) => ({ first: first + i * size, last: first + (i + 1) * size - 1 }));
  /** The shard's ranges after the folds. */
  const apply = (list: readonly SeqRange[], folds: ReturnType<typeof planRangeFolds>): SeqRange[] => {
    const out: SeqRange[] = [];
    for (let i = 0; i < list.length; i++) {
      const fold = folds.find((candidate) => candidate.start === i);
      if (!fold) {
        out.push(list[i]!);
        continue;
      }
      out.push({ first: list[fold.start]!.first, last: list[fold.end]!.last });
      i = fold.end;
    }
    return out;
  };

  it('folds nothing up to the bound', () => {
    expect(planRangeFolds(ranges(128, 1000), 128, MAX_RECORDS)).toEqual([]);
  });

  it('past the bound, packs the oldest small ranges into runs of one micro-batch at most, down to half the bound', () => {
    const list = ranges(129, 1000);
    const folds = planRangeFolds(list, 128, MAX_RECORDS);
    const after = apply(list, folds);
    expect(after).toHaveLength(64);
    for (const fold of folds) {
      expect(fold.end).toBeGreaterThan(fold.start);
      expect(list[fold.end]!.last - list[fold.start]!.first + 1).toBeLessThanOrEqual(MAX_RECORDS);
    }
    // Still the same seqs, in order, without gaps.
    expect(after[0]!.first).toBe(1);
    expect(after.at(-1)!.last).toBe(129 * 1000);
    for (let i = 1; i < after.length; i++) expect(after[i]!.first).toBe(after[i - 1]!.last + 1);
    // The oldest go first: the newest micro-batches stay as they are.
    expect(after.slice(-40)).toEqual(list.slice(-40));
  });

  it('leaves a range a fold made large alone instead of growing it by one micro-batch at a time', () => {
    // A 47,000-record range would take in one more 2,000-record micro-batch, and again at the next step.
    const list = [{ first: 1, last: 47_000 }, ...ranges(128, 2000, 47_001)];
    const folds = planRangeFolds(list, 128, MAX_RECORDS);
    expect(folds.length).toBeGreaterThan(0);
    expect(folds.every((fold) => fold.start > 0)).toBe(true);
    expect(apply(list, folds)).toHaveLength(64);
  });

  it('folds once every half-bound micro-batches under a steady stream, never at every one', () => {
    let list: SeqRange[] = [];
    let next = 1;
    let foldingSteps = 0;
    let mostRanges = 0;
    let largestRange = 0;
    const steps = 2000;
    for (let step = 0; step < steps; step++) {
      list.push({ first: next, last: next + 999 });
      next += 1000;
      const folds = planRangeFolds(list, 128, MAX_RECORDS);
      if (folds.length > 0) foldingSteps++;
      list = apply(list, folds);
      mostRanges = Math.max(mostRanges, list.length);
      largestRange = Math.max(largestRange, ...list.map((range) => range.last - range.first + 1));
    }
    expect(mostRanges).toBe(128);
    expect(largestRange).toBeLessThanOrEqual(MAX_RECORDS);
    // The old rule (fold the first two neighbours that fit) folded at every step once the bound was reached.
    expect(foldingSteps).toBeLessThanOrEqual(Math.ceil(steps / 64));
    expect(foldingSteps).toBeGreaterThan(0);
  });

  it('folds nothing when every range is already large, rather than exceed a micro-batch per range', () => {
    expect(planRangeFolds(ranges(130, 30_000), 128, MAX_RECORDS)).toEqual([]);
  });
});
