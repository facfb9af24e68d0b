/** GET /health (liveness, no key needed) and GET /metrics (Prometheus text). */
import type { FastifyInstance } from 'fastify';

import type { ServerContext } from '../context';

export function registerHealthAndMetrics(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/health', async (_req, reply) => {
    if (ctx.closing.aborted) return reply.status(503).send({ status: 'shutting_down' });
    return { status: 'ok', model: ctx.modelName, queue_depth: ctx.scheduler.queueDepth, active: ctx.scheduler.active };
  });
  app.get('/metrics', async (_req, reply) => {
    const memory = ctx.model.disposed ? undefined : ctx.model.memory;
    const promptCache = ctx.model.disposed ? undefined : ctx.model.promptCache?.stats;
    const text = ctx.metrics.render({ queueDepth: ctx.scheduler.queueDepth, active: ctx.scheduler.active, memory, promptCache });
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(text);
  });
}
