import { z } from 'zod';

/**
 * The security sections of the config: `policies` (least-privilege grants for API tokens), `security` (abuse
 * limits and console sessions) and `tls` (certificate files). Kept beside schema.ts so that the rules of who may
 * do what read in one place; src/security enforces them.
 */

/** What a token may do. `ingest` a stream; `read` a view (and a table's catalog entry, a stream's status); `query` a table or view in SQL; `batch` start runs of a view; `admin` everything that changes Strata or reads server files. */
export const POLICY_ACTIONS = ['ingest', 'read', 'query', 'batch', 'admin'] as const;
export type PolicyAction = (typeof POLICY_ACTIONS)[number];

/** The resource kinds a policy may name, as `kind:NAME` with `*` globs in NAME. */
export const POLICY_RESOURCE_KINDS = ['stream', 'table', 'view'] as const;

/** The built-in policy that allows every action on every resource; a config cannot redefine it. */
export const ADMIN_POLICY = 'admin';

const POLICY_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,62}$/;
/** A resource pattern's name: the safe name characters plus `*`. */
const RESOURCE_PATTERN = /^([a-z]+):([A-Za-z0-9_*]{1,63})$/;

const action = z.string().refine((value) => (POLICY_ACTIONS as readonly string[]).includes(value), {
  error: (issue) => `unknown action ${JSON.stringify(issue.input)}; expected one of ${POLICY_ACTIONS.join(', ')}`,
});

const resource = z.string().superRefine((value, context) => {
  const match = RESOURCE_PATTERN.exec(value);
  const kinds = POLICY_RESOURCE_KINDS.map((kind) => `${kind}:NAME`).join(', ');
  if (!match) {
    context.addIssue({ code: 'custom', message: `resource ${JSON.stringify(value)} is not kind:NAME; expected ${kinds} (NAME may hold * globs)` });
  } else if (!(POLICY_RESOURCE_KINDS as readonly string[]).includes(match[1]!)) {
    context.addIssue({ code: 'custom', message: `unknown resource kind "${match[1]}" in ${JSON.stringify(value)}; expected ${kinds}` });
  }
});

const ruleSchema = z.strictObject({
  actions: z.array(action).min(1, 'names no action'),
  resources: z.array(resource).min(1, 'names no resource'),
});

const policySchema = z.strictObject({
  allow: z.array(ruleSchema).min(1, 'allows nothing'),
});

/** `policies: { producer: { allow: [{ actions: ["ingest"], resources: ["stream:clicks"] }] } }`. */
export const policiesSchema = z
  .record(z.string().regex(POLICY_NAME, 'a policy name must start with a letter or _ and hold only letters, digits, _ and - (at most 63)'), policySchema)
  .superRefine((policies, context) => {
    if (ADMIN_POLICY in policies) {
      context.addIssue({ code: 'custom', path: [ADMIN_POLICY], message: 'the admin policy is built in (it allows everything); name yours otherwise' });
    }
  });

const rateLimitSchema = z.strictObject({
  /**
   * Requests per second one token may make, as a token bucket refilled at this rate. High by default: a producer
   * sending batches of 500 records at 500k records/s makes 1,000 requests a second.
   */
  requestsPerSecond: z.number().positive().max(1_000_000).default(10_000),
  /** The bucket's size: a burst above the rate that one token may send at once. */
  burst: z.number().int().min(1).max(10_000_000).default(20_000),
  /** Failed authentications (a missing, unknown or revoked token) one client address may make per minute. */
  failedAuthPerMinute: z.number().positive().max(1_000_000).default(60),
  /** The failed-authentication bucket's size. */
  failedAuthBurst: z.number().int().min(1).max(1_000_000).default(30),
});

/** `security: { rateLimit: {...}, sessionHours }`. */
export const securitySchema = z.strictObject({
  rateLimit: rateLimitSchema.default(rateLimitSchema.parse({})),
  /** How long a console session (the cookie of a login) lasts. */
  sessionHours: z.number().positive().max(24 * 30).default(12),
});

/** `tls: { cert: "./cert.pem", key: "./key.pem" }`: PEM files, relative to the config file. Never the PEM itself. */
export const tlsSchema = z.strictObject({
  cert: z.string().min(1),
  key: z.string().min(1),
});

/** A policy as declared. */
export interface PolicyConfig {
  readonly name: string;
  readonly allow: readonly { readonly actions: readonly PolicyAction[]; readonly resources: readonly string[] }[];
}

/** The `security` section after defaults. */
export type SecurityConfig = z.output<typeof securitySchema>;

/** The `tls` section: certificate and key file paths as written. */
export type TlsConfig = z.output<typeof tlsSchema>;
