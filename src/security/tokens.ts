import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ADMIN_POLICY } from '../config/index.js';
import type { SecurityStore, StoredToken } from '../catalog/index.js';
import { deriveScramVerifier, formatScramVerifier, parseScramVerifier, type ScramVerifier } from './scram.js';
import type { SecretSealer } from './server-key.js';

/** Who a request acts as: a token's name and policies. Never the token itself. */
export interface Principal {
  readonly name: string;
  readonly policies: readonly string[];
  /** The token holds the built-in admin policy: everything is allowed. */
  readonly admin: boolean;
  /** Hex SHA-256 of the token: what a console session points at. */
  readonly hash: string;
}

/** The name of the bootstrap admin token (the one from STRATA_ADMIN_TOKEN, or the one the first start makes). */
export const ADMIN_TOKEN_NAME = 'admin';

/** The shortest STRATA_ADMIN_TOKEN accepted: shorter ones are guessable. */
export const MIN_ADMIN_TOKEN_LENGTH = 24;

/** A new token: 256 random bits, base64url (43 characters). */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** The hash a token is kept and looked up by. SHA-256 suffices: a token is 256 random bits, not a password. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

interface Entry {
  readonly principal: Principal;
  readonly digest: Buffer;
  /** The SCRAM-SHA-256 verifier the PostgreSQL listener checks; null for a stored token made before verifiers were kept. */
  readonly scram: ScramVerifier | null;
  /** The token's text sealed under the server key, for AWS Signature V4 (the Kinesis API); null when not kept. */
  readonly sealedSecret: string | null;
  readonly createdAt: string | null;
  /** False for the token from STRATA_ADMIN_TOKEN, which lives in the environment only. */
  readonly stored: boolean;
  lastUsedMs: number | null;
  persistedMs: number | null;
}

/** A token as `GET /v1/tokens` lists it. */
export interface TokenInfo {
  readonly name: string;
  readonly policies: readonly string[];
  readonly createdAt: string | null;
  readonly lastUsed: string | null;
  /** The token comes from STRATA_ADMIN_TOKEN (it cannot be revoked over the API). */
  readonly fromEnvironment: boolean;
}

/** A digest no token has, compared against when the presented one is unknown, so that a miss costs what a hit does. */
const NO_DIGEST = Buffer.alloc(32);

/**
 * The live tokens, by hash, in memory: authentication is a SHA-256 and a map lookup, never a catalog read, so
 * ingest's hot path does not touch SQLite. Each token's SCRAM-SHA-256 verifier is held beside its hash, for
 * the PostgreSQL listener. Creating and revoking write the catalog first, then the map, so a revoked token
 * fails on the very next request (and a new connection with it, at once). Last-used times are kept in memory
 * and written at most once a {@link flushLastUsed} (every minute, and at close).
 */
export class TokenRegistry {
  private readonly byHash = new Map<string, Entry>();
  private readonly byName = new Map<string, Entry>();
  /** The token from STRATA_ADMIN_TOKEN, when it is one of its own (not also stored). */
  private environment: Entry | null = null;

  private constructor(
    private readonly store: SecurityStore,
    private readonly now: () => number,
    /** Seals each new token's text for AWS Signature V4; without one, no token can sign Kinesis requests. */
    private readonly sealer: SecretSealer | null,
  ) {}

  /** Loads the stored tokens; `adminToken` (STRATA_ADMIN_TOKEN) is accepted too, as the built-in admin. */
  static async open(
    store: SecurityStore,
    adminToken: string | undefined,
    now: () => number = Date.now,
    sealer: SecretSealer | null = null,
  ): Promise<TokenRegistry> {
    const registry = new TokenRegistry(store, now, sealer);
    for (const token of await store.tokens()) registry.add(token, true);
    if (adminToken !== undefined) {
      const hash = hashToken(adminToken);
      const stored = registry.byHash.get(hash);
      // The same text stored as a token already (say, made by a first start and then exported): keep that one.
      if (stored === undefined) {
        const entry: Entry = {
          principal: { name: ADMIN_TOKEN_NAME, policies: [ADMIN_POLICY], admin: true, hash },
          digest: Buffer.from(hash, 'hex'),
          // Derived at every start and held in memory only, as the token's hash is.
          scram: await deriveScramVerifier(adminToken),
          // In memory only, like the rest of this entry; sealed all the same, so no token text sits in the heap's maps.
          sealedSecret: sealer?.seal(adminToken, ADMIN_TOKEN_NAME) ?? null,
          createdAt: null,
          stored: false,
          lastUsedMs: null,
          persistedMs: null,
        };
        registry.byHash.set(hash, entry);
        registry.environment = entry;
        if (!registry.byName.has(ADMIN_TOKEN_NAME)) registry.byName.set(ADMIN_TOKEN_NAME, entry);
      }
    }
    return registry;
  }

  private add(token: StoredToken, persisted: boolean): Entry {
    const lastUsedMs = token.lastUsedAt === null ? null : Date.parse(token.lastUsedAt);
    const entry: Entry = {
      principal: { name: token.name, policies: token.policies, admin: token.policies.includes(ADMIN_POLICY), hash: token.hash },
      digest: Buffer.from(token.hash, 'hex'),
      scram: parseScramVerifier(token.scram),
      sealedSecret: token.sealedSecret ?? null,
      createdAt: token.createdAt,
      stored: true,
      lastUsedMs,
      persistedMs: persisted ? lastUsedMs : null,
    };
    this.byHash.set(token.hash, entry);
    this.byName.set(token.name, entry);
    return entry;
  }

