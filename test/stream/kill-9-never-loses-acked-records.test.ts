import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asSeq, EmbeddedStream } from '../../src/stream/index.js';
import { clicksConfig, killHard, removeDir, seededRandom, startProcess, tempDir, writeConfig } from '../fixtures/strata.js';

/**
 * `strata start` is killed with SIGKILL at random instants while producers ingest; after every restart,
 * every record that was acknowledged must be there, under the offset its ack named, and seqs must never be
 * handed out twice. The seed is printed, and STRATA_TEST_SEED replays a failing run.
 */
const SEED = Number(process.env.STRATA_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));
const CYCLES = Number(process.env.STRATA_CRASH_CYCLES ?? 20);
const PRODUCERS = 4;

describe(`kill -9 during ingestion (seed ${SEED}, ${CYCLES} cycles)`, () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir('strata-crash-');
  });
  afterAll(async () => removeDir(dir));

  it('never loses an acknowledged record, never reuses a seq and never serves a corrupt one', async () => {
    const random = seededRandom(SEED);
    const configPath = await writeConfig(dir, clicksConfig());
    const dataDir = join(dir, 'data');
    /** `${shard}:${seq}` → the event_id its ack was for. */
    const acked = new Map<string, string>();
    const maxAckedSeq = [0, 0, 0, 0];
    let totalAcked = 0;

    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const server = await startProcess(configPath, dataDir);
      // Everything acknowledged before this start must have survived the kill.
      const state = (await (await fetch(`${server.url}/v1/streams`)).json()) as {
        streams: { shards: { shard: string; lastSeq: string }[] }[];
      };
      for (const shard of state.streams[0]!.shards) {
        expect(Number(shard.lastSeq), `seed ${SEED} cycle ${cycle} shard ${shard.shard}`).toBeGreaterThanOrEqual(
          maxAckedSeq[Number(shard.shard)]!,
        );
      }
      const ackedBefore = [...maxAckedSeq];
      let stop = false;
      const producer = async (id: number) => {
        for (let request = 0; !stop; request++) {
          const size = 1 + Math.floor(random() * 300);
          const events = Array.from({ length: size }, (_, i) => ({
            event_id: `c${cycle}-p${id}-r${request}-${i}`,
            ts: new Date(1_764_000_000_000 + Math.floor(random() * 1e9)).toISOString(),
            user_id: `u${Math.floor(random() * 1000)}`,
            page: `/p/${Math.floor(random() * 50)}`,
            amount: random() < 0.2 ? null : Math.round(random() * 10_000) / 100,
          }));
          let answer: { records: { shard: string; seq: string }[]; failed: number };
          try {
            const response = await fetch(`${server.url}/v1/streams/clicks/records`, {
              method: 'POST',
              headers: { 'content-type': 'application/x-ndjson' },
              body: events.map((e) => JSON.stringify(e)).join('\n'),
            });
            if (response.status !== 200) throw new Error(`status ${response.status}`);
            answer = (await response.json()) as typeof answer;
          } catch {
            return; // the server died under us: this request was never acknowledged
          }
          expect(answer.failed).toBe(0);
          answer.records.forEach((record, i) => {
            const shard = Number(record.shard);
            const seq = Number(record.seq);
            const key = `${shard}:${seq}`;
            expect(acked.has(key), `seed ${SEED}: seq ${key} handed out twice`).toBe(false);
            expect(seq, `seed ${SEED}: seq ${key} not after the pre-crash ones`).toBeGreaterThan(ackedBefore[shard]!);
            acked.set(key, events[i]!.event_id);
            maxAckedSeq[shard] = Math.max(maxAckedSeq[shard]!, seq);
            totalAcked++;
          });
        }
      };
      const producers = Array.from({ length: PRODUCERS }, (_, id) => producer(id));
      await new Promise((resolve) => setTimeout(resolve, 20 + random() * 400));
      await killHard(server.child);
      stop = true;
      await Promise.all(producers);
    }

    expect(totalAcked, `seed ${SEED}: the test acknowledged nothing`).toBeGreaterThan(CYCLES * 10);
    const log = await EmbeddedStream.open({ dir: join(dataDir, 'stream'), streams: { clicks: { shards: 4 } } });
    try {
      let found = 0;
      for (let shard = 0; shard < 4; shard++) {
        const records = await log.read('clicks', shard, asSeq(1), Number.MAX_SAFE_INTEGER);
        records.forEach((record, i) => {
          expect(record.seq, `seed ${SEED}: gap in shard ${shard}`).toBe(i + 1);
          const eventId = (JSON.parse(record.data.toString()) as { event_id: string }).event_id;
          const expected = acked.get(`${shard}:${record.seq}`);
          if (expected !== undefined) {
            expect(eventId, `seed ${SEED}: shard ${shard} seq ${record.seq}`).toBe(expected);
            found++;
          }
        });
      }
      expect(found, `seed ${SEED}: acknowledged records missing after the crashes`).toBe(acked.size);
    } finally {
      await log.close();
    }
  }, 180_000);
});
