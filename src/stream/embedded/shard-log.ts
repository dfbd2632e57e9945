import { mkdir, open, readdir, readFile, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { asSeq, type RecordData, type Seq, type StoredRecord } from '../types.js';
import { syncDirectory } from '../../util/durable-fs.js';
import { CorruptLogError, LogFailedError } from './errors.js';
import { decodeFrame, encodeUnsealedFrame, findNextFrame, frameRecords, sealFrame, type DecodedFrame } from './frame.js';
import { FrameBatch, scanSegment } from './segment-read.js';

export { CorruptLogError, LogFailedError };

export interface ShardLogOptions {
  /** A segment is sealed and a new one started once it holds at least this many bytes. */
  readonly segmentBytes: number;
  /** Called once per recovered shard whose tail had to be cut, for the operator's log. */
  readonly onTruncate?: (info: { path: string; keptBytes: number; cutBytes: number; reason: string }) => void;
  /** Told after every group commit: records up to `seq` are durable and readable. */
  readonly onDurable?: (seq: number) => void;
  /**
   * Encryption at rest: the data key of the segment whose first seq is `segmentBaseSeq` (made on first use).
   * With it every frame is sealed under its segment's key, and only sealed frames are read; without it the log
   * is plain.
   */
  readonly segmentKey?: ((segmentBaseSeq: number) => Buffer) | null;
  /**
   * Called when opening finds a corrupt frame that intact frames follow: not a torn tail, so nothing is cut;
   * its seqs (`fromSeq` to `toSeq`) are kept out of every read, which fails naming the segment and the byte.
   */
  readonly onCorrupt?: (info: CorruptFrameInfo) => void;
}

/** A corrupt frame found in the middle of a segment: where, why, and which seqs it held. */
export interface CorruptFrameInfo {
  readonly path: string;
  readonly position: number;
  readonly reason: string;
  readonly fromSeq: number;
  readonly toSeq: number;
}

const SEGMENT_SUFFIX = '.seg';
/** A sparse index entry is kept at most every this many bytes of a segment. */
const INDEX_SPACING_BYTES = 64 * 1024;

interface Segment {
  readonly baseSeq: number;
  readonly path: string;
  /** Bytes that hold durable frames. For the active segment this grows after every sync. */
  size: number;
  /**
   * Sparse (seq, byte position) pairs, ascending: the frame at the position starts at the seq. Built on
   * append, or by one scan on first read. Around a corrupt frame it holds (its first seq, its position) and
   * (the next frame's seq, that frame's position), so reads past it start past it and reads of it fail.
   */
  index: SegmentIndex | null;
  /** The segment's data key once looked up; null in a plain log. */
  key?: Buffer | null;
}

interface SegmentIndex {
  seqs: number[];
  positions: number[];
}

interface PendingAppend {
  /** Encoded at append; sealed (in an encrypted log) once the segment it goes to is known. */
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
  /** Whether frames are sealed: decided once, at open, by the presence of segment keys. */
  private readonly sealing: boolean;
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
    this.sealing = options.segmentKey != null;
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
    // The active segment's key exists before its first frame is written.
    last.key = options.segmentKey?.(last.baseSeq) ?? null;
    const active = await open(last.path, 'r+');
    return new ShardLog(dir, options, segments, active, lastSeq);
  }

  /** The data key of a segment, looked up once; null in a plain log. */
  private keyOf(segment: Segment): Buffer | null {
    if (segment.key === undefined) segment.key = this.options.segmentKey?.(segment.baseSeq) ?? null;
    return segment.key;
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
    const frame = encodeUnsealedFrame(firstSeq, records, Date.now(), this.sealing);
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
    if (this.sealing) {
      const key = this.keyOf(segment)!;
      for (const pending of batch) sealFrame(pending.frame, key);
    }
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
    // Its key is made (and saved) before the segment exists, so that no frame is ever written without one.
    const key = this.options.segmentKey?.(baseSeq) ?? null;
    const next = await open(path, 'wx+');
    await syncDirectory(this.dir);
    await this.active.close();
    this.active = next;
    const segment: Segment = { baseSeq, path, size: 0, index: { seqs: [], positions: [] }, key };
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

  /**
   * Hands `take` the frames holding durable records from `fromSeq` on, up to `limit` records. A corrupt frame
   * ends the read: when records before it were taken they are answered (the next read, starting at the corrupt
   * frame, fails); when it is the first frame wanted, the read throws {@link CorruptLogError}. Its records are
   * never served, and nothing after it is handed out in the same read, so a read never skips seqs.
   */
  private async scan(fromSeq: number, limit: number, take: (frame: DecodedFrame, skip: number, count: number) => void) {
    const durableSeq = this.durableSeq;
    let want = Math.max(fromSeq, 1);
    let taken = 0;
    try {
      for (let i = this.segmentIndexFor(want); taken < limit && want <= durableSeq && i < this.segments.length; i++) {
        const segment = this.segments[i]!;
        want = Math.max(want, segment.baseSeq);
        if (segment.index === null) segment.index = await buildIndex(segment);
        const start = indexFloor(segment, want);
        await scanSegment(segment.path, start, segment.size, want, limit - taken, durableSeq, this.keyOf(segment), (frame, skip, count) => {
          take(frame, skip, count);
          taken += count;
          want = frame.baseSeq + skip + count;
        });
      }
    } catch (error) {
      if (!(error instanceof CorruptLogError) || taken === 0) throw error;
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

function noteInIndex(segment: Segment, seq: number, position: number, force = false): void {
  const index = segment.index;
  if (index === null) return;
  const lastPosition = index.positions[index.positions.length - 1];
  if (force || lastPosition === undefined || position - lastPosition >= INDEX_SPACING_BYTES) {
    index.seqs.push(seq);
    index.positions.push(position);
  }
}

/** The last indexed frame that starts at or before `seq`: where a read of `seq` starts, and the seq there. */
function indexFloor(segment: Segment, seq: number): { position: number; nextSeq: number } {
  const index = segment.index!;
  let floor = { position: 0, nextSeq: segment.baseSeq };
  for (let i = 0; i < index.seqs.length && index.seqs[i]! <= seq; i++) floor = { position: index.positions[i]!, nextSeq: index.seqs[i]! };
  return floor;
}

/** What one pass over a segment's frames found. */
interface SegmentWalk {
  /** The seq after the last record of the segment's intact frames. */
  readonly nextSeq: number;
  /** Where the intact frames end; the file's size when they reach it. */
  readonly end: number;
  /** The corrupt frame nothing intact follows (a torn write), if any: the walk ends at `end` = its position. */
  readonly tail: string | null;
  /** Corrupt frames that intact frames follow. */
  readonly corrupt: CorruptFrameInfo[];
}

/**
 * Walks the frames of a segment (`bytes`, its first `size` bytes), checking checksums, structure and that the
 * seqs continue, and fills its index. A corrupt frame is looked past: when an intact frame with a later seq
 * follows, the corrupt one is noted with the seqs it held (from the chain: those between its neighbours) and the
 * walk goes on there; otherwise it is the tail. Sealed bodies are not opened here: a frame whose checksum holds
 * but whose tag does not is found when it is read.
 */
function walkSegment(segment: Segment, bytes: Buffer, size: number): SegmentWalk {
  const view = bytes.subarray(0, size);
  const corrupt: CorruptFrameInfo[] = [];
  let position = 0;
  let expected = segment.baseSeq;
  let force = false;
  while (position < size) {
    const decoded: DecodedFrame | string = decodeFrame(view, position);
    if (typeof decoded !== 'string' && decoded.baseSeq === expected && decoded.count > 0) {
      noteInIndex(segment, expected, position, force);
      force = false;
      expected += decoded.count;
      position += decoded.length;
      continue;
    }
    const reason =
      typeof decoded === 'string'
        ? decoded === 'short'
          ? 'torn frame'
          : `corrupt frame (${decoded})`
        : `frame seq ${decoded.baseSeq} where ${expected} was expected`;
    // An intact frame that only skips seqs is itself where reading goes on; anything else is looked past.
    const next =
      typeof decoded !== 'string' && decoded.baseSeq > expected && decoded.count > 0
        ? { position, frame: decoded }
        : findNextFrame(view, position + 1, expected);
    if (next === null) return { nextSeq: expected, end: position, tail: reason, corrupt };
    corrupt.push({ path: segment.path, position, reason, fromSeq: expected, toSeq: next.frame.baseSeq - 1 });
    noteInIndex(segment, expected, position, true);
    position = next.position;
    expected = next.frame.baseSeq;
    force = true;
  }
  return { nextSeq: expected, end: position, tail: null, corrupt };
}

async function buildIndex(segment: Segment): Promise<SegmentIndex> {
  const bytes = await readFile(segment.path);
  const target: Segment = { ...segment, index: { seqs: [], positions: [] } };
  const walk = walkSegment(target, bytes, segment.size);
  // A sealed segment that ends in a corrupt frame: reads from its first seq on fail there.
  if (walk.tail !== null) noteInIndex(target, walk.nextSeq, walk.end, true);
  return target.index!;
}

/**
 * Scans the last segment, keeps every intact frame whose seqs continue the chain, and truncates the file at a
 * torn or corrupt frame that nothing intact follows: such a frame was never acknowledged, since an ack waits for
 * the sync that would have made it whole. A corrupt frame that intact frames follow is not a torn write (later
 * syncs completed after it): cutting there would drop acknowledged records, so it is kept, reported through
 * `onCorrupt`, and never served. Answers the last seq kept.
 */
async function recoverTail(segment: Segment, options: ShardLogOptions): Promise<number> {
  const bytes = await readFile(segment.path);
  segment.index = { seqs: [], positions: [] };
  const walk = walkSegment(segment, bytes, bytes.length);
  for (const info of walk.corrupt) options.onCorrupt?.(info);
  if (walk.tail !== null) {
    const handle = await open(segment.path, 'r+');
    try {
      await handle.truncate(walk.end);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    options.onTruncate?.({ path: segment.path, keptBytes: walk.end, cutBytes: bytes.length - walk.end, reason: walk.tail });
  }
  segment.size = walk.end;
  return walk.nextSeq - 1;
}
