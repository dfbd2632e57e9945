import { randomUUID } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { OverloadedError, StrataError } from '../errors.js';
import { RateLimitedError, UnauthorizedError, type AccessContext, type Principal } from '../security/index.js';
import type { Strata } from '../strata.js';
import { KinesisError } from './errors.js';
import { KinesisApi, MAX_PUT_REQUEST_BYTES } from './kinesis-api.js';
import { KinesisIngest } from './kinesis-ingest.js';
import { readSignatureClaim, signatureMatches, type IncomingRequest, type SignatureClaim } from './sigv4.js';

/** The path the AWS SDK posts every Kinesis call to: the endpoint's root. */
export const KINESIS_ROUTE = '/';

/** `X-Amz-Target: Kinesis_20131202.PutRecords`. */
const TARGET = /^Kinesis_20131202\.([A-Za-z]{1,64})$/;

/**
 * Largest request body: a full PutRecords (5 MiB of Data and PartitionKeys) grows by 4/3 in base64, plus the JSON
 * around 500 records. A bigger body is refused (413) before it is buffered; the decoded limits are checked after.
 */
export const MAX_KINESIS_BODY_BYTES = Math.ceil((MAX_PUT_REQUEST_BYTES * 4) / 3) + 512 * 1024;

/** The body's content types AWS clients send: JSON 1.1 (the SDKs), and plain JSON from hand-written clients. */
const CONTENT_TYPES = ['application/x-amz-json-1.1', 'application/x-amz-json-1.0'];

/**
 * The Kinesis Data Streams API on the main HTTP port: `POST /` with `X-Amz-Target: Kinesis_20131202.<Operation>`
 * and an AWS Signature V4, so that a producer written for Amazon Kinesis needs only Strata's URL as its endpoint.
 *
 * The global authentication hook lets this route through (its access is `signed`, src/http/route-access.ts): it
 * authenticates the request itself, here, by its Signature V4 (the access key id is a token's name, the secret
 * access key the token); then the token's rate limit and policies apply as on every route. Every answer, errors
 * included, is in AWS's JSON shape (errors.ts), under a scope of its own so the rest of the API keeps its shape.
 */
