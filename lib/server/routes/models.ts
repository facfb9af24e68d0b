/** GET /v1/models and /v1/models/:id: the one model this server serves. */
import type { FastifyInstance } from 'fastify';

import { checkModel, type ServerContext } from '../context';

export function registerModels(app: FastifyInstance, ctx: ServerContext, startedAt: number): void {
  const card = () => ({
    id: ctx.modelName,
    object: 'model',
    created: startedAt,
    owned_by: 'nemotron-node',
    max_model_len: ctx.model.defaultContextSize,
  });
  app.get('/v1/models', async () => ({ object: 'list', data: [card()] }));
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (req) => {
    checkModel(ctx, req.params.id);
    return card();
  });
}
