/**
 * The contract between `bench/run.ts` and each benchmark module: a name, the command-line options the
 * module reads, and a `run` that prints its own readable figures and answers them as plain JSON data, which
 * the runner gathers into one `BENCH_JSON` line.
 */

/** One command-line option of a benchmark; `npm run bench -- --help` lists them. */
export interface BenchOption {
  readonly type: 'string' | 'boolean';
  readonly description: string;
  /** Shown by --help. The module applies it itself, so two modules may share a flag with different defaults. */
  readonly default?: string;
}

/** Parsed flag values, shared by every module that runs (a flag means the same to all who declare it). */
export type BenchValues = Readonly<Record<string, string | boolean | undefined>>;

/** JSON-safe figures a benchmark answers. */
export type BenchFigures = { readonly [key: string]: unknown };

export interface Benchmark {
  /** The name `--only` selects, and the key of this module's figures in `BENCH_JSON`. */
  readonly name: string;
  /** One line for --help. */
  readonly summary: string;
  readonly options: Readonly<Record<string, BenchOption>>;
  /** Runs the benchmark, prints its readable block, and answers its figures. */
  run(values: BenchValues): Promise<BenchFigures>;
}

/** A numeric flag, checked: the flag named in the message when it is not a number in range. */
export function numberFlag(
  values: BenchValues,
  name: string,
  fallback: number,
  limits: { min: number; max: number; integer?: boolean },
): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = typeof raw === 'string' ? Number(raw) : NaN;
  if (!Number.isFinite(n) || n < limits.min || n > limits.max || (limits.integer === true && !Number.isInteger(n))) {
    const kind = limits.integer === true ? 'an integer' : 'a number';
    throw new Error(`--${name}: expected ${kind} from ${limits.min} to ${limits.max}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** A string flag, or undefined when not given. */
export function stringFlag(values: BenchValues, name: string): string | undefined {
  const raw = values[name];
  return typeof raw === 'string' ? raw : undefined;
}

/** 1234567.8 → "1,234,568". */
export function formatInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** A ratio as "1.37x". */
export function formatRatio(n: number): string {
  return `${n.toFixed(n < 0.1 ? 3 : 2)}x`;
}

/** Rounds for JSON output, so BENCH_JSON lines stay readable and comparable. */
export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
