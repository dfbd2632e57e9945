import { open } from 'node:fs/promises';
import { asSeq, type RecordBatch, type Seq } from '../types.js';
import { CorruptLogError } from './errors.js';
import { decodeFrame, openFrame, type DecodedFrame } from './frame.js';

/** Reads fetch at least this much of a segment at a time. */
const READ_CHUNK_BYTES = 1024 * 1024;

/** Where a read of one segment stopped: the next unread frame and the seq it starts with. */
export interface ReadStop {
  readonly position: number;
  readonly nextSeq: number;
}

/** Frames read in bulk: the part of each frame's body to take, without an object per record. */
export class FrameBatch implements RecordBatch {
  private readonly frames: { body: Buffer; skip: number; take: number; baseSeq: number; appendedAt: number }[] = [];
  count = 0;
  bytes = 0;

  add(frame: DecodedFrame, skip: number, take: number): void {
    this.frames.push({ body: frame.body, skip, take, baseSeq: frame.baseSeq, appendedAt: frame.appendedAt });
    this.count += take;
    this.bytes += frame.body.length;
  }

  get firstSeq(): Seq {
    const first = this.frames[0];
    return asSeq(first ? first.baseSeq + first.skip : 0);
  }

  get firstAppendedAt(): number {
    return this.frames[0]?.appendedAt ?? 0;
  }

  forEach(visit: (seq: number, body: Buffer, start: number, end: number) => void): void {
    for (const frame of this.frames) {
      let at = 0;
      for (let k = 0; k < frame.skip + frame.take; k++) {
        const length = frame.body.readUInt32LE(at);
        if (k >= frame.skip) visit(frame.baseSeq + k, frame.body, at + 4, at + 4 + length);
        at += 4 + length;
      }
    }
  }
}

/**
 * Walks the frames of one segment file from byte `start.position` (a frame start) up to byte `end`, handing
 * each frame to `take` with how many of its records to skip (before `fromSeq`) and to take (at most `limit` in
 * all, none past `durableSeq`). Stops before a frame whose records are all past `durableSeq` (once the seq at
 * the position is known), so a frame still being written is never decoded.
 *
 * With `key` (the segment's data key) every frame must be sealed, and each frame taken is opened under it; a
 * plain log (`key` null) takes only plain frames. A frame inside the durable range that fails its checksum or
 * its authentication, that does not continue the seqs before it, or that is plain where a sealed one belongs
 * throws {@link CorruptLogError} naming the segment and the byte: it is never served. Frames before it may
 * already have been handed to `take`; callers keep those and stop there (see ShardLog.read).
 */
export async function scanSegment(
  path: string,
  start: { position: number; nextSeq: number | null },
  end: number,
  fromSeq: number,
  limit: number,
  durableSeq: number,
  key: Buffer | null,
  take: (frame: DecodedFrame, skip: number, count: number) => void,
): Promise<ReadStop> {
  let position = start.position;
  let nextSeq = start.nextSeq;
  const handle = await open(path, 'r');
  try {
    let buffer = Buffer.alloc(0);
    let bufferStart = position;
    let wanted = limit;
    while (position < end && wanted > 0 && (nextSeq === null || nextSeq <= durableSeq)) {
      const offset = position - bufferStart;
      const decoded = decodeFrame(buffer, offset);
      if (decoded === 'short') {
        const available = buffer.length - offset;
        const header = available >= 8 ? buffer.readUInt32LE(offset + 4) : 0;
        const size = Math.min(Math.max(READ_CHUNK_BYTES, header), end - position);
        if (size <= available) throw new CorruptLogError(`${path}: truncated frame at byte ${position}`);
        buffer = Buffer.allocUnsafe(size);
        const { bytesRead } = await handle.read(buffer, 0, size, position);
        buffer = buffer.subarray(0, bytesRead);
        bufferStart = position;
        if (bytesRead < size) throw new CorruptLogError(`${path}: file ends before byte ${end}`);
        continue;
      }
      if (typeof decoded === 'string') throw new CorruptLogError(`${path}: corrupt frame at byte ${position} (${decoded})`);
      if (nextSeq !== null && decoded.baseSeq !== nextSeq) {
        throw new CorruptLogError(`${path}: the frame at byte ${position} starts at seq ${decoded.baseSeq} where ${nextSeq} was expected`);
      }
      if (decoded.sealed !== (key !== null)) {
        throw new CorruptLogError(
          decoded.sealed
            ? `${path}: the frame at byte ${position} is encrypted and no master key was given`
            : `${path}: the frame at byte ${position} is not encrypted in an encrypted log: it was not written by Strata`,
        );
      }
      const skip = Math.max(0, Math.min(decoded.count, fromSeq - decoded.baseSeq));
      const last = Math.min(decoded.baseSeq + decoded.count - 1, durableSeq);
      const count = Math.max(0, Math.min(wanted, last - (decoded.baseSeq + skip) + 1));
      if (count > 0) take(key === null ? decoded : opened(path, position, decoded, key), skip, count);
      wanted -= count;
      // A frame not read to its end is where the next read starts.
      if (skip + count < decoded.count) return { position, nextSeq: decoded.baseSeq };
      position += decoded.length;
      nextSeq = decoded.baseSeq + decoded.count;
    }
    return { position, nextSeq: nextSeq ?? -1 };
  } finally {
    await handle.close();
  }
}

/** A sealed frame opened under its segment's key, or the error that keeps it from being served. */
function opened(path: string, position: number, frame: DecodedFrame, key: Buffer): DecodedFrame {
  const result = openFrame(frame, key);
  if (typeof result !== 'string') return result;
  const seqs = `seqs ${frame.baseSeq}-${frame.baseSeq + frame.count - 1} by its header`;
  throw new CorruptLogError(
    result === 'auth'
      ? `${path}: the frame at byte ${position} (${seqs}) fails authentication: its bytes were altered, so its records are not served`
      : `${path}: the frame at byte ${position} (${seqs}) decrypts to malformed records, so they are not served`,
  );
}
