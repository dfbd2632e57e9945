import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
// Sets the run's admin token (STRATA_ADMIN_TOKEN, inherited by every server spawned here) and sends it with fetch.
import './auth.js';
import { onCleanup } from './cleanup.js';

/** The repository root: bin/strata.js and dist/ live here. */
export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/** How long Strata may take to answer /health after it is spawned. */
const START_TIMEOUT_MS = 20_000;
/** How long Strata may take to stop after SIGTERM before it is killed. */
const STOP_TIMEOUT_MS = 10_000;
/** Lines of the child's output kept for error messages. */
const OUTPUT_LINES_KEPT = 40;

export interface StartStrataOptions {
  /** The project config, written to a temp JSON file. */
  readonly config: unknown;
  /** Where the temp dir (config and data) is made; the system temp dir by default. */
  readonly tempRoot?: string;
  /** Run the server under `node --cpu-prof`, writing the profile here when it stops. */
  readonly cpuProfDir?: string;
  /** Open the PostgreSQL protocol listener on a free port (default: off, `--pg-port 0`). */
  readonly pg?: boolean;
  /** Extra environment for the server (STRATA_ADMIN_TOKEN...). */
  readonly env?: Readonly<Record<string, string>>;
}

/** A Strata server running as a child process, on a port picked free, over a temp data dir. */
export interface StrataProcess {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** The PostgreSQL protocol port, when `pg` was asked for. */
  readonly pgPort: number | null;
  readonly pid: number;
  readonly tempDir: string;
  readonly dataDir: string;
  /** The last lines the server printed, for error messages. */
  output(): string;
  /** Stops the server (SIGTERM, then SIGKILL after a bound) and deletes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1: bind port 0, note the port, close. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolvePort(port) : reject(new Error('could not pick a free port'))));
    });
  });
}

/** The filesystem type holding `path` (from /proc/mounts), e.g. "ext4" or "tmpfs"; "unknown" elsewhere. */
export function filesystemOf(path: string): string {
  try {
    let best = { mount: '', type: 'unknown' };
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [, mount, type] = line.split(' ');
      if (mount === undefined || type === undefined) continue;
      const within = path === mount || path.startsWith(mount.endsWith('/') ? mount : `${mount}/`);
      if (within && mount.length >= best.mount.length) best = { mount, type };
    }
    return best.type;
  } catch {
    return 'unknown';
  }
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolveExit) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolveExit(false);
    }, timeoutMs);
    const onExit = () => {
      clearTimeout(timer);
      resolveExit(true);
    };
    child.once('exit', onExit);
  });
}

/**
 * Starts `node bin/strata.js start` with a temp config and data dir on a free port and waits until
 * `GET /health` answers 200. The compiled `dist/` must exist (`npm run bench` builds it first).
 */
export async function startStrata(options: StartStrataOptions): Promise<StrataProcess> {
  if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'index.js'))) {
    throw new Error('dist/ is missing: run `npm run build` first (`npm run bench` does)');
  }
  const tempDir = await mkdtemp(join(options.tempRoot ?? tmpdir(), 'strata-bench-'));
  const removeTemp = onCleanup(() => rm(tempDir, { recursive: true, force: true }));
  const configPath = join(tempDir, 'strata.config.json');
  const dataDir = join(tempDir, 'data');
  let child: ChildProcess | null = null;
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      lines.push(line);
      if (lines.length > OUTPUT_LINES_KEPT) lines.shift();
    }
  };
  const stopChild = onCleanup(async () => {
    if (child === null) return;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      if (!(await waitForExit(child, STOP_TIMEOUT_MS))) {
        child.kill('SIGKILL');
        await waitForExit(child, STOP_TIMEOUT_MS);
      }
    }
  });
  const stop = async () => {
    await stopChild();
    await removeTemp();
  };

  try {
    await writeFile(configPath, JSON.stringify(options.config, null, 2));
    await mkdir(dataDir);
    const port = await freePort();
    const nodeArgs: string[] = [];
    if (options.cpuProfDir !== undefined) {
      await mkdir(options.cpuProfDir, { recursive: true });
      nodeArgs.push('--cpu-prof', '--cpu-prof-dir', resolve(options.cpuProfDir));
    }
    const args = [...nodeArgs, join(REPO_ROOT, 'bin', 'strata.js'), 'start'];
    args.push('--config', configPath, '--data', dataDir, '--port', String(port), '--host', '127.0.0.1');
    // The PostgreSQL listener binds 5433 unless told otherwise: a benchmark never takes a fixed port.
    const pgPort = options.pg === true ? await freePort() : null;
    args.push('--pg-port', String(pgPort ?? 0));
    const spawned = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
    child = spawned;
    spawned.stdout.on('data', keep);
    spawned.stderr.on('data', keep);
    await new Promise<void>((resolveSpawn, reject) => {
      spawned.once('spawn', resolveSpawn);
      spawned.once('error', reject);
    });
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (let attempt = 0; ; attempt++) {
      if (spawned.exitCode !== null || spawned.signalCode !== null) {
        throw new Error(`Strata exited (${spawned.exitCode ?? spawned.signalCode}) before it was healthy:\n${lines.join('\n')}`);
      }
      if (Date.now() > deadline || attempt > 1000) {
        throw new Error(`Strata did not answer GET /health within ${START_TIMEOUT_MS} ms:\n${lines.join('\n')}`);
      }
      const healthy = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) })
        .then((response) => response.status === 200)
        .catch(() => false);
      if (healthy) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    return {
      url,
      pgPort,
      pid: spawned.pid!,
      tempDir,
      dataDir,
      output: () => lines.join('\n'),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * The `.cpuprofile` that `node --cpu-prof` wrote in `dir` for the main thread of process `pid` (named
 * CPU.<date>.<time>.<pid>.<thread>.<seq>; worker threads such as delivery's write their own, thread ≠ 0), or null.
 */
export async function cpuProfileOf(dir: string, pid: number): Promise<string | null> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const mine = names
    .filter((name) => name.endsWith('.cpuprofile') && name.split('.')[3] === String(pid) && name.split('.')[4] === '0')
    .sort();
  const last = mine[mine.length - 1];
  return last === undefined ? null : join(dir, last);
}
