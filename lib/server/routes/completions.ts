/** POST /v1/completions: a raw prompt (no chat template) continued by the model. */
import type { FastifyInstance } from 'fastify';

import { runChoices, type ChoiceHooks } from '../choices';
import { checkModel, type ServerContext } from '../context';
import { badRequest, unsupported } from '../errors';
import { streamInSlot } from '../stream-slot';
import { tokenLogprob, type TokenLogprob } from '../../chat/logprobs';
import { generateText, type GeneratedText } from '../generate-text';
import { choiceSeed, newId, nowSeconds, samplingOf } from '../openai-mapping';
import { completionRequest, parseBody } from '../request-schemas';
import { SseWriter } from '../sse';

/** OpenAI's default max_tokens for this endpoint. */
const DEFAULT_MAX_TOKENS = 16;

export function registerCompletions(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/completions', async (req, reply) => {
    const body = parseBody(completionRequest, req.body);
    checkModel(ctx, body.model);
    if (body.best_of != null && body.best_of > 1) throw unsupported('best_of', 'best_of > 1');
    if (body.suffix) throw unsupported('suffix', 'suffix');

    const tok = ctx.model.tokenizer;
    const prompt = body.prompt;
    const promptIds = typeof prompt === 'string' ? tok.encode(prompt) : typeof prompt[0] === 'string' ? tok.encode(prompt[0]) : (prompt as number[]);
    if (promptIds.length === 0) throw badRequest('prompt: must not be empty', 'prompt');
    if (promptIds.some((t) => t >= tok.vocabSize)) throw badRequest(`prompt: token ids must be below ${tok.vocabSize}`, 'prompt');
    const echo = body.echo ? (typeof prompt === 'string' ? prompt : typeof prompt[0] === 'string' ? prompt[0] : tok.decode(promptIds)) : '';
    const n = body.n ?? 1;
    const stop = body.stop == null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop;
    const signal = req.generationSignal;
    const id = newId('cmpl');
    const created = nowSeconds();
    // echo + logprobs: the prompt's own tokens too (the first has no logprob), from one all-positions prefill
    const promptLogprobs = body.echo && body.logprobs != null ? await promptTokenLogprobs(ctx, promptIds, body.logprobs) : undefined;
    // (n > 1: the choices run together, ../choices.ts)
    const run = (index: number, hooks: ChoiceHooks, onText?: (t: string, lp?: GeneratedText['logprobs']) => void) => {
      const seed = choiceSeed(body.seed ?? undefined, index);
      return generateText(ctx.model, {
        promptIds,
        maxTokens: body.max_tokens ?? ctx.defaultMaxTokens ?? DEFAULT_MAX_TOKENS,
        sampling: { ...samplingOf(body), ...(seed !== undefined ? { seed } : {}) },
        stop,
        signal: hooks.signal,
        onPromptDone: hooks.promptDone,
        onText,
        logitsProcessor: ctx.testHooks?.logitsProcessor?.({ route: 'completions', body: req.body as Record<string, unknown>, choice: index }),
        ...(body.logprobs != null ? { logprobs: body.logprobs } : {}),
      }).then((g) => {
        ctx.metrics.countGeneration(promptIds.length - g.cachedTokens, g.completionTokens, g.decodeMs);
        return g;
      });
    };
    const usage = (gs: GeneratedText[]) => {
      const completion = gs.reduce((s, g) => s + g.completionTokens, 0);
      return {
        prompt_tokens: promptIds.length,
        completion_tokens: completion,
        total_tokens: promptIds.length + completion,
        // (the prompt is counted once, as the first choice computed it)
        prompt_tokens_details: { cached_tokens: gs[0]?.cachedTokens ?? 0 },
      };
    };
    const choice = (index: number, text: string, finish: string | null, lp?: LegacyEntry[]) => ({
      index,
      text,
      logprobs: lp ? legacyLogprobs(lp) : null,
      finish_reason: finish,
    });
    /** A choice's generated-token entries, after the echoed prompt's when there is one. */
    const entries = (g: GeneratedText) =>
      g.logprobs ? [...(promptLogprobs ?? []), ...g.logprobs.map((e) => fromTokenLogprob(e, echo.length))] : undefined;

    if (!body.stream) {
      const release = await ctx.scheduler.acquire(signal);
      let gs: GeneratedText[];
      try {
        gs = await runChoices(n, signal, (i, hooks) => run(i, hooks));
      } finally {
        release();
      }
      if (signal.aborted) throw signal.reason;
      return {
        id,
        object: 'text_completion',
        created,
        model: ctx.modelName,
        choices: gs.map((g, i) => choice(i, echo + g.text, g.finishReason, entries(g))),
        usage: usage(gs),
      };
    }

    reply.hijack();
    const sse = new SseWriter(reply.raw);
    const includeUsage = !!body.stream_options?.include_usage;
    const chunk = (choices: unknown[], u?: unknown) => ({
      id,
      object: 'text_completion',
      created,
      model: ctx.modelName,
      choices,
      ...(includeUsage ? { usage: u ?? null } : {}),
    });
    await streamInSlot(ctx, signal, sse, async () => {
      const gs = await runChoices(n, signal, async (i, hooks) => {
        if (echo) sse.send(chunk([choice(i, echo, null, promptLogprobs)]));
        const g = await run(i, hooks, (t, lp) => sse.send(chunk([choice(i, t, null, lp?.map((e) => fromTokenLogprob(e, echo.length)))])));
        if (!hooks.signal.aborted) sse.send(chunk([choice(i, '', g.finishReason)]));
        return g;
      });
      if (signal.aborted) throw signal.reason;
      if (includeUsage) sse.send(chunk([], usage(gs)));
    });
  });
}

/** One token of the legacy completions `logprobs` object. */
interface LegacyEntry {
  token: string;
  logprob: number | null; // null: the prompt's first token (nothing predicts it)
  top: Record<string, number> | null;
  offset: number; // where the token's text starts in the choice's text
}

function fromTokenLogprob(e: TokenLogprob & { offset: number }, shift: number): LegacyEntry {
  return { token: e.token, logprob: e.logprob, top: Object.fromEntries(e.top.map((t) => [t.token, t.logprob])), offset: e.offset + shift };
}

/** The legacy completions `logprobs` object: tokens, their logprobs, the top alternatives and text offsets. */
function legacyLogprobs(entries: LegacyEntry[]) {
  return {
    tokens: entries.map((e) => e.token),
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs: entries.map((e) => e.top),
    text_offset: entries.map((e) => e.offset),
  };
}

/** Logprobs of the prompt's tokens under the model (echo + logprobs): one prefill that returns every position. */
async function promptTokenLogprobs(ctx: ServerContext, ids: number[], top: number): Promise<LegacyEntry[]> {
  const tok = ctx.model.tokenizer;
  const V = ctx.model.vocabSize;
  const logits = await ctx.model.evaluate(ids);
  const utf8 = new TextDecoder();
  const describe = (t: number) => {
    const bytes = tok.tokenBytes(t);
    return { token: utf8.decode(bytes), bytes: [...bytes] };
  };
  const out: LegacyEntry[] = [];
  let offset = 0;
  ids.forEach((id, i) => {
    const token = describe(id).token;
    if (i === 0) out.push({ token, logprob: null, top: null, offset });
    else out.push(fromTokenLogprob({ ...tokenLogprob(logits.subarray((i - 1) * V, i * V), id, top, describe), offset }, 0));
    offset += token.length;
  });
  return out;
}
