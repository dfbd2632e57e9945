/**
 * `npm run bench [-- FLAGS]`: runs each benchmark module in turn; each prints its own figures. At the end one
 * line `BENCH_JSON {...}` holds every module's figures, for comparing runs.
 *
 *   npm run bench -- --only ingest --seconds 5 --concurrency 8
 *   npm run bench -- --help
 *
 * A new benchmark is a module under bench/ whose default export is a {@link Benchmark}; add it to BENCHMARKS.
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import type { Benchmark, BenchOption } from './lib/benchmark.js';
import { cleanUpOnSignals, runAllCleanups } from './lib/cleanup.js';

/** The benchmarks, in the order `npm run bench` runs them. */
const BENCHMARKS: readonly { readonly name: string; readonly load: () => Promise<{ default: Benchmark }> }[] = [
  { name: 'ingest', load: () => import('./ingest.js') },
  { name: 'kinesis', load: () => import('./kinesis-put-records.js') },
  { name: 'delivery', load: () => import('./delivery.js') },
  { name: 'import', load: () => import('./import.js') },
  { name: 'sql', load: () => import('./sql.js') },
  { name: 'batch', load: () => import('./batch.js') },
  { name: 'views', load: () => import('./views.js') },
  { name: 'pgwire', load: () => import('./pgwire.js') },
];

const RUNNER_OPTIONS: Record<string, BenchOption> = {
  only: { type: 'string', description: 'run only these benchmarks (comma-separated names)' },
  help: { type: 'boolean', description: 'list the benchmarks and their flags' },
};

async function main(): Promise<void> {
  cleanUpOnSignals();
  const modules = await Promise.all(BENCHMARKS.map(async (entry) => (await entry.load()).default));

  // One flag table for all modules, so a typo is refused; a flag two modules share must agree on its type.
  const merged: Record<string, BenchOption> = { ...RUNNER_OPTIONS };
  for (const module of modules) {
    for (const [name, option] of Object.entries(module.options)) {
      const seen = merged[name];
      if (seen !== undefined && seen.type !== option.type) {
        throw new Error(`bench flag --${name} is declared as ${seen.type} and ${option.type} by different modules`);
      }
      merged[name] ??= option;
    }
  }
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: Object.fromEntries(Object.entries(merged).map(([name, option]) => [name, { type: option.type }])),
    strict: true,
    allowPositionals: false,
  });

  if (values.help === true) {
    console.log('usage: npm run bench -- [--only NAME[,NAME]] [flags]\n');
    for (const [name, option] of Object.entries(RUNNER_OPTIONS)) console.log(`  --${name.padEnd(18)} ${option.description}`);
    for (const module of modules) {
      console.log(`\n${module.name}: ${module.summary}`);
      for (const [name, option] of Object.entries(module.options)) {
        const fallback = option.default === undefined ? '' : ` (default: ${option.default})`;
        console.log(`  --${name.padEnd(18)} ${option.description}${fallback}`);
      }
    }
    return;
  }

  const only = typeof values.only === 'string' ? values.only.split(',').map((name) => name.trim()).filter(Boolean) : null;
  const unknown = only?.filter((name) => !modules.some((module) => module.name === name)) ?? [];
  if (unknown.length > 0) {
    throw new Error(`--only: no benchmark named ${unknown.join(', ')}; there are ${modules.map((m) => m.name).join(', ')}`);
  }
  const selected = modules.filter((module) => only === null || only.includes(module.name));

  const results: Record<string, unknown> = {};
  for (const module of selected) {
    try {
      results[module.name] = await module.run(values);
    } catch (error) {
      console.error(`${module.name}: FAILED: ${(error as Error).message}`);
      results[module.name] = { error: (error as Error).message };
      process.exitCode = 1;
    } finally {
      await runAllCleanups();
    }
    console.log();
  }

  const summary = {
    at: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    args: process.argv.slice(2),
    results,
  };
  console.log(`BENCH_JSON ${JSON.stringify(summary)}`);
}

try {
  await main();
} catch (error) {
  console.error((error as Error).message);
  await runAllCleanups();
  process.exitCode = 1;
}
