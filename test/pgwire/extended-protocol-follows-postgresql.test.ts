import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OID } from '../../src/pgwire/types.js';
import { removeDir, tempDir, type RunningStrata } from '../fixtures/strata.js';
import { startWithPg } from './helpers.js';
import {
  bind,
  dataRowValues,
  describe as describeMessage,
  errorOf,
  execute,
  flush,
  message,
  cstring,
  parse,
  query,
  rowDescription,
  sendCancelRequest,
  sync,
  WireClient,
  type BackendMessage,
} from './wire-client.js';

/** What the messages say, compactly: `1 2 T D D C(SELECT 2) Z(I)`. */
function trace(messages: readonly BackendMessage[]): string {
  return messages
    .map((m) => {
      if (m.type === 'C' || m.type === 'Z') return `${m.type}(${m.body.toString('utf8').replace(/\0/g, '')})`;
      if (m.type === 'E' || m.type === 'N') return `${m.type}(${errorOf(m.body).C})`;
      return m.type;
    })
    .join(' ');
}

/**
 * The message flows of PostgreSQL's protocol, checked message by message with a bare client: start-up, the
 * simple and extended query protocols, portals, errors, transaction states and CancelRequest.
 */
describe('the query protocol follows PostgreSQL', () => {
  let dir: string;
  let server: RunningStrata & { pgPort: number };
  let client: WireClient;
  let startup: BackendMessage[];

  beforeAll(async () => {
    dir = await tempDir();
    server = await startWithPg(dir);
    const connection = await WireClient.startup(server.pgPort, { user: 'admin', application_name: 'vitest' });
    startup = connection.messages;
    client = connection.client;
  });

  afterAll(async () => {
    client?.close();
    await server?.close();
    await removeDir(dir);
  });

  async function send(...messages: Buffer[]): Promise<BackendMessage[]> {
    client.write(Buffer.concat(messages));
    return client.readUntil('Z');
  }

  it('reports the parameters clients check at start-up, then BackendKeyData and ReadyForQuery', () => {
    const parameters = Object.fromEntries(
      startup
        .filter((m) => m.type === 'S')
        .map((m) => {
          const [name, value] = m.body.toString('utf8').split('\0');
          return [name, value];
        }),
    );
    expect(parameters).toMatchObject({
      client_encoding: 'UTF8',
      DateStyle: 'ISO, MDY',
      integer_datetimes: 'on',
      standard_conforming_strings: 'on',
      TimeZone: 'UTC',
      application_name: 'vitest',
    });
    expect(parameters.server_version).toMatch(/^15\.\d+/);
    // AuthenticationSASLFinal, then AuthenticationOk.
    expect(startup.slice(0, 2).map((m) => [m.type, m.body.readInt32BE(0)])).toEqual([
      ['R', 12],
      ['R', 0],
    ]);
    expect(startup.slice(-2).map((m) => m.type)).toEqual(['K', 'Z']);
    expect(startup[startup.length - 1]!.body.toString()).toBe('I');
  });

  it('answers Describe of a statement with parameter and column types, without running it', async () => {
    const messages = await send(
      parse('by-user', 'SELECT page, count(*) AS n FROM clicks WHERE user_id = $1 AND amount > $2::DOUBLE GROUP BY page'),
      describeMessage('S', 'by-user'),
      sync(),
    );
    expect(trace(messages)).toBe('1 t T Z(I)');
    const params = messages.find((m) => m.type === 't')!.body;
    // An untyped parameter is described as text (its literal's type here); a cast one as the cast's type.
    expect([params.readInt16BE(0), params.readInt32BE(2), params.readInt32BE(6)]).toEqual([2, OID.text, OID.float8]);
    expect(rowDescription(messages.find((m) => m.type === 'T')!.body).map((f) => [f.name, f.oid])).toEqual([
      ['page', OID.text],
      ['n', OID.int8],
    ]);
    // A statement without rows is described with NoData.
    expect(trace(await send(parse('set-it', 'SET search_path = main'), describeMessage('S', 'set-it'), sync()))).toBe('1 t n Z(I)');
  });

  it('suspends a portal at the row limit of Execute and resumes it, as PostgreSQL counts', async () => {
    const messages = await send(
      parse('', 'SELECT * FROM range(1, 6) t(n)'),
      bind('', '', []),
      execute('', 2),
      execute('', 2),
      execute('', 2),
      execute('', 2),
      sync(),
    );
    expect(trace(messages)).toBe('1 2 D D s D D s D C(SELECT 1) C(SELECT 0) Z(I)');
    const values = messages.filter((m) => m.type === 'D').map((m) => dataRowValues(m.body)[0]!.toString());
    expect(values).toEqual(['1', '2', '3', '4', '5']);
  });

  it('keeps named statements and portals apart, and closes them on Close', async () => {
    const messages = await send(
      parse('twice', 'SELECT $1::INT * 2 AS doubled'),
      bind('a', 'twice', [Buffer.from('21')]),
      bind('b', 'twice', [Buffer.from('5')]),
      execute('b'),
      execute('a'),
      message('C', Buffer.from('P'), cstring('a')),
      message('C', Buffer.from('S'), cstring('twice')),
      sync(),
    );
    expect(trace(messages)).toBe('1 2 2 D C(SELECT 1) D C(SELECT 1) 3 3 Z(I)');
    expect(messages.filter((m) => m.type === 'D').map((m) => dataRowValues(m.body)[0]!.toString())).toEqual(['10', '42']);
    const after = await send(bind('', 'twice', [Buffer.from('1')]), sync());
    expect(trace(after)).toBe('E(26000) Z(I)');
  });

  it('answers Flush with what it holds, before Sync', async () => {
    client.write(Buffer.concat([parse('', 'SELECT 1 AS one'), bind('', '', []), execute(''), flush()]));
    const flushed = await client.readUntil('C');
    expect(trace(flushed)).toBe('1 2 D C(SELECT 1)');
    expect(trace(await send(sync()))).toBe('Z(I)');
  });

  it('after an error skips messages until Sync, then goes on', async () => {
    const messages = await send(
      parse('', 'SELECT * FROM no_such_table'),
      bind('', '', []),
      execute(''),
      parse('', 'SELECT 1'),
      bind('', '', []),
      execute(''),
      sync(),
    );
    expect(trace(messages)).toBe('1 2 E(42P01) Z(I)');
    expect(trace(await send(parse('', 'SELECT 1 AS one'), bind('', '', []), execute(''), sync()))).toBe('1 2 D C(SELECT 1) Z(I)');
  });

  it('tracks transaction blocks in ReadyForQuery: idle, in a block, failed', async () => {
    expect(trace(await send(query('BEGIN')))).toBe('C(BEGIN) Z(T)');
    expect(trace(await send(query('SELECT 1')))).toBe('T D C(SELECT 1) Z(T)');
    expect(trace(await send(query('SELECT * FROM no_such_table')))).toBe('E(42P01) Z(E)');
    expect(trace(await send(query('SELECT 1')))).toBe('E(25P02) Z(E)');
    expect(trace(await send(query('ROLLBACK')))).toBe('C(ROLLBACK) Z(I)');
    expect(trace(await send(query('COMMIT')))).toBe('N(25P01) C(COMMIT) Z(I)');
  });

  it('runs each statement of a simple query, stopping at the first error', async () => {
    expect(trace(await send(query('SELECT 1; SELECT 2')))).toBe('T D C(SELECT 1) T D C(SELECT 1) Z(I)');
    expect(trace(await send(query('SELECT 1; SELEC 2; SELECT 3')))).toBe('T D C(SELECT 1) E(42601) Z(I)');
    expect(trace(await send(query('')))).toBe('I Z(I)');
    expect(trace(await send(query(' ; -- nothing')))).toBe('I Z(I)');
  });

  it('acknowledges SET, RESET and DISCARD, and says when a setting Strata fixes is left as it is', async () => {
    expect(trace(await send(query("SET extra_float_digits = 3; SET TIME ZONE 'UTC'; RESET extra_float_digits")))).toBe('C(SET) C(SET) C(RESET) Z(I)');
    // A reported setting that changes is reported again (ParameterStatus), as PostgreSQL does.
    expect(trace(await send(query("SET application_name = 'other'")))).toBe('S C(SET) Z(I)');
    expect(trace(await send(query("SET TimeZone = 'Europe/Berlin'")))).toBe('N(00000) C(SET) Z(I)');
    expect(trace(await send(query('SHOW TimeZone')))).toBe('T D C(SHOW) Z(I)');
    expect(trace(await send(query('DISCARD ALL')))).toBe('C(DISCARD ALL) Z(I)');
  });

  it('ignores a CancelRequest with the wrong secret, and honours the right one', async () => {
    const { client: victim, processId, secret } = await WireClient.startup(server.pgPort);
    try {
      victim.write(query('SELECT sum(a.range * b.range) FROM range(100000000) a, range(100000) b'));
      await new Promise((resolve) => setTimeout(resolve, 300));
      await sendCancelRequest(server.pgPort, processId, secret ^ 1);
      await new Promise((resolve) => setTimeout(resolve, 300));
      // Still running: nothing answered yet.
      expect(victim.queued).toBe(0);
      await sendCancelRequest(server.pgPort, processId, secret);
      const messages = await victim.readUntil('Z');
      // The query was cancelled before its first row, so before its RowDescription.
      expect(trace(messages)).toBe('E(57014) Z(I)');
    } finally {
      victim.close();
    }
  });
});
