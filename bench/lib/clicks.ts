/**
 * Realistic click events for the benchmarks, generated from a seed so that two processes (the load
 * generator and the parent timing the JSON.parse ceiling) build byte-identical bodies without passing them.
 */

/** The `clicks` stream as the benchmarks configure it (the shape of examples/clickstream). */
export const CLICKS_STREAM = {
  partitionKey: 'user_id',
  eventTime: 'ts',
  shards: 4,
  schema: { event_id: 'string', ts: 'timestamp', user_id: 'string', page: 'string', amount: 'double?' },
} as const;

/** Every kind of transform rule, as a stream would declare them; the generated events are clean, so each rule runs in full. */
export const CLICKS_TRANSFORM = {
  dedupe: { key: 'event_id', within: '24h' },
  required: ['user_id'],
  defaults: { page: '/unknown' },
  standardize: { page: ['trim', 'lower'], user_id: 'trim' },
  map: { page: { '/index': '/home' } },
  derive: { amount_cents: 'CAST(round(amount * 100) AS BIGINT)' },
};

export interface ClickBodyOptions {
  readonly seed: number;
  /** How many distinct bodies to build. */
  readonly bodies: number;
  readonly eventsPerBody: number;
  readonly users?: number;
  readonly pages?: number;
}

export interface ClickBodies {
  /** NDJSON bodies, one event a line, each line ending in "\n". */
  readonly bodies: readonly Buffer[];
  readonly eventsPerBody: number;
  /** Bytes over all bodies, newlines included. */
  readonly bytes: number;
  readonly events: number;
}

/** mulberry32: a small, fast, seeded generator; plenty for test data. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SECTIONS = ['products', 'category', 'search', 'deals', 'brands', 'blog', 'help', 'account', 'cart', 'checkout'];
const WORDS = [
  'wireless', 'headphones', 'running', 'shoes', 'coffee', 'grinder', 'standing', 'desk', 'mechanical', 'keyboard',
  'winter', 'jacket', 'kitchen', 'knife', 'garden', 'hose', 'yoga', 'mat', 'smart', 'watch', 'travel', 'backpack',
  'led', 'lamp', 'office', 'chair', 'water', 'bottle', 'gaming', 'mouse', 'camping', 'tent',
];
const SOURCES = ['newsletter', 'google', 'facebook', 'instagram', 'partner', 'direct'];
/** Event times start here and advance a few ms per event, so bodies look like a live feed. */
const BASE_TIME_MS = Date.UTC(2026, 10, 25, 9, 0, 0);

function buildPages(count: number, random: () => number): string[] {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const pages: string[] = [];
  for (let i = 0; i < count; i++) {
    const path = `/${pick(SECTIONS)}/${pick(WORDS)}-${pick(WORDS)}-${pick(WORDS)}/item-${String(i).padStart(5, '0')}`;
    pages.push(random() < 0.6 ? `${path}?utm_source=${pick(SOURCES)}&utm_medium=${pick(['email', 'cpc', 'social'])}` : path);
  }
  return pages;
}

function uuid(random: () => number): string {
  let hex = '';
  for (let i = 0; i < 4; i++) hex += Math.floor(random() * 0x1_0000_0000).toString(16).padStart(8, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * Builds NDJSON bodies of click events (≈ 200 bytes each): a random event_id, an ISO event time, one of
 * `users` user ids (skewed: a few users are busy), one of `pages` pages, and an amount on 70 % of events.
 */
export function generateClickBodies(options: ClickBodyOptions): ClickBodies {
  const random = prng(options.seed);
  const users = options.users ?? 100_000;
  const pages = buildPages(options.pages ?? 5_000, random);
  const bodies: Buffer[] = [];
  let bytes = 0;
  let time = BASE_TIME_MS;
  for (let b = 0; b < options.bodies; b++) {
    const lines: string[] = new Array<string>(options.eventsPerBody);
    for (let e = 0; e < options.eventsPerBody; e++) {
      time += Math.floor(random() * 4);
      const user = Math.floor(users * random() ** 2);
      const event = {
        event_id: uuid(random),
        ts: new Date(time).toISOString(),
        user_id: `user-${String(user).padStart(6, '0')}`,
        page: pages[Math.floor(random() * pages.length)]!,
        amount: random() < 0.7 ? Math.round(random() * 50_000) / 100 : null,
      };
      lines[e] = JSON.stringify(event);
    }
    const body = Buffer.from(lines.join('\n') + '\n');
    bodies.push(body);
    bytes += body.length;
  }
  return { bodies, eventsPerBody: options.eventsPerBody, bytes, events: options.bodies * options.eventsPerBody };
}
