import { performance } from 'node:perf_hooks';

/** Why a record was finally refused: the field at fault when the server named one, and a message. */
export interface PutError {
  readonly field?: string;
  readonly message: string;
}

/** A record the log has made durable: its shard and its seq there (decimal strings; a seq may outgrow 2^53). */
export interface PutSuccess {
  readonly ok: true;
  readonly shard: string;
  readonly seq: string;
}

/** A record that finally failed, with the record itself so the caller can log, fix or dead-letter it. */
export interface PutFailure<T extends object = object> {
  readonly ok: false;
  readonly error: PutError;
  readonly record: T;
}

/** The fate of one {@link StrataProducer.put}: acked, or finally failed. */
export type PutResult<T extends object = object> = PutSuccess | PutFailure<T>;

/** Counters since the producer was created. */
export interface ProducerStats {
  /** Records sent to the server at least once (a retried record counts once). */
  readonly sent: number;
  /** Records the server acked with an offset. */
  readonly acked: number;
  /** Records that finally failed, whether refused by the server or never sent. */
  readonly failed: number;
  /** Requests sent again after a retryable failure. */
  readonly retries: number;
  /** Batches taken out of the buffer and not yet settled: on the wire, or waiting to be retried. */
  readonly inFlight: number;
}

/** Settings of a {@link StrataProducer}; every bound has a default. */
export interface StrataProducerOptions<T extends object = object> {
  /** Base URL of the Strata HTTP API, e.g. `http://127.0.0.1:7070`. */
  readonly url: string;
  /** The stream records are put to. */
  readonly stream: string;
  /** Most records in one request (default 500). Keep it at or under the server's `maxRecordsPerRequest`. */
  readonly maxBatchRecords?: number;
  /** Most NDJSON bytes in one request (default 1 MiB); a single record larger than this fails at put. */
  readonly maxBatchBytes?: number;
  /** How long a batch waits for more records after its first one before it is sent (default 50 ms). */
  readonly lingerMs?: number;
  /** Most batches in flight at once, counting those waiting to be retried (default 4). */
  readonly maxInFlight?: number;
  /** The buffered-record count {@link StrataProducer.waitForCapacity} waits to get under (default 100,000). */
  readonly maxBufferedRecords?: number;
  /** Retries of one request after a network error, 408, 429, 500, 502, 503 or 504 (default 8). */
  readonly maxRetries?: number;
  /** Ceiling of the first backoff; it doubles per retry, up to `maxBackoffMs` (default 100 ms). */
  readonly initialBackoffMs?: number;
  /** Longest wait before a retry, including one asked for by `Retry-After` (default 10 s). */
  readonly maxBackoffMs?: number;
  /** A request that has not been answered by then is abandoned and retried like a network error (default 30 s). */
  readonly requestTimeoutMs?: number;
  /** Extra request headers, e.g. `authorization`. The content type is always NDJSON. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Told about each record that finally failed, once, just before its put resolves. */
  readonly onFailure?: (result: PutFailure<T>) => void;
}

const DEFAULTS = {
  maxBatchRecords: 500,
  maxBatchBytes: 1024 * 1024,
  lingerMs: 50,
  maxInFlight: 4,
  maxBufferedRecords: 100_000,
  maxRetries: 8,
  initialBackoffMs: 100,
  maxBackoffMs: 10_000,
  requestTimeoutMs: 30_000,
} as const;

/** Statuses that say "not now" rather than "never": the request is sent again, whole. */
const RETRYABLE_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

/** One put waiting for its fate. `line` is the record serialized at put time, so later mutation cannot change what is sent. */
interface Entry<T extends object> {
  readonly id: number;
  readonly record: T;
  readonly line: string;
  /** NDJSON bytes of this record, its newline included. */
  readonly bytes: number;
  /** When the record was put (monotonic ms), for the linger deadline of the batch it heads. */
  readonly putAt: number;
  readonly promise: Promise<PutResult<T>>;
  readonly resolve: (result: PutResult<T>) => void;
}

/** What a batch came to: answered per record, or refused whole for good. */
type Outcome = { readonly kind: 'answered'; readonly records: readonly unknown[] } | { readonly kind: 'final'; readonly message: string };

