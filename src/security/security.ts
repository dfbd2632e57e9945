import { ADMIN_POLICY, NAME_PATTERN, type ProjectConfig } from '../config/index.js';
import type { SecurityStore } from '../catalog/index.js';
import { ConfigError, MalformedInputError, NotFoundError } from '../errors.js';
import type { DerivedTable, QueryReads } from '../sql/index.js';
import { AuditLog } from './audit.js';
import { ForbiddenError, RateLimitedError, UnauthorizedError } from './errors.js';
import { Policies, type Action, type Resource } from './policies.js';
import { RateLimiter } from './rate-limit.js';
import { tableResource } from './resources.js';
import type { ScramVerifier } from './scram.js';
import { SecretSealer } from './server-key.js';
import { Sessions } from './sessions.js';
import { ADMIN_TOKEN_NAME, MIN_ADMIN_TOKEN_LENGTH, TokenRegistry, type Principal, type TokenInfo } from './tokens.js';

export interface SecurityOptions {
  readonly store: SecurityStore;
  readonly config: ProjectConfig;
  /** The bootstrap admin token (STRATA_ADMIN_TOKEN): accepted as the built-in `admin` token; only its hash is held. */
  readonly adminToken?: string | undefined;
  /** Where the audit log's SQL mirror is written: a directory SQL queries may read (under the lake). */
  readonly auditDir: string;
  /** Told once about tokens whose policies the config no longer declares. */
  readonly log?: (message: string) => void;
  readonly now?: () => number;
  /**
   * The server key (src/security/server-key.ts): new tokens' text is kept sealed under it, for AWS Signature V4
   * (the Kinesis API). Without one, tokens are kept as hashes alone and cannot sign Kinesis requests.
   */
  readonly serverKey?: Buffer | null;
}

/** Where a request came from, for the audit log. */
export interface AccessContext {
  /** The route's pattern, `POST /v1/tokens`. */
  readonly route?: string | null;
  /** The client's address. */
  readonly client?: string | null;
}

/** What the first start did about the admin token. */
export type AdminBootstrap =
  /** STRATA_ADMIN_TOKEN is set: it is the admin token. */
  | { readonly kind: 'environment' }
  /** A new admin token was made; this is the one time its text is known. */
  | { readonly kind: 'created'; readonly token: string }
  /** An admin token was made by an earlier start; only its hash is kept. */
  | { readonly kind: 'exists' };

/** Table functions any token may call in SQL: they compute rows and read nothing. */
const HARMLESS_TABLE_FUNCTIONS = new Set(['range()', 'generate_series()', 'unnest()']);

/** How often last-used times are written to the catalog. */
const LAST_USED_FLUSH_MS = 60_000;

/**
 * Authentication and authorization for every edge (HTTP, and the PostgreSQL listener): API tokens kept as
 * hashes, the config's least-privilege policies (default deny), console sessions, rate limits and the audit
 * log. The edges ask; this decides and records.
 */
export class Security {
  readonly policies: Policies;
  readonly sessions: Sessions;
  readonly audit: AuditLog;
  private readonly requestLimiter: RateLimiter;
  private readonly failedAuthLimiter: RateLimiter;
  private readonly flushTimer: NodeJS.Timeout;

  private constructor(
    private readonly config: ProjectConfig,
    private readonly tokens: TokenRegistry,
    audit: AuditLog,
    private readonly adminFromEnvironment: boolean,
    now: () => number,
  ) {
    this.policies = new Policies(config.policies);
    this.audit = audit;
    const limits = config.security.rateLimit;
    this.requestLimiter = new RateLimiter(limits.requestsPerSecond, limits.burst, 100_000, now);
    this.failedAuthLimiter = new RateLimiter(limits.failedAuthPerMinute / 60, limits.failedAuthBurst, 10_000, now);
    this.sessions = new Sessions(config.security.sessionHours * 3_600_000, now);
    this.flushTimer = setInterval(() => void this.tokens.flushLastUsed().catch(() => undefined), LAST_USED_FLUSH_MS);
    this.flushTimer.unref();
  }

  static async open(options: SecurityOptions): Promise<Security> {
    const now = options.now ?? Date.now;
    const adminToken = options.adminToken === '' ? undefined : options.adminToken;
    if (adminToken !== undefined && adminToken.length < MIN_ADMIN_TOKEN_LENGTH) {
      throw new ConfigError(
        `STRATA_ADMIN_TOKEN is ${adminToken.length} characters; use at least ${MIN_ADMIN_TOKEN_LENGTH} random ones ` +
          '(e.g. `openssl rand -base64 32`)',
      );
    }
    const sealer = options.serverKey ? new SecretSealer(options.serverKey) : null;
    const tokens = await TokenRegistry.open(options.store, adminToken, now, sealer);
    const policies = new Policies(options.config.policies);
    const orphaned = tokens.list().filter((token) => token.policies.some((policy) => !policies.has(policy)));
    for (const token of orphaned) {
      const missing = token.policies.filter((policy) => !policies.has(policy));
      options.log?.(`security: token "${token.name}" names policies the config does not declare (${missing.join(', ')}); they allow nothing`);
    }
    const audit = await AuditLog.open(options.store, options.auditDir, now);
    return new Security(options.config, tokens, audit, adminToken !== undefined, now);
  }

