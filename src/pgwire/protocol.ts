/**
 * The PostgreSQL v3 wire format of the messages this endpoint reads and writes from start-up on (pg-gateway
 * frames them and negotiates TLS): a reader for the frontend's messages that refuses anything malformed, and a
 * writer that packs backend messages into one buffer, flushed at Sync, Flush or the end of a simple Query.
 *
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 */

/** A message that breaks the protocol: the connection is closed with SQLSTATE 08P01. */
export class ProtocolViolation extends Error {
  override readonly name = 'ProtocolViolation';
}

/** Reads one frontend message's body, checking every length against what is left. */
export class MessageReader {
  private offset = 0;

  constructor(private readonly data: Buffer) {}

  get remaining(): number {
    return this.data.length - this.offset;
  }

  byte(): number {
    this.need(1);
    return this.data[this.offset++]!;
  }

  int16(): number {
    this.need(2);
    const value = this.data.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  int32(): number {
    this.need(4);
    const value = this.data.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  /** A count (int16) that must not be negative. */
  count(what: string): number {
    const n = this.int16();
    if (n < 0) throw new ProtocolViolation(`negative ${what} count ${n}`);
    return n;
  }

  cstring(): string {
    const end = this.data.indexOf(0, this.offset);
    if (end === -1) throw new ProtocolViolation('a string is not terminated');
    const value = this.data.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return value;
  }

  bytes(length: number): Buffer {
    this.need(length);
    const value = this.data.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  /** The message must have been read to its last byte. */
  end(): void {
    if (this.remaining !== 0) throw new ProtocolViolation(`${this.remaining} unexpected bytes at the end of the message`);
  }

  private need(length: number): void {
    if (length < 0 || this.offset + length > this.data.length) throw new ProtocolViolation('the message is shorter than its contents say');
  }
}

/** Parse ('P'). */
export interface ParseMessage {
  readonly statement: string;
  readonly sql: string;
  readonly paramTypes: number[];
}

export function readParse(reader: MessageReader): ParseMessage {
  const statement = reader.cstring();
  const sql = reader.cstring();
  const n = reader.count('parameter type');
  const paramTypes: number[] = [];
  for (let i = 0; i < n; i++) paramTypes.push(reader.int32() >>> 0);
  reader.end();
  return { statement, sql, paramTypes };
}

/** Bind ('B'): each parameter as raw bytes (null for SQL NULL) with its format code. */
export interface BindMessage {
  readonly portal: string;
  readonly statement: string;
  readonly paramFormats: number[];
  readonly params: (Buffer | null)[];
  readonly resultFormats: number[];
}

export function readBind(reader: MessageReader): BindMessage {
  const portal = reader.cstring();
  const statement = reader.cstring();
  const paramFormats = readFormats(reader, 'parameter format');
  const n = reader.count('parameter');
  const params: (Buffer | null)[] = [];
  for (let i = 0; i < n; i++) {
    const length = reader.int32();
    if (length < -1) throw new ProtocolViolation(`invalid parameter length ${length}`);
    params.push(length === -1 ? null : reader.bytes(length));
  }
  const resultFormats = readFormats(reader, 'result format');
  reader.end();
  return { portal, statement, paramFormats, params, resultFormats };
}

function readFormats(reader: MessageReader, what: string): number[] {
  const n = reader.count(what);
  const formats: number[] = [];
  for (let i = 0; i < n; i++) {
    const format = reader.int16();
    if (format !== 0 && format !== 1) throw new ProtocolViolation(`invalid ${what} code ${format}`);
    formats.push(format);
  }
  return formats;
}

/** Describe ('D') and Close ('C'): 'S' for a statement, 'P' for a portal. */
export interface TargetMessage {
  readonly kind: 'S' | 'P';
  readonly name: string;
}

export function readTarget(reader: MessageReader): TargetMessage {
  const kind = String.fromCharCode(reader.byte());
  if (kind !== 'S' && kind !== 'P') throw new ProtocolViolation(`expected 'S' or 'P', got ${JSON.stringify(kind)}`);
  const name = reader.cstring();
  reader.end();
  return { kind, name };
}

/** Execute ('E'). */
export interface ExecuteMessage {
  readonly portal: string;
  /** 0 for all rows. */
  readonly maxRows: number;
}

export function readExecute(reader: MessageReader): ExecuteMessage {
  const portal = reader.cstring();
  const maxRows = reader.int32();
  reader.end();
  return { portal, maxRows: Math.max(0, maxRows) };
}

/** The format code (0 text, 1 binary) of column or parameter `i`, given the codes a Bind message carried. */
export function formatAt(formats: readonly number[], i: number): 0 | 1 {
  const format = formats.length === 1 ? formats[0] : formats[i];
  return format === 1 ? 1 : 0;
}

/** One column of a RowDescription. */
export interface FieldDescription {
  readonly name: string;
  readonly typeOid: number;
  readonly typeSize: number;
  readonly typmod: number;
  readonly format: 0 | 1;
}

/** Fields of an ErrorResponse or NoticeResponse. */
export interface ErrorFields {
  readonly severity: 'ERROR' | 'FATAL' | 'WARNING' | 'NOTICE';
  readonly code: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
}

/** Where an answer's text is too long to fit a length prefix: never in practice, refused all the same. */
const MAX_FIELD_BYTES = 0x3fffffff;

/**
 * Packs backend messages into one growing buffer. {@link take} hands the bytes over (to be written to the
 * socket) and starts afresh.
 */
export class MessageWriter {
  private buffer = Buffer.allocUnsafe(16 * 1024);
  private length = 0;

  /** Bytes packed and not yet taken. */
  get size(): number {
    return this.length;
  }

  take(): Buffer {
    const out = Buffer.from(this.buffer.subarray(0, this.length));
    this.length = 0;
    return out;
  }

  /** AuthenticationOk. */
  authenticationOk(): void {
    this.authentication(0);
  }

  /** AuthenticationCleartextPassword: asked only over TLS. */
  authenticationCleartextPassword(): void {
    this.authentication(3);
  }

  /** AuthenticationSASL: the mechanisms offered. */
  authenticationSasl(mechanisms: readonly string[]): void {
    const start = this.begin(0x52);
    this.int32(10);
    for (const mechanism of mechanisms) this.cstring(mechanism);
    this.uint8(0);
    this.finish(start);
  }

  /** AuthenticationSASLContinue (11) and AuthenticationSASLFinal (12), carrying a SCRAM message. */
  authenticationSaslData(kind: 11 | 12, data: string): void {
    const start = this.begin(0x52);
    this.int32(kind);
    const length = Buffer.byteLength(data, 'utf8');
    this.ensure(length);
    this.buffer.write(data, this.length, 'utf8');
    this.length += length;
    this.finish(start);
  }

  private authentication(code: number): void {
    const start = this.begin(0x52);
    this.int32(code);
    this.finish(start);
  }

  parseComplete(): void {
    this.empty(0x31);
  }

  bindComplete(): void {
    this.empty(0x32);
  }

  closeComplete(): void {
    this.empty(0x33);
  }

  noData(): void {
    this.empty(0x6e);
  }

  portalSuspended(): void {
    this.empty(0x73);
  }

  emptyQueryResponse(): void {
    this.empty(0x49);
  }

  readyForQuery(status: 'I' | 'T' | 'E'): void {
    const start = this.begin(0x5a);
    this.uint8(status.charCodeAt(0));
    this.finish(start);
  }

  commandComplete(tag: string): void {
    const start = this.begin(0x43);
    this.cstring(tag);
    this.finish(start);
  }

  parameterStatus(name: string, value: string): void {
    const start = this.begin(0x53);
    this.cstring(name);
    this.cstring(value);
    this.finish(start);
  }

  backendKeyData(processId: number, secret: number): void {
    const start = this.begin(0x4b);
    this.int32(processId);
    this.int32(secret);
    this.finish(start);
  }

  parameterDescription(oids: readonly number[]): void {
    const start = this.begin(0x74);
    this.int16(oids.length);
    for (const oid of oids) this.int32(oid | 0);
    this.finish(start);
  }

  rowDescription(fields: readonly FieldDescription[]): void {
    const start = this.begin(0x54);
    this.int16(fields.length);
    for (const field of fields) {
      this.cstring(field.name);
      this.int32(0); // table OID: not a column of a table
      this.int16(0); // attribute number
      this.int32(field.typeOid);
      this.int16(field.typeSize);
      this.int32(field.typmod);
      this.int16(field.format);
    }
    this.finish(start);
  }

  /** One DataRow: each value already encoded (text as UTF-8, or binary), null for SQL NULL. */
  dataRow(values: readonly (Buffer | string | null)[]): void {
    const start = this.begin(0x44);
    this.int16(values.length);
    for (const value of values) {
      if (value === null) {
        this.int32(-1);
      } else if (typeof value === 'string') {
        const length = Buffer.byteLength(value, 'utf8');
        if (length > MAX_FIELD_BYTES) throw new RangeError('a value is too large for the wire protocol');
        this.int32(length);
        this.ensure(length);
        this.buffer.write(value, this.length, 'utf8');
        this.length += length;
      } else {
        if (value.length > MAX_FIELD_BYTES) throw new RangeError('a value is too large for the wire protocol');
        this.int32(value.length);
        this.ensure(value.length);
        value.copy(this.buffer, this.length);
        this.length += value.length;
      }
    }
    this.finish(start);
  }

  error(fields: ErrorFields): void {
    this.fields(0x45, fields);
  }

  notice(fields: ErrorFields): void {
    this.fields(0x4e, fields);
  }

  private fields(code: number, fields: ErrorFields): void {
    const start = this.begin(code);
    const add = (field: string, value: string | undefined) => {
      if (value === undefined) return;
      this.uint8(field.charCodeAt(0));
      this.cstring(value);
    };
    add('S', fields.severity);
    add('V', fields.severity);
    add('C', fields.code);
    add('M', fields.message);
    add('D', fields.detail);
    add('H', fields.hint);
    this.uint8(0);
    this.finish(start);
  }

  private empty(code: number): void {
    this.finish(this.begin(code));
  }

  /** Writes the type byte and a placeholder length; answers where the length goes. */
  private begin(code: number): number {
    this.ensure(5);
    this.buffer[this.length] = code;
    const start = this.length + 1;
    this.length += 5;
    return start;
  }

  private finish(lengthAt: number): void {
    this.buffer.writeInt32BE(this.length - lengthAt, lengthAt);
  }

  private ensure(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.length + bytes) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }

  private uint8(value: number): void {
    this.ensure(1);
    this.buffer[this.length++] = value;
  }

  private int16(value: number): void {
    this.ensure(2);
    this.buffer.writeInt16BE(value, this.length);
    this.length += 2;
  }

  private int32(value: number): void {
    this.ensure(4);
    this.buffer.writeInt32BE(value, this.length);
    this.length += 4;
  }

  private cstring(value: string): void {
    // A NUL inside would end the string early on the client's side.
    const text = value.includes('\0') ? value.replace(/\0/g, '') : value;
    const length = Buffer.byteLength(text, 'utf8');
    this.ensure(length + 1);
    this.buffer.write(text, this.length, 'utf8');
    this.length += length;
    this.buffer[this.length++] = 0;
  }
}
