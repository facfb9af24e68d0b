/**
 * createServer(model, options): an OpenAI-compatible HTTP server for a loaded
 * model, for use inside an existing Node app or behind `nemotron serve`.
 */
import type { Server } from 'node:http';
import * as path from 'node:path';

import { z } from 'zod';

import { fnOption, parseOptions } from '../options';
import type { Model } from '../model';
import { buildApp } from './app';
import type { ServerContext, ServerTestHooks } from './context';
import { Metrics } from './metrics';
import { registerChatCompletions } from './routes/chat-completions';
import { registerCompletions } from './routes/completions';
import { registerHealthAndMetrics } from './routes/health-metrics';
import { registerModels } from './routes/models';
import { Scheduler } from './scheduler';

/** close(): connections still open this long after the aborts are cut. */
const FORCE_CLOSE_AFTER_MS = 10_000;

const createServerOptionsSchema = z
  .object({
    /** Interface to bind; default 127.0.0.1 (local only). */
    host: z.string().min(1).default('127.0.0.1'),
    /** Port; 0 picks a free one (see the returned `port`). */
    port: z.number().int().min(0).max(65535).default(0),
    /** When set, /v1/* and /metrics need `Authorization: Bearer <apiKey>`. */
    apiKey: z.string().min(1).optional(),
    /** The `model` id clients must send; default: the model directory's name. */
    modelName: z.string().min(1).optional(),
    /** Most requests waiting for their turn; more are answered 429. */
    maxQueue: z.number().int().min(0).default(64),
    /**
     * Generations run at once; their decode steps share forward passes (continuous batching).
     * Default: on a GPU as many sequences of the default context as the memory budget holds
     * (model.memory.sequencesAtDefaultContext), at most 128; on the CPU 8.
     */
    maxConcurrent: z.number().int().min(1).max(1024).optional(),
    /** Largest request body; larger ones are answered 413. */
    maxBodyBytes: z.number().int().min(1).default(1024 * 1024),
    /** max_tokens when a request gives none (default: the rest of the context for chat, 16 for completions). */
    defaultMaxTokens: z.number().int().min(1).optional(),
    /** @internal Test-only hooks; see ServerTestHooks. */
    testHooks: z.object({ logitsProcessor: fnOption().optional() }).strict().optional(),
  })
  .strict();

export type CreateServerOptions = Omit<z.input<typeof createServerOptionsSchema>, 'testHooks'> & {
  /** @internal */ testHooks?: ServerTestHooks;
};

export interface NemotronServer {
  /** e.g. http://127.0.0.1:8000 (the OpenAI base URL is `${url}/v1`). */
  url: string;
  port: number;
  /** Stops accepting connections, aborts running and queued generations, resolves when all are done. */
  close(): Promise<void>;
  /** The underlying node:http server. */
  server: Server;
}

/** How many generations run at once when createServer's maxConcurrent is not given. */
export function defaultConcurrency(model: Model): number {
  // A GPU step costs about the same for 1 or 100 streams (the weights are read
  // once), so run up to a full decode batch; each request reserves memory for its
  // own prompt + max_tokens and waits (FIFO) when the budget is full. Two CPU
  // cores saturate sooner.
  if (model.device !== 'cuda') return 8;
  return model.maxBatchSize;
}

export async function createServer(model: Model, options: CreateServerOptions = {}): Promise<NemotronServer> {
  const opts = parseOptions(createServerOptionsSchema, options, 'createServer');
  const closing = new AbortController();
  const ctx: ServerContext = {
    model,
    modelName: opts.modelName ?? path.basename(model.dir),
    scheduler: new Scheduler(opts.maxQueue, opts.maxConcurrent ?? defaultConcurrency(model)),
    metrics: new Metrics(),
    defaultMaxTokens: opts.defaultMaxTokens,
    testHooks: options.testHooks,
    closing: closing.signal,
  };
  const app = await buildApp(ctx, { apiKey: opts.apiKey, maxBodyBytes: opts.maxBodyBytes });
  registerChatCompletions(app, ctx);
  registerCompletions(app, ctx);
  registerModels(app, ctx, Math.floor(Date.now() / 1000));
  registerHealthAndMetrics(app, ctx);

  await app.listen({ host: opts.host, port: opts.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  const hostForUrl = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  let closed: Promise<void> | undefined;
  return {
    url: `http://${hostForUrl}:${port}`,
    port,
    server: app.server,
    close: () =>
      (closed ??= (async () => {
        closing.abort(); // every request's generation signal fires: running turns stop within a step
        ctx.scheduler.close(); // queued requests get 503
        // Node closes only the connections idle at close time; keep-alive sockets whose
        // aborted responses end later would hold close() for keepAliveTimeout, so sweep them.
        const sweep = setInterval(() => app.server.closeIdleConnections(), 25);
        const hardStop = setTimeout(() => app.server.closeAllConnections(), FORCE_CLOSE_AFTER_MS);
        try {
          await app.close(); // resolves once in-flight responses have ended
        } finally {
          clearInterval(sweep);
          clearTimeout(hardStop);
        }
      })()),
  };
}
