import { readFile } from 'node:fs/promises';
import type { ConfigInput } from '../../src/config/index.js';
import { ADMIN_AUTH, bearer, fetchWithoutToken } from '../fixtures/auth.js';

/** The example project, with its `producer` and `analyst` policies. */
export async function exampleConfig(overrides: Partial<ConfigInput> = {}): Promise<ConfigInput> {
  const config = JSON.parse(await readFile('examples/clickstream/strata.config.json', 'utf8')) as ConfigInput;
  // No scheduled batch runs: the tests start the runs they need.
  const views = Object.fromEntries(
    Object.entries(config.views ?? {}).map(([name, view]) => [name, typeof view === 'string' ? view : { sql: view.sql }]),
  );
  return { ...config, views, delivery: { maxSeconds: 0.2 }, ...overrides };
}

/** Makes a token for `policies` as the test admin; answers its text. */
export async function createToken(url: string, name: string, policies: string[]): Promise<string> {
  const response = await fetchWithoutToken(`${url}/v1/tokens`, {
    method: 'POST',
    headers: { ...ADMIN_AUTH, 'content-type': 'application/json' },
    body: JSON.stringify({ name, policies }),
  });
  if (response.status !== 201) throw new Error(`token ${name}: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { token: string }).token;
}

/** One request, answered as status, headers and the body's text. */
export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

/** Sends a request with exactly the headers given (no test admin token added), reading the whole answer. */
export async function call(url: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  const controller = new AbortController();
  const response = await fetchWithoutToken(`${url}${path}`, { method, headers, body, signal: controller.signal, redirect: 'manual' });
  // An event stream never ends: its first bytes are enough.
  if ((response.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    const reader = response.body!.getReader();
    const first = await reader.read();
    controller.abort();
    return { status: response.status, headers: response.headers, text: new TextDecoder().decode(first.value) };
  }
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** A request as the token `token`. */
export function as(token: string): Record<string, string> {
  return bearer(token);
}

/** Every endpoint family of the API, with a request each (a body where the route takes one). */
export const ENDPOINTS: readonly { family: string; method: string; path: string; body?: string; type?: string }[] = [
  { family: 'ingest', method: 'POST', path: '/v1/streams/clicks/records', body: '{"event_id":"e1"}', type: 'application/json' },
  { family: 'streams', method: 'GET', path: '/v1/streams' },
  { family: 'views', method: 'GET', path: '/v1/views/page_minute' },
  { family: 'view events', method: 'GET', path: '/v1/views/page_minute/events' },
  { family: 'view versions', method: 'GET', path: '/v1/views/page_minute/versions' },
  { family: 'SQL', method: 'POST', path: '/v1/sql', body: 'SELECT 1', type: 'text/plain' },
  { family: 'batch', method: 'POST', path: '/v1/batch/runs', body: '{}', type: 'application/json' },
  { family: 'batch status', method: 'GET', path: '/v1/batch/runs/some-id' },
  { family: 'catalog', method: 'GET', path: '/v1/catalog/tables' },
  { family: 'catalog table', method: 'GET', path: '/v1/catalog/tables/clicks' },
  { family: 'imports', method: 'POST', path: '/v1/tables/clicks/imports', body: '{"files":["/tmp/x.ndjson"]}', type: 'application/json' },
  { family: 'import jobs', method: 'GET', path: '/v1/imports' },
  { family: 'metrics', method: 'GET', path: '/metrics' },
  { family: 'tokens', method: 'GET', path: '/v1/tokens' },
  { family: 'token create', method: 'POST', path: '/v1/tokens', body: '{"name":"x","policies":["producer"]}', type: 'application/json' },
  { family: 'token revoke', method: 'DELETE', path: '/v1/tokens/x' },
  { family: 'console views', method: 'GET', path: '/v1/views' },
  { family: 'console dashboards', method: 'GET', path: '/v1/dashboards' },
  { family: 'console session', method: 'GET', path: '/v1/session' },
  { family: 'unknown route', method: 'GET', path: '/v1/nothing-here' },
];
