import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError } from '../../errors.js';
import type { Keyring } from '../../security/keyring.js';
import { asSeq, type RecordBatch, type RecordData, type Seq, type ShardState, type StoredRecord, type Stream } from '../types.js';
import { replaceFileDurably } from '../../util/durable-fs.js';
import { ShardLog, type CorruptFrameInfo } from './shard-log.js';

/** Asked for a stream or shard that the project does not declare. */
export class UnknownStreamError extends NotFoundError {
  override readonly name: string = 'UnknownStreamError';
}

export interface EmbeddedStreamOptions {
  /** The folder holding the log: `<dir>/<stream>/<shard>/<first seq>.seg`. */
  readonly dir: string;
  /** Every stream and its shard count, from the project config. */
  readonly streams: Readonly<Record<string, { readonly shards: number }>>;
  /** Segment size at which a new segment starts; retention deletes whole segments. Default 64 MiB. */
  readonly segmentBytes?: number;
  readonly onTruncate?: (info: { path: string; keptBytes: number; cutBytes: number; reason: string }) => void;
  /** Told after every group commit of a shard: its records up to `seq` are durable and readable. */
  readonly onDurable?: (stream: string, shard: number, seq: number) => void;
  /**
   * Encryption at rest: with a keyring every frame is sealed (AES-256-GCM) under a data key per segment, scope
   * {@link logSegmentScope}; without one (null, the default) the log is plain.
   */
  readonly keyring?: Keyring | null;
  /** Told about a corrupt frame found in the middle of a segment at open (kept, never served). */
  readonly onCorrupt?: (info: CorruptFrameInfo) => void;
}

/** The keyring scope of one log segment's data key: `log/<stream>/<shard>/<first seq, 20 digits>`. */
export function logSegmentScope(stream: string, shard: number, segmentBaseSeq: number): string {
  return `log/${stream}/${shard}/${String(segmentBaseSeq).padStart(20, '0')}`;
}

/**
 * The data key of each segment of one shard, by the segment's first seq (its file name): what the writer seals
 * with and every reader, in any thread, opens with. Null for a plain log.
 */
export function segmentKeys(keyring: Keyring | null | undefined, stream: string, shard: number): ((segmentBaseSeq: number) => Buffer) | null {
  if (!keyring) return null;
  return (segmentBaseSeq) => keyring.keyFor(logSegmentScope(stream, shard, segmentBaseSeq)).key;
}

type Checkpoints = Record<string, Record<string, number>>;

/**
 * The embedded stream backend: one {@link ShardLog} per shard, on local disk, and a small JSON file of
 * named consumer checkpoints per stream (replaced atomically: written, synced, renamed).
 */
export class EmbeddedStream implements Stream {
  private readonly checkpointWrites = new Map<string, Promise<void>>();

  private constructor(
    private readonly dir: string,
    private readonly logs: Map<string, ShardLog[]>,
    private readonly checkpoints: Map<string, Checkpoints>,
  ) {}

  static async open(options: EmbeddedStreamOptions): Promise<EmbeddedStream> {
    const segmentBytes = options.segmentBytes ?? 64 * 1024 * 1024;
    const logs = new Map<string, ShardLog[]>();
    const checkpoints = new Map<string, Checkpoints>();
    try {
      for (const [name, { shards }] of Object.entries(options.streams)) {
        const shardLogs: ShardLog[] = [];
        logs.set(name, shardLogs);
        for (let shard = 0; shard < shards; shard++) {
          shardLogs.push(
            await ShardLog.open(join(options.dir, name, String(shard)), {
              segmentBytes,
              onTruncate: options.onTruncate,
              onDurable: options.onDurable && ((seq) => options.onDurable!(name, shard, seq)),
              segmentKey: segmentKeys(options.keyring, name, shard),
              onCorrupt: options.onCorrupt,
            }),
          );
        }
        checkpoints.set(name, await readCheckpoints(join(options.dir, name)));
      }
    } catch (error) {
      for (const shardLogs of logs.values()) await Promise.all(shardLogs.map((log) => log.close()));
      throw error;
    }
    return new EmbeddedStream(options.dir, logs, checkpoints);
  }

