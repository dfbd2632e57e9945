import { mkdir, open, readdir, readFile, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { asSeq, type RecordData, type Seq, type StoredRecord } from '../types.js';
import { syncDirectory } from '../../util/durable-fs.js';
import { CorruptLogError, LogFailedError } from './errors.js';
import { decodeFrame, encodeFrame, frameRecords, type DecodedFrame } from './frame.js';
import { FrameBatch, scanSegment } from './segment-read.js';

export { CorruptLogError, LogFailedError };

export interface ShardLogOptions {
  /** A segment is sealed and a new one started once it holds at least this many bytes. */
  readonly segmentBytes: number;
  /** Called once per recovered shard whose tail had to be cut, for the operator's log. */
  readonly onTruncate?: (info: { path: string; keptBytes: number; cutBytes: number; reason: string }) => void;
  /** Told after every group commit: records up to `seq` are durable and readable. */
  readonly onDurable?: (seq: number) => void;
}

const SEGMENT_SUFFIX = '.seg';
/** A sparse index entry is kept at most every this many bytes of a segment. */
const INDEX_SPACING_BYTES = 64 * 1024;

interface Segment {
  readonly baseSeq: number;
  readonly path: string;
  /** Bytes that hold durable frames. For the active segment this grows after every sync. */
  size: number;
  /** Sparse (seq, byte position) pairs, ascending; built on append, or by one scan on first read. */
  index: { seqs: number[]; positions: number[] } | null;
}

interface PendingAppend {
  readonly frame: Buffer;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly resolve: (seq: Seq) => void;
  readonly reject: (error: Error) => void;
}

interface AppendWaiter {
  readonly afterSeq: number;
  readonly resolve: (seq: Seq) => void;
  readonly timer: NodeJS.Timeout;
}

function segmentName(baseSeq: number): string {
  return String(baseSeq).padStart(20, '0') + SEGMENT_SUFFIX;
}

/**
 * One shard of the embedded log: a folder of segment files, each named by the seq of its first record.
 *
 * Appends are group-committed: every append call becomes one checksummed frame, and all frames queued while
 * a sync runs are written with one `writev` and made durable with one `fdatasync`. An append resolves only
 * after that sync, so an acknowledged record survives a process kill or a power cut. Readers never see a
 * record before it is durable, so a torn tail that recovery cuts was never observed by anyone.
 */
export class ShardLog {
  private readonly segments: Segment[];
  private active: FileHandle;
  private nextSeq: number;
  private durableSeq: number;
  private queue: PendingAppend[] = [];
  private flushing: Promise<void> | null = null;
  private failure: Error | null = null;
  private closed = false;
  private waiters: AppendWaiter[] = [];

  private constructor(
    private readonly dir: string,
    private readonly options: ShardLogOptions,
    segments: Segment[],
    active: FileHandle,
    lastSeq: number,
  ) {
    this.segments = segments;
    this.active = active;
    this.nextSeq = lastSeq + 1;
    this.durableSeq = lastSeq;
  }

  /** Opens (creating if needed) the shard in `dir`, recovering its tail. */
  static async open(dir: string, options: ShardLogOptions): Promise<ShardLog> {
    await mkdir(dir, { recursive: true });
    const names = (await readdir(dir)).filter((name) => /^\d{20}\.seg$/.test(name)).sort();
    const segments: Segment[] = [];
    for (const name of names) {
      const path = join(dir, name);
      segments.push({ baseSeq: Number(name.slice(0, 20)), path, size: (await stat(path)).size, index: null });
    }
    if (segments.length === 0) {
      const path = join(dir, segmentName(1));
      await (await open(path, 'a')).close();
      await syncDirectory(dir);
      segments.push({ baseSeq: 1, path, size: 0, index: null });
    }
    const last = segments[segments.length - 1]!;
    const lastSeq = await recoverTail(last, options);
    const active = await open(last.path, 'r+');
    return new ShardLog(dir, options, segments, active, lastSeq);
  }

  /** The newest durable seq; 0 when nothing was ever appended. */
  get lastSeq(): Seq {
    return asSeq(this.durableSeq);
  }

  /** The oldest seq still kept, or null when the shard is empty. */
  get firstSeq(): Seq | null {
    const first = this.segments[0]!;
    return first.baseSeq <= this.durableSeq ? asSeq(first.baseSeq) : null;
  }

  get bytes(): number {
    return this.segments.reduce((sum, segment) => sum + segment.size, 0);
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** Appends records as one frame; resolves with the first record's seq once all are durable. */
  append(records: readonly RecordData[]): Promise<Seq> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new LogFailedError(`shard log ${this.dir} is closed`));
    if (records.length === 0) throw new RangeError('append needs at least one record');
    const firstSeq = this.nextSeq;
    const lastSeq = firstSeq + records.length - 1;
    const frame = encodeFrame(firstSeq, records, Date.now());
    this.nextSeq = lastSeq + 1;
    return new Promise<Seq>((resolve, reject) => {
      this.queue.push({ frame, firstSeq, lastSeq, resolve, reject });
      this.flushing ??= this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.failure) {
        const batch = this.queue;
        this.queue = [];
        try {
          await this.writeDurably(batch);
        } catch (error) {
          // After a failed write or fsync the file's state is unknown (fsyncgate): stop accepting, let the
          // next start recover from what is really on disk.
          this.failure = new LogFailedError(`shard log ${this.dir} failed: ${(error as Error).message}`);
          for (const pending of batch) pending.reject(this.failure);
        }
      }
      if (this.failure) {
        for (const pending of this.queue) pending.reject(this.failure);
        this.queue = [];
      }
    } finally {
      this.flushing = null;
    }
  }

  private async writeDurably(batch: PendingAppend[]): Promise<void> {
    let segment = this.segments[this.segments.length - 1]!;
    if (segment.size >= this.options.segmentBytes) segment = await this.roll(batch[0]!.firstSeq);
    const frames = batch.map((pending) => pending.frame);
    const total = frames.reduce((sum, frame) => sum + frame.length, 0);
    let written = 0;
    while (written < total) {
      const rest = written === 0 ? frames : [Buffer.concat(frames).subarray(written)];
      const { bytesWritten } = await this.active.writev(rest, segment.size + written);
      if (bytesWritten <= 0) throw new Error('writev wrote nothing');
      written += bytesWritten;
    }
    await this.active.datasync();
    let position = segment.size;
    for (const pending of batch) {
      noteInIndex(segment, pending.firstSeq, position);
      position += pending.frame.length;
    }
    segment.size = position;
    const last = batch[batch.length - 1]!.lastSeq;
    if (last <= this.durableSeq) throw new Error(`durable seq would go back from ${this.durableSeq} to ${last}`);
    this.durableSeq = last;
    for (const pending of batch) pending.resolve(asSeq(pending.firstSeq));
    this.wakeWaiters();
    this.options.onDurable?.(last);
  }

  /** Seals the active segment and starts a new one whose first record will be `baseSeq`. */
  private async roll(baseSeq: number): Promise<Segment> {
    const path = join(this.dir, segmentName(baseSeq));
    const next = await open(path, 'wx+');
    await syncDirectory(this.dir);
    await this.active.close();
    this.active = next;
    const segment: Segment = { baseSeq, path, size: 0, index: { seqs: [], positions: [] } };
    this.segments.push(segment);
    return segment;
  }

  /** Reads up to `limit` durable records with seq >= fromSeq. Records before the oldest kept one are gone. */
  async read(fromSeq: number, limit: number): Promise<StoredRecord[]> {
    const out: StoredRecord[] = [];
    await this.scan(fromSeq, limit, (frame, skip, take) => {
      const records = frameRecords(frame);
      for (let k = skip; k < skip + take; k++) {
        // A view into this read's own buffer, not a copy: the buffer is never reused, so the view stays valid.
        out.push({ seq: asSeq(frame.baseSeq + k), appendedAt: frame.appendedAt, data: records[k]! });
      }
    });
    return out;
  }

  /** As {@link read}, in bulk, without an object per record. */
  async readBatch(fromSeq: number, limit: number): Promise<FrameBatch> {
    const batch = new FrameBatch();
    await this.scan(fromSeq, limit, (frame, skip, take) => batch.add(frame, skip, take));
    return batch;
  }

  private async scan(fromSeq: number, limit: number, take: (frame: DecodedFrame, skip: number, count: number) => void) {
    const durableSeq = this.durableSeq;
    let want = Math.max(fromSeq, 1);
    let taken = 0;
    for (let i = this.segmentIndexFor(want); taken < limit && want <= durableSeq && i < this.segments.length; i++) {
      const segment = this.segments[i]!;
      want = Math.max(want, segment.baseSeq);
      if (segment.index === null) segment.index = await buildIndex(segment);
      const position = indexFloor(segment.index, want);
      await scanSegment(segment.path, { position, nextSeq: null }, segment.size, want, limit - taken, durableSeq, (frame, skip, count) => {
        take(frame, skip, count);
        taken += count;
        want = frame.baseSeq + skip + count;
      });
    }
  }

  private segmentIndexFor(seq: number): number {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.segments[mid]!.baseSeq <= seq) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Resolves once the durable seq passes `afterSeq`, or after `timeoutMs`; answers the durable seq then. */
  waitForAppend(afterSeq: number, timeoutMs: number): Promise<Seq> {
    if (this.durableSeq > afterSeq || this.closed || timeoutMs <= 0) return Promise.resolve(asSeq(this.durableSeq));
    return new Promise<Seq>((resolve) => {
      const waiter: AppendWaiter = {
        afterSeq,
        resolve,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          resolve(asSeq(this.durableSeq));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  private wakeWaiters(): void {
    if (this.waiters.length === 0) return;
    const still: AppendWaiter[] = [];
    for (const waiter of this.waiters) {
      if (this.durableSeq > waiter.afterSeq) {
        clearTimeout(waiter.timer);
        waiter.resolve(asSeq(this.durableSeq));
      } else still.push(waiter);
    }
    this.waiters = still;
  }

  /**
   * Deletes whole segments whose every record has seq < `keepFrom`. The active segment always stays, so the
   * next seq is still known from its name after a restart and seqs are never reused.
   */
  async deleteBefore(keepFrom: number): Promise<number> {
    let deleted = 0;
    while (this.segments.length > 1) {
      const next = this.segments[1]!;
      if (next.baseSeq - 1 >= keepFrom) break;
      const doomed = this.segments.shift()!;
      await rm(doomed.path, { force: true });
      deleted++;
    }
    if (deleted > 0) await syncDirectory(this.dir);
    return deleted;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.flushing) await this.flushing;
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.resolve(asSeq(this.durableSeq));
    }
    this.waiters = [];
    await this.active.close();
  }
}

function noteInIndex(segment: Segment, seq: number, position: number): void {
  const index = segment.index;
  if (index === null) return;
  const lastPosition = index.positions[index.positions.length - 1];
  if (lastPosition === undefined || position - lastPosition >= INDEX_SPACING_BYTES) {
    index.seqs.push(seq);
    index.positions.push(position);
  }
}

/** The byte position of the last indexed frame that starts at or before `seq`. */
function indexFloor(index: { seqs: number[]; positions: number[] }, seq: number): number {
  let position = 0;
  for (let i = 0; i < index.seqs.length && index.seqs[i]! <= seq; i++) position = index.positions[i]!;
  return position;
}

async function buildIndex(segment: Segment): Promise<{ seqs: number[]; positions: number[] }> {
  const index = { seqs: [] as number[], positions: [] as number[] };
  const bytes = await readFile(segment.path);
  const target = { ...segment, index };
  let position = 0;
  while (position < segment.size) {
    const decoded = decodeFrame(bytes, position);
    if (typeof decoded === 'string') {
      throw new CorruptLogError(`${segment.path}: corrupt frame at byte ${position} (${decoded})`);
    }
    noteInIndex(target, decoded.baseSeq, position);
    position += decoded.length;
  }
  return index;
}

/**
 * Scans the last segment, keeps every intact frame whose seqs continue the chain, and truncates the file
 * at the first frame that is torn or corrupt: such a frame was never acknowledged, since an ack waits for
 * the sync that would have made it whole. Answers the last seq kept.
 */
async function recoverTail(segment: Segment, options: ShardLogOptions): Promise<number> {
  const bytes = await readFile(segment.path);
  const index = { seqs: [] as number[], positions: [] as number[] };
  segment.index = index;
  let position = 0;
  let expected = segment.baseSeq;
  let problem: string | null = null;
  while (position < bytes.length) {
    const decoded: DecodedFrame | string = decodeFrame(bytes, position);
    if (typeof decoded === 'string') {
      problem = decoded === 'short' ? 'torn frame' : `corrupt frame (${decoded})`;
      break;
    }
    if (decoded.baseSeq !== expected || decoded.count === 0) {
      problem = `frame seq ${decoded.baseSeq} where ${expected} was expected`;
      break;
    }
    noteInIndex(segment, decoded.baseSeq, position);
    expected += decoded.count;
    position += decoded.length;
  }
  if (problem !== null) {
    const handle = await open(segment.path, 'r+');
    try {
      await handle.truncate(position);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    options.onTruncate?.({ path: segment.path, keptBytes: position, cutBytes: bytes.length - position, reason: problem });
  }
  segment.size = position;
  return expected - 1;
}