  /**
   * The principal a token acts as, or null. Unknown and revoked tokens take the same path (the hash is not in
   * the map) and the same compare, so neither their answer nor its timing tells them apart.
   */
  authenticate(token: string): Principal | null {
    const digest = createHash('sha256').update(token, 'utf8').digest();
    return this.byDigest(digest);
  }

  /** The principal whose token hashes to `hash` (a console session's), or null once it is revoked. */
  byTokenHash(hash: string): Principal | null {
    return /^[0-9a-f]{64}$/.test(hash) ? this.byDigest(Buffer.from(hash, 'hex')) : null;
  }

  private byDigest(digest: Buffer): Principal | null {
    const entry = this.byHash.get(digest.toString('hex'));
    const equal = timingSafeEqual(entry?.digest ?? NO_DIGEST, digest);
    if (entry === undefined || !equal) return null;
    entry.lastUsedMs = this.now();
    return entry.principal;
  }

  /** Whether a token of this name exists. */
  has(name: string): boolean {
    return this.byName.has(name);
  }

  /**
   * The token a SCRAM login as `name` is checked against. The environment's admin token comes first: a stored
   * token of the same name is the one a first start printed, and STRATA_ADMIN_TOKEN is how an operator who
   * lost it gets back in (while it is set, the stored one logs in over HTTP only).
   */
  private scramEntry(name: string): Entry | undefined {
    return this.environment?.principal.name === name ? this.environment : this.byName.get(name);
  }

  /** The SCRAM-SHA-256 verifier of the token named `name`; null when there is none, or it has no verifier. */
  scramVerifier(name: string): ScramVerifier | null {
    return this.scramEntry(name)?.scram ?? null;
  }

  /**
   * The principal of a SCRAM login whose proof matched `verifier`: null unless the token named `name` still
   * holds that very verifier (revoked, or revoked and made again, since the exchange began: refused).
   */
  scramPrincipal(name: string, verifier: ScramVerifier): Principal | null {
    const entry = this.scramEntry(name);
    if (entry === undefined || entry.scram !== verifier) return null;
    entry.lastUsedMs = this.now();
    return entry.principal;
  }

  /**
   * The text of the token named `name`, opened from its sealed copy, for checking an AWS Signature V4 (the access
   * key id is the name, the secret access key the text); null when there is no such token or no sealed copy. The
   * environment's admin token comes first, as for SCRAM.
   */
  signingSecret(name: string): string | null {
    const entry = this.scramEntry(name);
    if (entry?.sealedSecret == null || this.sealer === null) return null;
    return this.sealer.open(entry.sealedSecret, entry.principal.name);
  }

  /** Makes a token: answers its text, which is never kept in the clear (its hash, SCRAM verifier and sealed copy are). */
  async create(name: string, policies: readonly string[]): Promise<string> {
    const token = newToken();
    const stored: StoredToken = {
      name,
      hash: hashToken(token),
      policies: [...policies],
      createdAt: new Date(this.now()).toISOString(),
      lastUsedAt: null,
      scram: formatScramVerifier(await deriveScramVerifier(token)),
      sealedSecret: this.sealer?.seal(token, name) ?? null,
    };
    await this.store.addToken(stored);
    this.add(stored, true);
    return token;
  }

  /**
   * Revokes a stored token: answers its hash (to end its sessions), or null when there is none of that name.
   * The catalog row goes first: a crash between the two leaves the token revoked.
   */
  async revoke(name: string): Promise<string | null> {
    const entry = this.byName.get(name);
    if (entry === undefined || !entry.stored) return null;
    await this.store.removeToken(name);
    this.byName.delete(name);
    this.byHash.delete(entry.principal.hash);
    // The environment's admin token keeps its name once the stored one of the same name is gone.
    const fromEnvironment = [...this.byHash.values()].find((other) => !other.stored && other.principal.name === name);
    if (fromEnvironment) this.byName.set(name, fromEnvironment);
    return entry.principal.hash;
  }

  /** Whether the name belongs to the environment's token alone (it cannot be revoked over the API). */
  fromEnvironment(name: string): boolean {
    return this.byName.get(name)?.stored === false;
  }

  /** Every token, by name: stored ones and the environment's admin token. */
  list(): TokenInfo[] {
    const entries = [...new Set([...this.byName.values(), ...this.byHash.values()])];
    return entries
      .map((entry) => ({
        name: entry.principal.name,
        policies: entry.principal.policies,
        createdAt: entry.createdAt,
        lastUsed: entry.lastUsedMs === null ? null : new Date(entry.lastUsedMs).toISOString(),
        fromEnvironment: !entry.stored,
      }))
      .sort((a, b) => a.name.localeCompare(b.name) || Number(a.fromEnvironment) - Number(b.fromEnvironment));
  }

  /** Writes the last-used times that changed since the previous flush, in one catalog transaction. */
  async flushLastUsed(): Promise<void> {
    const changed = new Map<string, string>();
    const flushed: [Entry, number][] = [];
    for (const entry of this.byName.values()) {
      if (entry.stored && entry.lastUsedMs !== null && entry.lastUsedMs !== entry.persistedMs) {
        changed.set(entry.principal.name, new Date(entry.lastUsedMs).toISOString());
        flushed.push([entry, entry.lastUsedMs]);
      }
    }
    if (changed.size === 0) return;
    await this.store.touchTokens(changed);
    for (const [entry, ms] of flushed) entry.persistedMs = ms;
  }
}
