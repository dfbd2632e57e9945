import { rm } from 'node:fs/promises';
import {
  DescribeStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
  ListStreamsCommand,
  PutRecordCommand,
  PutRecordsCommand,
  type KinesisClient,
  type _Record,
} from '@aws-sdk/client-kinesis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shardForKey } from '../../src/stream/index.js';
import { serverKeyPath } from '../../src/security/index.js';
import { TEST_ADMIN_TOKEN } from '../fixtures/auth.js';
import { removeDir, startInProcess, tempDir, waitForDelivery, type RunningStrata } from '../fixtures/strata.js';
import { createToken, kinesisClient, kinesisConfig, sql } from './support.js';

const encode = (value: unknown) => new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));
const decode = (data: Uint8Array | undefined) => new TextDecoder().decode(data);

/** A valid click (canonical spelling, so the log keeps the producer's bytes). */
const click = (i: number, user: string | null) => ({
  event_id: `e${i}`,
  ts: `2026-11-25T10:00:${String(i % 60).padStart(2, '0')}.000Z`,
  user_id: user,
  page: `/p${i % 7}`,
  amount: i % 3 === 0 ? null : i * 1.5,
});

async function readShard(client: KinesisClient, shardId: string, type: 'TRIM_HORIZON' | 'LATEST' = 'TRIM_HORIZON'): Promise<_Record[]> {
  let iterator = (await client.send(new GetShardIteratorCommand({ StreamName: 'clicks', ShardId: shardId, ShardIteratorType: type }))).ShardIterator;
  const records: _Record[] = [];
  for (let calls = 0; iterator !== undefined && calls < 50; calls++) {
    const answer = await client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 7 }));
    records.push(...(answer.Records ?? []));
    iterator = answer.NextShardIterator;
    if ((answer.Records ?? []).length === 0 && answer.MillisBehindLatest === 0) break;
  }
  return records;
}

