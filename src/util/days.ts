/** One day in ms: lake partitions (`dt=YYYY-MM-DD`) are UTC event-time days. */
export const DAY_MS = 86_400_000;

/** The UTC day (`YYYY-MM-DD`, a partition's name) holding the instant `ms`. */
export function dayOf(ms: number): string {
  return new Date(Math.floor(ms / DAY_MS) * DAY_MS).toISOString().slice(0, 10);
}
