import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryKeyring } from '../../src/security/index.js';
import { asSeq, CorruptLogError, EmbeddedStream, logSegmentScope, type CorruptFrameInfo } from '../../src/stream/index.js';
import { decodeFrame, encodeFrame, FRAME_HEADER_BYTES, FRAME_SEALED, openFrame, frameRecords, SEAL_OVERHEAD_BYTES } from '../../src/stream/embedded/frame.js';
import { ShardReader } from '../../src/stream/embedded/shard-reader.js';

// Not the Strata fixture: this file tests the log alone, without importing the whole composition root.
const tempDir = () => mkdtemp(join(tmpdir(), 'strata-enclog-'));
const removeDir = (dir: string) => rm(dir, { recursive: true, force: true });

const MARKER = 'MARKER-5f2c9a-plaintext';
const records = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => Buffer.from(`${prefix}-${i}-${MARKER}`));

/** The byte positions of the frames of a segment, in order. */
function framePositions(bytes: Buffer): number[] {
  const positions: number[] = [];
  for (let at = 0; at < bytes.length; at += bytes.readUInt32LE(at + 4)) positions.push(at);
  return positions;
}

/** Recomputes a frame's CRC, as someone altering the file on purpose would, so that only the GCM tag can tell. */
function fixChecksum(bytes: Buffer, at: number): void {
  const length = bytes.readUInt32LE(at + 4);
  bytes.writeUInt32LE(crc32(bytes.subarray(at + 12, at + length)), at + 8);
}

describe('frame sealing', () => {
  it('round-trips records through a sealed frame, with the header as associated data', () => {
    const key = randomBytes(32);
    const frame = encodeFrame(41, records('r', 3), 1_764_000_000_000, key);
    const plain = encodeFrame(41, records('r', 3), 1_764_000_000_000);
    expect(frame.length).toBe(plain.length + SEAL_OVERHEAD_BYTES);
    expect(frame[12]).toBe(FRAME_SEALED);
    expect(frame.includes(MARKER)).toBe(false);
    const decoded = decodeFrame(frame, 0);
    if (typeof decoded === 'string') throw new Error(decoded);
    expect(decoded).toMatchObject({ baseSeq: 41, count: 3, sealed: true });
    const opened = openFrame(decoded, key);
    if (typeof opened === 'string') throw new Error(opened);
    expect(frameRecords(opened).map(String)).toEqual(records('r', 3).map(String));
    // Another key, or an altered seq in the header (checksum fixed up), fails authentication.
    expect(openFrame(decoded, randomBytes(32))).toBe('auth');
    const moved = Buffer.from(frame);
    moved.writeUInt32LE(42, 16);
    fixChecksum(moved, 0);
    const decodedMoved = decodeFrame(moved, 0);
    if (typeof decodedMoved === 'string') throw new Error(decodedMoved);
    expect(openFrame(decodedMoved, key)).toBe('auth');
  });

  it('draws a fresh nonce for every frame', () => {
    const key = randomBytes(32);
    const a = encodeFrame(1, records('same', 1), 0, key);
    const b = encodeFrame(1, records('same', 1), 0, key);
    expect(a.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + 12).equals(b.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + 12))).toBe(false);
    expect(a.subarray(FRAME_HEADER_BYTES).equals(b.subarray(FRAME_HEADER_BYTES))).toBe(false);
  });
});

