import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * On-disk framing of the embedded log. A frame holds the records of one append call (one group of records
 * for one shard), so that one checksum and one authenticated encryption cover many records.
 *
 * Layout, little-endian:
 *   0  u32  magic 'STR1'
 *   4  u32  frame length in bytes, header included
 *   8  u32  CRC-32 of bytes [12, length)
 *  12  u8   format flags: 0 plain records; 1 records sealed with AES-256-GCM ({@link FRAME_SEALED})
 *  13  u8×3 reserved, zero
 *  16  u32  base seq, low 32 bits
 *  20  u32  base seq, high 21 bits
 *  24  u32  record count
 *  28  u32  reserved, zero
 *  32  f64  append time, ms since the epoch
 *  40  body. Plain: per record, u32 length then the record's bytes. Sealed: a 12-byte nonce, the plain body
 *      encrypted (same length), the 16-byte GCM tag.
 *
 * A sealed frame is encrypted under its segment's data key (the reader finds it from the segment: see
 * shard-log.ts), with a fresh random nonce per frame and header bytes [12, 40) (flags, seq, count, time) as
 * associated data, so that neither the records nor their seqs can be altered unnoticed. The CRC still covers
 * the frame as written, so recovery tells a torn write from an intact frame without the key.
 */
export const FRAME_MAGIC = 0x31525453; // 'STR1' read little-endian
export const FRAME_HEADER_BYTES = 40;
/** The flags value of a frame whose body is sealed with AES-256-GCM. */
export const FRAME_SEALED = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** What sealing adds to a frame: the nonce and the tag. */
export const SEAL_OVERHEAD_BYTES = NONCE_BYTES + TAG_BYTES;
const MAGIC_BYTES = Buffer.from('STR1', 'latin1');
/** A frame larger than this is refused when written and treated as corrupt when read. */
export const MAX_FRAME_BYTES = 256 * 1024 * 1024;

export interface DecodedFrame {
  readonly baseSeq: number;
  readonly count: number;
  readonly appendedAt: number;
  /** Total bytes of the frame on disk. */
  readonly length: number;
  /**
   * True while the body is still sealed (nonce, ciphertext, tag): {@link openFrame} gives the records. A plain
   * frame's body is its records, still length-prefixed, as a view into the buffer the frame was decoded from.
   */
  readonly sealed: boolean;
  readonly body: Buffer;
  /** The frame's 40 header bytes (a view): a sealed frame's associated data comes from them. */
  readonly header: Buffer;
}

/**
 * Encodes records into one frame whose first record gets `baseSeq`; with `key` (32 bytes), the body is sealed
 * with AES-256-GCM under it, once for the whole frame.
 */
export function encodeFrame(baseSeq: number, records: readonly (Buffer | string)[], appendedAt: number, key: Buffer | null = null): Buffer {
  const frame = encodeUnsealedFrame(baseSeq, records, appendedAt, key !== null);
  if (key !== null) sealFrame(frame, key);
  return frame;
}

/**
 * Encodes records into one frame, as {@link encodeFrame}; with `sealable`, the frame has room for the nonce and
 * the tag and is finished by {@link sealFrame} once its key is known (the log learns which segment, and so which
 * key, a frame goes to only when it writes it). Without `sealable` the frame is finished here.
 */
export function encodeUnsealedFrame(baseSeq: number, records: readonly (Buffer | string)[], appendedAt: number, sealable: boolean): Buffer {
  let length = FRAME_HEADER_BYTES + (sealable ? SEAL_OVERHEAD_BYTES : 0);
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
  frame.writeUInt32LE(sealable ? FRAME_SEALED : 0, 12);
  frame.writeUInt32LE(baseSeq % 0x1_0000_0000, 16);
  frame.writeUInt32LE(Math.floor(baseSeq / 0x1_0000_0000), 20);
  frame.writeUInt32LE(records.length, 24);
  frame.writeUInt32LE(0, 28);
  frame.writeDoubleLE(appendedAt, 32);
  let at = FRAME_HEADER_BYTES + (sealable ? NONCE_BYTES : 0);
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    const size = sizes[i]!;
    frame.writeUInt32LE(size, at);
    if (typeof record === 'string') frame.write(record, at + 4, size, 'utf8');
    else record.copy(frame, at + 4);
    at += 4 + size;
  }
  if (!sealable) frame.writeUInt32LE(crc32(frame.subarray(12, length)), 8);
  return frame;
}

