/**
 * Errors of the Kinesis API, in the shape AWS answers them (`{"__type": "...", "message": "..."}`, with the
 * `x-amzn-ErrorType` header), so the AWS SDK raises its own exception classes (ResourceNotFoundException,
 * ExpiredIteratorException...) and retries exactly the errors it retries against AWS (throttling, 5xx).
 * Statuses follow Kinesis: every client error is 400, internal failures 500.
 */

/** The error types Strata answers, as AWS names them. */
export type KinesisErrorType =
  | 'AccessDeniedException'
  | 'ExpiredIteratorException'
  | 'IncompleteSignatureException'
  | 'InternalFailure'
  | 'InvalidArgumentException'
  | 'InvalidSignatureException'
  | 'LimitExceededException'
  | 'MissingAuthenticationTokenException'
  | 'ProvisionedThroughputExceededException'
  | 'ResourceNotFoundException'
  | 'SerializationException'
  | 'UnknownOperationException'
  | 'UnrecognizedClientException'
  | 'ValidationException';

/** One error of the Kinesis API: its AWS type, a message naming what to fix, and the HTTP status. */
export class KinesisError extends Error {
  override readonly name: string = 'KinesisError';
  constructor(
    readonly type: KinesisErrorType,
    message: string,
    readonly status = type === 'InternalFailure' ? 500 : 400,
  ) {
    super(message);
  }

  /** The body AWS sends. */
  body(): string {
    return JSON.stringify({ __type: this.type, message: this.message });
  }
}

/** The account id Strata's stream ARNs name: there is no AWS account behind them. */
export const ACCOUNT_ID = '000000000000';

/** `Stream clicks under account 000000000000 not found.`, as Kinesis words it. */
export function streamNotFound(stream: string): KinesisError {
  return new KinesisError('ResourceNotFoundException', `Stream ${stream} under account ${ACCOUNT_ID} not found.`);
}
