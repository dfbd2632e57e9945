/**
 * Things a benchmark must undo however it ends (a child process to stop, a temp dir to delete). A module
 * registers them as it creates them and runs them in its `finally`; on SIGINT/SIGTERM the runner runs
 * whatever is still registered before it exits.
 */

type Cleanup = () => Promise<void>;

const pending = new Set<Cleanup>();

/** Registers `fn`; answers a function that runs it once (and unregisters it). */
export function onCleanup(fn: Cleanup): () => Promise<void> {
  let done: Promise<void> | null = null;
  const once: Cleanup = () => {
    pending.delete(once);
    done ??= fn();
    return done;
  };
  pending.add(once);
  return once;
}

/** Runs every registered cleanup, newest first, each at most `timeoutMs`; never throws. */
export async function runAllCleanups(timeoutMs = 15_000): Promise<void> {
  for (const fn of [...pending].reverse()) {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    try {
      await Promise.race([fn(), timeout]);
    } catch (error) {
      console.error(`cleanup failed: ${(error as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** On SIGINT or SIGTERM: clean up, then exit 130 (143). A second signal exits at once. */
export function cleanUpOnSignals(): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    console.error(`\n${signal}: stopping children and removing temp files`);
    void runAllCleanups().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}
