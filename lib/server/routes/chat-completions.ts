/**
 * POST /v1/chat/completions: a fresh ChatSession per choice (the whole
 * conversation is rendered by the model's template and prefilled), run when the
 * scheduler gives this request its turn; JSON or SSE chunks out. With n > 1 the
 * choices run together (../choices.ts): the prompt is prefilled once, and their
 * streamed chunks interleave, each with its choice's index.
 */
import type { ServerResponse } from 'node:http';

import type { FastifyInstance, FastifyRequest } from 'fastify';

import type { TokenLogprob } from '../../chat/logprobs';
import type { ChatReply, SendOptions } from '../../chat/session';
import { runChoices, type ChoiceHooks } from '../choices';
import { checkModel, type ServerContext } from '../context';
import { streamInSlot } from '../stream-slot';
import { ToolCallRelay } from '../tool-call-relay';
import {
  choiceMessage,
  choiceSeed,
  finishReason,
  newId,
  nowSeconds,
  openAILogprobs,
  planChat,
  usageOf,
  type ChatPlan,
} from '../openai-mapping';
import { chatCompletionRequest, parseBody, type ChatCompletionRequest } from '../request-schemas';
import { SseWriter } from '../sse';

type Callbacks = Pick<SendOptions, 'onReasoning' | 'onText' | 'onToolCall' | 'onToolCallDelta' | 'onLogprobs'>;

export function registerChatCompletions(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/chat/completions', async (req, reply) => {
    const body = parseBody(chatCompletionRequest, req.body);
    checkModel(ctx, body.model);
    const plan = planChat(body, ctx.defaultMaxTokens);
    if (body.stream) {
      reply.hijack(); // we write the SSE stream (or a JSON error) to the raw response ourselves
      await streamChat(ctx, req, reply.raw, body, plan);
      return;
    }
    const signal = req.generationSignal;
    const release = await ctx.scheduler.acquire(signal);
    let replies: ChatReply[];
    try {
      replies = await runChoices(plan.n, signal, (i, hooks) => runChoice(ctx, req, plan, i, hooks, {}));
    } finally {
      release();
    }
    if (signal.aborted) throw signal.reason; // shutdown -> 503; a gone client reads nothing anyway
    return {
      id: newId('chatcmpl'),
      object: 'chat.completion',
      created: nowSeconds(),
      model: ctx.modelName,
      choices: replies.map((r, index) => ({
        index,
        message: choiceMessage(r),
        logprobs: r.logprobs ? openAILogprobs(r.logprobs) : null,
        finish_reason: finishReason(r.finishReason),
      })),
      usage: usageOf(replies),
    };
  });
}

/** Runs one choice on its own session and frees the session's state, whatever happens. */
async function runChoice(
  ctx: ServerContext,
  req: FastifyRequest,
  plan: ChatPlan,
  index: number,
  hooks: ChoiceHooks,
  callbacks: Callbacks,
): Promise<ChatReply> {
  const chat = ctx.model.createChatSession(plan.session);
  // continue_final_message: the answer starts with the continued text, which the client already has, so the
  // response (streamed or not) carries only what the model added, as vLLM's does.
  const given = plan.send.responsePrefix?.replace(/^\s+/, '') ?? ''; // (the answer's leading whitespace is dropped)
  let hide = given.length;
  const onText =
    hide > 0 && callbacks.onText
      ? (t: string) => {
          const k = Math.min(hide, t.length);
          hide -= k;
          if (k < t.length) callbacks.onText!(t.slice(k));
        }
      : callbacks.onText;
  try {
    const seed = choiceSeed(plan.seed, index);
    const reply = await chat.send(plan.messages, {
      ...plan.send,
      ...callbacks,
      onText,
      onToken: hooks.promptDone, // a token means the prompt is in: the request's other choices may start
      ...(seed !== undefined ? { seed } : {}),
      signal: hooks.signal,
      logitsProcessor: ctx.testHooks?.logitsProcessor?.({ route: 'chat', body: req.body as Record<string, unknown>, choice: index }),
    });
    ctx.metrics.countGeneration(reply.usage.promptTokens - reply.usage.cachedTokens, reply.usage.completionTokens, reply.timings.decodeMs);
    return given && reply.text.startsWith(given) ? { ...reply, text: reply.text.slice(given.length) } : reply;
  } finally {
    chat.dispose();
  }
}

async function streamChat(
  ctx: ServerContext,
  req: FastifyRequest,
  res: ServerResponse,
  body: ChatCompletionRequest,
  plan: ChatPlan,
): Promise<void> {
  const sse = new SseWriter(res);
  const signal = req.generationSignal;
  const id = newId('chatcmpl');
  const created = nowSeconds();
  const includeUsage = !!body.stream_options?.include_usage;
  const chunk = (choices: unknown[], usage?: unknown) => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model: ctx.modelName,
    choices,
    ...(includeUsage ? { usage: usage ?? null } : {}),
  });
  // Logprob entries arrive just before the text of their token; they go out with the choice's next delta.
  const pendingLogprobs: TokenLogprob[][] = Array.from({ length: plan.n }, () => []);
  const delta = (index: number, d: Record<string, unknown>, finish: string | null = null) => {
    const pending = pendingLogprobs[index];
    const lp = pending.length > 0 && (d.content !== undefined || finish) ? openAILogprobs(pending.splice(0)) : null;
    return chunk([{ index, delta: d, logprobs: lp, finish_reason: finish }]);
  };

  await streamInSlot(ctx, signal, sse, async () => {
    const replies = await runChoices(plan.n, signal, async (i, hooks) => {
      let opened = false;
      const open = () => {
        // the role arrives in the first delta of each choice, as OpenAI sends it
        if (!opened) sse.send(delta(i, { role: 'assistant', content: '' }));
        opened = true;
      };
      const tools = new ToolCallRelay((calls) => (open(), sse.send(delta(i, { tool_calls: calls }))));
      const r = await runChoice(ctx, req, plan, i, hooks, {
        onReasoning: (t) => (open(), sse.send(delta(i, { reasoning_content: t }))),
        onText: (t) => (open(), sse.send(delta(i, { content: t }))),
        onToolCallDelta: (d) => tools.delta(d),
        onToolCall: (c) => tools.call(c),
        onLogprobs: (e) => void pendingLogprobs[i].push(e),
      });
      if (!hooks.signal.aborted) {
        open();
        sse.send(delta(i, {}, finishReason(r.finishReason)));
      }
      return r;
    });
    if (signal.aborted) throw signal.reason;
    if (includeUsage) sse.send(chunk([], usageOf(replies)));
  });
}
