/**
 * Translation between OpenAI chat requests/responses and ChatSession: messages
 * and fields in, ChatReply out (reasoning_content, tool_calls, finish_reason,
 * usage with reasoning tokens).
 */
import { randomBytes } from 'node:crypto';

import { compileSchema } from '../chat/json-schema';
import type { ChatReply, ChatSessionOptions, SendOptions } from '../chat/session';
import type { TokenLogprob } from '../chat/logprobs';
import type { SamplingOptions } from '../chat/sampling';
import type { ChatMessage } from '../chat/template';
import type { ToolCall, ToolSet } from '../chat/tools';
import type { FinishReason } from '../chat/turn';
import { badRequest, unsupported } from './errors';
import type { ChatCompletionRequest, CompletionRequest, RequestMessage } from './request-schemas';

/** What one chat request becomes: a session per choice, the messages to send, per-send options. */
export interface ChatPlan {
  session: ChatSessionOptions;
  messages: ChatMessage[];
  send: Omit<SendOptions, 'signal' | 'onReasoning' | 'onText' | 'onToolCall'>;
  n: number;
  seed?: number;
}

export function planChat(req: ChatCompletionRequest, defaultMaxTokens?: number): ChatPlan {
  if (req.top_logprobs != null && !req.logprobs) throw badRequest('top_logprobs: requires logprobs: true', 'top_logprobs');
  if (req.top_logprobs != null && req.top_logprobs > 20) throw badRequest('top_logprobs: at most 20', 'top_logprobs');
  const format = req.response_format?.type ?? 'text';
  if (format !== 'text' && format !== 'json_object' && format !== 'json_schema')
    throw unsupported('response_format', `response_format "${format}" (supported: "text", "json_object", "json_schema")`);
  const schema = format === 'json_schema' ? (req.response_format as { json_schema?: { schema?: unknown } }).json_schema?.schema : undefined;
  if (format === 'json_schema') {
    if (schema === undefined) throw badRequest('response_format.json_schema.schema: required', 'response_format');
    try {
      compileSchema(schema); // (compiled again by the session: fail here, as a 400 naming the field)
    } catch (err) {
      throw badRequest(`response_format.json_schema.schema: ${(err as Error).message}`, 'response_format');
    }
  }
  // "required", or a named function (the tools narrowed to it): the answer must be a tool call
  const forceCall = req.tool_choice === 'required' || (typeof req.tool_choice === 'object' && req.tool_choice !== null);
  if (forceCall && !req.tools?.length) throw badRequest('tool_choice: requires tools', 'tool_choice');
  if (forceCall && format !== 'text')
    throw badRequest(`tool_choice: a required tool call and response_format ${format} exclude each other`, 'tool_choice');

  const system: string[] = [];
  const messages: ChatMessage[] = [];
  req.messages.forEach((m, i) => {
    const text = contentText(m, i);
    // the template has one system block: every system/developer message goes there, in order
    if (m.role === 'system' || m.role === 'developer') system.push(text);
    else messages.push(toChatMessage(m, text));
  });
  if (messages.length === 0) throw badRequest('messages: at least one non-system message is required', 'messages');
  // vLLM's continue_final_message: the last (assistant) message is the start of the answer, continued by the model.
  let prefix: string | undefined;
  if (req.continue_final_message) {
    const last = messages[messages.length - 1];
    if (req.add_generation_prompt === true)
      throw badRequest('continue_final_message: cannot be combined with add_generation_prompt: true', 'continue_final_message');
    if (last.role !== 'assistant' || last.tool_calls?.length || typeof last.content !== 'string' || !last.content)
      throw badRequest('continue_final_message: the last message must be an assistant message with text to continue', 'continue_final_message');
    prefix = last.content;
    messages.pop();
    if (messages.length === 0) throw badRequest('messages: at least one non-system message is required before the one continued', 'messages');
  }

  const enable = req.chat_template_kwargs?.enable_thinking;
  const budget = req.thinking_token_budget ?? undefined;
  const session: ChatSessionOptions = {
    ...(system.length > 0 ? { systemPrompt: system.join('\n\n') } : {}),
    ...(enable === undefined ? {} : { reasoning: enable ? 'on' : 'off' }),
    ...(budget === undefined ? {} : { thinking: { maxTokens: budget } }),
    tools: toolSet(req),
    // One turn per request: reserve memory for it (prompt + max_tokens), not for the whole context.
    reserve: 'turn',
  };
  const maxTokens = req.max_completion_tokens ?? req.max_tokens ?? defaultMaxTokens;
  return {
    session,
    messages,
    send: {
      ...samplingOf(req),
      ...(maxTokens !== undefined ? { maxTokens } : {}),
      ...(req.stop != null ? { stop: req.stop } : {}),
      ...(format === 'json_object' ? { responseFormat: 'json' as const } : {}),
      ...(format === 'json_schema' ? { responseFormat: { schema } } : {}),
      ...(forceCall ? { toolChoice: 'required' as const } : {}),
      ...(req.tools?.some((t) => t.function.strict) ? { strictToolCalls: true } : {}),
      ...(req.logprobs ? { logprobs: true, topLogprobs: req.top_logprobs ?? 0 } : {}),
      ...(prefix !== undefined ? { responsePrefix: prefix } : {}),
    },
    n: req.n ?? 1,
    seed: req.seed ?? undefined,
  };
}

