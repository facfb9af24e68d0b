/**
 * OpenAI-style API errors: every failure the server answers is
 * `{ error: { message, type, param, code } }` with a matching HTTP status, so
 * OpenAI clients surface it as their own typed error.
 */
import { ContextOverflowError, InvalidArgumentError } from '../errors';

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string = 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  body(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const badRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new ApiError(400, message, 'invalid_request_error', param, code);

export const unsupported = (param: string, what: string) =>
  badRequest(`${param}: ${what} is not supported by this server`, param, 'unsupported_parameter');

export const queueFull = () =>
  new ApiError(429, 'the server is busy: too many requests are waiting; retry later', 'rate_limit_error', null, 'queue_full');

export const shuttingDown = () => new ApiError(503, 'the server is shutting down', 'server_error', null, 'shutting_down');

/** Maps anything thrown while handling a request to an ApiError (never leaks a stack). */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof ContextOverflowError) return badRequest(err.message, 'messages', 'context_length_exceeded');
  if (err instanceof InvalidArgumentError) return badRequest(err.message);
  // fastify's own errors (body too large, bad JSON, wrong content type) carry a statusCode
  const e = err as { statusCode?: unknown; message?: unknown; code?: unknown } | null;
  if (e && typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    const code = typeof e.code === 'string' ? e.code : null;
    const status = e.statusCode;
    const message = status === 413 ? 'request body too large' : String(e.message ?? 'bad request');
    return new ApiError(status, message, 'invalid_request_error', null, status === 413 ? 'request_too_large' : code);
  }
  return new ApiError(500, `internal error: ${(err as Error)?.message ?? String(err)}`, 'server_error', null, 'internal_error');
}
