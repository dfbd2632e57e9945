import type { FastifyInstance } from 'fastify';
import { MalformedInputError } from '../errors.js';
import type { Strata } from '../strata.js';
import { accessContext, principalOf } from './auth.js';

/**
 * API tokens (admin only; see route-access.ts):
 *
 * - `POST /v1/tokens` `{"name", "policies": ["producer"]}` → `201 {"name", "token"}`: the one time the token is
 *   shown (only its SHA-256 is kept). 400 for a bad name or an unknown policy, 409 for a name in use.
 * - `GET /v1/tokens` → `{"tokens": [{"name", "policies", "createdAt", "lastUsed", "fromEnvironment"}]}`, never a
 *   token or its hash. `lastUsed` is exact in the answer and written to the catalog at most once a minute.
 * - `DELETE /v1/tokens/{name}` → 204: the token and its console sessions stop working at once; 404 for none.
 *
 * Creating and revoking are logged in the audit log, as are failed attempts.
 */
export function registerTokenRoutes(app: FastifyInstance, strata: Strata): void {
  const security = strata.security;

  app.post('/v1/tokens', async (request, reply) => {
    const body = parseBody(request.body);
    const principal = principalOf(request);
    try {
      const created = await security.createToken(principal, body.name, body.policies, accessContext(request));
      return reply.code(201).header('cache-control', 'no-store').send(created);
    } catch (error) {
      const name = typeof body.name === 'string' ? body.name.slice(0, 63) : '?';
      security.record(principal, 'admin', `token:${name}`, 'failed', accessContext(request));
      throw error;
    }
  });

  app.get('/v1/tokens', async () => ({ tokens: security.listTokens() }));

  app.delete<{ Params: { name: string } }>('/v1/tokens/:name', async (request, reply) => {
    const principal = principalOf(request);
    try {
      await security.revokeToken(principal, request.params.name, accessContext(request));
    } catch (error) {
      security.record(principal, 'admin', `token:${request.params.name}`, 'failed', accessContext(request));
      throw error;
    }
    return reply.code(204).send();
  });
}

function parseBody(body: unknown): { name?: unknown; policies?: unknown } {
  let parsed: unknown = body;
  if (Buffer.isBuffer(body)) {
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch (error) {
      throw new MalformedInputError(`the body is not JSON: ${(error as Error).message}`);
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new MalformedInputError('expected a JSON object such as {"name": "ingest_bot", "policies": ["producer"]}');
  }
  return parsed as { name?: unknown; policies?: unknown };
}
