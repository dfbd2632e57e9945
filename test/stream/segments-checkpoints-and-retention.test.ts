import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { asSeq, EmbeddedStream } from '../../src/stream/index.js';
import { removeDir, tempDir } from '../fixtures/strata.js';

describe('segments, checkpoints and retention', () => {
  let dir: string;
  afterEach(async () => removeDir(dir));

  const open = () => EmbeddedStream.open({ dir, streams: { s: { shards: 1 } }, segmentBytes: 64 * 1024 });
  const segments = async () => (await readdir(join(dir, 's', '0'))).filter((n) => n.endsWith('.seg')).sort();

  it('rolls segments by size and reads across them', async () => {
    dir = await tempDir();
    const log = await open();
    for (let i = 0; i < 50; i++) await log.append('s', 0, [Buffer.alloc(5000, i)]);
    expect((await segments()).length).toBeGreaterThan(2);
    const all = await log.read('s', 0, asSeq(1), 1000);
    expect(all.map((r) => r.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(all.every((r, i) => r.data.length === 5000 && r.data[0] === i)).toBe(true);
    const fromMiddle = await log.read('s', 0, asSeq(33), 3);
    expect(fromMiddle.map((r) => r.seq)).toEqual([33, 34, 35]);
    await log.close();
  });

  it('keeps named checkpoints across restarts', async () => {
    dir = await tempDir();
    let log = await open();
    await log.append('s', 0, [Buffer.from('a'), Buffer.from('b')]);
    await log.commitCheckpoint('delivery', 's', 0, asSeq(2));
    await log.commitCheckpoint('audit', 's', 0, asSeq(1));
    await log.close();
    log = await open();
    expect(log.checkpoint('delivery', 's', 0)).toBe(2);
    expect(log.checkpoint('audit', 's', 0)).toBe(1);
    expect(log.checkpoint('never-seen', 's', 0)).toBe(0);
    await expect(log.commitCheckpoint('delivery', 's', 0, asSeq(3))).rejects.toThrow(/past the last seq/);
    await log.close();
  });

  it('deletes only whole segments every consumer is past, and never the active one', async () => {
    dir = await tempDir();
    const log = await open();
    for (let i = 0; i < 40; i++) await log.append('s', 0, [Buffer.alloc(5000, 1)]);
    const before = await segments();
    expect(await log.applyRetention()).toBe(0); // no consumer yet: everything is kept
    await log.commitCheckpoint('fast', 's', 0, asSeq(40));
    await log.commitCheckpoint('slow', 's', 0, asSeq(20));
    await log.applyRetention();
    const after = await segments();
    expect(after.length).toBeLessThan(before.length);
    const first = Number(after[0]!.slice(0, 20));
    expect(first).toBeLessThanOrEqual(21); // the slow consumer's next record is still there
    expect((await log.read('s', 0, asSeq(21), 100)).map((r) => r.seq)[0]).toBe(21);
    await log.commitCheckpoint('slow', 's', 0, asSeq(40));
    await log.applyRetention();
    expect(await segments()).toEqual([before[before.length - 1]]);
    // Seqs continue after the retained history is gone, across a restart too.
    await log.close();
    const reopened = await open();
    expect(await reopened.append('s', 0, [Buffer.from('z')])).toBe(41);
    expect(reopened.shards('s')[0]!.firstSeq).not.toBeNull();
    await reopened.close();
  });
});