  private log(stream: string, shard: number): ShardLog {
    const shardLogs = this.logs.get(stream);
    if (!shardLogs) throw new UnknownStreamError(`unknown stream "${stream}"`);
    const log = shardLogs[shard];
    if (!log) throw new UnknownStreamError(`stream "${stream}" has no shard ${shard}`);
    return log;
  }

  shards(stream: string): ShardState[] {
    const shardLogs = this.logs.get(stream);
    if (!shardLogs) throw new UnknownStreamError(`unknown stream "${stream}"`);
    return shardLogs.map((log, shard) => ({
      shard,
      firstSeq: log.firstSeq,
      lastSeq: log.lastSeq,
      bytes: log.bytes,
      segments: log.segmentCount,
    }));
  }

  async append(stream: string, shard: number, records: readonly RecordData[]): Promise<Seq> {
    return this.log(stream, shard).append(records);
  }

  async read(stream: string, shard: number, fromSeq: Seq, limit: number): Promise<StoredRecord[]> {
    return this.log(stream, shard).read(fromSeq, limit);
  }

  async readBatch(stream: string, shard: number, fromSeq: Seq, limit: number): Promise<RecordBatch> {
    return this.log(stream, shard).readBatch(fromSeq, limit);
  }

  async waitForAppend(stream: string, shard: number, afterSeq: Seq, timeoutMs: number): Promise<Seq> {
    return this.log(stream, shard).waitForAppend(afterSeq, timeoutMs);
  }

  checkpoint(consumer: string, stream: string, shard: number): Seq {
    this.log(stream, shard);
    return asSeq(this.checkpoints.get(stream)?.[consumer]?.[String(shard)] ?? 0);
  }

  async commitCheckpoint(consumer: string, stream: string, shard: number, seq: Seq): Promise<void> {
    const log = this.log(stream, shard);
    if (seq > log.lastSeq) throw new RangeError(`checkpoint ${seq} is past the last seq ${log.lastSeq} of ${stream}/${shard}`);
    // One checkpoint file per stream: writes to it go one at a time, each building on the one before.
    const write = (this.checkpointWrites.get(stream) ?? Promise.resolve()).then(async () => {
      const all = this.checkpoints.get(stream)!;
      const next: Checkpoints = { ...all, [consumer]: { ...all[consumer], [String(shard)]: seq } };
      await writeCheckpoints(join(this.dir, stream), next);
      this.checkpoints.set(stream, next);
    });
    this.checkpointWrites.set(stream, write.catch(() => undefined));
    return write;
  }

  async applyRetention(): Promise<number> {
    let deleted = 0;
    for (const [stream, shardLogs] of this.logs) {
      const consumers = Object.values(this.checkpoints.get(stream) ?? {});
      // With no consumer at all nothing is known to be done with: keep everything.
      if (consumers.length === 0) continue;
      for (let shard = 0; shard < shardLogs.length; shard++) {
        const keepFrom = Math.min(...consumers.map((positions) => (positions[String(shard)] ?? 0) + 1));
        deleted += await shardLogs[shard]!.deleteBefore(keepFrom);
      }
    }
    return deleted;
  }

  async close(): Promise<void> {
    const all = [...this.logs.values()].flat();
    this.logs.clear();
    await Promise.all(all.map((log) => log.close()));
  }
}

const CHECKPOINT_FILE = 'checkpoints.json';

async function readCheckpoints(dir: string): Promise<Checkpoints> {
  try {
    return JSON.parse(await readFile(join(dir, CHECKPOINT_FILE), 'utf8')) as Checkpoints;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw error;
  }
}

async function writeCheckpoints(dir: string, checkpoints: Checkpoints): Promise<void> {
  await mkdir(dir, { recursive: true });
  await replaceFileDurably(join(dir, CHECKPOINT_FILE), JSON.stringify(checkpoints));
}