  /** The principal a token acts as, or null for a missing, unknown or revoked one. For every edge (HTTP, PostgreSQL). */
  authenticate(token: string): Principal | null {
    return this.tokens.authenticate(token);
  }

  /**
   * The principal of a token presented with its name (the PostgreSQL listener's user and password), or null
   * when the token is unknown or belongs to another name.
   */
  verifyToken(name: string, token: string): Principal | null {
    const principal = this.tokens.authenticate(token);
    return principal !== null && principal.name === name ? principal : null;
  }

  /**
   * The SCRAM-SHA-256 verifier of the token named `name` (the PostgreSQL listener's user), or null when there
   * is no such token or it was made before verifiers were kept (see {@link hasToken}).
   */
  scramVerifier(name: string): ScramVerifier | null {
    return this.tokens.scramVerifier(name);
  }

  /**
   * The principal of a PostgreSQL login whose SCRAM proof matched `verifier`, or null when the token named
   * `name` no longer holds it (revoked while the exchange ran).
   */
  scramPrincipal(name: string, verifier: ScramVerifier): Principal | null {
    return this.tokens.scramPrincipal(name, verifier);
  }

  /**
   * The text of the token named `name`, for the Kinesis API's AWS Signature V4 check (access key id = the token's
   * name, secret access key = the token), which needs the secret itself; null when there is no such token or its
   * text was not kept (made before sealed secrets, or without a server key). Callers verify, then forget it.
   */
  signingSecret(name: string): string | null {
    return this.tokens.signingSecret(name);
  }

  /** Whether a token of this name exists. */
  hasToken(name: string): boolean {
    return this.tokens.has(name);
  }

  /** Whether the principal's token is still valid: a connection that outlives its token's revocation asks before each query. */
  isLive(principal: Principal): boolean {
    return this.tokens.byTokenHash(principal.hash) !== null;
  }

  /** The principal of a console session, or null once it expired or its token was revoked. */
  sessionPrincipal(sessionId: string): Principal | null {
    const hash = this.sessions.hashOf(sessionId);
    return hash === null ? null : this.tokens.byTokenHash(hash);
  }

  /** Whether the principal may do `action` on `resource`. */
  allows(principal: Principal, action: Action, resource: Resource): boolean {
    return principal.admin || this.policies.allows(principal.policies, action, resource);
  }

  /** Logs what a principal (or an unauthenticated caller) did or was refused, in the audit log. */
  record(principal: Principal | null, action: string, resource: Resource, outcome: string, context: AccessContext = {}): void {
    this.audit.record({ token: principal?.name ?? null, action, resource, outcome, route: context.route ?? null, client: context.client ?? null });
  }

  /** Throws {@link ForbiddenError} naming the action and resource unless allowed; a refusal is audited. */
  authorize(principal: Principal, action: Action, resource: Resource, context: AccessContext = {}): void {
    if (this.allows(principal, action, resource)) return;
    this.deny(principal, action, [resource], context);
  }

  /** Throws for the first grants not allowed, naming them all; every refusal is audited. */
  authorizeAll(principal: Principal, grants: readonly (readonly [Action, Resource])[], context: AccessContext = {}): void {
    if (principal.admin) return;
    const refused = grants.filter(([action, resource]) => !this.allows(principal, action, resource));
    if (refused.length === 0) return;
    const action = refused[0]![0];
    this.deny(
      principal,
      action,
      refused.filter(([a]) => a === action).map(([, resource]) => resource),
      context,
    );
  }

  private deny(principal: Principal, action: Action, resources: readonly Resource[], context: AccessContext): never {
    for (const resource of resources) {
      this.audit.record({ token: principal.name, action, resource, outcome: 'denied', route: context.route ?? null, client: context.client ?? null });
    }
    throw new ForbiddenError(`token "${principal.name}" may not ${action} ${resources.join(', ')}`);
  }

  /**
   * The check to run on what a SQL query reads (see SqlEngine's `authorize`): `query` on the resource of each
   * table (see {@link tableResource}); anything else it reads (DuckDB's system tables, table functions, files)
   * is for admin tokens alone. Undefined for an admin, whose queries need no check.
   */
  queryAuthorizer(principal: Principal, context: AccessContext = {}): ((reads: QueryReads) => void) | undefined {
    if (principal.admin) return undefined;
    return (reads) => {
      const grants: [Action, Resource][] = reads.tables.map((table) => ['query', tableResource(this.config, table)]);
      for (const other of reads.other) if (!HARMLESS_TABLE_FUNCTIONS.has(other)) grants.push(['query', `system:${other}`]);
      this.authorizeAll(principal, grants, context);
    };
  }

