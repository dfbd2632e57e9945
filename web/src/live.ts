import { api, events, withQuery, type ViewAnswer, type ViewInfo } from './api.js';
import { isTimeType } from './table.js';

/** What a live view stream delivers: the answer of each layer it asked for, as they arrive. */
export interface LiveAnswers {
  merged?: ViewAnswer;
  batch?: ViewAnswer;
  speed?: ViewAnswer;
  error?: string;
}

type Listener = (answers: LiveAnswers) => void;

interface Subscription {
  readonly listeners: Set<Listener>;
  readonly answers: LiveAnswers;
  close(): void;
}

const subscriptions = new Map<string, Subscription>();

/** Told whenever any live stream opens or drops, for the connection indicator in the header. */
export const connection = { listeners: new Set<(open: boolean) => void>() };

/**
 * Listens to `GET /v1/views/{view}/events` with these parameters. Panels asking for the same view and parameters
 * share one stream; it closes when its last listener leaves. Answers the function that unsubscribes.
 */
export function subscribeView(view: string, params: Record<string, string | number | undefined>, listener: Listener): () => void {
  const path = withQuery(`/v1/views/${encodeURIComponent(view)}/events`, params);
  let subscription = subscriptions.get(path);
  if (!subscription) {
    const answers: LiveAnswers = {};
    const listeners = new Set<Listener>();
    const notify = () => listeners.forEach((l) => l(answers));
    const layer = (name: 'merged' | 'batch' | 'speed') => (data: unknown) => {
      answers[name] = data as ViewAnswer;
      delete answers.error;
      // The merged answer comes first in each push; listeners are told once the push's last layer arrived.
      if (name === lastLayer(params)) notify();
    };
    const close = events(
      path,
      {
        merged: layer('merged'),
        batch: layer('batch'),
        speed: layer('speed'),
        error: (data) => {
          answers.error = (data as { error: { message: string } }).error.message;
          notify();
        },
      },
      (open) => connection.listeners.forEach((l) => l(open)),
    );
    subscription = { listeners, answers, close };
    subscriptions.set(path, subscription);
  }
  const current = subscription;
  current.listeners.add(listener);
  if (current.answers.merged || current.answers.batch || current.answers.speed) listener(current.answers);
  return () => {
    current.listeners.delete(listener);
    if (current.listeners.size === 0) {
      current.close();
      subscriptions.delete(path);
    }
  };
}

function lastLayer(params: Record<string, string | number | undefined>): string {
  return String(params.layer ?? 'merged').split(',').at(-1)!;
}

let viewInfo: Promise<ViewInfo[]> | null = null;
let viewInfoAt = 0;

/** `GET /v1/views`, shared by the pages and refreshed when older than `maxAgeMs`. */
export function viewList(maxAgeMs = 5000): Promise<ViewInfo[]> {
  if (viewInfo === null || Date.now() - viewInfoAt > maxAgeMs) {
    viewInfoAt = Date.now();
    viewInfo = api<{ views: ViewInfo[] }>('/v1/views').then((answer) => answer.views);
    viewInfo.catch(() => (viewInfo = null));
  }
  return viewInfo;
}

/** A view's time column: its first group-by column of a time type (the x axis of its charts), or null. */
export function timeKey(view: ViewInfo): string | null {
  return view.columns.find((column) => column.key && isTimeType(column.type))?.name ?? null;
}

/** Rows a chart asks for: the latest first, so that the limit cuts the oldest. */
export const CHART_ROWS = 5000;
