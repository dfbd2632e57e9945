import { parse as parseTolerant, printParseErrorCode, type ParseError } from 'jsonc-parser';
import { MalformedInputError, TooLargeError } from '../errors.js';

/** How a request body holds its records. */
export type BodyFormat = 'json' | 'ndjson';

/** The records of a body, and for NDJSON each record's own JSON text (which may be stored as it is). */
export interface ParsedBody {
  readonly records: unknown[];
  readonly texts: string[] | null;
}

/**
 * Parses a request body into records: for `json`, one object or an array of them; for `ndjson`, one JSON
 * value per line (blank lines skipped). Malformed input is refused whole, naming the line, so that nothing of
 * a body the producer got wrong is half-accepted. More than `maxRecords` records is refused too.
 */
export function parseRecords(body: Buffer, format: BodyFormat, maxRecords: number): ParsedBody {
  const text = body.toString('utf8');
  if (format === 'ndjson') {
    const records: unknown[] = [];
    const texts: string[] = [];
    let start = 0;
    let line = 0;
    while (start < text.length) {
      let end = text.indexOf('\n', start);
      if (end === -1) end = text.length;
      line++;
      const content = text.slice(start, end).trim();
      start = end + 1;
      if (content.length === 0) continue;
      if (records.length === maxRecords) throw tooMany(maxRecords);
      try {
        records.push(JSON.parse(content));
      } catch (error) {
        throw new MalformedInputError(`line ${line}: malformed JSON: ${(error as Error).message}`);
      }
      texts.push(content);
    }
    if (records.length === 0) throw new MalformedInputError('the body holds no records');
    return { records, texts };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new MalformedInputError(`${locateJsonError(text)}malformed JSON: ${(error as Error).message}`);
  }
  const records = Array.isArray(value) ? value : [value];
  if (records.length === 0) throw new MalformedInputError('the body holds no records');
  if (records.length > maxRecords) throw tooMany(maxRecords);
  return { records, texts: null };
}

function tooMany(maxRecords: number): TooLargeError {
  return new TooLargeError(`a request may carry at most ${maxRecords} records`);
}

/**
 * "line L, column C: " for the first syntax error in a body JSON.parse refused. V8's messages give a
 * position only sometimes, so a tolerant parser locates it; this runs only on the error path.
 */
function locateJsonError(text: string): string {
  const errors: ParseError[] = [];
  parseTolerant(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
  const first = errors[0];
  if (!first) return '';
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < first.offset; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return `line ${line}, column ${first.offset - lineStart + 1} (${printParseErrorCode(first.error)}): `;
}
