/**
 * Raw text generation for /v1/completions: prompt ids in, sampled text out,
 * with stop strings matched across token boundaries (text that might be the
 * start of a stop string is held back until decided).
 */
import { IncrementalDetokenizer } from '../chat/detokenizer';
import { tokenLogprob, type TokenLogprob } from '../chat/logprobs';
import { Sampler, type SamplingOptions } from '../chat/sampling';
import { nativeSamplingEnabled, type LogitsContext } from '../chat/turn';
import type { Model } from '../model';
import { badRequest } from './errors';

export interface GenerateTextOptions {
  promptIds: number[];
  maxTokens: number;
  sampling: SamplingOptions;
  stop: string[];
  signal: AbortSignal;
  /** Streamed text, with the logprobs of the tokens whose text starts in it (when `logprobs` is set). */
  onText?: (text: string, logprobs?: Array<TokenLogprob & { offset: number }>) => void;
  logitsProcessor?: (logits: Float32Array, ctx: LogitsContext) => void;
  /** Report each generated token's log-probability with this many alternatives (the decode steps then sample in JS). */
  logprobs?: number;
  /** Called once the prompt is in the sequence (prefilled, or taken from the prompt cache). */
  onPromptDone?: () => void;
}

export interface GeneratedText {
  text: string;
  finishReason: 'stop' | 'length' | 'abort';
  completionTokens: number;
  /** Prompt tokens a prompt-cache snapshot supplied (not computed). */
  cachedTokens: number;
  /** With the `logprobs` option: every generated token, and where its text starts in `text`. */
  logprobs?: Array<TokenLogprob & { offset: number }>;
  decodeMs: number;
}

export async function generateText(model: Model, o: GenerateTextOptions): Promise<GeneratedText> {
  const tok = model.tokenizer;
  if (o.promptIds.length >= model.defaultContextSize)
    throw badRequest(
      `the prompt has ${o.promptIds.length} tokens; this model's context is ${model.defaultContextSize} tokens`,
      'prompt',
      'context_length_exceeded',
    );
  // The sequence reserves memory for what this request can reach (the last token is
  // never fed), not for the whole context, so many more requests fit at once.
  const contextSize = Math.min(model.defaultContextSize, o.promptIds.length + o.maxTokens);
  // With a prompt cache: start from the longest cached prefix, and keep one of this prompt
  // less its last token (the token most likely to change when a client extends the prompt).
  const cached = model.promptCache
    ? await model.promptCache.prefill(o.promptIds, { contextSize, snapshotAt: [o.promptIds.length - 1], signal: o.signal })
    : undefined;
  const seq = cached?.seq ?? model.createSequence({ contextSize });
  try {
    const sampler = new Sampler(o.sampling);
    const detok = new IncrementalDetokenizer(tok, { skipSpecialTokens: true });
    const holdBack = Math.max(0, ...o.stop.map((s) => s.length - 1));
    const generated: number[] = [];
    let text = '';
    let emitted = 0; // chars of `text` already passed to onText
    let finishReason: GeneratedText['finishReason'] = 'length';
    let logits = cached ? cached.logits : await seq.prefill(o.promptIds);
    o.onPromptDone?.();
    // Without a logits processor the decode steps sample natively (same tokens):
    // each brings back the next id instead of the logits.
    const sampleNatively = nativeSamplingEnabled() && !o.logitsProcessor && o.logprobs === undefined;
    const logprobs: GeneratedText['logprobs'] = o.logprobs !== undefined ? [] : undefined;
    const utf8 = new TextDecoder();
    const describe = (t: number) => {
      const bytes = tok.tokenBytes(t);
      return { token: utf8.decode(bytes), bytes: [...bytes] };
    };
    let next: number | undefined;
    const t0 = performance.now();
    let logprobsSent = 0; // entries of `logprobs` already passed to onText
    const emitUpTo = (end: number) => {
      if (end <= emitted) return;
      let chunkLogprobs: GeneratedText['logprobs'];
      if (logprobs) {
        let n = logprobsSent;
        while (n < logprobs.length && logprobs[n].offset < end) n++;
        chunkLogprobs = logprobs.slice(logprobsSent, n);
        logprobsSent = n;
      }
      o.onText?.(text.slice(emitted, end), chunkLogprobs);
      emitted = Math.max(emitted, end);
    };

    while (generated.length < o.maxTokens && seq.length < contextSize) {
      if (o.signal.aborted) {
        finishReason = 'abort';
        break;
      }
      let id: number;
      const modelLogits = logits; // before the processor: logprobs describe the model's distribution
      if (next !== undefined) {
        id = next;
        next = undefined;
      } else {
        if (o.logitsProcessor) {
          logits = Float32Array.from(logits);
          o.logitsProcessor(logits, { step: generated.length, channel: 'text' });
        }
        id = sampler.sample(logits, generated);
      }
      if (tok.eosTokenIds.has(id)) {
        finishReason = 'stop';
        break;
      }
      generated.push(id);
      if (logprobs) logprobs.push({ ...tokenLogprob(modelLogits, id, o.logprobs!, describe), offset: text.length });
      const searchFrom = Math.max(0, text.length - holdBack);
      text += detok.push(id);
      const at = firstStop(text, o.stop, searchFrom);
      if (at >= 0) {
        text = text.slice(0, at);
        finishReason = 'stop';
        break;
      }
      emitUpTo(text.length - holdBack);
      if (generated.length >= o.maxTokens) continue;
      // Sample with the step only if the loop will go on to use it (same RNG use as the JS path).
      if (sampleNatively && seq.length + 1 < contextSize) next = (await seq.decodeSample(id, sampler, generated)).id;
      else logits = await seq.decode(id);
    }
    if (finishReason !== 'stop') text += detok.flush();
    emitUpTo(text.length);
    return {
      text,
      finishReason,
      completionTokens: generated.length,
      cachedTokens: cached?.reusedTokens ?? 0,
      // (tokens wholly after a stop string's cut produced no output)
      ...(logprobs ? { logprobs: logprobs.filter((l) => l.offset < text.length) } : {}),
      decodeMs: performance.now() - t0,
    };
  } finally {
    seq.dispose();
  }
}

function firstStop(text: string, stops: string[], from: number): number {
  let best = -1;
  for (const s of stops) {
    if (!s) continue;
    const i = text.indexOf(s, from);
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}
