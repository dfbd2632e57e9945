import { asSeq, type Seq } from '../stream/index.js';

/**
 * Kinesis names a shard `shardId-000000000000` and a record by a decimal "sequence number"; Strata names them by
 * shard index and seq. The mapping, fixed forever since producers and consumers keep these strings:
 *
 * - ShardId: `shardId-` and the shard index zero-padded to 12 digits, as AWS spells them.
 * - SequenceNumber: 27 decimal digits, `K SSSSSS QQQQQQQQQQQQQQQQQQQQ`: one kind digit, the shard index in 6 digits
 *   and the seq in 20 (a 64-bit seq fits). Fixed width makes string order, numeric order and offset order agree
 *   within a shard; the leading kind digit is never 0, so the text matches AWS's pattern `0|([1-9]\d{0,128})`.
 *   Kind 1 is a record of the log (readable with GetRecords); kind 2 is a record the Kinesis API accepted into the
 *   stream's quarantine (its seq counts that stream's quarantine, see quarantine-store.ts), which GetRecords never
 *   returns.
 */

const SHARD_ID_PREFIX = 'shardId-';
const SHARD_ID_DIGITS = 12;
const SHARD_DIGITS = 6;
const SEQ_DIGITS = 20;

/** Where a sequence number points: a record of a shard's log, or one of the stream's quarantine. */
export type SequenceKind = 'log' | 'quarantine';

const KIND_DIGIT: Record<SequenceKind, string> = { log: '1', quarantine: '2' };

/** `shardId-000000000003` for shard 3. */
export function shardIdOf(shard: number): string {
  return `${SHARD_ID_PREFIX}${String(shard).padStart(SHARD_ID_DIGITS, '0')}`;
}

/** The shard index of a ShardId, or null when it is not one of `shardCount` shards. */
export function parseShardId(shardId: string, shardCount: number): number | null {
  // AWS clients also pass the bare number ("0") here and there; accept both spellings.
  const digits = shardId.startsWith(SHARD_ID_PREFIX) ? shardId.slice(SHARD_ID_PREFIX.length) : shardId;
  if (!/^\d{1,12}$/.test(digits)) return null;
  const shard = Number(digits);
  return shard < shardCount ? shard : null;
}

/** The sequence number of seq `seq` of shard `shard`. */
export function encodeSequenceNumber(kind: SequenceKind, shard: number, seq: number): string {
  return `${KIND_DIGIT[kind]}${String(shard).padStart(SHARD_DIGITS, '0')}${String(seq).padStart(SEQ_DIGITS, '0')}`;
}

/** What a sequence number points at, or null when it is not one Strata made. */
export function decodeSequenceNumber(text: string): { kind: SequenceKind; shard: number; seq: Seq } | null {
  if (text.length !== 1 + SHARD_DIGITS + SEQ_DIGITS || !/^\d+$/.test(text)) return null;
  const kind = text[0] === KIND_DIGIT.log ? 'log' : text[0] === KIND_DIGIT.quarantine ? 'quarantine' : null;
  const seq = Number(text.slice(1 + SHARD_DIGITS));
  if (kind === null || !Number.isSafeInteger(seq)) return null;
  return { kind, shard: Number(text.slice(1, 1 + SHARD_DIGITS)), seq: asSeq(seq) };
}