/** What one request came to: an outcome, or worth another try. */
type Attempt = Outcome | { readonly kind: 'retry'; readonly message: string; readonly retryAfterMs: number | null };

/**
 * Puts records to one Strata stream over the HTTP API, batched, with bounded concurrency and retries.
 *
 * Delivery is at least once: a request whose answer is lost (a reset connection, a timeout) is sent again,
 * so the log may hold such a batch twice. Records keep their put order inside a batch, and batches leave in
 * put order; with `maxInFlight: 1` that order is kept in the log even across retries, with more in flight a
 * retried batch may land after a later one.
 *
 * Lifetime: `close()` when done, or at least `flush()`. Pending timers keep the process alive until what was
 * put has been sent, so a script that forgets to await its puts still delivers them before it exits.
 */
export class StrataProducer<T extends object = object> {
  private readonly endpoint: string;
  private readonly headers: Record<string, string>;
  private readonly maxBatchRecords: number;
  private readonly maxBatchBytes: number;
  private readonly lingerMs: number;
  private readonly maxInFlight: number;
  private readonly maxBufferedRecords: number;
  private readonly maxRetries: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly requestTimeoutMs: number;
  private readonly onFailure: ((result: PutFailure<T>) => void) | undefined;

  /** Records put and not yet taken into a batch, in put order. */
  private queue: Entry<T>[] = [];
  private queueBytes = 0;
  /** Every put not yet resolved, queued or in flight: what `flush()` waits on. */
  private readonly unsettled = new Set<Entry<T>>();
  private nextId = 1;
  /** Queued records with an id up to this one are sent without lingering, because a flush waits on them. */
  private flushUpTo = 0;
  private lingerTimer: NodeJS.Timeout | null = null;
  private capacityWaiters: (() => void)[] = [];
  private closed = false;

  private sentCount = 0;
  private ackedCount = 0;
  private failedCount = 0;
  private retryCount = 0;
  private inFlightCount = 0;

