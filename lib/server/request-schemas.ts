/**
 * Request bodies of the OpenAI endpoints, as zod schemas. Unknown fields are
 * dropped silently (OpenAI clients send fields such as `user` or `store` that do
 * not change generation here); a known field with a bad value is a 400 whose
 * message and `param` name it (e.g. `messages[0].role`).
 */
import { z } from 'zod';

import { badRequest } from './errors';

const stop = z.union([z.string(), z.array(z.string()).max(4)]).nullish();
const logitBias = z.record(z.string().regex(/^\d+$/, 'keys must be token ids'), z.number().min(-100).max(100)).nullish();

/** Sampling fields shared by both endpoints (plus vLLM's top_k, min_p, repetition_penalty). */
const sampling = {
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  top_k: z.number().int().min(-1).nullish(),
  min_p: z.number().min(0).max(1).nullish(),
  repetition_penalty: z.number().gt(0).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  logit_bias: logitBias,
  seed: z.number().int().nullish(),
  stop,
  max_tokens: z.number().int().min(1).nullish(),
  n: z.number().int().min(1).max(16).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
};

const contentPart = z.object({ type: z.string(), text: z.string().optional() }).passthrough();
const content = z.union([z.string(), z.array(contentPart)]).nullish();

const toolCall = z.object({
  id: z.string(),
  type: z.literal('function').optional(),
  function: z.object({ name: z.string(), arguments: z.string() }),
});

const message = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content,
  name: z.string().nullish(),
  tool_calls: z.array(toolCall).nullish(),
  tool_call_id: z.string().nullish(),
  reasoning_content: z.string().nullish(),
});
export type RequestMessage = z.infer<typeof message>;

const tool = z.object({
  type: z.literal('function'),
  function: z.object({
    name: z.string().min(1),
    description: z.string().nullish(),
    parameters: z.record(z.unknown()).nullish(),
    /** OpenAI: the call's arguments must follow `parameters` (here: enforced while generating). */
    strict: z.boolean().nullish(),
  }),
});

export const chatCompletionRequest = z.object({
  model: z.string({ required_error: 'model is required' }),
  messages: z.array(message).min(1),
  ...sampling,
  max_completion_tokens: z.number().int().min(1).nullish(),
  tools: z.array(tool).nullish(),
  tool_choice: z
    .union([z.enum(['none', 'auto', 'required']), z.object({ type: z.literal('function'), function: z.object({ name: z.string() }) })])
    .nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  /** vLLM/transformers: variables for the chat template; enable_thinking switches reasoning. */
  chat_template_kwargs: z.object({ enable_thinking: z.boolean().optional() }).passthrough().nullish(),
  /** vLLM's name for the most reasoning tokens (0 = reasoning off). */
  thinking_token_budget: z.number().int().min(0).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).nullish(),
  response_format: z.object({ type: z.string() }).passthrough().nullish(),
  /** vLLM: the last message is an assistant message to continue (its text starts the answer). */
  continue_final_message: z.boolean().nullish(),
  /** vLLM: must not be true together with continue_final_message. */
  add_generation_prompt: z.boolean().nullish(),
});
export type ChatCompletionRequest = z.infer<typeof chatCompletionRequest>;

export const completionRequest = z.object({
  model: z.string({ required_error: 'model is required' }),
  prompt: z.union([z.string(), z.array(z.string()).length(1), z.array(z.number().int().min(0)).min(1)]),
  ...sampling,
  echo: z.boolean().nullish(),
  /** Legacy logprobs: this many alternatives per token (0-5), or null. */
  logprobs: z.number().int().min(0).max(5).nullish(),
  best_of: z.number().int().nullish(),
  suffix: z.string().nullish(),
});
export type CompletionRequest = z.infer<typeof completionRequest>;

/** Parses a body; a failure becomes a 400 naming the first bad field. */
export function parseBody<S extends z.ZodTypeAny>(schema: S, body: unknown): z.output<S> {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw badRequest('the request body must be a JSON object');
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const param = formatPath(issue.path);
  throw badRequest(`${param || 'body'}: ${issue.message}`, param || null);
}

/** ['messages', 0, 'role'] -> 'messages[0].role' (OpenAI's spelling of a field path). */
function formatPath(path: (string | number)[]): string {
  return path.reduce<string>((s, p) => (typeof p === 'number' ? `${s}[${p}]` : s ? `${s}.${p}` : p), '');
}
