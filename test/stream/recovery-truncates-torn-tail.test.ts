import { appendFile, readdir, stat, truncate, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { asSeq, CorruptLogError, EmbeddedStream } from '../../src/stream/index.js';
import { encodeFrame } from '../../src/stream/embedded/frame.js';
import { removeDir, tempDir } from '../fixtures/strata.js';

const records = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => Buffer.from(`${prefix}-${i}`));

async function onlySegment(dir: string): Promise<string> {
  const shardDir = join(dir, 's', '0');
  const names = (await readdir(shardDir)).filter((name) => name.endsWith('.seg'));
  expect(names).toHaveLength(1);
  return join(shardDir, names[0]!);
}

describe('recovery', () => {
  let dir: string;
  afterEach(async () => removeDir(dir));

  async function logWithTenRecords() {
    dir = await tempDir();
    const log = await EmbeddedStream.open({ dir, streams: { s: { shards: 1 } } });
    await log.append('s', 0, records('a', 4));
    await log.append('s', 0, records('b', 6));
    await log.close();
    return onlySegment(dir);
  }

  async function reopen(cuts: string[] = []) {
    return EmbeddedStream.open({ dir, streams: { s: { shards: 1 } }, onTruncate: (info) => cuts.push(info.reason) });
  }

  it('cuts a frame torn part-way (a write the crash interrupted) and keeps everything before it', async () => {
    const segment = await logWithTenRecords();
    const intactBytes = (await stat(segment)).size;
    const torn = encodeFrame(11, records('torn', 5), Date.now());
    await appendFile(segment, torn.subarray(0, torn.length - 7));
    const cuts: string[] = [];
    const log = await reopen(cuts);
    expect(cuts).toEqual(['torn frame']);
    expect((await stat(segment)).size).toBe(intactBytes);
    expect(log.shards('s')[0]!.lastSeq).toBe(10);
    expect((await log.read('s', 0, asSeq(1), 100)).map((r) => r.data.toString())).toEqual([
      ...records('a', 4).map(String),
      ...records('b', 6).map(String),
    ]);
    // The next append takes the seq after the last kept record, and it is durable like any other.
    expect(await log.append('s', 0, records('c', 1))).toBe(11);
    await log.close();
    const again = await reopen();
    expect((await again.read('s', 0, asSeq(11), 10)).map((r) => r.data.toString())).toEqual(['c-0']);
    await again.close();
  });

  it('cuts a tail whose checksum does not match (garbage written over the last frame)', async () => {
    const segment = await logWithTenRecords();
    const bytes = await readFile(segment);
    bytes[bytes.length - 3]! ^= 0xff;
    await writeFile(segment, bytes);
    const cuts: string[] = [];
    const log = await reopen(cuts);
    expect(cuts).toEqual(['corrupt frame (checksum)']);
    expect(log.shards('s')[0]!.lastSeq).toBe(4);
    expect((await log.read('s', 0, asSeq(1), 100)).map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    await log.close();
  });

  it('cuts a few stray bytes that are not even a frame header', async () => {
    const segment = await logWithTenRecords();
    await appendFile(segment, Buffer.from([1, 2, 3]));
    const log = await reopen();
    expect(log.shards('s')[0]!.lastSeq).toBe(10);
    await log.close();
  });

  it('recovers a segment truncated to nothing: the seqs continue from its name, never reused', async () => {
    dir = await tempDir();
    const log = await EmbeddedStream.open({ dir, streams: { s: { shards: 1 } }, segmentBytes: 64 * 1024 });
    const big = Buffer.alloc(40 * 1024, 'x');
    await log.append('s', 0, [big, big]); // seqs 1-2 fill the first segment
    await log.append('s', 0, [big]); // seq 3 starts the second segment
    await log.close();
    const shardDir = join(dir, 's', '0');
    const names = (await readdir(shardDir)).sort();
    expect(names).toEqual(['00000000000000000001.seg', '00000000000000000003.seg']);
    await truncate(join(shardDir, names[1]!), 10);
    const reopened = await reopen();
    expect(reopened.shards('s')[0]!.lastSeq).toBe(2);
    expect(await reopened.append('s', 0, [Buffer.from('next')])).toBe(3);
    await reopened.close();
  });

  it('never serves a record whose bytes changed after it was acknowledged', async () => {
    dir = await tempDir();
    const log = await EmbeddedStream.open({ dir, streams: { s: { shards: 1 } }, segmentBytes: 64 * 1024 });
    const big = Buffer.alloc(40 * 1024, 'y');
    await log.append('s', 0, [big, big]);
    await log.append('s', 0, [big]); // rolls: the first segment is now sealed
    await log.close();
    const sealed = join(dir, 's', '0', '00000000000000000001.seg');
    const bytes = await readFile(sealed);
    bytes[1000]! ^= 0x01;
    await writeFile(sealed, bytes);
    const reopened = await reopen();
    await expect(reopened.read('s', 0, asSeq(1), 10)).rejects.toThrow(CorruptLogError);
    // The intact later segment is still served.
    expect((await reopened.read('s', 0, asSeq(3), 10)).map((r) => r.seq)).toEqual([3]);
    await reopened.close();
  });
});