/** Seals a frame from {@link encodeUnsealedFrame} (`sealable`) under `key`, in place, and sets its checksum. */
export function sealFrame(frame: Buffer, key: Buffer): void {
  if (frame[12] !== FRAME_SEALED) throw new Error('sealFrame needs a frame encoded as sealable');
  seal(frame, FRAME_HEADER_BYTES + NONCE_BYTES, frame.length - TAG_BYTES, key);
  frame.writeUInt32LE(crc32(frame.subarray(12, frame.length)), 8);
}

/** Encrypts `frame[bodyStart, bodyEnd)` where it lies, writing the nonce before it and the tag after it. */
function seal(frame: Buffer, bodyStart: number, bodyEnd: number, key: Buffer): void {
  const nonce = randomBytes(NONCE_BYTES);
  nonce.copy(frame, FRAME_HEADER_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(frame.subarray(12, FRAME_HEADER_BYTES));
  const encrypted = cipher.update(frame.subarray(bodyStart, bodyEnd));
  const rest = cipher.final();
  // GCM is a stream mode: update answers every byte, final none; both are copied in case that ever changes.
  encrypted.copy(frame, bodyStart);
  rest.copy(frame, bodyStart + encrypted.length);
  cipher.getAuthTag().copy(frame, bodyEnd);
}

/**
 * The records of a sealed frame, decrypted under `key` (its segment's data key): `auth` when the tag does not
 * match (the bytes, or the header's seq, count or time, were altered, or another key sealed it), in which case
 * nothing of the frame may be served.
 */
export function openFrame(frame: DecodedFrame, key: Buffer): DecodedFrame | 'auth' | 'body' {
  if (!frame.sealed) return frame;
  const sealed = frame.body;
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, NONCE_BYTES));
  decipher.setAAD(frame.header.subarray(12, FRAME_HEADER_BYTES));
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  let body: Buffer;
  try {
    const head = decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES));
    const tail = decipher.final();
    body = tail.length === 0 ? head : Buffer.concat([head, tail]);
  } catch {
    return 'auth';
  }
  if (!bodyHoldsRecords(body, frame.count)) return 'body';
  return { ...frame, sealed: false, body };
}

/**
 * The first intact frame (checksum and structure) that starts after byte `from` of `buffer` and whose first seq
 * is at least `minSeq`: where reading can go on past a corrupt frame. Null when there is none (a torn tail).
 */
export function findNextFrame(buffer: Buffer, from: number, minSeq: number): { position: number; frame: DecodedFrame } | null {
  for (let at = buffer.indexOf(MAGIC_BYTES, from); at !== -1; at = buffer.indexOf(MAGIC_BYTES, at + 1)) {
    const decoded = decodeFrame(buffer, at);
    if (typeof decoded !== 'string' && decoded.count > 0 && decoded.baseSeq >= minSeq) return { position: at, frame: decoded };
  }
  return null;
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
  const flags = buffer[offset + 12];
  if (flags !== 0 && flags !== FRAME_SEALED) return 'body';
  const baseSeq = buffer.readUInt32LE(offset + 16) + buffer.readUInt32LE(offset + 20) * 0x1_0000_0000;
  const count = buffer.readUInt32LE(offset + 24);
  const appendedAt = buffer.readDoubleLE(offset + 32);
  const body = buffer.subarray(offset + FRAME_HEADER_BYTES, offset + length);
  const sealed = flags === FRAME_SEALED;
  // A sealed body's structure is checked once it is opened; before that only its size can be.
  if (sealed ? body.length < SEAL_OVERHEAD_BYTES + 4 * count : !bodyHoldsRecords(body, count)) return 'body';
  return { baseSeq, count, appendedAt, length, sealed, body, header: buffer.subarray(offset, offset + FRAME_HEADER_BYTES) };
}

function bodyHoldsRecords(body: Buffer, count: number): boolean {
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 4 > body.length) return false;
    at += 4 + body.readUInt32LE(at);
  }
  return at === body.length;
}

/** The records of a decoded, plain or opened, frame, as views into its buffer (copy them to keep them past the buffer). */
export function frameRecords(frame: DecodedFrame): Buffer[] {
  if (frame.sealed) throw new Error('frameRecords needs an opened frame');
  const records: Buffer[] = new Array<Buffer>(frame.count);
  let at = 0;
  for (let i = 0; i < frame.count; i++) {
    const length = frame.body.readUInt32LE(at);
    records[i] = frame.body.subarray(at + 4, at + 4 + length);
    at += 4 + length;
  }
  return records;
}
