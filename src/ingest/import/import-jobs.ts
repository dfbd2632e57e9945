import { randomUUID } from 'node:crypto';
import { OverloadedError } from '../../errors.js';
import { planImport, runImport, type ImportOptions, type ImportParts, type ImportPlan } from './import-files.js';

/** An import job as `GET /v1/imports/{id}` shows it. */
export interface ImportJobView {
  readonly id: string;
  /** `running` from submission (a job waiting for the one before it included) until every file is done. */
  readonly state: 'running' | 'succeeded' | 'failed';
  readonly table: string;
  readonly files: readonly ImportJobFile[];
  /** 0..1, by bytes, each file's phases weighed. */
  readonly progress: number;
  /** Rows registered so far. */
  readonly rows: number;
  /** Bytes of all the job's files. */
  readonly bytes: number;
  /** Why the job failed: the count of failed files and the first one's reason. */
  readonly error: { readonly code: string; readonly message: string } | null;
  readonly createdAt: string;
  readonly finishedAt: string | null;
}

export interface ImportJobFile {
  readonly path: string;
  readonly state: 'pending' | 'running' | 'succeeded' | 'failed';
  readonly rows: number;
  readonly bytes: number;
  readonly error: { readonly code: string; readonly message: string } | null;
}

interface Job {
  readonly id: string;
  readonly plan: ImportPlan;
  state: ImportJobView['state'];
  files: ImportJobFile[];
  bytesDone: number;
  rows: number;
  error: ImportJobView['error'];
  readonly createdAt: string;
  finishedAt: string | null;
}

export interface ImportJobLimits {
  /** Finished jobs kept for `GET`; older ones are forgotten. */
  readonly kept?: number;
  /** Jobs running or waiting; past this, a submission is refused with 503. */
  readonly active?: number;
}

/**
 * Import jobs for the HTTP API: each submission is checked at once (a bad table, file or schema is the
 * caller's error, before any work), then queued; jobs run one at a time and a job imports its files one at
 * a time, so imports never compete with each other for the disk or the chunk writer. Jobs live in memory:
 * the last {@link ImportJobLimits.kept} finished ones can be read back, and a restart forgets them (what they
 * registered stays registered, and a re-run of the same files is refused as duplicate).
 */
export class ImportJobs {
  private readonly jobs = new Map<string, Job>();
  private queue: Promise<void> = Promise.resolve();
  private readonly stopping = new AbortController();
  private readonly kept: number;
  private readonly active: number;

  constructor(
    private readonly parts: ImportParts,
    limits: ImportJobLimits = {},
  ) {
    this.kept = limits.kept ?? 100;
    this.active = limits.active ?? 16;
  }

  /** Checks and queues an import; answers the job as it stands. */
  async submit(options: Omit<ImportOptions, 'onProgress' | 'signal'>): Promise<ImportJobView> {
    if (this.stopping.signal.aborted) throw new OverloadedError('Strata is stopping; submit the import again after it restarts');
    const running = [...this.jobs.values()].filter((job) => job.state === 'running').length;
    if (running >= this.active) {
      throw new OverloadedError(`${running} imports are running or waiting; submit this one when some have finished`, 10);
    }
    const plan = await planImport(this.parts, options);
    const job: Job = {
      id: randomUUID(),
      plan,
      state: 'running',
      files: plan.files.map((file) => ({ path: file.path, state: 'pending', rows: 0, bytes: file.bytes, error: null })),
      bytesDone: 0,
      rows: 0,
      error: null,
      createdAt: new Date().toISOString(),
      finishedAt: null,
    };
    this.jobs.set(job.id, job);
    this.forgetOld();
    this.queue = this.queue.then(() => this.run(job));
    return view(job);
  }

  get(id: string): ImportJobView | null {
    const job = this.jobs.get(id);
    return job ? view(job) : null;
  }

  /** Every job kept, newest first. */
  list(): ImportJobView[] {
    return [...this.jobs.values()].reverse().map(view);
  }

  /** Stops the running job between lines or files (its current file registers nothing) and fails the waiting ones. */
  async close(): Promise<void> {
    this.stopping.abort(new Error('Strata stopped before this file was imported'));
    await this.queue;
  }

  private async run(job: Job): Promise<void> {
    const signal = this.stopping.signal;
    try {
      for (let i = 0; i < job.plan.files.length; i++) {
        if (signal.aborted) throw signal.reason;
        const file = job.plan.files[i]!;
        const before = job.bytesDone;
        job.files[i] = { ...job.files[i]!, state: 'running' };
        const result = await runImport(
          this.parts,
          { ...job.plan, files: [file] },
          { signal, onProgress: (progress) => (job.bytesDone = before + progress.bytesDone) },
        );
        const outcome = result.files[0]!;
        job.files[i] = { path: file.path, state: outcome.state, rows: outcome.rows, bytes: file.bytes, error: outcome.error };
        job.rows += outcome.rows;
        job.bytesDone = before + file.bytes;
      }
    } catch (error) {
      const reason = { code: 'unavailable', message: error instanceof Error ? error.message : String(error) };
      job.files = job.files.map((file) =>
        file.state === 'pending' || file.state === 'running' ? { ...file, state: 'failed', error: reason } : file,
      );
    }
    const failed = job.files.filter((file) => file.state === 'failed');
    job.state = failed.length === 0 ? 'succeeded' : 'failed';
    if (failed.length > 0) {
      job.error = {
        code: failed.length === 1 ? failed[0]!.error!.code : 'import_failed',
        message: `${failed.length} of ${job.files.length} file(s) failed; the first: ${failed[0]!.error!.message}`,
      };
    }
    job.finishedAt = new Date().toISOString();
    this.forgetOld();
  }

  private forgetOld(): void {
    let finished = [...this.jobs.values()].filter((job) => job.state !== 'running').length;
    for (const job of this.jobs.values()) {
      if (finished <= this.kept) break;
      if (job.state === 'running') continue;
      this.jobs.delete(job.id);
      finished--;
    }
  }
}

function view(job: Job): ImportJobView {
  const bytes = job.plan.files.reduce((sum, file) => sum + file.bytes, 0);
  const progress = job.state !== 'running' ? 1 : bytes === 0 ? 0 : Math.min(1, job.bytesDone / bytes);
  return {
    id: job.id,
    state: job.state,
    table: job.plan.table,
    files: job.files.map((file) => ({ ...file })),
    progress: Math.round(progress * 1000) / 1000,
    rows: job.rows,
    bytes,
    error: job.error,
    createdAt: job.createdAt,
    finishedAt: job.finishedAt,
  };
}