/** OpenAI sampling fields -> SamplingOptions (only those given, so the model card's defaults apply otherwise). */
export function samplingOf(req: ChatCompletionRequest | CompletionRequest): SamplingOptions {
  const s: SamplingOptions = {};
  if (req.temperature != null) s.temperature = req.temperature;
  if (req.top_p != null) s.topP = req.top_p;
  if (req.top_k != null) s.topK = Math.max(0, req.top_k); // vLLM: -1 = off
  if (req.min_p != null) s.minP = req.min_p;
  if (req.repetition_penalty != null) s.repetitionPenalty = req.repetition_penalty;
  if (req.frequency_penalty != null) s.frequencyPenalty = req.frequency_penalty;
  if (req.presence_penalty != null) s.presencePenalty = req.presence_penalty;
  if (req.logit_bias != null)
    // OpenAI: -100 bans a token in practice; make it a real ban
    s.logitBias = Object.fromEntries(Object.entries(req.logit_bias).map(([id, b]) => [id, b <= -100 ? -Infinity : b]));
  return s;
}

/** Seed for choice `index` of a request: distinct per choice, reproducible per request. */
export function choiceSeed(seed: number | undefined, index: number): number | undefined {
  return seed === undefined ? undefined : seed + index;
}

function contentText(m: RequestMessage, i: number): string {
  const c = m.content;
  if (c == null) return '';
  if (typeof c === 'string') return c;
  return c
    .map((part, j) => {
      if (part.type !== 'text' || typeof part.text !== 'string')
        throw unsupported(`messages[${i}].content[${j}]`, `content part of type "${part.type}"`);
      return part.text;
    })
    .join('');
}

function toChatMessage(m: RequestMessage, text: string): ChatMessage {
  const out: ChatMessage = { role: m.role, content: text };
  // the template writes string arguments verbatim into <TOOLCALL>, as the model produced them
  if (m.role === 'assistant' && m.tool_calls?.length)
    out.tool_calls = m.tool_calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.function.name, arguments: c.function.arguments } }));
  if (m.role === 'tool' && m.tool_call_id) out.tool_call_id = m.tool_call_id;
  if (m.name) out.name = m.name;
  return out;
}

function toolSet(req: ChatCompletionRequest): ToolSet | undefined {
  if (!req.tools?.length || req.tool_choice === 'none') return undefined;
  let tools = req.tools;
  const choice = req.tool_choice;
  if (choice && typeof choice === 'object') {
    // a named choice narrows the declared tools to that one (and the answer must call it: see forceCall)
    tools = tools.filter((t) => t.function.name === choice.function.name);
    if (tools.length === 0) throw badRequest(`tool_choice: no tool named "${choice.function.name}" in tools`, 'tool_choice');
  }
  const set: ToolSet = {};
  for (const t of tools)
    set[t.function.name] = {
      ...(t.function.description ? { description: t.function.description } : {}),
      ...(t.function.parameters ? { parameters: t.function.parameters } : {}),
    };
  return set;
}

// ------------------------------------------------------------------ responses

export const newId = (prefix: string) => `${prefix}-${randomBytes(12).toString('hex')}`;
export const nowSeconds = () => Math.floor(Date.now() / 1000);

export function finishReason(r: FinishReason): 'stop' | 'length' | 'tool_calls' {
  return r === 'toolCalls' ? 'tool_calls' : r === 'length' ? 'length' : 'stop';
}

export interface OpenAIToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export function toOpenAIToolCall(c: ToolCall): OpenAIToolCall {
  const args = typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments ?? {});
  return { id: c.id, type: 'function', function: { name: c.name, arguments: args } };
}

export function choiceMessage(reply: ChatReply) {
  const calls = reply.toolCalls.map(toOpenAIToolCall);
  return {
    role: 'assistant' as const,
    content: reply.text === '' && calls.length > 0 ? null : reply.text,
    reasoning_content: reply.reasoning === '' ? null : reply.reasoning,
    ...(calls.length > 0 ? { tool_calls: calls } : {}),
  };
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  completion_tokens_details: { reasoning_tokens: number };
}

/** Usage over a request's choices: the prompt counts once (as OpenAI does), completions add up. */
export function usageOf(replies: ChatReply[]): Usage {
  const prompt = replies[0]?.usage.promptTokens ?? 0;
  const completion = replies.reduce((s, r) => s + r.usage.completionTokens, 0);
  const reasoning = replies.reduce((s, r) => s + r.usage.reasoningTokens, 0);
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    // prompt tokens whose state came from the session's cache or the prompt cache (as the first choice counted them)
    prompt_tokens_details: { cached_tokens: replies[0]?.usage.cachedTokens ?? 0 },
    completion_tokens_details: { reasoning_tokens: reasoning },
  };
}

/** OpenAI's `logprobs.content` entries for answer tokens. */
export function openAILogprobs(entries: readonly TokenLogprob[]): { content: unknown[] } {
  return {
    content: entries.map((e) => ({
      token: e.token,
      logprob: e.logprob,
      bytes: e.bytes,
      top_logprobs: e.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: t.bytes })),
    })),
  };
}
