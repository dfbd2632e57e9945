import { randomBytes } from 'node:crypto';

/** Sessions held at once; past it the oldest is dropped (its user logs in again). */
const MAX_SESSIONS = 10_000;

/**
 * Console sessions: a random id (the cookie's value) mapped to the hash of the token that logged in, until it
 * expires. Held in memory only, so a restart logs everyone out; revoking a token ends its sessions at once,
 * since each request looks the hash up among the live tokens again.
 */
export class Sessions {
  private readonly sessions = new Map<string, { hash: string; expiresAt: number }>();

  constructor(
    private readonly lifetimeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Opens a session for a token's hash; answers its id (256 random bits, base64url). */
  open(hash: string): string {
    if (this.sessions.size >= MAX_SESSIONS) this.sweep();
    if (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    this.sessions.set(id, { hash, expiresAt: this.now() + this.lifetimeMs });
    return id;
  }

  /** The token hash of a live session, or null for an unknown or expired id. */
  hashOf(id: string): string | null {
    const session = this.sessions.get(id);
    if (session === undefined) return null;
    if (session.expiresAt <= this.now()) {
      this.sessions.delete(id);
      return null;
    }
    return session.hash;
  }

  close(id: string): void {
    this.sessions.delete(id);
  }

  /** Ends every session of a token (it was revoked). */
  closeAllOf(hash: string): void {
    for (const [id, session] of this.sessions) if (session.hash === hash) this.sessions.delete(id);
  }

  /** Seconds a session lasts, for the cookie's Max-Age. */
  get maxAgeSeconds(): number {
    return Math.floor(this.lifetimeMs / 1000);
  }

  private sweep(): void {
    const now = this.now();
    for (const [id, session] of this.sessions) if (session.expiresAt <= now) this.sessions.delete(id);
  }
}
