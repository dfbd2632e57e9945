import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** One request the fake server received, with its NDJSON body parsed. */
export interface SeenRequest {
  readonly index: number;
  readonly contentType: string | undefined;
  readonly bytes: number;
  readonly records: Record<string, unknown>[];
}

/** A stand-in for Strata's ingest endpoint on 127.0.0.1, whose answers each test scripts. */
export interface FakeServer {
  readonly url: string;
  readonly requests: SeenRequest[];
  /** Records of the requests answered 200 by {@link answerOk}, in the order they were answered. */
  readonly accepted: Record<string, unknown>[];
  close(): Promise<void>;
}

/**
 * Answers 200 the way Strata does, with an offset per record in request order (one shard, consecutive seqs),
 * and notes the records as accepted.
 */
export function answerOk(server: { accepted: Record<string, unknown>[] }, request: SeenRequest, res: ServerResponse): void {
  const first = server.accepted.length + 1;
  const records = request.records.map((_, i) => ({ shard: '0', seq: String(first + i) }));
  server.accepted.push(...request.records);
  sendJson(res, 200, { records, failed: 0 });
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** Starts the fake; `handle` decides each answer: respond through `res`, or destroy `res.socket` to reset the connection. */
export async function startFakeServer(handle: (server: FakeServer, request: SeenRequest, res: ServerResponse) => void): Promise<FakeServer> {
  const sockets = new Set<Socket>();
  const requests: SeenRequest[] = [];
  const accepted: Record<string, unknown>[] = [];
  const http = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const records = body
        .toString('utf8')
        .split('\n')
        .filter((line) => line.trim().length > 0)
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      const seen: SeenRequest = { index: requests.length, contentType: req.headers['content-type'], bytes: body.length, records };
      requests.push(seen);
      handle(self, seen, res);
    });
  });
  http.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  const self: FakeServer = {
    url: `http://127.0.0.1:${port}`,
    requests,
    accepted,
    // Idempotent, so a test may close the server early and afterEach close it again.
    close: () =>
      (closing ??= new Promise<void>((resolve, reject) => {
        http.close((error) => (error ? reject(error) : resolve()));
        for (const socket of sockets) socket.destroy();
      })),
  };
  return self;
}
