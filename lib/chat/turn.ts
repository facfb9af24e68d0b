/**
 * One assistant turn: the sampling loop after the prompt has been prefilled.
 * Routes text to two channels (reasoning until "</think>", then the answer),
 * enforces the thinking budget in the same sequence, captures <TOOLCALL> blocks,
 * applies stop strings across token boundaries, and stops on end of turn,
 * maxTokens, a full context or an AbortSignal (checked before every step).
 */
import { InvalidArgumentError } from '../errors';
import type { Sequence } from '../sequence';
import { IncrementalDetokenizer } from './detokenizer';
import type { AnswerConstraint } from './json-constraint';
import { tokenLogprob, type TokenLogprob } from './logprobs';
import type { Sampler } from './sampling';
import { StreamSplitter } from './stream-splitter';
import { ThinkingController, type ThinkingBudget } from './thinking';
import { ToolCallStreamer, type ToolCallDelta } from './tool-call-stream';
import { parseToolCalls, type InvalidToolCall } from './tool-calls';
import type { ToolCall, ToolRegistry } from './tools';
import type { Tokenizer } from './tokenizer';

export type FinishReason = 'stop' | 'length' | 'toolCalls' | 'abort';
export type Channel = 'reasoning' | 'text';

export interface LogitsContext {
  /** Tokens generated so far in this turn (reasoning + answer). */
  step: number;
  channel: Channel;
}

export interface TurnCallbacks {
  onReasoning?: (text: string) => void;
  onText?: (text: string) => void;
  onToken?: (id: number, channel: Channel) => void;
  onToolCall?: (call: ToolCall) => void;
  /**
   * A tool call as it is generated: its name once complete, then its arguments' JSON text piece by piece
   * (calls numbered 0, 1, ... in the block, as onToolCall then delivers them parsed and validated).
   */
  onToolCallDelta?: (delta: ToolCallDelta) => void;
  /** With `logprobs`: the log-probability (and top alternatives) of each sampled token, before its text is emitted. */
  onLogprobs?: (entry: TokenLogprob, channel: Channel) => void;
  /** Advanced: edit the logits in place before each sampling step (constrained decoding, tests). */
  logitsProcessor?: (logits: Float32Array, ctx: LogitsContext) => void;
}

export interface TurnInput extends TurnCallbacks {
  seq: Sequence;
  tokenizer: Tokenizer;
  /** Logits after the prompt. */
  logits: Float32Array;
  /** Whether the prompt opened a thought ("<think>\n" at its end). */
  reasoning: boolean;
  budget?: ThinkingBudget;
  sampler: Sampler;
  maxTokens: number;
  stop: readonly string[];
  signal?: AbortSignal;
  tools?: ToolRegistry;
  /** Report log-probabilities with this many top alternatives (undefined: none). */
  logprobs?: number;
  /** Constrained answer (JSON mode, a required tool call): applies to the answer, not the reasoning; the turn ends when it is complete. */
  constraint?: AnswerConstraint;
  /**
   * Strict tool calls: when the answer samples the <TOOLCALL> token unconstrained, a constraint from this
   * factory (a ToolCallConstraint, which takes that token) governs the rest of the answer.
   */
  toolCallConstraint?: () => AnswerConstraint;
  /** Text the answer starts with (after the thought, if any), with its token ids: fed, not sampled, and part of `text`. */
  responsePrefix?: { text: string; ids: number[] };
}

export interface TurnResult {
  reasoning: string;
  text: string;
  toolCalls: ToolCall[];
  invalidToolCalls: InvalidToolCall[];
  finishReason: FinishReason;
  reasoningTokens: number;
  completionTokens: number;
  decodeMs: number;
  /** Every id this turn fed to the sequence, in order (sampled and forced). */
  fed: number[];
  /** Tokens of the response prefix that were fed. */
  prefixTokens: number;
}

