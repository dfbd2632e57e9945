/**
 * Every call the console makes to Strata goes through this module: `api()` for requests and `events()` for
 * server-sent events. Both authenticate with the session cookie the login set (HttpOnly, SameSite=Strict, sent
 * same-origin by the browser); the server checks the Origin of state-changing calls against cross-site forgery.
 */

/** An answer with an error status, as the API sends them: `{"error": {"code", "message"}}`. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The whole answer: a 409 of a batch run carries the running run's id beside the error. */
    readonly body: unknown = null,
  ) {
    super(message);
  }
}

export interface ApiOptions {
  readonly method?: string;
  /** Sent as JSON. */
  readonly json?: unknown;
  readonly signal?: AbortSignal;
}

/** Calls the API and answers the parsed JSON body; throws {@link ApiError} for an error status. */
export async function api<T>(path: string, options: ApiOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.json !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, {
    method: options.method ?? (options.json === undefined ? 'GET' : 'POST'),
    headers,
    body: options.json === undefined ? undefined : JSON.stringify(options.json),
    signal: options.signal,
    credentials: 'same-origin',
  });
  const text = await response.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // A body cut off mid-answer (a query that failed while its rows streamed) is not JSON.
    throw new ApiError(response.status, 'truncated', `the answer was cut off (${text.length} bytes received)`);
  }
  if (!response.ok) {
    const error = (body as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(response.status, error?.code ?? 'http_error', error?.message ?? `${response.status} ${response.statusText}`, body);
  }
  return body as T;
}

/**
 * Listens to a server-sent events endpoint: each named event's data, parsed. EventSource reconnects by itself;
 * `onState` hears whether the stream is open. Answers the function that closes it. (EventSource cannot send an
 * Authorization header: it relies on the session cookie, which it sends same-origin.)
 */
export function events(
  path: string,
  handlers: Record<string, (data: unknown) => void>,
  onState: (open: boolean) => void = () => {},
): () => void {
  const source = new EventSource(path, { withCredentials: true });
  for (const [name, handle] of Object.entries(handlers)) {
    source.addEventListener(name, (event) => handle(JSON.parse((event as MessageEvent<string>).data)));
  }
  source.onopen = () => onState(true);
  source.onerror = () => onState(false);
  return () => source.close();
}

// The API's shapes, as far as the console reads them (see shared/API.md and the route files in src/http).

/** `GET /v1/session`: who is logged in, and which parts of the console the token may use. */
export interface Session {
  name: string;
  policies: string[];
  admin: boolean;
  can: { streams: boolean; views: boolean; dashboards: boolean; sql: boolean; catalog: boolean; batch: boolean; alerts: boolean };
}

export interface ShardState {
  shard: string;
  lastSeq: string;
  deliveredSeq: string;
  deliveryLagRecords: number;
  deliveryLagSeconds: number;
  logBytes: number;
}

export interface ViewState {
  view: string;
  stream: string;
  batchVersion: number | null;
  watermark: Record<string, string>;
  speedSeq: Record<string, string>;
  ranges: number;
}

export interface StreamsAnswer {
  streams: {
    name: string;
    shards: ShardState[];
    recordsPerSecond: number;
    accepted: number;
    failed: number;
    quarantined?: number;
    lake: { chunks: number; rows: number; bytes: number };
  }[];
  views: ViewState[];
}

export interface Column {
  name: string;
  type: string;
}

export type Row = Record<string, unknown>;

export interface ViewAnswer {
  columns: Column[];
  rows: Row[];
  provenance: { batchVersion: number | null; watermark: Record<string, string>; speedSeq: Record<string, string>; freshnessMs: number };
}

export interface ViewInfo {
  name: string;
  stream: string;
  sql: string;
  everyMs: number | null;
  keys: string[];
  measures: { name: string; kind: string }[];
  columns: (Column & { key: boolean })[];
  batch: { version: number; createdAt: string; watermark: Record<string, string>; maxEventTime: string | null } | null;
}

export interface Panel {
  view: string;
  chart: 'line' | 'bar' | 'area' | 'number' | 'table';
  x?: string;
  y: string;
  series?: string;
  title?: string;
}

export interface Dashboard {
  name: string;
  panels: Panel[];
}

export interface TableInfo {
  name: string;
  kind: string;
  createdAt: string;
  schemaVersion: number;
  columns: { name: string; type: string; nullable: boolean }[];
  chunks: number;
  rows: number;
  bytes: number;
}

export interface TableDetail extends TableInfo {
  schemaVersions: {
    version: number;
    columns: { name: string; type: string; nullable: boolean }[];
    change: { added: string[]; widened: { column: string; from: string; to: string }[]; relaxed: string[] } | null;
    createdAt: string;
  }[];
  partitions: { partition: string; chunks: number; rows: number; bytes: number; minTime: string | null; maxTime: string | null }[];
  chunkList: {
    id: number;
    partition: string;
    key: string;
    shard: string | null;
    firstSeq: string | null;
    lastSeq: string | null;
    rows: number;
    bytes: number;
    minTime: string | null;
    maxTime: string | null;
    createdAt: string;
  }[];
}

export interface ViewVersion {
  version: number;
  current: boolean;
  createdAt: string;
  fromScratch: boolean;
  watermark: Record<string, Record<string, string>>;
  files: number;
  rows: number;
  bytes: number;
}

export interface BatchRun {
  id: string;
  state: 'running' | 'succeeded' | 'failed';
  views: string[];
  fromScratch: boolean;
  progress: number;
  watermark: Record<string, Record<string, string>> | null;
  version: Record<string, number>;
  startedAt: string;
  finishedAt: string | null;
  error: string | null;
}

/** An event of an alert and its delivery to the webhook (`GET /v1/alerts`, src/http/alert-routes.ts). */
export interface AlertEventRecord {
  id: string;
  event: { alert: string; state: 'firing' | 'resolved'; value: number | null; threshold: number; view: string; measure: string; at: string };
  delivery: {
    state: 'queued' | 'delivering' | 'delivered' | 'failed' | 'dropped' | 'abandoned';
    attempts: number;
    lastStatus: number | null;
    lastError: string | null;
    finishedAt: string | null;
  };
}

export interface AlertInfo {
  name: string;
  view: string;
  measure: string;
  where: string | null;
  condition: 'below' | 'above';
  threshold: number;
  forMs: number;
  layer: 'merged' | 'speed';
  timeKey: string | null;
  webhook: string;
  state: 'ok' | 'pending' | 'firing';
  since: string;
  firesAt: string | null;
  value: number | null;
  bucket: string | null;
  evaluatedAt: string | null;
  error: string | null;
  lastNotification: AlertEventRecord | null;
  events: AlertEventRecord[];
}

export interface SqlAnswer {
  columns: Column[];
  rows: Row[];
}

/** A path with its query string; parameters whose value is undefined are left out. */
export function withQuery(path: string, params: Record<string, string | number | undefined>): string {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined) query.append(name, String(value));
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}
