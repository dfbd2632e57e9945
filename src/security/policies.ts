import { ADMIN_POLICY, type PolicyAction, type PolicyConfig } from '../config/index.js';

/** An action a token may be allowed: `ingest`, `read`, `query`, `batch`, `admin`. */
export type Action = PolicyAction;

/**
 * What an action is on: `stream:NAME`, `table:NAME`, `view:NAME` (the kinds a policy may name), or one of the
 * kinds only the built-in admin policy reaches: `token:NAME` (API tokens) and `system:NAME` (the audit table,
 * DuckDB's own tables, table functions and files in SQL). `stream:*` as a resource asks for every stream.
 */
export type Resource = string;

interface CompiledRule {
  readonly actions: ReadonlySet<string>;
  readonly resources: readonly RegExp[];
}

/** `view:page_*` as a regular expression: `*` matches any run of characters, everything else itself. */
function globToRegExp(pattern: string): RegExp {
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${source}$`);
}

/**
 * The config's policies, compiled, with the built-in `admin` policy. Default deny: an action on a resource is
 * allowed only when a rule of one of the token's policies names both.
 */
export class Policies {
  private readonly compiled: ReadonlyMap<string, readonly CompiledRule[]>;

  constructor(policies: ReadonlyMap<string, PolicyConfig>) {
    this.compiled = new Map(
      [...policies.values()].map((policy) => [
        policy.name,
        policy.allow.map((rule) => ({ actions: new Set(rule.actions), resources: rule.resources.map(globToRegExp) })),
      ]),
    );
  }

  /** Whether a policy of this name exists (the built-in `admin` one included). */
  has(name: string): boolean {
    return name === ADMIN_POLICY || this.compiled.has(name);
  }

  /** Every policy name, `admin` first. */
  names(): string[] {
    return [ADMIN_POLICY, ...this.compiled.keys()];
  }

  /** Whether any of `policies` allows `action` on `resource`. A policy the config no longer declares allows nothing. */
  allows(policies: readonly string[], action: Action, resource: Resource): boolean {
    for (const name of policies) {
      if (name === ADMIN_POLICY) return true;
      for (const rule of this.compiled.get(name) ?? []) {
        if (rule.actions.has(action) && rule.resources.some((pattern) => pattern.test(resource))) return true;
      }
    }
    return false;
  }
}
