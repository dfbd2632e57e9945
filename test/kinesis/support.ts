import { KinesisClient } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { ConfigInput } from '../../src/config/index.js';
import { NodeSha256 } from '../../src/kinesis/index.js';
import { fetchWithoutToken } from '../fixtures/auth.js';

/**
 * A clicks stream with 4 shards and a transform (user_id required), so that both kinds of quarantine show in
 * `clicks__quarantine`; a `pages` view over it; a `producer` policy that may only ingest, a `reader` that may only read the stream.
 */
export function kinesisConfig(overrides: Partial<ConfigInput> = {}): ConfigInput {
  return {
    streams: {
      clicks: {
        partitionKey: 'user_id',
        eventTime: 'ts',
        shards: 4,
        schema: { event_id: 'string', ts: 'timestamp', user_id: 'string?', page: 'string', amount: 'double?' },
        transform: { required: ['user_id'] },
      },
    },
    delivery: { maxSeconds: 0.2 },
    views: { pages: 'SELECT page, count(*) AS views FROM clicks GROUP BY page' },
    policies: {
      producer: { allow: [{ actions: ['ingest'], resources: ['stream:clicks'] }] },
      reader: { allow: [{ actions: ['read'], resources: ['stream:clicks'] }] },
    },
    ...overrides,
  };
}

/** The AWS SDK's Kinesis client, unmodified, pointed at Strata with a token's name and text as credentials. */
export function kinesisClient(url: string, accessKeyId: string, secretAccessKey: string, extra: { systemClockOffset?: number } = {}): KinesisClient {
  return new KinesisClient({
    endpoint: url,
    region: 'us-east-1',
    credentials: { accessKeyId, secretAccessKey },
    requestHandler: new NodeHttpHandler(),
    // One attempt: a refusal is the point of several tests, and retries would only slow them.
    maxAttempts: 1,
    ...extra,
  });
}

/** Makes a token over the HTTP API as the test admin; answers its text. */
export async function createToken(url: string, name: string, policies: string[]): Promise<string> {
  const response = await fetch(`${url}/v1/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, policies }),
  });
  if (response.status !== 201) throw new Error(`token ${name}: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { token: string }).token;
}

/**
 * A Kinesis call signed by hand (with @smithy/signature-v4, as the SDK signs), for bodies and targets the SDK would
 * never send. Answers status, the AWS error type and the parsed body.
 */
export async function signedCall(
  url: string,
  credentials: { accessKeyId: string; secretAccessKey: string },
  target: string,
  body: string | Buffer,
): Promise<{ status: number; type: string | null; body: Record<string, unknown> | null }> {
  const { host, hostname, port } = new URL(url);
  const signer = new SignatureV4({ credentials, region: 'us-east-1', service: 'kinesis', sha256: NodeSha256 });
  const request = new HttpRequest({
    method: 'POST',
    protocol: 'http:',
    hostname,
    port: Number(port),
    path: '/',
    headers: { host, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': target },
    body,
  });
  const signed = await signer.sign(request);
  const response = await fetchWithoutToken(`${url}/`, { method: 'POST', headers: signed.headers, body });
  const text = await response.text();
  let parsed: Record<string, unknown> | null = null;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = null;
  }
  return { status: response.status, type: response.headers.get('x-amzn-errortype'), body: parsed };
}

/** Runs SQL over the HTTP API as the test admin. */
export async function sql(url: string, query: string): Promise<Record<string, unknown>[]> {
  const response = await fetch(`${url}/v1/sql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sql: query }) });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`SQL ${query}: ${response.status} ${text}`);
  return (JSON.parse(text) as { rows: Record<string, unknown>[] }).rows;
}