  /** The SQL resource of a table name, for listing what a token may query. */
  tableResource(table: string): Resource {
    return tableResource(this.config, table);
  }

  /** Takes one request from the token's rate limit; throws {@link RateLimitedError} over it. */
  checkRate(principal: Principal): void {
    const wait = this.requestLimiter.take(principal.name);
    if (wait > 0) {
      throw new RateLimitedError(
        `token "${principal.name}" is over its limit of ${this.config.security.rateLimit.requestsPerSecond} requests a second; retry in ${wait} s`,
        wait,
      );
    }
  }

  /**
   * A request without a valid token: answers the error to send. Past the client's limit of failed
   * authentications it is 429 (and no longer audited, so a flood cannot fill the log); before, 401, audited.
   */
  refuseAuthentication(client: string, action: string, resource: string, context: AccessContext = {}): UnauthorizedError | RateLimitedError {
    const wait = this.failedAuthLimiter.take(client);
    if (wait > 0) return new RateLimitedError(`too many failed authentications from ${client}; retry in ${wait} s`, wait);
    this.audit.record({ token: null, action, resource, outcome: 'unauthenticated', route: context.route ?? null, client });
    return new UnauthorizedError();
  }

  /** Makes a token for `policies` (each declared in the config, or `admin`); the answer is the one time its text is shown. */
  async createToken(by: Principal, name: unknown, policies: unknown, context: AccessContext = {}): Promise<{ name: string; token: string }> {
    if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
      throw new MalformedInputError('"name" must start with a letter or _ and hold only letters, digits and _ (at most 63)');
    }
    if (name === ADMIN_TOKEN_NAME) throw new MalformedInputError(`"${ADMIN_TOKEN_NAME}" is the bootstrap admin token's name; pick another`);
    if (!Array.isArray(policies) || policies.length === 0 || !policies.every((p) => typeof p === 'string')) {
      throw new MalformedInputError(`"policies" must be a non-empty array of policy names (${this.policies.names().join(', ')})`);
    }
    const unknown = policies.filter((policy) => !this.policies.has(policy as string));
    if (unknown.length > 0) {
      throw new MalformedInputError(`unknown polic${unknown.length === 1 ? 'y' : 'ies'} ${unknown.map((p) => `"${p}"`).join(', ')}; the config declares ${this.policies.names().join(', ')}`);
    }
    const token = await this.tokens.create(name, [...new Set(policies as string[])]);
    await this.audit.recordNow({ token: by.name, action: 'admin', resource: `token:${name}`, outcome: 'created', route: context.route ?? null, client: context.client ?? null });
    return { name, token };
  }

  /** Revokes a token at once: the next request with it, or with a console session of it, is refused. */
  async revokeToken(by: Principal, name: string, context: AccessContext = {}): Promise<void> {
    if (this.tokens.fromEnvironment(name)) {
      throw new MalformedInputError(`the "${name}" token comes from STRATA_ADMIN_TOKEN; unset it and restart Strata to retire it`);
    }
    const hash = await this.tokens.revoke(name);
    if (hash === null) throw new NotFoundError(`no token named "${name}"`);
    this.sessions.closeAllOf(hash);
    await this.audit.recordNow({ token: by.name, action: 'admin', resource: `token:${name}`, outcome: 'revoked', route: context.route ?? null, client: context.client ?? null });
  }

  /** Every token's name, policies, creation and last use; never a token's text or hash. */
  listTokens(): TokenInfo[] {
    return this.tokens.list();
  }

  /**
   * At `strata start`: makes the admin token when there is none (no STRATA_ADMIN_TOKEN and no stored token with
   * the admin policy). Its text is answered once and never kept.
   */
  async bootstrapAdmin(): Promise<AdminBootstrap> {
    if (this.adminFromEnvironment) return { kind: 'environment' };
    if (this.tokens.list().some((token) => !token.fromEnvironment && token.policies.includes(ADMIN_POLICY))) return { kind: 'exists' };
    const token = await this.tokens.create(ADMIN_TOKEN_NAME, [ADMIN_POLICY]);
    await this.audit.recordNow({ token: null, action: 'admin', resource: `token:${ADMIN_TOKEN_NAME}`, outcome: 'created', route: 'strata start', client: null });
    return { kind: 'created', token };
  }

  /** The SQL tables security adds: `strata_audit`. */
  derivedTables(): Promise<DerivedTable[]> {
    return this.audit.derivedTables();
  }

  async close(): Promise<void> {
    clearInterval(this.flushTimer);
    await this.tokens.flushLastUsed().catch(() => undefined);
    await this.audit.close();
  }
}
