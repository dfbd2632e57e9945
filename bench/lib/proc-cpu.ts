import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** Linux clock ticks per second, in which /proc reports CPU time (USER_HZ, 100 on every common kernel). */
const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system, all threads) a process has used, from /proc; null when unavailable. */
export function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // utime and stime are fields 14 and 15 of stat; after the ")" that ends the command name they are the
    // 12th and 13th, whatever spaces the name holds.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/** Busy and total ticks of the whole machine so far, from /proc/stat (idle and iowait count as not busy). */
export function machineTicks(): { busy: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const numbers = line.trim().split(/\s+/).slice(1).map(Number);
    const total = numbers.reduce((a, b) => a + b, 0);
    const idle = (numbers[3] ?? 0) + (numbers[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

/** Cores the whole machine kept busy between two {@link machineTicks} readings (2.0 = both cores of two). */
export function busyCores(from: { busy: number; total: number }, to: { busy: number; total: number }): number {
  return ((to.busy - from.busy) / Math.max(1, to.total - from.total)) * cpus().length;
}

/** Cores busy over the next `ms`, before anything of ours runs: other processes' load. Null without /proc. */
export async function backgroundLoad(ms = 500): Promise<number | null> {
  const from = machineTicks();
  await new Promise((r) => setTimeout(r, ms));
  const to = machineTicks();
  return from === null || to === null ? null : busyCores(from, to);
}