  constructor(options: StrataProducerOptions<T>) {
    let base: URL;
    try {
      base = new URL(options.url);
    } catch {
      throw new TypeError(`StrataProducer: url ${JSON.stringify(options.url)} is not a valid URL`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new TypeError(`StrataProducer: url must be http: or https:, got ${base.protocol}`);
    }
    if (typeof options.stream !== 'string' || options.stream.length === 0) {
      throw new TypeError('StrataProducer: stream must be a non-empty string');
    }
    const path = base.pathname.replace(/\/+$/, '');
    this.endpoint = `${base.origin}${path}/v1/streams/${encodeURIComponent(options.stream)}/records`;
    // Header names are case-insensitive: a caller's own Content-Type would otherwise be sent beside ours.
    const extra = Object.entries(options.headers ?? {}).filter(([name]) => name.toLowerCase() !== 'content-type');
    this.headers = { ...Object.fromEntries(extra), 'content-type': 'application/x-ndjson' };
    this.maxBatchRecords = setting(options, 'maxBatchRecords', 1);
    this.maxBatchBytes = setting(options, 'maxBatchBytes', 1);
    this.lingerMs = setting(options, 'lingerMs', 0);
    this.maxInFlight = setting(options, 'maxInFlight', 1);
    this.maxBufferedRecords = setting(options, 'maxBufferedRecords', 1);
    this.maxRetries = setting(options, 'maxRetries', 0);
    this.initialBackoffMs = setting(options, 'initialBackoffMs', 0);
    this.maxBackoffMs = setting(options, 'maxBackoffMs', 0);
    this.requestTimeoutMs = setting(options, 'requestTimeoutMs', 1);
    this.onFailure = options.onFailure;
  }

  /**
   * Queues a record and resolves once it is durable in the log (`ok: true` with its shard and seq) or has
   * finally failed (`ok: false` with the reason). Never rejects, so an un-awaited put cannot crash the process
   * with an unhandled rejection; failures also reach `onFailure`.
   *
   * Past `maxBufferedRecords` the record is still accepted: dropping it would lose data and refusing it would
   * turn a slow server into failures. A producer that must bound its memory awaits {@link waitForCapacity}.
   */
  put(record: T): Promise<PutResult<T>> {
    if (this.closed) return Promise.resolve(this.failEarly(record, 'the producer is closed; records put after close() are not sent'));
    let line: string | undefined;
    try {
      line = JSON.stringify(record) as string | undefined;
    } catch (error) {
      return Promise.resolve(this.failEarly(record, `the record cannot be serialized as JSON: ${(error as Error).message}`));
    }
    if (typeof line !== 'string' || typeof record !== 'object' || record === null) {
      return Promise.resolve(this.failEarly(record, 'a record must be a JSON object'));
    }
    const bytes = Buffer.byteLength(line) + 1;
    if (bytes > this.maxBatchBytes) {
      return Promise.resolve(
        this.failEarly(record, `the record is ${bytes} bytes as NDJSON, more than maxBatchBytes (${this.maxBatchBytes}); it was not sent`),
      );
    }
    let resolve!: (result: PutResult<T>) => void;
    const promise = new Promise<PutResult<T>>((r) => (resolve = r));
    const entry: Entry<T> = { id: this.nextId++, record, line, bytes, putAt: performance.now(), promise, resolve };
    this.queue.push(entry);
    this.queueBytes += bytes;
    this.unsettled.add(entry);
    this.pump();
    return promise;
  }

  /** Records put and not yet resolved: queued, or in a batch on the wire or waiting to be retried. */
  get buffered(): number {
    return this.unsettled.size;
  }

  /**
   * Resolves once fewer than `maxBufferedRecords` records are buffered (at once when that is already so).
   * While someone waits, queued records are sent without lingering: they are exactly what the waiter waits on.
   */
  waitForCapacity(): Promise<void> {
    if (this.unsettled.size < this.maxBufferedRecords) return Promise.resolve();
    return new Promise((resolve) => {
      this.capacityWaiters.push(resolve);
      this.pump();
    });
  }

  /** Counters since the producer was created. */
  get stats(): ProducerStats {
    return {
      sent: this.sentCount,
      acked: this.ackedCount,
      failed: this.failedCount,
      retries: this.retryCount,
      inFlight: this.inFlightCount,
    };
  }

  /**
   * Sends everything buffered now, without waiting out the linger, and resolves once every put made before
   * the call has settled. Puts made meanwhile are not waited for, so a busy producer cannot starve a flush.
   */
  async flush(): Promise<void> {
    const waiting = [...this.unsettled].map((entry) => entry.promise);
    this.flushUpTo = this.nextId - 1;
    this.pump();
    await Promise.all(waiting);
  }

  /** Flushes, and from the call on refuses further puts (they resolve `ok: false`). Safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  /** Starts every batch that is ready while a slot is free, and arms the linger timer for the next one. */
  private pump(): void {
    while (this.inFlightCount < this.maxInFlight && this.queue.length > 0) {
      const head = this.queue[0]!;
      const full = this.queue.length >= this.maxBatchRecords || this.queueBytes >= this.maxBatchBytes;
      const due =
        full ||
        head.id <= this.flushUpTo ||
        this.capacityWaiters.length > 0 ||
        performance.now() >= head.putAt + this.lingerMs;
      if (!due) break;
      this.startBatch(this.takeBatch());
    }
    if (this.queue.length === 0 && this.lingerTimer !== null) {
      // Nothing left to linger for: a pending timer would only hold the process open after close().
      clearTimeout(this.lingerTimer);
      this.lingerTimer = null;
    }
    // A timer only helps when a slot is free; otherwise the next settling batch pumps.
    if (this.lingerTimer === null && this.queue.length > 0 && this.inFlightCount < this.maxInFlight) {
      const wait = Math.max(0, this.queue[0]!.putAt + this.lingerMs - performance.now());
      this.lingerTimer = setTimeout(() => {
        this.lingerTimer = null;
        this.pump();
      }, wait);
    }
  }

  /** Cuts the longest prefix of the queue within both batch bounds; never empty, since put refuses oversized records. */
  private takeBatch(): Entry<T>[] {
    let count = 0;
    let bytes = 0;
    while (count < this.queue.length && count < this.maxBatchRecords) {
      const next = this.queue[count]!;
      if (count > 0 && bytes + next.bytes > this.maxBatchBytes) break;
      bytes += next.bytes;
      count++;
    }
    const batch = this.queue.splice(0, count);
    this.queueBytes -= bytes;
    return batch;
  }

  private startBatch(batch: Entry<T>[]): void {
    this.inFlightCount++;
    this.sentCount += batch.length;
    void this.deliver(batch).then(
      (outcome) => this.finishBatch(batch, outcome),
      // Only a bug gets here; settling the batch keeps the promise that put() never hangs.
      (error: unknown) => this.finishBatch(batch, { kind: 'final', message: `internal error in the producer: ${String(error)}` }),
    );
  }

  /**
   * Frees the batch's slot, then settles its records, then starts what is ready: in that order, so that code
   * resumed by a settled put already sees the slot free and the stats final.
   */
  private finishBatch(batch: Entry<T>[], outcome: Outcome): void {
    this.inFlightCount--;
    if (outcome.kind === 'answered') this.settleAnswered(batch, outcome.records);
    else this.settleAll(batch, outcome.message);
    this.pump();
  }

  /** Sends one batch until it is answered, refused for good, or out of retries. */
  private async deliver(batch: Entry<T>[]): Promise<Outcome> {
    const body = batch.map((entry) => entry.line).join('\n') + '\n';
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.attempt(body);
      if (outcome.kind !== 'retry') return outcome;
      if (attempt >= this.maxRetries) {
        return { kind: 'final', message: `gave up after ${attempt + 1} attempts; last error: ${outcome.message}` };
      }
      this.retryCount++;
      await sleep(this.backoff(attempt, outcome.retryAfterMs));
    }
  }

