import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CorruptLogError } from './errors.js';
import type { DecodedFrame } from './frame.js';
import { FrameBatch, scanSegment } from './segment-read.js';

/**
 * A read-only view of one shard's segment files, for a consumer in another thread (delivery) that is told the
 * durable seq by the writer. It never recovers or truncates anything: it reads only frames the writer has made
 * durable. Sequential reads continue from a cursor; any other read scans its segment from the start.
 *
 * In an encrypted log, `segmentKey` answers each segment's data key (from the segment's first seq, its name), the
 * same one the writer sealed its frames with. A corrupt or altered frame ends a read as in ShardLog: records
 * before it are answered, and a read that starts at it throws {@link CorruptLogError}.
 */
export class ShardReader {
  private cursor: { path: string; baseSeq: number; position: number; nextSeq: number } | null = null;
  private readonly keys = new Map<number, Buffer>();

  constructor(
    private readonly dir: string,
    private readonly segmentKey: ((segmentBaseSeq: number) => Buffer) | null = null,
  ) {}

  private keyOf(baseSeq: number): Buffer | null {
    if (this.segmentKey === null) return null;
    let key = this.keys.get(baseSeq);
    if (key === undefined) {
      key = this.segmentKey(baseSeq);
      // Only the segments being read need their keys: the newest few.
      if (this.keys.size >= 16) this.keys.clear();
      this.keys.set(baseSeq, key);
    }
    return key;
  }

  private async segments(): Promise<{ baseSeq: number; path: string }[]> {
    const names = (await readdir(this.dir)).filter((name) => /^\d{20}\.seg$/.test(name)).sort();
    return names.map((name) => ({ baseSeq: Number(name.slice(0, 20)), path: join(this.dir, name) }));
  }

  /** Up to `limit` records with `fromSeq <= seq <= durableSeq`, in seq order, in bulk. */
  async readBatch(fromSeq: number, limit: number, durableSeq: number): Promise<FrameBatch> {
    const batch = new FrameBatch();
    await this.scan(fromSeq, limit, durableSeq, (frame, skip, take) => batch.add(frame, skip, take));
    return batch;
  }

  private async scan(
    fromSeq: number,
    limit: number,
    durableSeq: number,
    take: (frame: DecodedFrame, skip: number, count: number) => void,
  ): Promise<void> {
    if (fromSeq > durableSeq) return;
    let taken = 0;
    // Reading on from where the last read stopped needs no search: the scan skips what lies before fromSeq.
    const at = this.cursor !== null && this.cursor.nextSeq <= fromSeq ? this.cursor : null;
    // Kept if a corrupt frame ends this read, so that the next read starts before it again (and fails there).
    this.cursor = at;
    try {
      await this.scanFrom(at, fromSeq, limit, durableSeq, (frame, skip, count) => {
        take(frame, skip, count);
        taken += count;
      });
    } catch (error) {
      if (!(error instanceof CorruptLogError) || taken === 0) throw error;
    }
  }

  private async scanFrom(
    start: { path: string; baseSeq: number; position: number; nextSeq: number } | null,
    fromSeq: number,
    limit: number,
    durableSeq: number,
    take: (frame: DecodedFrame, skip: number, count: number) => void,
  ): Promise<void> {
    let taken = 0;
    let want = fromSeq;
    let segments: { baseSeq: number; path: string }[] | null = null;
    let at = start;
    while (taken < limit) {
      if (at === null) {
        segments ??= await this.segments();
        const segment = [...segments].reverse().find((s) => s.baseSeq <= want) ?? segments[0];
        if (!segment) break;
        at = { path: segment.path, baseSeq: segment.baseSeq, position: 0, nextSeq: segment.baseSeq };
      }
      const size = (await stat(at.path)).size;
      const stop = await scanSegment(at.path, at, size, want, limit - taken, durableSeq, this.keyOf(at.baseSeq), (frame, skip, count) => {
        take(frame, skip, count);
        taken += count;
        want = frame.baseSeq + skip + count;
      });
      at = { ...at, position: stop.position, nextSeq: stop.nextSeq < 0 ? at.nextSeq : stop.nextSeq };
      if (at.nextSeq > durableSeq || taken >= limit || stop.position < size) break;
      // This segment is read to its end: the next one, if the writer has rolled, starts at nextSeq.
      segments = await this.segments();
      const next = segments.find((s) => s.baseSeq === at!.nextSeq);
      if (!next) break;
      at = { path: next.path, baseSeq: next.baseSeq, position: 0, nextSeq: next.baseSeq };
      this.cursor = at;
    }
    this.cursor = at;
  }
}
