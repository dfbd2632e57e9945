import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { KinesisError } from './errors.js';

/** How long an iterator is good for, as on AWS: after it, GetRecords answers ExpiredIteratorException. */
export const ITERATOR_LIFETIME_MS = 5 * 60_000;

/** Where a shard iterator points: the next seq GetRecords returns, and when the iterator was handed out. */
export interface IteratorPosition {
  readonly stream: string;
  readonly shard: number;
  /** The seq of the next record to read (one past the last record read). */
  readonly nextSeq: number;
  readonly issuedAt: number;
}

const VERSION = 1;
/** Bytes of HMAC-SHA256 kept: 128 bits is beyond forging and keeps iterators short. */
const MAC_BYTES = 16;

/**
 * Shard iterators are opaque to clients and stateless on the server: `<payload>.<mac>`, where the payload is
 * base64url of `[version, stream, shard, nextSeq, issuedAt]` and the mac its HMAC-SHA256 under a key derived from the
 * server key (HKDF, so the server key is never used for two purposes directly). A forged or altered iterator is
 * refused; an iterator survives a restart (same server key) and expires {@link ITERATOR_LIFETIME_MS} after issue.
 */
export class ShardIterators {
  private readonly key: Buffer;

  constructor(
    serverKey: Buffer,
    private readonly now: () => number = Date.now,
  ) {
    this.key = Buffer.from(hkdfSync('sha256', serverKey, Buffer.alloc(0), 'strata kinesis shard iterators', 32));
  }

  /** A new iterator at `nextSeq`, issued now. */
  issue(stream: string, shard: number, nextSeq: number): string {
    const payload = Buffer.from(JSON.stringify([VERSION, stream, shard, nextSeq, this.now()]), 'utf8').toString('base64url');
    return `${payload}.${this.mac(payload).toString('base64url')}`;
  }

  /**
   * The position of an iterator this server issued: InvalidArgumentException for anything else (forged, altered,
   * truncated), ExpiredIteratorException past its lifetime.
   */
  read(iterator: string): IteratorPosition {
    const invalid = () => new KinesisError('InvalidArgumentException', 'Invalid ShardIterator: it was not issued by this server, or was altered.');
    const dot = iterator.indexOf('.');
    if (dot <= 0 || iterator.length > 512) throw invalid();
    const payload = iterator.slice(0, dot);
    const given = Buffer.from(iterator.slice(dot + 1), 'base64url');
    if (given.length !== MAC_BYTES || !timingSafeEqual(given, this.mac(payload))) throw invalid();
    let fields: unknown;
    try {
      fields = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      throw invalid();
    }
    if (!Array.isArray(fields) || fields[0] !== VERSION || fields.length !== 5) throw invalid();
    const [, stream, shard, nextSeq, issuedAt] = fields as [number, string, number, number, number];
    const age = this.now() - issuedAt;
    if (age > ITERATOR_LIFETIME_MS) {
      throw new KinesisError(
        'ExpiredIteratorException',
        `Iterator expired. The iterator was created at time ${new Date(issuedAt).toISOString()} while right now it is ${new Date(this.now()).toISOString()} which is further in the future than the tolerated delay of ${ITERATOR_LIFETIME_MS} milliseconds.`,
      );
    }
    return { stream, shard, nextSeq, issuedAt };
  }

  private mac(payload: string): Buffer {
    return createHmac('sha256', this.key).update(payload, 'utf8').digest().subarray(0, MAC_BYTES);
  }
}
