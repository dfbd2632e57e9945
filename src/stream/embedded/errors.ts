/** A record in the log failed its checksum where the log had acknowledged it: the data must not be served. */
export class CorruptLogError extends Error {
  override readonly name: string = 'CorruptLogError';
}

/** The log can no longer accept appends (a write or sync failed); a restart runs recovery. */
export class LogFailedError extends Error {
  override readonly name: string = 'LogFailedError';
}
