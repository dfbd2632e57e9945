import { readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import {
  CreateStreamCommand,
  DeleteStreamCommand,
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisServiceException,
  ListStreamsCommand,
  PutRecordCommand,
  PutRecordsCommand,
  type KinesisClient,
} from '@aws-sdk/client-kinesis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_KINESIS_BODY_BYTES, ShardIterators } from '../../src/kinesis/index.js';
import { serverKeyPath } from '../../src/security/index.js';
import { TEST_ADMIN_TOKEN } from '../fixtures/auth.js';
import { fetchWithoutToken } from '../fixtures/auth.js';
import { removeDir, startInProcess, tempDir, type RunningStrata } from '../fixtures/strata.js';
import { createToken, kinesisClient, kinesisConfig, signedCall } from './support.js';

const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const click = { event_id: 'e1', ts: '2026-11-25T10:00:00.000Z', user_id: 'u1', page: '/', amount: 1 };

/** The AWS error the SDK raised for a call: its type (`name`) and HTTP status. */
async function refusal(promise: Promise<unknown>): Promise<{ name: string; status: number | undefined; message: string }> {
  try {
    await promise;
  } catch (error) {
    if (!(error instanceof KinesisServiceException)) throw error;
    return { name: error.name, status: error.$metadata.httpStatusCode, message: error.message };
  }
  throw new Error('the call succeeded');
}

describe('the Kinesis API refuses in the AWS error shape, and keeps working', () => {
  let dir: string;
  let server: RunningStrata;
  let admin: KinesisClient;
  let producer: KinesisClient;
  let reader: KinesisClient;
  let producerToken: string;
  const admins = { accessKeyId: 'admin', secretAccessKey: TEST_ADMIN_TOKEN };

  /** The server still takes a put and answers it: checked after every bad request. */
  async function stillWorks(): Promise<void> {
    const answer = await producer.send(new PutRecordCommand({ StreamName: 'clicks', Data: encode(click), PartitionKey: 'k' }));
    expect(answer.SequenceNumber).toMatch(/^1\d{26}$/);
  }

  beforeAll(async () => {
    dir = await tempDir();
    // Many failed authentications from one address are part of this file.
    server = await startInProcess(kinesisConfig({ security: { rateLimit: { failedAuthBurst: 10_000 } } }), dir);
    admin = kinesisClient(server.url, admins.accessKeyId, admins.secretAccessKey);
    producerToken = await createToken(server.url, 'refusal_producer', ['producer']);
    producer = kinesisClient(server.url, 'refusal_producer', producerToken);
    reader = kinesisClient(server.url, 'refusal_reader', await createToken(server.url, 'refusal_reader', ['reader']));
  });
  afterAll(async () => {
    for (const client of [admin, producer, reader]) client?.destroy();
    await server?.close();
    await removeDir(dir);
    await rm(serverKeyPath(dir), { force: true });
  });

  it('refuses a wrong secret, an unknown access key and a stale date', async () => {
    const wrong = kinesisClient(server.url, 'refusal_producer', `${producerToken.slice(0, -1)}x`);
    const unknown = kinesisClient(server.url, 'nobody', producerToken);
    const stale = kinesisClient(server.url, 'refusal_producer', producerToken, { systemClockOffset: -20 * 60_000 });
    const put = new PutRecordCommand({ StreamName: 'clicks', Data: encode(click), PartitionKey: 'k' });
    try {
      expect(await refusal(wrong.send(put))).toMatchObject({ name: 'InvalidSignatureException', status: 400 });
      expect(await refusal(unknown.send(put))).toMatchObject({ name: 'UnrecognizedClientException', status: 400 });
      const expired = await refusal(stale.send(put));
      expect(expired).toMatchObject({ name: 'InvalidSignatureException', status: 400 });
      expect(expired.message).toMatch(/^Signature expired/);
    } finally {
      for (const client of [wrong, unknown, stale]) client.destroy();
    }
    const unsigned = await fetchWithoutToken(`${server.url}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'Kinesis_20131202.ListStreams' },
      body: '{}',
    });
    expect(unsigned.status).toBe(400);
    expect(await unsigned.json()).toEqual({ __type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' });
    // A bearer token is no AWS signature.
    const bearer = await fetchWithoutToken(`${server.url}/`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'Kinesis_20131202.ListStreams' },
      body: '{}',
    });
    expect(bearer.headers.get('x-amzn-errortype')).toBe('IncompleteSignatureException');
    await stillWorks();
  });

  it("applies the token's policies: ingest for puts, read for reads; CreateStream and DeleteStream are denied", async () => {
    const denied = await refusal(reader.send(new PutRecordsCommand({ StreamName: 'clicks', Records: [{ Data: encode(click), PartitionKey: 'k' }] })));
    expect(denied).toMatchObject({ name: 'AccessDeniedException', status: 400 });
    expect(denied.message).toContain('refusal_reader');
    expect(await refusal(producer.send(new DescribeStreamCommand({ StreamName: 'clicks' })))).toMatchObject({ name: 'AccessDeniedException' });
    expect(await refusal(producer.send(new GetShardIteratorCommand({ StreamName: 'clicks', ShardId: 'shardId-000000000000', ShardIteratorType: 'LATEST' })))).toMatchObject({
      name: 'AccessDeniedException',
    });
    // Lists answer what the token may read.
    expect((await producer.send(new ListStreamsCommand({}))).StreamNames).toEqual([]);
    expect(await refusal(admin.send(new CreateStreamCommand({ StreamName: 'new_stream', ShardCount: 1 })))).toMatchObject({ name: 'AccessDeniedException', status: 400 });
    expect(await refusal(admin.send(new DeleteStreamCommand({ StreamName: 'clicks' })))).toMatchObject({ name: 'AccessDeniedException' });
    // Denials are in the audit log, as the HTTP API's are.
    const audit = await fetch(`${server.url}/v1/sql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sql: "SELECT count(*) AS n FROM strata_audit WHERE token = 'refusal_reader' AND outcome = 'denied' AND action = 'ingest'" }),
    });
    expect(((await audit.json()) as { rows: { n: string }[] }).rows[0]!.n).not.toBe('0');
    await stillWorks();
  });

  it('answers ResourceNotFoundException for an unknown stream or shard', async () => {
    expect(await refusal(admin.send(new DescribeStreamCommand({ StreamName: 'nope' })))).toMatchObject({ name: 'ResourceNotFoundException', status: 400 });
    expect(await refusal(admin.send(new PutRecordCommand({ StreamName: 'nope', Data: encode(click), PartitionKey: 'k' })))).toMatchObject({
      name: 'ResourceNotFoundException',
    });
    expect(await refusal(admin.send(new GetShardIteratorCommand({ StreamName: 'clicks', ShardId: 'shardId-000000000009', ShardIteratorType: 'LATEST' })))).toMatchObject({
      name: 'ResourceNotFoundException',
    });
    await stillWorks();
  });

  it('answers ExpiredIteratorException for an iterator older than 5 minutes, and refuses a forged one', async () => {
    // An iterator signed with the server's own key (the file beside the data directory), issued 6 minutes ago.
    const key = await readFile(serverKeyPath(dir));
    const old = new ShardIterators(key, () => Date.now() - 6 * 60_000).issue('clicks', 0, 1);
    expect(await refusal(reader.send(new GetRecordsCommand({ ShardIterator: old })))).toMatchObject({ name: 'ExpiredIteratorException', status: 400 });
    const fresh = (await reader.send(new GetShardIteratorCommand({ StreamName: 'clicks', ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator!;
    const [payload, mac] = fresh.split('.') as [string, string];
    const altered = Buffer.from(payload, 'base64url').toString('utf8').replace('"clicks",0,', '"clicks",1,');
    const forged = `${Buffer.from(altered).toString('base64url')}.${mac}`;
    expect(await refusal(reader.send(new GetRecordsCommand({ ShardIterator: forged })))).toMatchObject({ name: 'InvalidArgumentException' });
    expect(await refusal(reader.send(new GetRecordsCommand({ ShardIterator: 'garbage' })))).toMatchObject({ name: 'InvalidArgumentException' });
    await stillWorks();
  });

  it('answers UnknownOperationException for an operation it does not know', async () => {
    const answer = await signedCall(server.url, admins, 'Kinesis_20131202.FlyToTheMoon', '{}');
    expect(answer).toMatchObject({ status: 400, type: 'UnknownOperationException', body: { __type: 'UnknownOperationException' } });
    const noTarget = await signedCall(server.url, admins, 'Dynamo_20120810.ListTables', '{}');
    expect(noTarget.type).toBe('UnknownOperationException');
    await stillWorks();
  });

  it('refuses oversized puts: more than 500 records, a record over 1 MiB, a body over the limit', async () => {
    const many = Array.from({ length: 501 }, () => ({ Data: encode(click), PartitionKey: 'k' }));
    expect(await refusal(producer.send(new PutRecordsCommand({ StreamName: 'clicks', Records: many })))).toMatchObject({ name: 'ValidationException', status: 400 });
    const big = new Uint8Array(1024 * 1024 + 1).fill(0x20);
    expect(await refusal(producer.send(new PutRecordCommand({ StreamName: 'clicks', Data: big, PartitionKey: 'k' })))).toMatchObject({ name: 'ValidationException' });
    // Five records of 1 MiB: each within its limit, together (with their PartitionKeys) over the 5 MiB of a request.
    const five = Array.from({ length: 5 }, () => ({ Data: new Uint8Array(1024 * 1024).fill(0x20), PartitionKey: 'k' }));
    expect(await refusal(producer.send(new PutRecordsCommand({ StreamName: 'clicks', Records: five })))).toMatchObject({ name: 'InvalidArgumentException' });
    const huge = JSON.stringify({ StreamName: 'clicks', Records: [{ Data: 'A'.repeat(MAX_KINESIS_BODY_BYTES), PartitionKey: 'k' }] });
    const tooLarge = await signedCall(server.url, admins, 'Kinesis_20131202.PutRecords', huge);
    expect(tooLarge).toMatchObject({ status: 413, type: 'ValidationException' });
    await stillWorks();
  });

  it('refuses a truncated body, and survives a request cut off mid-body', async () => {
    const truncated = await signedCall(server.url, admins, 'Kinesis_20131202.PutRecords', '{"StreamName": "clicks", "Records": [{"Data": "e30=", "Partit');
    expect(truncated).toMatchObject({ status: 400, type: 'SerializationException' });
    const notBase64 = await signedCall(server.url, admins, 'Kinesis_20131202.PutRecord', JSON.stringify({ StreamName: 'clicks', Data: '!!!', PartitionKey: 'k' }));
    expect(notBase64).toMatchObject({ status: 400, type: 'SerializationException' });
    // A client that promises 10,000 bytes, sends 100 and hangs up.
    const { host } = new URL(server.url);
    await new Promise<void>((resolve, reject) => {
      const socket = connect(Number(new URL(server.url).port), '127.0.0.1', () => {
        socket.write(
          `POST / HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: Kinesis_20131202.PutRecords\r\nContent-Length: 10000\r\n\r\n${'{'.repeat(100)}`,
          () => socket.destroy(),
        );
      });
      socket.on('close', () => resolve());
      socket.on('error', reject);
    });
    await stillWorks();
  });
});
