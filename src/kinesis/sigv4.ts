import { createHash, createHmac, timingSafeEqual, type Hash, type Hmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { KinesisError } from './errors.js';

/**
 * AWS Signature V4 on the server side: the access key id is a token's name, the secret access key the token.
 * The signature is recomputed with @smithy/signature-v4, the very code the AWS SDK signs with, over the headers
 * the client says it signed; nothing of the canonical request is written by hand here, so a client that AWS
 * accepts is accepted here too.
 */

/** How far a request's X-Amz-Date may be from the server's clock, either way (AWS allows 15 minutes). */
export const MAX_CLOCK_SKEW_MS = 15 * 60_000;

/** The service name the credential scope must name. */
const SERVICE = 'kinesis';

/** What a request's Authorization header claims: who signed, for which scope and headers, and the signature. */
export interface SignatureClaim {
  readonly accessKeyId: string;
  readonly region: string;
  readonly signedHeaders: readonly string[];
  readonly signature: string;
  /** The request's X-Amz-Date. */
  readonly signedAt: Date;
}

/** A request as the HTTP edge received it: the raw URL, lower-case headers and the body's bytes. */
export interface IncomingRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

const AUTHORIZATION = /^AWS4-HMAC-SHA256\s+(.*)$/;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** The header's value as one string (repeated headers joined with commas, as SigV4 canonicalizes them). */
function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

/**
 * Reads the claim of a request's Authorization header and checks its date against the clock. Throws, in AWS's
 * words: MissingAuthenticationTokenException without the header, IncompleteSignatureException for a malformed
 * one, InvalidSignatureException for a date more than {@link MAX_CLOCK_SKEW_MS} away.
 */
export function readSignatureClaim(request: IncomingRequest, now: number): SignatureClaim {
  const header = headerValue(request.headers, 'authorization');
  if (header === undefined || header === '') throw new KinesisError('MissingAuthenticationTokenException', 'Missing Authentication Token');
  const match = AUTHORIZATION.exec(header);
  if (!match) {
    throw new KinesisError('IncompleteSignatureException', `Authorization header requires AWS4-HMAC-SHA256 with 'Credential', 'SignedHeaders' and 'Signature' parameters.`);
  }
  const parameters = new Map<string, string>();
  for (const part of match[1]!.split(',')) {
    const at = part.indexOf('=');
    if (at > 0) parameters.set(part.slice(0, at).trim(), part.slice(at + 1).trim());
  }
  const credential = parameters.get('Credential');
  const signedHeaders = parameters.get('SignedHeaders');
  const signature = parameters.get('Signature');
  if (credential === undefined || signedHeaders === undefined || signature === undefined || !/^[0-9a-f]{64}$/.test(signature)) {
    throw new KinesisError('IncompleteSignatureException', `Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.`);
  }
  // Credential=<access key id>/<yyyymmdd>/<region>/<service>/aws4_request
  const scope = credential.split('/');
  if (scope.length !== 5 || scope[4] !== 'aws4_request' || scope[0] === '') {
    throw new KinesisError('IncompleteSignatureException', `Credential should be scoped to a valid region, service and date: ${credential.slice(0, 200)}`);
  }
  const [accessKeyId, day, region, service] = scope as [string, string, string, string];
  if (service !== SERVICE) {
    throw new KinesisError('InvalidSignatureException', `Credential should be scoped to correct service: '${SERVICE}'.`);
  }
  const amzDate = headerValue(request.headers, 'x-amz-date') ?? '';
  const date = AMZ_DATE.exec(amzDate);
  const headers = signedHeaders.split(';');
  if (!date || !headers.includes('host') || !headers.includes('x-amz-date')) {
    throw new KinesisError('IncompleteSignatureException', 'The request must carry X-Amz-Date and sign the host and x-amz-date headers.');
  }
  if (amzDate.slice(0, 8) !== day) {
    throw new KinesisError('InvalidSignatureException', `Date in Credential scope does not match YYYYMMDD from X-Amz-Date: ${day} vs ${amzDate.slice(0, 8)}.`);
  }
  const signedAt = new Date(Date.UTC(+date[1]!, +date[2]! - 1, +date[3]!, +date[4]!, +date[5]!, +date[6]!));
  const skew = signedAt.getTime() - now;
  if (Math.abs(skew) > MAX_CLOCK_SKEW_MS) {
    const bound = new Date(now + (skew < 0 ? -MAX_CLOCK_SKEW_MS : MAX_CLOCK_SKEW_MS));
    throw new KinesisError(
      'InvalidSignatureException',
      skew < 0
        ? `Signature expired: ${amzDate} is now earlier than ${awsDate(bound)} (${awsDate(new Date(now))} - 15 min.)`
        : `Signature not yet current: ${amzDate} is still later than ${awsDate(bound)} (${awsDate(new Date(now))} + 15 min.)`,
    );
  }
  return { accessKeyId, region, signedHeaders: headers, signature, signedAt };
}

/** `20261125T101500Z`. */
function awsDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/**
 * Whether the request's signature is the one `secret` gives: recomputed over exactly the headers the client
 * signed, the body's SHA-256, and the claim's date and region. A signed `x-amz-content-sha256` must be the body's
 * hash (else a valid signature would vouch for another body).
 */
export async function signatureMatches(request: IncomingRequest, claim: SignatureClaim, secret: string): Promise<boolean> {
  const headers: Record<string, string> = {};
  for (const name of claim.signedHeaders) {
    const value = headerValue(request.headers, name);
    if (value === undefined) return false;
    headers[name] = value;
  }
  const declaredHash = headers['x-amz-content-sha256'];
  if (declaredHash !== undefined && declaredHash !== createHash('sha256').update(request.body).digest('hex')) return false;
  const queryAt = request.url.indexOf('?');
  const query: Record<string, string | string[]> = {};
  if (queryAt !== -1) {
    for (const [key, value] of new URLSearchParams(request.url.slice(queryAt + 1))) {
      const held = query[key];
      query[key] = held === undefined ? value : [...(Array.isArray(held) ? held : [held]), value];
    }
  }
  const signer = new SignatureV4({
    credentials: { accessKeyId: claim.accessKeyId, secretAccessKey: secret },
    region: claim.region,
    service: SERVICE,
    sha256: NodeSha256,
    // The client's own x-amz-content-sha256, when it signed one, is among the headers already.
    applyChecksum: false,
  });
  const unsigned = new HttpRequest({
    method: request.method,
    protocol: 'http:',
    hostname: headers.host ?? '',
    path: queryAt === -1 ? request.url : request.url.slice(0, queryAt),
    query,
    headers,
    body: request.body,
  });
  const signed = await signer.sign(unsigned, { signingDate: claim.signedAt, signableHeaders: new Set(claim.signedHeaders) });
  const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization ?? signed.headers.Authorization ?? ''))?.[1];
  if (expected === undefined) return false;
  return timingSafeEqual(Buffer.from(expected, 'hex'), Buffer.from(claim.signature, 'hex'));
}

type SourceData = string | ArrayBuffer | ArrayBufferView;

/** SHA-256 and HMAC-SHA256 from node:crypto, in the shape @smithy/signature-v4 asks for. */
export class NodeSha256 {
  private hash: Hash | Hmac;

  constructor(private readonly secret?: SourceData) {
    this.hash = NodeSha256.create(secret);
  }

  private static create(secret?: SourceData): Hash | Hmac {
    return secret === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(secret));
  }

  update(data: SourceData): void {
    this.hash.update(toBuffer(data));
  }

  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }

  reset(): void {
    this.hash = NodeSha256.create(this.secret);
  }
}

function toBuffer(data: SourceData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}
