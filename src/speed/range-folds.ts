/** A shard's micro-batch as the speed layer holds it: the seqs its partial rows cover. */
export interface SeqRange {
  readonly first: number;
  readonly last: number;
}

/** Adjacent ranges `start..end` (indexes into the shard's list) to fold into one. */
export interface RangeFold {
  readonly start: number;
  readonly end: number;
}

/**
 * Which of a shard's ranges (in seq order) to fold, so that it holds at most `maxRanges` at the cost of a fold
 * every `maxRanges / 2` micro-batches, not one every micro-batch.
 *
 * A fold reads the partial rows of every range it merges, so it should merge many small ranges once rather than
 * grow one range a micro-batch at a time. Only ranges below half of `maxRecords` take part: those made by a fold
 * are mostly larger and stay as they are (merging one of them with a single new micro-batch would fold again at
 * the next step, and each time reread its rows). From the oldest, adjacent small ranges are packed into runs of
 * at most `maxRecords` records (what a later W that cuts a range recomputes from the log stays one micro-batch's
 * worth) until the shard is down to half of `maxRanges`, or no two small neighbours are left.
 *
 * Past the bound with nothing to pack (every range already large, as after a long wait for a batch run at a high
 * rate), nothing is folded: the shard holds more ranges rather than ranges that would cost more to recompute.
 */
export function planRangeFolds(ranges: readonly SeqRange[], maxRanges: number, maxRecords: number): RangeFold[] {
  if (ranges.length <= maxRanges) return [];
  const target = Math.max(1, Math.floor(maxRanges / 2));
  const small = (range: SeqRange) => range.last - range.first + 1 < maxRecords / 2;
  const folds: RangeFold[] = [];
  let count = ranges.length;
  let start = 0;
  while (start < ranges.length && count > target) {
    if (!small(ranges[start]!)) {
      start++;
      continue;
    }
    let end = start;
    while (end + 1 < ranges.length && small(ranges[end + 1]!) && ranges[end + 1]!.last - ranges[start]!.first + 1 <= maxRecords && count - (end - start) > target) end++;
    if (end > start) {
      folds.push({ start, end });
      count -= end - start;
    }
    start = end + 1;
  }
  return folds;
}
