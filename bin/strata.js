#!/usr/bin/env node
// The `strata` command: runs the compiled CLI (built by `npm run build`, which `npm ci` runs through `prepare`).

// libuv's thread pool is shared by file I/O (the log's writes and syncs) and DuckDB's queries; with its default
// of 4 threads, a few long queries would hold every fsync back. It must be sized before anything uses it.
process.env.UV_THREADPOOL_SIZE ??= '16';

const { main } = await import('../dist/cli/index.js');
main(process.argv).catch((error) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
