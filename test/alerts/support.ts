import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AlertStatus } from '../../src/alerts/index.js';
import type { RunningStrata } from '../fixtures/strata.js';

/**
 * The admin token these tests run with, unless the environment has one: Strata reads STRATA_ADMIN_TOKEN when it
 * opens, and {@link authHeaders} sends it on every request (a Strata that asks for no token ignores it).
 */
process.env.STRATA_ADMIN_TOKEN ??= 'alerts-test-admin-token-4f9c2a7e1b';

/** The bearer header of a request to `server`: its own token if the fixture gives one, else the environment's. */
export function authHeaders(server: RunningStrata): Record<string, string> {
  const token = (server as { token?: string }).token ?? process.env.STRATA_ADMIN_TOKEN;
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** Ingests click events over HTTP; throws if any is refused. */
export async function ingestClicks(server: RunningStrata, events: readonly Record<string, unknown>[]): Promise<void> {
  const response = await fetch(`${server.url}/v1/streams/clicks/records`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...authHeaders(server) },
    body: JSON.stringify(events),
  });
  const body = (await response.json()) as { failed?: number };
  if (response.status !== 200 || body.failed !== 0) throw new Error(`ingest failed (${response.status}): ${JSON.stringify(body)}`);
}

/** GETs a path of the API with the test's token. */
export function get(server: RunningStrata, path: string): Promise<Response> {
  return fetch(`${server.url}${path}`, { headers: authHeaders(server) });
}

/** A request the receiver got. */
export interface Received {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Record<string, unknown>;
  readonly status: number;
}

/**
 * A webhook receiver on 127.0.0.1 (port 0: the system picks), the only address alert tests talk to. Per path it
 * answers the statuses it was given, in order, then `then` (200 unless told).
 */
export class WebhookReceiver {
  readonly requests: Received[] = [];
  private readonly plans = new Map<string, { statuses: number[]; then: number }>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<WebhookReceiver> {
    let receiver: WebhookReceiver | null = null;
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const path = request.url ?? '/';
        const plan = receiver!.plans.get(path);
        const status = plan ? (plan.statuses.shift() ?? plan.then) : 200;
        receiver!.requests.push({ path, headers: request.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>, status });
        response.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'no');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    receiver = new WebhookReceiver(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return receiver;
  }

  /** Answers these statuses to the next requests on `path`, then `then`. */
  plan(path: string, statuses: number[], then = 200): void {
    this.plans.set(path, { statuses: [...statuses], then });
  }

  on(path: string): Received[] {
    return this.requests.filter((request) => request.path === path);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A port nothing listens on: bound by the system, then let go. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** `GET /v1/alerts`, by alert name. */
export async function alerts(server: RunningStrata): Promise<Map<string, AlertStatus>> {
  const response = await get(server, '/v1/alerts');
  if (response.status !== 200) throw new Error(`GET /v1/alerts answered ${response.status}: ${await response.text()}`);
  const body = (await response.json()) as { alerts: AlertStatus[] };
  return new Map(body.alerts.map((alert) => [alert.name, alert]));
}

/** Polls `GET /v1/alerts` until `until` accepts the alert, and answers it. */
export async function waitForAlert(server: RunningStrata, name: string, until: (alert: AlertStatus) => boolean, timeoutMs = 20_000): Promise<AlertStatus> {
  const started = Date.now();
  let last: AlertStatus | undefined;
  for (;;) {
    last = (await alerts(server)).get(name);
    if (last && until(last)) return last;
    if (Date.now() - started > timeoutMs) throw new Error(`alert "${name}" did not get there in time; last: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A click at `second` seconds into `minute` past 10:00 on 2026-11-25 (UTC): the latest bucket is the data's, not the clock's. */
export function click(id: string, page: string, minute: number, second = 0): Record<string, unknown> {
  return {
    event_id: id,
    ts: `2026-11-25T10:${String(minute).padStart(2, '0')}:${String(second).padStart(2, '0')}Z`,
    user_id: `u${id}`,
    page,
    amount: page === '/checkout' ? 10 : null,
  };
}
