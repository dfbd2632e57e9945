import { randomUUID } from 'node:crypto';
import { OverloadedError } from '../errors.js';
import type { Ingestor } from '../ingest/index.js';

const PAGES = ['/', '/home', '/search', '/product/1', '/product/2', '/product/3', '/cart', '/checkout', '/account', '/help'];

export interface TrafficOptions {
  readonly stream: string;
  /** Events per second. */
  readonly rate: number;
  /** Distinct users the events spread over. */
  readonly users?: number;
}

/**
 * The demo's traffic generator: click events for the example `clicks` stream, fed to the ingestor in-process
 * every 100 ms. A few events arrive late (event time minutes in the past) and a few are invalid, so the demo
 * shows what producers really send. Stop it with the function it answers.
 */
export function startClickstream(ingestor: Ingestor, options: TrafficOptions): () => void {
  const users = options.users ?? 5_000;
  const perTick = options.rate / 10;
  let carry = 0;
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return; // the log is behind: skip a tick rather than queue without bound
    carry += perTick;
    const count = Math.floor(carry);
    carry -= count;
    if (count === 0) return;
    const now = Date.now();
    const events = Array.from({ length: count }, () => {
      const late = Math.random() < 0.02 ? Math.random() * 10 * 60_000 : 0;
      // Skewed toward few pages and users, as real traffic is.
      const page = PAGES[Math.floor(PAGES.length * Math.random() ** 2)]!;
      return {
        event_id: randomUUID(),
        ts: new Date(now - late - Math.random() * 1000).toISOString(),
        user_id: `user-${Math.floor(users * Math.random() ** 3)}`,
        page,
        amount: page === '/checkout' ? Math.round(Math.random() * 20_000) / 100 : Math.random() < 0.001 ? 'n/a' : null,
      };
    });
    busy = true;
    ingestor
      .ingest(options.stream, events)
      .catch((error: unknown) => {
        if (!(error instanceof OverloadedError)) console.error(`demo traffic: ${(error as Error).message}`);
      })
      .finally(() => {
        busy = false;
      });
  }, 100);
  return () => clearInterval(timer);
}
