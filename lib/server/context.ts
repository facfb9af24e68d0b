/** What every route handler shares: the model, the queue, the counters and per-request abort signals. */
import type { Model } from '../model';
import type { LogitsContext } from '../chat/turn';
import { ApiError } from './errors';
import type { Metrics } from './metrics';
import type { Scheduler } from './scheduler';

/**
 * @internal Test-only hooks. `logitsProcessor` is asked, per generated choice, for a
 * processor that edits the logits in place before each step: tests use it to force
 * outputs of a random-weight model. Not part of the public API.
 */
export interface ServerTestHooks {
  logitsProcessor?: (info: {
    route: 'chat' | 'completions';
    body: Record<string, unknown>;
    choice: number;
  }) => ((logits: Float32Array, ctx: LogitsContext) => void) | undefined;
}

export interface ServerContext {
  model: Model;
  modelName: string;
  scheduler: Scheduler;
  metrics: Metrics;
  defaultMaxTokens?: number;
  testHooks?: ServerTestHooks;
  /** Aborts once close() begins. */
  closing: AbortSignal;
}

/** The client went away before its answer was complete. */
export class ClientGoneError extends Error {
  constructor() {
    super('client disconnected');
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Aborts when the client disconnects or the server shuts down. */
    generationSignal: AbortSignal;
  }
}

/** 404 unless `model` names the served model. */
export function checkModel(ctx: ServerContext, model: string): void {
  if (model !== ctx.modelName)
    throw new ApiError(404, `The model "${model}" does not exist (this server serves "${ctx.modelName}")`, 'invalid_request_error', 'model', 'model_not_found');
}

