/**
 * The fastify instance: body limit, bearer-key auth, per-request abort signals
 * (client disconnect / shutdown), request counting, OpenAI-style errors for
 * everything (bad JSON, oversized bodies, unknown routes, thrown errors).
 */
import { timingSafeEqual } from 'node:crypto';

import type { FastifyInstance } from 'fastify';

import { ClientGoneError, type ServerContext } from './context';
import { ApiError, shuttingDown, toApiError } from './errors';

export interface AppOptions {
  apiKey?: string;
  maxBodyBytes: number;
}

/** Routes that answer without a key (load balancers probe them). */
const OPEN_ROUTES = new Set(['/health']);

export async function buildApp(ctx: ServerContext, opts: AppOptions): Promise<FastifyInstance> {
  // loaded on first use so `require('nemotron-node')` does not pay for the HTTP stack
  const { default: Fastify } = await import('fastify');
  const app = Fastify({ bodyLimit: opts.maxBodyBytes, logger: false, forceCloseConnections: 'idle' });
  app.decorateRequest('generationSignal', undefined as unknown as AbortSignal);

  app.addHook('onRequest', async (req, reply) => {
    const ac = new AbortController();
    req.generationSignal = ac.signal;
    const onClosing = () => ac.abort(shuttingDown());
    if (ctx.closing.aborted) onClosing();
    else ctx.closing.addEventListener('abort', onClosing, { once: true });
    const res = reply.raw;
    res.once('close', () => {
      ctx.closing.removeEventListener('abort', onClosing);
      // closed before the response was complete: the client went away
      if (!res.writableFinished) ac.abort(new ClientGoneError());
      const route = req.routeOptions.url ?? 'unmatched';
      ctx.metrics.countRequest(route, res.writableFinished ? res.statusCode : 499);
    });

    if (opts.apiKey !== undefined && !OPEN_ROUTES.has(req.url.split('?')[0])) {
      const given = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim();
      if (!given || !sameSecret(given, opts.apiKey))
        throw new ApiError(
          401,
          given ? 'Incorrect API key provided' : 'Missing API key: send "Authorization: Bearer <key>"',
          'invalid_request_error',
          null,
          'invalid_api_key',
        );
    }
  });

  app.setErrorHandler((err, _req, reply) => {
    const e = toApiError(err);
    if (e.status === 500) console.error('nemotron server:', err);
    void reply.status(e.status).send(e.body());
  });
  app.setNotFoundHandler((req, reply) => {
    const e = new ApiError(404, `Unknown route: ${req.method} ${req.url.split('?')[0]}`, 'invalid_request_error', null, 'not_found');
    void reply.status(404).send(e.body());
  });
  return app;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