describe('encrypted log segments', () => {
  let dir: string;
  afterEach(async () => removeDir(dir));

  const streams = { s: { shards: 1 } };

  async function writeThreeFrames(keyring: MemoryKeyring): Promise<string> {
    dir = await tempDir();
    const log = await EmbeddedStream.open({ dir, streams, keyring });
    await log.append('s', 0, records('a', 4)); // seqs 1-4
    await log.append('s', 0, records('b', 3)); // seqs 5-7
    await log.append('s', 0, records('c', 2)); // seqs 8-9
    await log.close();
    return join(dir, 's', '0', '00000000000000000001.seg');
  }

  it('keeps no record in the clear and reads everything back, in this thread and through ShardReader', async () => {
    const keyring = new MemoryKeyring();
    const segment = await writeThreeFrames(keyring);
    const bytes = await readFile(segment);
    expect(bytes.includes(MARKER)).toBe(false);
    expect(framePositions(bytes).map((at) => bytes[at + 12])).toEqual([FRAME_SEALED, FRAME_SEALED, FRAME_SEALED]);
    // The segment's key is the one of its scope.
    expect(keyring.keyById(keyring.keyFor(logSegmentScope('s', 0, 1)).id)).toBeTruthy();

    const log = await EmbeddedStream.open({ dir, streams, keyring });
    expect((await log.read('s', 0, asSeq(1), 100)).map((r) => r.data.toString())).toEqual(
      [...records('a', 4), ...records('b', 3), ...records('c', 2)].map(String),
    );
    expect((await log.read('s', 0, asSeq(6), 2)).map((r) => r.seq)).toEqual([6, 7]);
    await log.close();

    const reader = new ShardReader(join(dir, 's', '0'), (base) => keyring.keyFor(logSegmentScope('s', 0, base)).key);
    const seqs: number[] = [];
    (await reader.readBatch(1, 100, 9)).forEach((seq) => seqs.push(seq));
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('rolls segments with a key of their own', async () => {
    dir = await tempDir();
    const keyring = new MemoryKeyring();
    const log = await EmbeddedStream.open({ dir, streams, keyring, segmentBytes: 1024 });
    const big = Buffer.alloc(800, 'z');
    for (let i = 0; i < 4; i++) await log.append('s', 0, [big]);
    expect(log.shards('s')[0]!.segments).toBeGreaterThan(1);
    expect((await log.read('s', 0, asSeq(1), 10)).map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    await log.close();
    const names = (await readdir(join(dir, 's', '0'))).sort();
    const ids = new Set(names.map((name) => keyring.keyFor(logSegmentScope('s', 0, Number(name.slice(0, 20)))).id));
    expect(ids.size).toBe(names.length);
  });

  it('never serves the records of a frame whose byte was flipped, and still serves the other frames', async () => {
    const keyring = new MemoryKeyring();
    const segment = await writeThreeFrames(keyring);
    const bytes = await readFile(segment);
    const [, second] = framePositions(bytes);
    bytes[second! + FRAME_HEADER_BYTES + 20]! ^= 0x01;
    await writeFile(segment, bytes);

    const corrupt: CorruptFrameInfo[] = [];
    const cuts: string[] = [];
    const log = await EmbeddedStream.open({ dir, streams, keyring, onCorrupt: (info) => corrupt.push(info), onTruncate: (info) => cuts.push(info.reason) });
    // Intact frames follow it: not a torn tail, so nothing is cut and no acknowledged record is dropped.
    expect(cuts).toEqual([]);
    expect(corrupt).toEqual([{ path: segment, position: second, reason: 'corrupt frame (checksum)', fromSeq: 5, toSeq: 7 }]);
    expect(log.shards('s')[0]!.lastSeq).toBe(9);
    // A read up to it answers what lies before it; a read of it fails naming the segment and the byte.
    expect((await log.read('s', 0, asSeq(1), 100)).map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    await expect(log.read('s', 0, asSeq(5), 100)).rejects.toThrow(CorruptLogError);
    await expect(log.read('s', 0, asSeq(6), 1)).rejects.toThrow(`${segment}: corrupt frame at byte ${second}`);
    expect((await log.read('s', 0, asSeq(8), 100)).map((r) => r.seq)).toEqual([8, 9]);
    // Appends go on after the last intact frame.
    expect(await log.append('s', 0, records('d', 1))).toBe(10);
    await log.close();
  });

  it('detects an altered frame whose checksum was fixed up: authentication fails and its records are not served', async () => {
    const keyring = new MemoryKeyring();
    const segment = await writeThreeFrames(keyring);
    const bytes = await readFile(segment);
    const [, second, third] = framePositions(bytes);
    bytes[second! + FRAME_HEADER_BYTES + 20]! ^= 0x01;
    fixChecksum(bytes, second!);
    await writeFile(segment, bytes);

    const log = await EmbeddedStream.open({ dir, streams, keyring });
    expect(log.shards('s')[0]!.lastSeq).toBe(9);
    expect((await log.read('s', 0, asSeq(1), 100)).map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    await expect(log.read('s', 0, asSeq(5), 100)).rejects.toThrow(/byte \d+ \(seqs 5-7 by its header\) fails authentication/);
    await log.close();

    // The delivery thread's reader: the frames before it are answered, then a read of it fails.
    const reader = new ShardReader(join(dir, 's', '0'), (base) => keyring.keyFor(logSegmentScope('s', 0, base)).key);
    const first: number[] = [];
    (await reader.readBatch(1, 100, 9)).forEach((seq) => first.push(seq));
    expect(first).toEqual([1, 2, 3, 4]);
    await expect(reader.readBatch(5, 100, 9)).rejects.toThrow(CorruptLogError);
    expect(third).toBeGreaterThan(second!);
  });

  it('refuses a plain frame slipped into an encrypted segment', async () => {
    const keyring = new MemoryKeyring();
    const segment = await writeThreeFrames(keyring);
    const bytes = await readFile(segment);
    const [, second, third] = framePositions(bytes);
    const forged = encodeFrame(5, [Buffer.from('forged-1'), Buffer.from('forged-2'), Buffer.from('forged-3')], Date.now());
    await writeFile(segment, Buffer.concat([bytes.subarray(0, second), forged, bytes.subarray(third)]));
    const log = await EmbeddedStream.open({ dir, streams, keyring });
    await expect(log.read('s', 0, asSeq(5), 10)).rejects.toThrow(/not encrypted in an encrypted log/);
    await log.close();
  });

  it('still cuts a torn tail of an encrypted segment, as a plain one', async () => {
    const keyring = new MemoryKeyring();
    const segment = await writeThreeFrames(keyring);
    const bytes = await readFile(segment);
    const [, , third] = framePositions(bytes);
    await writeFile(segment, bytes.subarray(0, bytes.length - 5));
    const cuts: string[] = [];
    const log = await EmbeddedStream.open({ dir, streams, keyring, onTruncate: (info) => cuts.push(info.reason) });
    expect(cuts).toEqual(['torn frame']);
    expect(log.shards('s')[0]!.lastSeq).toBe(7);
    expect(log.shards('s')[0]!.bytes).toBe(third);
    expect(await log.append('s', 0, records('e', 1))).toBe(8);
    expect((await log.read('s', 0, asSeq(1), 100)).map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    await log.close();
  });

  it('keeps a corrupt frame in the middle of a plain segment too, instead of cutting the acknowledged frames after it', async () => {
    dir = await tempDir();
    const log = await EmbeddedStream.open({ dir, streams });
    for (const prefix of ['a', 'b', 'c']) await log.append('s', 0, records(prefix, 2)); // seqs 1-2, 3-4, 5-6
    await log.close();
    const segment = join(dir, 's', '0', '00000000000000000001.seg');
    const bytes = await readFile(segment);
    const [first] = framePositions(bytes);
    bytes[first! + FRAME_HEADER_BYTES + 6]! ^= 0x40;
    await writeFile(segment, bytes);
    const corrupt: CorruptFrameInfo[] = [];
    const reopened = await EmbeddedStream.open({ dir, streams, onCorrupt: (info) => corrupt.push(info) });
    expect(corrupt.map((info) => [info.position, info.fromSeq, info.toSeq])).toEqual([[0, 1, 2]]);
    expect(reopened.shards('s')[0]!.lastSeq).toBe(6);
    await expect(reopened.read('s', 0, asSeq(1), 10)).rejects.toThrow(CorruptLogError);
    expect((await reopened.read('s', 0, asSeq(3), 10)).map((r) => r.seq)).toEqual([3, 4, 5, 6]);
    await reopened.close();
  });

  it('refuses to read an encrypted segment without a key', async () => {
    await writeThreeFrames(new MemoryKeyring());
    const log = await EmbeddedStream.open({ dir, streams });
    await expect(log.read('s', 0, asSeq(1), 10)).rejects.toThrow(/encrypted and no master key was given/);
    await log.close();
  });
});