/**
 * Whether decode steps sample in native code when nothing needs the full logits
 * (no logitsProcessor, no logprobs). Same tokens either way (the native sampler
 * replays the JS one); NEMOTRON_NATIVE_SAMPLING=0 turns it off, e.g. to compare.
 */
export function nativeSamplingEnabled(): boolean {
  return process.env.NEMOTRON_NATIVE_SAMPLING !== '0';
}

const THINK_END = '</think>';
const TOOLCALL_OPEN = '<TOOLCALL>';
const TOOLCALL_CLOSE = '</TOOLCALL>';

export async function runTurn(input: TurnInput): Promise<TurnResult> {
  const { seq, tokenizer: tok, sampler } = input;
  const endOfTurn = new Set(tok.eosTokenIds);
  const thinkEndIds = tok.special.thinkEnd !== undefined ? [tok.special.thinkEnd] : tok.encode(THINK_END).slice(0, 1);
  const thinking = new ThinkingController(input.budget, { thinkEnd: thinkEndIds, endOfTurn: [...endOfTurn] });
  const detok = new IncrementalDetokenizer(tok);
  const answerMarkers = [TOOLCALL_OPEN, ...input.stop.filter((s) => s.length > 0)];

  let channel: Channel = input.reasoning ? 'reasoning' : 'text';
  const splitter = new StreamSplitter(channel === 'reasoning' ? [THINK_END] : answerMarkers);
  let reasoning = '';
  let text = '';
  let toolBlock: string | null = null; // raw text of a <TOOLCALL> block being captured
  let toolStream: ToolCallStreamer | undefined; // its calls as they arrive (onToolCallDelta)
  let toolStreamed = 0; // how much of toolBlock the streamer has seen
  const toolCalls: ToolCall[] = [];
  const invalid: InvalidToolCall[] = [];
  let stopped = false;

  // Both channels are streamed as the reply reports them: without leading or trailing whitespace. A
  // whitespace run is held back until text follows it, and dropped if nothing does, so the chunks a
  // caller receives join to exactly `reasoning` / `text`.
  const trimmedStream = (sink: (t: string) => void) => {
    let started = false;
    let held = '';
    return (t: string) => {
      if (!started) {
        t = t.replace(/^\s+/, '');
        if (!t) return;
        started = true;
      }
      const body = held + t;
      const end = body.search(/\s+$/);
      held = end < 0 ? '' : body.slice(end);
      const out = end < 0 ? body : body.slice(0, end);
      if (out) sink(out);
    };
  };
  const emitReasoning = trimmedStream((t) => {
    reasoning += t;
    input.onReasoning?.(t);
  });
  const emitText = trimmedStream((t) => {
    text += t;
    input.onText?.(t);
  });
  const finishToolBlock = (raw: string) => {
    const parsed = parseToolCalls(`${TOOLCALL_OPEN}${raw}${TOOLCALL_CLOSE}`);
    invalid.push(...parsed.invalid);
    for (const c of parsed.toolCalls) {
      const call = input.tools ? input.tools.validate(c) : { ...c, error: `unknown tool "${c.name}" (no tools declared)` };
      toolCalls.push(call);
      input.onToolCall?.(call);
    }
  };

  /** Routes decoded text; markers switch channel, open/close tool blocks or stop. */
  const route = (chunk: string): void => {
    if (toolBlock !== null) {
      toolBlock += chunk;
      const end = toolBlock.indexOf(TOOLCALL_CLOSE);
      if (toolStream) {
        const upTo = end < 0 ? toolBlock.length : end;
        for (const d of toolStream.push(toolBlock.slice(toolStreamed, upTo))) input.onToolCallDelta!(d);
        toolStreamed = upTo;
      }
      if (end < 0) return;
      const rest = toolBlock.slice(end + TOOLCALL_CLOSE.length);
      finishToolBlock(toolBlock.slice(0, end));
      toolBlock = null;
      if (rest) route(rest);
      return;
    }
    const pieces = splitter.push(chunk);
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i];
      if (p.type === 'text') {
        if (channel === 'reasoning') emitReasoning(p.text);
        else emitText(p.text);
        continue;
      }
      const rest = pieces
        .slice(i + 1)
        .map((q) => (q.type === 'text' ? q.text : q.marker))
        .join('') + splitter.flush();
      if (p.marker === THINK_END) {
        channel = 'text';
        thinking.markClosed();
        splitter.setMarkers(answerMarkers);
        if (rest) route(rest);
      } else if (p.marker === TOOLCALL_OPEN) {
        toolBlock = '';
        toolStream = input.onToolCallDelta ? new ToolCallStreamer() : undefined;
        toolStreamed = 0;
        if (rest) route(rest);
      } else {
        stopped = true; // a stop string: neither it nor anything after it is output
      }
      return;
    }
  };

  const utf8 = new TextDecoder();
  const describe = (t: number) => {
    const bytes = tok.tokenBytes(t);
    return { token: utf8.decode(bytes), bytes: [...bytes] };
  };
  let logits = input.logits;
  // Steps that need no full logits sample natively: the decode call then brings
  // back the next id, and `logits` is stale until a plain decode or prefill.
  const sampleNatively = nativeSamplingEnabled() && !input.logitsProcessor && input.logprobs === undefined;
  let next: number | undefined; // sampled natively by the last decode step
  // A constrained step's first draw, made natively by the last decode step (which also brought the
  // logits back for the draws that follow a refusal).
  let firstDraw: number | undefined;
  let completion = 0;
  let reasoningTokens = 0; // sampled while the thought was open (forced closing tokens excluded)
  const history: number[] = [];
  const fed: number[] = [];
  let finish: FinishReason | undefined;
  const t0 = performance.now();
  const mask = () => (channel === 'reasoning' ? thinking.mask() : undefined);

  /**
   * A constrained step: a draw from the sampler's distribution restricted to the tokens the constraint
   * allows (rejection: a refused token is masked and the draw repeats; after a few refusals every token is
   * checked at once). End of turn counts as refused: the constraint must be complete first.
   */
  const sampleConstrained = (l: Float32Array, c: AnswerConstraint, drawn?: number): number => {
    const banned = new Set<number>(endOfTurn);
    for (let tries = 0; ; tries++) {
      if (tries === 16) for (let t = 0; t < l.length; t++) if (!banned.has(t) && !c.allows(t)) banned.add(t);
      // The first draw may have been made natively already, from the same logits, mask and RNG state.
      const id = tries === 0 && drawn !== undefined ? drawn : sampler.sample(l, history, banned); // (throws "every token is masked" if nothing is allowed)
      if (c.allows(id)) return id;
      banned.add(id);
    }
  };

  let constraint = input.constraint;
  let prefixPending = Boolean(input.responsePrefix);
  let prefixTokens = 0;
  /** Feeds the response prefix where the answer begins; false when the context cannot hold it. */
  const feedPrefix = async (): Promise<boolean> => {
    prefixPending = false;
    const { text: prefixText, ids } = input.responsePrefix!;
    if (constraint)
      for (const id of ids) {
        if (!constraint.allows(id))
          throw new InvalidArgumentError(`send: responsePrefix ${JSON.stringify(prefixText)} cannot begin an answer of the requested form`);
        constraint.accept(id);
      }
    route(detok.flush());
    if (seq.length + ids.length >= seq.contextSize) return false;
    logits = await seq.prefill(ids);
    fed.push(...ids);
    prefixTokens = ids.length;
    route(prefixText);
    return true;
  };
  if (prefixPending && channel === 'text' && !(await feedPrefix())) finish = 'length';
  while (!finish) {
    if (input.signal?.aborted) {
      finish = 'abort';
      break;
    }
    if (completion >= input.maxTokens || seq.length >= seq.contextSize) {
      finish = 'length';
      break;
    }
    if (constraint?.complete) {
      finish = 'stop'; // the constrained answer is complete: nothing may follow it
      break;
    }
    const modelLogits = logits; // before the processor: logprobs describe the model's distribution
    let id: number;
    if (next !== undefined) {
      id = next;
      next = undefined;
    } else {
      if (input.logitsProcessor) {
        logits = Float32Array.from(logits);
        input.logitsProcessor(logits, { step: completion, channel });
      }
      const drawn = firstDraw;
      firstDraw = undefined;
      id = constraint && channel === 'text' ? sampleConstrained(logits, constraint, drawn) : sampler.sample(logits, history, mask());
    }
    if (!constraint && channel === 'text' && id === tok.special.toolCall && input.toolCallConstraint)
      constraint = input.toolCallConstraint(); // a strict call begins: it governs the rest of the answer
    if (constraint && channel === 'text') constraint.accept(id);
    if (endOfTurn.has(id)) {
      finish = 'stop';
      break;
    }
    history.push(id);
    completion++;
    const tokenChannel = channel;
    if (input.logprobs !== undefined && input.onLogprobs)
      input.onLogprobs(tokenLogprob(modelLogits, id, input.logprobs, describe), tokenChannel);
    const piece = detok.push(id);
    input.onToken?.(id, tokenChannel);
    route(piece);
    // A token that closed the thought is the end marker, not reasoning.
    if (tokenChannel === 'reasoning' && channel === 'reasoning') reasoningTokens++;
    const action = tokenChannel === 'reasoning' && channel === 'reasoning' ? thinking.observe(piece) : { kind: 'continue' as const };
    if (stopped) {
      finish = 'stop';
      break;
    }
    const closing = action.kind === 'close' && channel === 'reasoning';
    // Sample with this step only when the next iteration will sample from it (not
    // when a forced close or a limit comes first), so the RNG advances exactly as
    // on the JS path. History and mask are already those of the next step.
    // A constrained step draws natively too, as its first rejection-sampling try (mask: end of turn), and
    // brings the logits back for the tries after a refusal: most drawn tokens are allowed, so the JS sampler
    // rarely runs. (A strict call begins after its <TOOLCALL> token, which was sampled freely.)
    const constrained = constraint !== undefined && channel === 'text';
    const answerBegins = prefixPending && tokenChannel === 'reasoning' && channel === 'text'; // the prefix comes next
    const sampleNext =
      sampleNatively && !closing && !answerBegins && completion < input.maxTokens && seq.length + 1 < seq.contextSize;
    if (sampleNext && !constrained) next = (await seq.decodeSample(id, sampler, history, mask())).id;
    else if (sampleNext && constraint !== undefined && !constraint.complete) {
      const r = await seq.decodeSample(id, sampler, history, endOfTurn, { logits: true });
      logits = r.logits!;
      firstDraw = r.id;
    } else logits = await seq.decode(id);
    fed.push(id);
    if (closing) {
      // Budget reached: end the thought in the same sequence, then answer.
      route(detok.flush());
      const forced = tok.encode(action.text);
      if (seq.length + forced.length >= seq.contextSize) {
        finish = 'length';
        break;
      }
      logits = await seq.prefill(forced);
      fed.push(...forced);
      route(action.text);
    }
    if (prefixPending && channel === 'text' && !(await feedPrefix())) finish = 'length';
  }
  // End of stream: release held text (a partial marker is just text) and any open tool block.
  route(detok.flush());
  const tail = splitter.flush();
  if (tail && !stopped) (channel === 'reasoning' ? emitReasoning : emitText)(tail);
  if (toolBlock !== null) invalid.push({ raw: toolBlock, error: `unterminated ${TOOLCALL_OPEN} block` });
  if (finish === 'stop' && toolCalls.length > 0) finish = 'toolCalls';

  return {
    reasoning,
    text,
    toolCalls,
    invalidToolCalls: invalid,
    finishReason: finish,
    reasoningTokens,
    completionTokens: completion,
    decodeMs: performance.now() - t0,
    fed,
    prefixTokens,
  };
}