export function registerKinesisRoutes(app: FastifyInstance, strata: Strata): void {
  const security = strata.security;
  const ingest = new KinesisIngest(strata.stream, strata.config, strata.kinesis.quarantine, (stream, accepted, bytes) =>
    strata.ingestor.count(stream, accepted, bytes),
  );
  const api = new KinesisApi(strata.config, strata.stream, security, ingest, strata.kinesis.iterators);
  const creationTimes = strata.catalog
    .tables()
    .then((tables) => api.setCreationTimes(new Map(tables.map((table) => [table.name, Date.parse(table.createdAt)]))))
    .catch(() => undefined);
  /** Puts, by request, for the ingest metrics once answered. */
  const puts = new WeakMap<FastifyRequest, string>();

  void app.register(async (scope) => {
    scope.addContentTypeParser(CONTENT_TYPES, { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    scope.setErrorHandler((error, request, reply) => sendKinesisError(error, request, reply));

    scope.post(
      KINESIS_ROUTE,
      {
        bodyLimit: MAX_KINESIS_BODY_BYTES,
        onResponse: (request, reply, done) => {
          const stream = puts.get(request);
          if (stream !== undefined) strata.metrics.observeIngest(stream, reply.statusCode, reply.elapsedTime / 1000);
          done();
        },
      },
      async (request, reply) => {
        const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        const target = String(request.headers['x-amz-target'] ?? '');
        const operation = TARGET.exec(target)?.[1] ?? null;
        const context: AccessContext = { route: `POST ${KINESIS_ROUTE} (Kinesis ${operation ?? 'unknown'})`, client: request.ip };
        const incoming: IncomingRequest = { method: request.method, url: request.url, headers: request.headers, body };
        const { principal, claim } = await authenticate(incoming, operation, context);
        try {
          security.checkRate(principal);
        } catch (error) {
          if (error instanceof RateLimitedError) throw new KinesisError('LimitExceededException', `Rate exceeded: ${error.message}`);
          throw error;
        }
        if (operation === null) {
          throw new KinesisError('UnknownOperationException', `X-Amz-Target ${JSON.stringify(target.slice(0, 100))} names no Kinesis_20131202 operation.`);
        }
        let input: unknown;
        try {
          input = JSON.parse(body.length === 0 ? '{}' : body.toString('utf8'));
        } catch (error) {
          throw new KinesisError('SerializationException', `The request body is not JSON: ${(error as Error).message}`);
        }
        if (typeof input !== 'object' || input === null || Array.isArray(input)) {
          throw new KinesisError('SerializationException', 'The request body must be a JSON object.');
        }
        await creationTimes;
        const answer = await api.call(operation, input as Record<string, unknown>, { principal, context, region: claim.region });
        if (answer.ingested) puts.set(request, answer.ingested.stream);
        return reply
          .code(200)
          .header('content-type', 'application/x-amz-json-1.1')
          .header('x-amzn-requestid', randomUUID())
          .send(JSON.stringify(answer.body));
      },
    );
  });

  /**
   * The principal of a correctly signed request, or the AWS error to answer: MissingAuthenticationToken,
   * IncompleteSignature, a stale date or a signature that does not match (InvalidSignature), an access key id that
   * names no token holding a sealed secret (UnrecognizedClient). Every refusal counts against the client's limit of
   * failed authentications and is audited, as a bad bearer token is.
   */
  async function authenticate(
    request: IncomingRequest,
    operation: string | null,
    context: AccessContext,
  ): Promise<{ principal: Principal; claim: SignatureClaim }> {
    const action = operation === 'PutRecord' || operation === 'PutRecords' ? 'ingest' : 'read';
    const refuse = (error: KinesisError): never => {
      const refusal = security.refuseAuthentication(context.client ?? '', action, 'stream:*', context);
      if (refusal instanceof UnauthorizedError) throw error;
      throw new KinesisError('LimitExceededException', `Rate exceeded: ${refusal.message}`);
    };
    let claim: SignatureClaim;
    try {
      claim = readSignatureClaim(request, Date.now());
    } catch (error) {
      if (error instanceof KinesisError) refuse(error);
      throw error;
    }
    const secret = security.signingSecret(claim.accessKeyId);
    if (secret === null) {
      return refuse(new KinesisError('UnrecognizedClientException', 'The security token included in the request is invalid.'));
    }
    const principal = (await signatureMatches(request, claim, secret)) ? security.verifyToken(claim.accessKeyId, secret) : null;
    if (principal === null) {
      return refuse(
        new KinesisError(
          'InvalidSignatureException',
          'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
        ),
      );
    }
    return { principal, claim };
  }
}

/** Fastify's own errors that a client caused, as AWS types. */
const FASTIFY_ERRORS: Record<string, { type: KinesisError['type']; status: number }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { type: 'ValidationException', status: 413 },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { type: 'SerializationException', status: 400 },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { type: 'SerializationException', status: 400 },
  FST_ERR_CTP_EMPTY_JSON_BODY: { type: 'SerializationException', status: 400 },
};

/** Answers any error of the scope in AWS's shape; what is Strata's fault is logged and answered as InternalFailure. */
function sendKinesisError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  let answer: KinesisError;
  if (error instanceof KinesisError) answer = error;
  else if (error instanceof RateLimitedError) answer = new KinesisError('LimitExceededException', `Rate exceeded: ${error.message}`);
  else if (error instanceof OverloadedError) answer = new KinesisError('ProvisionedThroughputExceededException', `Rate exceeded: ${error.message}`);
  else if (error instanceof StrataError) {
    // The authentication hook's own refusals (a URL over its limit): a client error in any case.
    answer = new KinesisError(error.code === 'forbidden' ? 'AccessDeniedException' : 'ValidationException', error.message);
  } else {
    const code = (error as Partial<FastifyError>).code;
    const mapped = code === undefined ? undefined : FASTIFY_ERRORS[code];
    if (mapped !== undefined) {
      const message =
        code === 'FST_ERR_CTP_BODY_TOO_LARGE'
          ? `The request body is over ${MAX_KINESIS_BODY_BYTES} bytes; a PutRecords call carries at most ${MAX_PUT_REQUEST_BYTES} bytes of records.`
          : code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
            ? `Send the body as ${CONTENT_TYPES[0]}.`
            : String((error as Error).message);
      answer = new KinesisError(mapped.type, message, mapped.status);
    } else {
      request.log.error(error);
      answer = new KinesisError('InternalFailure', 'Internal service failure.');
    }
  }
  return reply
    .code(answer.status)
    .header('content-type', 'application/x-amz-json-1.1')
    .header('x-amzn-errortype', answer.type)
    .header('x-amzn-requestid', randomUUID())
    .send(answer.body());
}
