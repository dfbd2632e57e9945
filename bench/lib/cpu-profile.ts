import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT } from './strata-process.js';

/** The parts of a V8 `.cpuprofile` (what `node --cpu-prof` writes) that the summary reads. */
interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number;
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
    readonly hitCount?: number;
    readonly children?: readonly number[];
  }[];
  readonly samples?: readonly number[];
}

/** One function's share of the busy (non-idle) samples. */
export interface ProfileFrame {
  readonly frame: string;
  /** Percent of busy samples spent in the function itself. */
  readonly selfPercent: number;
  /** Percent of busy samples with the function on the stack (recursion counted once). */
  readonly totalPercent: number;
}

export interface ProfileSummary {
  readonly busySamples: number;
  readonly idlePercent: number;
  readonly topSelf: readonly ProfileFrame[];
  /** Strata's own functions (dist/) by inclusive time: which part of the request path costs what. */
  readonly topStrataTotal: readonly ProfileFrame[];
}

function frameName(callFrame: CpuProfile['nodes'][number]['callFrame']): string {
  const name = callFrame.functionName || '(anonymous)';
  if (callFrame.url === '') return name;
  let where = callFrame.url;
  if (where.startsWith('file://')) {
    const path = fileURLToPath(where);
    where = path.startsWith(REPO_ROOT) ? relative(REPO_ROOT, path) : path;
    where = where.replace(/^.*node_modules\//, '');
  }
  return `${name} ${where}:${callFrame.lineNumber + 1}`;
}

/** Summarizes a `.cpuprofile`: the top functions by self time, and Strata's functions by inclusive time. */
export async function summarizeCpuProfile(path: string, top = 15): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(path, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const hits = new Map<number, number>();
  if (profile.samples) for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  else for (const node of profile.nodes) hits.set(node.id, node.hitCount ?? 0);

  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let all = 0;
  let idle = 0;
  // Depth-first over the call tree with an explicit stack (profiles can be deep); `onStack` counts how many
  // times each frame name is on the current path, so a recursive function's inclusive time counts once.
  const root = profile.nodes[0];
  if (root === undefined) throw new Error(`${path}: empty profile`);
  const onStack = new Map<string, number>();
  const inclusive = new Map<number, number>();
  const stack: { id: number; entered: boolean }[] = [{ id: root.id, entered: false }];
  for (let steps = 0; stack.length > 0 && steps < 4 * profile.nodes.length + 4; steps++) {
    const top = stack[stack.length - 1]!;
    const node = byId.get(top.id)!;
    const name = frameName(node.callFrame);
    if (!top.entered) {
      top.entered = true;
      onStack.set(name, (onStack.get(name) ?? 0) + 1);
      const own = hits.get(node.id) ?? 0;
      inclusive.set(node.id, own);
      all += own;
      if (node.callFrame.functionName === '(idle)') idle += own;
      else if (own > 0) self.set(name, (self.get(name) ?? 0) + own);
      for (const child of node.children ?? []) stack.push({ id: child, entered: false });
      continue;
    }
    stack.pop();
    let sum = inclusive.get(node.id)!;
    for (const child of node.children ?? []) sum += inclusive.get(child) ?? 0;
    inclusive.set(node.id, sum);
    const depth = onStack.get(name)! - 1;
    onStack.set(name, depth);
    if (depth === 0 && node.callFrame.functionName !== '(idle)' && node.id !== root.id) {
      total.set(name, (total.get(name) ?? 0) + sum);
    }
  }
  const busy = Math.max(1, all - idle);
  const percent = (n: number) => Math.round((n / busy) * 1000) / 10;
  const frame = (name: string): ProfileFrame => ({
    frame: name,
    selfPercent: percent(self.get(name) ?? 0),
    totalPercent: percent(total.get(name) ?? 0),
  });
  const topSelf = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name]) => frame(name));
  const topStrataTotal = [...total.entries()]
    .filter(([name]) => / dist\//.test(name))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name]) => frame(name));
  return { busySamples: all - idle, idlePercent: Math.round((idle / Math.max(1, all)) * 1000) / 10, topSelf, topStrataTotal };
}