  /** One request; never throws. */
  private async attempt(body: string): Promise<Attempt> {
    let response: Response;
    let text: string;
    try {
      response = await fetch(this.endpoint, {
        method: 'POST',
        headers: this.headers,
        body,
        signal: AbortSignal.timeout(this.requestTimeoutMs),
      });
      // Read the whole body even when it is an error: that frees the connection for reuse.
      text = await response.text();
    } catch (error) {
      return { kind: 'retry', message: describeNetworkError(error), retryAfterMs: null };
    }
    if (response.status === 200) {
      const records = parseAnswer(text);
      if (records === null) return { kind: 'final', message: `the server answered 200 with an unreadable body: ${excerpt(text)}` };
      return { kind: 'answered', records };
    }
    const message = `HTTP ${response.status}${serverMessage(text)}`;
    if (RETRYABLE_STATUSES.has(response.status)) {
      return { kind: 'retry', message, retryAfterMs: parseRetryAfter(response.headers.get('retry-after')) };
    }
    return { kind: 'final', message };
  }

  /**
   * The wait before retry number `attempt + 1`: the server's Retry-After when it gave one, else exponential
   * backoff with full jitter (uniform in [0, cap)), so that many producers refused at once do not return at once.
   * Either way at most `maxBackoffMs`.
   */
  private backoff(attempt: number, retryAfterMs: number | null): number {
    if (retryAfterMs !== null) return Math.min(retryAfterMs, this.maxBackoffMs);
    const cap = Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** attempt);
    return Math.random() * cap;
  }

  private settleAnswered(batch: Entry<T>[], records: readonly unknown[]): void {
    if (records.length !== batch.length) {
      // The server wrote what it wrote; which record got which offset is unknowable, so none is reported acked.
      this.settleAll(batch, `the server answered ${records.length} results for ${batch.length} records`);
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const entry = batch[i]!;
      const answer = records[i];
      const result = readRecordResult(answer);
      if (result.ok) this.settle(entry, result);
      else this.settle(entry, { ok: false, error: result.error, record: entry.record });
    }
    this.afterSettle();
  }

  private settleAll(batch: Entry<T>[], message: string): void {
    for (const entry of batch) {
      if (this.unsettled.has(entry)) this.settle(entry, { ok: false, error: { message }, record: entry.record });
    }
    this.afterSettle();
  }

  private settle(entry: Entry<T>, result: PutResult<T>): void {
    this.unsettled.delete(entry);
    if (result.ok) this.ackedCount++;
    else this.failedCount++;
    if (!result.ok) this.notifyFailure(result);
    entry.resolve(result);
  }

  /** Fails a record that never entered the buffer: it resolves at once and is not counted as buffered. */
  private failEarly(record: T, message: string): PutFailure<T> {
    const result: PutFailure<T> = { ok: false, error: { message }, record };
    this.failedCount++;
    this.notifyFailure(result);
    return result;
  }

  private notifyFailure(result: PutFailure<T>): void {
    if (!this.onFailure) return;
    try {
      this.onFailure(result);
    } catch (error) {
      // The producer's own state must stay consistent, so the callback's error cannot unwind through it; it is
      // thrown again on its own, as Node does for a throwing event listener, so a bug in it is not hidden.
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  /** Wakes capacity waiters once the buffer is under its bound. */
  private afterSettle(): void {
    if (this.capacityWaiters.length > 0 && this.unsettled.size < this.maxBufferedRecords) {
      const waiters = this.capacityWaiters;
      this.capacityWaiters = [];
      for (const wake of waiters) wake();
    }
  }
}

type NumericSetting = keyof typeof DEFAULTS;

/** An option or its default, refused at construction when it is not an integer of at least `min`. */
function setting(options: Partial<Record<NumericSetting, number>>, name: NumericSetting, min: number): number {
  const value = options[name] ?? DEFAULTS[name];
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`StrataProducer: ${name} must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The `records` of a 200 answer, or null when the body is not the documented shape. */
function parseAnswer(text: string): unknown[] | null {
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value === 'object' && value !== null && Array.isArray((value as { records?: unknown }).records)) {
      return (value as { records: unknown[] }).records;
    }
  } catch {
    // Falls through to null: the caller names the body.
  }
  return null;
}

/** One entry of a 200 answer: an offset, or the record's validation error. */
function readRecordResult(answer: unknown): PutSuccess | { ok: false; error: PutError } {
  if (typeof answer === 'object' && answer !== null) {
    const { shard, seq, error } = answer as { shard?: unknown; seq?: unknown; error?: unknown };
    if (error !== undefined) {
      const { field, message } = (typeof error === 'object' && error !== null ? error : {}) as { field?: unknown; message?: unknown };
      const text = typeof message === 'string' ? message : 'refused by the server';
      return { ok: false, error: typeof field === 'string' ? { field, message: text } : { message: text } };
    }
    if ((typeof shard === 'string' || typeof shard === 'number') && (typeof seq === 'string' || typeof seq === 'number')) {
      return { ok: true, shard: String(shard), seq: String(seq) };
    }
  }
  return { ok: false, error: { message: `the server answered an unreadable result: ${excerpt(JSON.stringify(answer) ?? '')}` } };
}

/** ": code: message" from a Strata error body, or a short excerpt of whatever else came back. */
function serverMessage(text: string): string {
  try {
    const { error } = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (error && typeof error.message === 'string') {
      return typeof error.code === 'string' ? ` ${error.code}: ${error.message}` : `: ${error.message}`;
    }
  } catch {
    // Not Strata's JSON error (a proxy's page, say): show the start of it.
  }
  return text.trim().length > 0 ? `: ${excerpt(text.trim())}` : '';
}

function excerpt(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3); null when absent or unreadable. */
function parseRetryAfter(value: string | null): number | null {
  if (value === null) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}

/** undici reports "fetch failed" with the real reason (ECONNREFUSED, a reset, a timeout) in `cause`. */
function describeNetworkError(error: unknown): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return `no answer within the request timeout: ${error.message}`;
  }
  const cause = error instanceof Error ? (error as Error & { cause?: unknown }).cause : undefined;
  const reason = cause instanceof Error ? `${(cause as NodeJS.ErrnoException).code ?? cause.name}: ${cause.message}` : undefined;
  const message = error instanceof Error ? error.message : String(error);
  return reason ? `network error: ${message} (${reason})` : `network error: ${message}`;
}
