import { crc32 } from 'node:zlib';

/**
 * On-disk framing of the embedded log. A frame holds the records of one append call (one group of records
 * for one shard), so that one checksum, and later one authenticated encryption, covers many records.
 *
 * Layout, little-endian:
 *   0  u32  magic 'STR1'
 *   4  u32  frame length in bytes, header included
 *   8  u32  CRC-32 of bytes [12, length)
 *  12  u8   format flags (0: plain records; other values are reserved for encrypted bodies)
 *  13  u8×3 reserved, zero
 *  16  u32  base seq, low 32 bits
 *  20  u32  base seq, high 21 bits
 *  24  u32  record count
 *  28  u32  reserved, zero
 *  32  f64  append time, ms since the epoch
 *  40  body: per record, u32 length then the record's bytes
 */
export const FRAME_MAGIC = 0x31525453; // 'STR1' read little-endian
export const FRAME_HEADER_BYTES = 40;
/** A frame larger than this is refused when written and treated as corrupt when read. */
export const MAX_FRAME_BYTES = 256 * 1024 * 1024;

export interface DecodedFrame {
  readonly baseSeq: number;
  readonly count: number;
  readonly appendedAt: number;
  /** Total bytes of the frame on disk. */
  readonly length: number;
  /** The frame's records, still length-prefixed; a view into the buffer the frame was decoded from. */
  readonly body: Buffer;
}

/** Encodes records into one frame whose first record gets `baseSeq`. */
export function encodeFrame(baseSeq: number, records: readonly (Buffer | string)[], appendedAt: number): Buffer {
  let length = FRAME_HEADER_BYTES;
  const sizes = new Array<number>(records.length);
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    sizes[i] = typeof record === 'string' ? Buffer.byteLength(record) : record.length;
    length += 4 + sizes[i]!;
  }
  if (length > MAX_FRAME_BYTES) throw new RangeError(`a frame of ${length} bytes exceeds ${MAX_FRAME_BYTES}`);
  const frame = Buffer.allocUnsafe(length);
  frame.writeUInt32LE(FRAME_MAGIC, 0);
  frame.writeUInt32LE(length, 4);
  frame.writeUInt32LE(0, 12);
  frame.writeUInt32LE(baseSeq % 0x1_0000_0000, 16);
  frame.writeUInt32LE(Math.floor(baseSeq / 0x1_0000_0000), 20);
  frame.writeUInt32LE(records.length, 24);
  frame.writeUInt32LE(0, 28);
  frame.writeDoubleLE(appendedAt, 32);
  let at = FRAME_HEADER_BYTES;
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    const size = sizes[i]!;
    frame.writeUInt32LE(size, at);
    if (typeof record === 'string') frame.write(record, at + 4, size, 'utf8');
    else record.copy(frame, at + 4);
    at += 4 + size;
  }
  frame.writeUInt32LE(crc32(frame.subarray(12, length)), 8);
  return frame;
}

/** Why a frame could not be decoded at some position. */
export type FrameProblem = 'short' | 'magic' | 'length' | 'checksum' | 'body';

/**
 * Decodes the frame starting at `offset` in `buffer`. Answers the problem instead when the bytes there are
 * not a complete, intact frame: `short` when the buffer ends before the frame does (read more, or a torn
 * tail), anything else when the bytes are corrupt.
 */
export function decodeFrame(buffer: Buffer, offset: number): DecodedFrame | FrameProblem {
  if (buffer.length - offset < FRAME_HEADER_BYTES) return 'short';
  if (buffer.readUInt32LE(offset) !== FRAME_MAGIC) return 'magic';
  const length = buffer.readUInt32LE(offset + 4);
  if (length < FRAME_HEADER_BYTES || length > MAX_FRAME_BYTES) return 'length';
  if (buffer.length - offset < length) return 'short';
  const expected = buffer.readUInt32LE(offset + 8);
  if (crc32(buffer.subarray(offset + 12, offset + length)) !== expected) return 'checksum';
  if (buffer[offset + 12] !== 0) return 'body';
  const baseSeq = buffer.readUInt32LE(offset + 16) + buffer.readUInt32LE(offset + 20) * 0x1_0000_0000;
  const count = buffer.readUInt32LE(offset + 24);
  const appendedAt = buffer.readDoubleLE(offset + 32);
  const body = buffer.subarray(offset + FRAME_HEADER_BYTES, offset + length);
  if (!bodyHoldsRecords(body, count)) return 'body';
  return { baseSeq, count, appendedAt, length, body };
}

function bodyHoldsRecords(body: Buffer, count: number): boolean {
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 4 > body.length) return false;
    at += 4 + body.readUInt32LE(at);
  }
  return at === body.length;
}

/** The records of a decoded frame, as views into its buffer (copy them to keep them past the buffer). */
export function frameRecords(frame: DecodedFrame): Buffer[] {
  const records: Buffer[] = new Array<Buffer>(frame.count);
  let at = 0;
  for (let i = 0; i < frame.count; i++) {
    const length = frame.body.readUInt32LE(at);
    records[i] = frame.body.subarray(at + 4, at + 4 + length);
    at += 4 + length;
  }
  return records;
}