describe('the AWS SDK puts and reads records through the Kinesis API, unmodified', () => {
  let dir: string;
  let server: RunningStrata;
  let admin: KinesisClient;
  let producer: KinesisClient;
  let reader: KinesisClient;
  let readerToken: string;

  beforeAll(async () => {
    dir = await tempDir();
    server = await startInProcess(kinesisConfig(), dir);
    admin = kinesisClient(server.url, 'admin', TEST_ADMIN_TOKEN);
    producer = kinesisClient(server.url, 'kinesis_producer', await createToken(server.url, 'kinesis_producer', ['producer']));
    readerToken = await createToken(server.url, 'kinesis_reader', ['reader']);
    reader = kinesisClient(server.url, 'kinesis_reader', readerToken);
  });
  afterAll(async () => {
    for (const client of [admin, producer, reader]) client?.destroy();
    await server?.close();
    await removeDir(dir);
    await rm(serverKeyPath(dir), { force: true });
  });

  it('lists the configured stream and its shards in AWS form', async () => {
    const streams = await reader.send(new ListStreamsCommand({}));
    expect(streams.StreamNames).toEqual(['clicks']);
    expect(streams.HasMoreStreams).toBe(false);
    const shards = await reader.send(new ListShardsCommand({ StreamName: 'clicks' }));
    expect(shards.Shards!.map((shard) => shard.ShardId)).toEqual(['shardId-000000000000', 'shardId-000000000001', 'shardId-000000000002', 'shardId-000000000003']);
    const summary = await reader.send(new DescribeStreamSummaryCommand({ StreamName: 'clicks' }));
    expect(summary.StreamDescriptionSummary).toMatchObject({ StreamName: 'clicks', StreamStatus: 'ACTIVE', OpenShardCount: 4 });
    expect(summary.StreamDescriptionSummary!.StreamARN).toBe('arn:aws:kinesis:us-east-1:000000000000:stream/clicks');
    const described = await reader.send(new DescribeStreamCommand({ StreamName: 'clicks' }));
    expect(described.StreamDescription!.Shards).toHaveLength(4);
    // The hash ranges tile Strata's 32-bit key space.
    const ranges = described.StreamDescription!.Shards!.map((shard) => [Number(shard.HashKeyRange!.StartingHashKey), Number(shard.HashKeyRange!.EndingHashKey)]);
    expect(ranges[0]![0]).toBe(0);
    expect(ranges.at(-1)![1]).toBe(0xffff_ffff);
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]![0]).toBe(ranges[i - 1]![1]! + 1);
  });

  it('accepts valid and invalid records alike (FailedRecordCount 0); reads give back exactly the valid ones, in offset order', async () => {
    const valid = Array.from({ length: 40 }, (_, i) => click(i, i % 5 === 0 ? null : `u${i % 9}`));
    const invalid = [
      { event_id: 'bad1', ts: '2026-11-25T10:00:00.000Z', user_id: 'u1', page: '/x', amount: 'abc' },
      { event_id: 'bad2', ts: '2026-11-25T10:00:00.000Z', user_id: 'u2' },
      { event_id: 'bad3', ts: '2026-11-25T10:00:00.000Z', user_id: 'u3', page: '/x', colour: 'red' },
      'this is not JSON',
    ];
    const entries = [
      ...valid.map((record, i) => ({ record, key: `pk${i}`, valid: true })),
      ...invalid.map((record, i) => ({ record, key: `bad${i}`, valid: false })),
    ].sort((a, b) => a.key.localeCompare(b.key));
    const answer = await producer.send(
      new PutRecordsCommand({ StreamName: 'clicks', Records: entries.map((entry) => ({ Data: encode(entry.record), PartitionKey: entry.key })) }),
    );
    expect(answer.FailedRecordCount).toBe(0);
    expect(answer.Records).toHaveLength(entries.length);
    for (const [i, result] of answer.Records!.entries()) {
      expect(result.ErrorCode).toBeUndefined();
      expect(result.SequenceNumber).toMatch(/^[12]\d{26}$/);
      // The shard: the record's user_id when it has one, else the Kinesis PartitionKey.
      const entry = entries[i]!;
      const record = entry.record as { user_id?: string | null };
      const key = typeof record === 'object' && record.user_id ? record.user_id : entry.key;
      expect(result.ShardId).toBe(`shardId-00000000000${shardForKey(key, 4)}`);
    }

    const sent = new Map<string, string>();
    answer.Records!.forEach((result, i) => entries[i]!.valid && sent.set(result.SequenceNumber!, JSON.stringify(entries[i]!.record)));
    const read: _Record[] = [];
    for (let shard = 0; shard < 4; shard++) {
      const records = await readShard(reader, `shardId-00000000000${shard}`);
      const numbers = records.map((record) => record.SequenceNumber!);
      // Offset order: sequence numbers increase, as text and as numbers.
      expect([...numbers].sort()).toEqual(numbers);
      read.push(...records);
    }
    expect(read).toHaveLength(valid.length);
    for (const record of read) expect(decode(record.Data)).toBe(sent.get(record.SequenceNumber!));
    // Within a shard the records come in the order they were put.
    const putOrder = answer.Records!.map((result) => result.SequenceNumber!).filter((number) => sent.has(number));
    expect(read.map((record) => record.SequenceNumber).sort()).toEqual([...putOrder].sort());
  });

  it('positions iterators at, after and from a sequence number, at a timestamp, and at LATEST', async () => {
    const before = new Date();
    const put = await producer.send(new PutRecordCommand({ StreamName: 'clicks', Data: encode(click(100, 'u_it')), PartitionKey: 'x' }));
    const second = await producer.send(new PutRecordCommand({ StreamName: 'clicks', Data: encode(click(101, 'u_it')), PartitionKey: 'x' }));
    expect(second.ShardId).toBe(put.ShardId);
    const at = await reader.send(
      new GetShardIteratorCommand({ StreamName: 'clicks', ShardId: put.ShardId, ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: put.SequenceNumber }),
    );
    const fromAt = await reader.send(new GetRecordsCommand({ ShardIterator: at.ShardIterator }));
    expect(fromAt.Records!.map((record) => record.SequenceNumber)).toEqual([put.SequenceNumber, second.SequenceNumber]);
    expect(fromAt.MillisBehindLatest).toBe(0);
    expect(fromAt.Records![0]!.PartitionKey).toBe('u_it');
    expect(fromAt.Records![0]!.ApproximateArrivalTimestamp!.getTime()).toBeGreaterThanOrEqual(before.getTime() - 1000);
    const after = await reader.send(
      new GetShardIteratorCommand({ StreamName: 'clicks', ShardId: put.ShardId, ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: put.SequenceNumber }),
    );
    expect((await reader.send(new GetRecordsCommand({ ShardIterator: after.ShardIterator }))).Records!.map((r) => r.SequenceNumber)).toEqual([second.SequenceNumber]);
    const byTime = await reader.send(new GetShardIteratorCommand({ StreamName: 'clicks', ShardId: put.ShardId, ShardIteratorType: 'AT_TIMESTAMP', Timestamp: new Date(before.getTime() - 1) }));
    const fromTime = (await reader.send(new GetRecordsCommand({ ShardIterator: byTime.ShardIterator }))).Records!.map((r) => r.SequenceNumber);
    expect(fromTime).toEqual([put.SequenceNumber, second.SequenceNumber]);

    const latest = await reader.send(new GetShardIteratorCommand({ StreamName: 'clicks', ShardId: put.ShardId, ShardIteratorType: 'LATEST' }));
    const empty = await reader.send(new GetRecordsCommand({ ShardIterator: latest.ShardIterator }));
    expect(empty.Records).toEqual([]);
    const third = await producer.send(new PutRecordCommand({ StreamName: 'clicks', Data: encode(click(102, 'u_it')), PartitionKey: 'x' }));
    const next = await reader.send(new GetRecordsCommand({ ShardIterator: empty.NextShardIterator }));
    expect(next.Records!.map((r) => r.SequenceNumber)).toEqual([third.SequenceNumber]);
  });

  it('delivers the valid records to the raw table, and quarantines the invalid ones with their reason, counted and queryable', async () => {
    await waitForDelivery(server);
    const raw = await sql(server.url, "SELECT count(*) AS n FROM clicks WHERE event_id LIKE 'e%'");
    expect(Number(raw[0]!.n)).toBe(43);
    expect(await sql(server.url, "SELECT count(*) AS n FROM clicks WHERE event_id LIKE 'bad%'")).toEqual([{ n: '0' }]);

    const quarantined = await sql(server.url, 'SELECT event_id, __quarantine_reason, __kinesis_data, __kinesis_partition_key FROM clicks__quarantine ORDER BY __quarantine_reason, event_id');
    // The schema's refusals (kept by the Kinesis API) beside the transform's (user_id required; these are in the log).
    const kinesis = quarantined.filter((row) => String(row.__quarantine_reason).startsWith('schema:'));
    expect(kinesis.map((row) => row.__quarantine_reason)).toEqual([
      expect.stringMatching(/^schema: Data is not a JSON record/),
      'schema: amount: expected a number, got the string "abc"',
      'schema: colour is not in the schema of stream "clicks"',
      'schema: page is required',
    ]);
    expect(kinesis.map((row) => row.event_id)).toEqual([null, 'bad1', 'bad3', 'bad2']);
    expect(kinesis[0]!.__kinesis_data).toBe('this is not JSON');
    expect(JSON.parse(String(kinesis[1]!.__kinesis_data))).toMatchObject({ event_id: 'bad1', amount: 'abc' });
    const ruled = quarantined.filter((row) => row.__quarantine_reason === 'required: user_id is missing');
    expect(ruled).toHaveLength(8);
    expect(ruled.every((row) => row.__kinesis_data === null)).toBe(true);

    const status = (await (await fetch(`${server.url}/v1/streams`)).json()) as { streams: { name: string; quarantined?: number; accepted: number }[] };
    const clicks = status.streams.find((stream) => stream.name === 'clicks')!;
    expect(clicks.quarantined).toBe(12);
    // Counted as accepted like HTTP ingest's records: every record put into the log (the schema's refusals aside).
    const logged = Number((await sql(server.url, 'SELECT count(*) AS n FROM clicks'))[0]!.n);
    expect(clicks.accepted).toBe(logged);

    // The views count them as they count HTTP-ingested records: the clean ones, in the speed layer, then in a batch version.
    const clean = Number((await sql(server.url, 'SELECT count(*) AS n FROM clicks__clean'))[0]!.n);
    expect(clean).toBeGreaterThan(0);
    const viewTotal = async (layer: string) => {
      const body = (await (await fetch(`${server.url}/v1/views/pages?layer=${layer}`)).json()) as { rows: { views: string }[] };
      return body.rows.reduce((sum, row) => sum + Number(row.views), 0);
    };
    for (let i = 0; i < 100 && (await viewTotal('merged')) !== clean; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await viewTotal('merged')).toBe(clean);
    expect((await server.strata.batch.run()).state).toBe('succeeded');
    expect(await viewTotal('batch')).toBe(clean);
    expect(await viewTotal('merged')).toBe(clean);
  });

  it('keeps quarantined records across a restart, and answers from the same iterators (same server key)', async () => {
    const iterator = (await reader.send(new GetShardIteratorCommand({ StreamName: 'clicks', ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
    await server.close();
    server = await startInProcess(kinesisConfig(), dir);
    const again = kinesisClient(server.url, 'kinesis_reader', readerToken);
    try {
      const answer = await again.send(new GetRecordsCommand({ ShardIterator: iterator }));
      expect(answer.Records!.length).toBeGreaterThan(0);
    } finally {
      again.destroy();
    }
    expect(server.strata.kinesis.quarantine.count('clicks')).toBe(4);
    const rows = await sql(server.url, "SELECT count(*) AS n FROM clicks__quarantine WHERE __quarantine_reason LIKE 'schema:%'");
    expect(rows).toEqual([{ n: '4' }]);
  });
});
