import type { FastifyInstance } from 'fastify';
import { NotFoundError } from '../errors.js';
import { parseViewRequest, serveView } from '../serving/index.js';
import type { Strata } from '../strata.js';

/**
 * `GET /v1/views/{view}?layer=batch|speed|merged&<key>=v&<key>.gte=v&order=col|-col&limit=N`: the view's rows
 * and their provenance, `{"columns": [{name, type}], "rows": [...], "provenance": {"batchVersion", "watermark":
 * {shard: "seq"}, "speedSeq": {shard: "seq"}, "freshnessMs"}}`. `order=-col` sorts descending; the default
 * order is the group-by columns ascending; `limit` defaults to 1000, at most 100000. 404 for an unknown view,
 * 400 naming unknown columns or a filter value its column's type cannot take.
 */
export function registerViewRoutes(app: FastifyInstance, strata: Strata): void {
  app.get<{ Params: { view: string }; Querystring: Record<string, unknown> }>('/v1/views/:view', async (request) => {
    const view = strata.views.get(request.params.view);
    if (!view) {
      const known = [...strata.views.keys()];
      throw new NotFoundError(`unknown view "${request.params.view}"${known.length > 0 ? `; views: ${known.join(', ')}` : '; the config declares no views'}`);
    }
    return serveView(strata.speed, view.name, parseViewRequest(view, request.query ?? {}));
  });
}
