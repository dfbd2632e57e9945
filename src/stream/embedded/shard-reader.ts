import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { DecodedFrame } from './frame.js';
import { FrameBatch, scanSegment } from './segment-read.js';

/**
 * A read-only view of one shard's segment files, for a consumer in another thread (delivery) that is told the
 * durable seq by the writer. It never recovers or truncates anything: it reads only frames the writer has made
 * durable. Sequential reads continue from a cursor; any other read scans its segment from the start.
 */
export class ShardReader {
  private cursor: { path: string; baseSeq: number; position: number; nextSeq: number } | null = null;

  constructor(private readonly dir: string) {}

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
    let want = fromSeq;
    let segments: { baseSeq: number; path: string }[] | null = null;
    // Reading on from where the last read stopped needs no search: the scan skips what lies before fromSeq.
    let at = this.cursor !== null && this.cursor.nextSeq <= fromSeq ? this.cursor : null;
    while (taken < limit) {
      if (at === null) {
        segments ??= await this.segments();
        const segment = [...segments].reverse().find((s) => s.baseSeq <= want) ?? segments[0];
        if (!segment) break;
        at = { path: segment.path, baseSeq: segment.baseSeq, position: 0, nextSeq: segment.baseSeq };
      }
      const size = (await stat(at.path)).size;
      const stop = await scanSegment(at.path, at, size, want, limit - taken, durableSeq, (frame, skip, count) => {
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
    }
    this.cursor = at;
  }
}
