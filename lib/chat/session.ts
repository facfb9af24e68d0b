/**
 * A chat session: a conversation held as one sequence whose state persists
 * between turns. Each turn renders the conversation with the model's own chat
 * template, feeds only the text the template adds after the previous turn (so
 * turn N+1 prefills just its new tokens: see `usage.cachedTokens`), then runs
 * the sampling loop (./turn.ts). Reasoning on/off maps to the model's documented
 * `/think` and `/no_think` switches; thinking budgets, tools, stop strings and
 * aborts are per send.
 */
import { z } from 'zod';

import { ContextOverflowError, InvalidArgumentError, OutOfMemoryError, StateFileError } from '../errors';
import { fnOption, parseOptions } from '../options';
import { commonPrefix, type PromptCache } from '../prompt-cache';
import type { Sequence } from '../sequence';
import { Sampler, samplingOptionsSchema, type SamplingOptions } from './sampling';
import { ChatTemplate, type ChatMessage } from './template';
import { JsonConstraint } from './json-constraint';
import { compileSchema, type SchemaNode } from './json-schema';
import { ToolCallConstraint } from './tool-call-constraint';
import type { ToolCallDelta } from './tool-call-stream';
import { closingTexts, thinkingBudgetSchema, type ThinkingBudget } from './thinking';
import type { TokenLogprob } from './logprobs';
import type { InvalidToolCall } from './tool-calls';
import { ToolRegistry, type ToolCall, type ToolSet } from './tools';
import { runTurn, type FinishReason, type TurnCallbacks } from './turn';
import type { Tokenizer } from './tokenizer';

/** What a session needs from its model. */
export interface ChatHost {
  readonly tokenizer: Tokenizer;
  readonly template: ChatTemplate;
  readonly defaultContextSize: number;
  createSequence(options: { contextSize: number }): Sequence;
  /** A sequence continuing a state saved to `file` (Model.loadSequence). */
  loadSequence(file: string, options: { contextSize?: number; signal?: AbortSignal }): Promise<Sequence>;
  /** When set, a turn that starts from an empty state is prefilled from the longest cached prefix. */
  readonly promptCache?: PromptCache;
}

const toolSetSchema = z.record(
  z.object({ description: z.string().optional(), parameters: z.any().optional(), handler: fnOption().optional() }).passthrough(),
);

export const chatSessionOptionsSchema = z
  .object({
    systemPrompt: z.string().optional(),
    /** 'on' (the model's default) or 'off': rendered as /think or /no_think in the system prompt. */
    reasoning: z.enum(['on', 'off']).optional(),
    thinking: thinkingBudgetSchema.optional(),
    tools: toolSetSchema.optional(),
    contextSize: z.number().int().min(16).optional(),
    /**
     * How much memory the session's sequence reserves (see Model.memory). 'context' (default): state + KV for the
     * whole contextSize, once. 'turn': only what the current turn can reach (the conversation so far, the new
     * prompt, maxTokens and the thought-closing tokens), so many more one-shot sessions fit at once (the server
     * uses it); a later turn that needs more moves the session to a larger sequence by feeding the conversation again.
     */
    reserve: z.enum(['context', 'turn']).optional(),
    /** Default sampling for every send (model card: temperature 0.6, top-p 0.95 with reasoning; greedy without). */
    sampling: samplingOptionsSchema.optional(),
    /**
     * How many of the latest sends keep a copy of the state from before them, so that rewind()/regenerate() of
     * those sends swaps the copy in instead of feeding the conversation again. Each copy holds the state's fixed
     * size plus the KV of the tokens at that point (see Model.memory); a copy that does not fit is skipped.
     * Default 0: rewinding feeds the kept tokens again (the identical state, at the cost of a prefill).
     */
    checkpoints: z.number().int().min(0).max(64).optional(),
  })
  .strict();
export type ChatSessionOptions = Omit<z.input<typeof chatSessionOptionsSchema>, 'tools'> & { tools?: ToolSet };

export const sendOptionsSchema = samplingOptionsSchema
  .extend({
    maxTokens: z.number().int().min(1).optional(),
    reasoning: z.enum(['on', 'off']).optional(),
    thinking: thinkingBudgetSchema.optional(),
    stop: z.union([z.string(), z.array(z.string())]).optional(),
    signal: z.custom<AbortSignal>((v) => v === undefined || (typeof v === 'object' && v !== null && 'aborted' in v)).optional(),
    /** Reject with the signal's reason instead of returning the partial reply with finishReason 'abort'. */
    throwOnAbort: z.boolean().optional(),
    /** Tools for this send; with handlers, calls are executed and the conversation continues until an answer. */
    tools: toolSetSchema.optional(),
    /** Most automatic tool rounds per send (default 8). */
    maxToolRounds: z.number().int().min(1).optional(),
    /** On a prompt longer than the context: 'error' (default) or drop the oldest turns. */
    contextOverflow: z.enum(['error', 'dropOldest']).optional(),
    /**
     * 'json': JSON mode. The answer (not the reasoning) is constrained to valid JSON and ends when one object is
     * complete (`finishReason` 'stop'; 'length' if maxTokens cut it short). `{ schema }`: the same, and the value
     * must also match the JSON Schema (the subset lib/chat/json-schema.ts enforces; InvalidArgumentError for
     * keywords it cannot). Tell the model what to write in the prompt too. Default 'text'.
     */
    responseFormat: z.union([z.enum(['text', 'json']), z.object({ schema: z.any() }).strict()]).optional(),
    /**
     * 'required': the (first) answer must be a tool call: `<TOOLCALL>[...]</TOOLCALL>` with a valid JSON
     * array is enforced token by token; the calls are then validated as usual. Needs tools. With handlers,
     * later rounds of the same send are free again (so the model can answer). Default 'auto'.
     */
    toolChoice: z.enum(['auto', 'required']).optional(),
    /**
     * Every tool call the model starts (with <TOOLCALL>) is generated under the tools' schemas, as a required
     * call is: declared names, arguments following their schema (OpenAI's `strict` function calling).
     * Default false: calls are parsed and validated afterwards, and invalid ones reported.
     */
    strictToolCalls: z.boolean().optional(),
    onReasoning: fnOption().optional(),
    onText: fnOption().optional(),
    onToken: fnOption().optional(),
    onToolCall: fnOption().optional(),
    /** A tool call as it is generated: `{ index, name }` once its name is complete, then `{ index, arguments }` pieces of its JSON. */
    onToolCallDelta: fnOption().optional(),
    onLogprobs: fnOption().optional(),
    /** Report the log-probability of each answer token in reply.logprobs (and onLogprobs). */
    logprobs: z.boolean().optional(),
    /** With logprobs: this many most likely alternatives per token (0-20). */
    topLogprobs: z.number().int().min(0).max(20).optional(),
    logitsProcessor: fnOption().optional(),
    /**
     * The answer starts with this text (fed, not generated; after the thought when reasoning is on) and the
     * model continues it: a format it must follow, the opening of a code block, a language. Part of
     * `reply.text`; its tokens count as prompt, not completion. With a JSON responseFormat or a required
     * tool call it must be a valid start of such an answer (InvalidArgumentError otherwise). With tool
     * handlers, only the first round's answer gets it.
     */
    responsePrefix: z.string().min(1).optional(),
  })
  .strict();
export type SendOptions = Omit<z.input<typeof sendOptionsSchema>, keyof TurnCallbacks | 'tools' | 'signal'> &
  TurnCallbacks & { tools?: ToolSet; signal?: AbortSignal };

export interface ChatUsage {
  /** Tokens of context the reply was generated from (the whole conversation so far). */
  promptTokens: number;
  /** Of those, tokens already in the session's state and not prefilled again. */
  cachedTokens: number;
  reasoningTokens: number;
  /** Generated tokens (reasoning + answer). */
  completionTokens: number;
}

export interface ChatReply {
  reasoning: string;
  text: string;
  toolCalls: ToolCall[];
  /** Tool-call blocks the model wrote that could not be parsed. */
  invalidToolCalls: InvalidToolCall[];
  /** With `logprobs: true`: one entry per answer token (the reasoning channel is not included). */
  logprobs?: TokenLogprob[];
  finishReason: FinishReason;
  usage: ChatUsage;
  timings: { prefillMs: number; decodeMs: number; tokensPerSecond: number };
}

export type ChatEvent =
  | { type: 'reasoning'; text: string }
  | { type: 'text'; text: string }
  | { type: 'toolCallDelta'; delta: ToolCallDelta }
  | { type: 'toolCall'; call: ToolCall }
  | { type: 'done'; reply: ChatReply };

export interface ChatSnapshot {
  format: 'nemotron-node.chat/1';
  options: { systemPrompt?: string; reasoning?: 'on' | 'off'; thinking?: ThinkingBudget; contextSize: number };
  history: ChatMessage[];
  /** Token ids held by the session's sequence; restoring feeds them again, giving the identical state. */
  tokens: number[];
  turnOpen: boolean;
}

type Input = string | ChatMessage | ChatMessage[];

/** Where a send began: what rewind() needs to undo it. */
interface SendMark {
  /** this.messages.length before the send; its input messages follow. */
  messages: number;
  inputCount: number;
  /** this.tokens.length before the send, valid while the session's token list keeps `epoch`. */
  tokens: number;
  epoch: number;
  turnOpen: boolean;
  renderedTools: string;
  /** The state before the send, with the ids it holds (options.checkpoints). */
  checkpoint?: { seq: Sequence; tokens: number[] };
}

/** The `meta` of a chat session's state file: the snapshot, whose tokens the saved state holds. */
export const CHAT_FILE_FORMAT = 'nemotron-node.chat-file/1';

export class ChatSession {
  private seq: Sequence | undefined;
  private tokens: number[] = []; // every id fed to `seq`, in order
  private messages: ChatMessage[] = [];
  private renderedTools = ''; // the tool declarations the state was built with
  private turnOpen = false; // the last assistant turn in the state has no end-of-turn token yet
  private sending = 0; // sends in progress (the state is mid-turn while > 0)
  private marks: SendMark[] = []; // one per send still in the history, oldest first
  // Changes whenever `tokens` is replaced rather than extended: a mark from another epoch cannot cut it.
  private epoch = 0;
  private readonly options: z.output<typeof chatSessionOptionsSchema>;
  private readonly sessionTools: ToolSet;
  readonly contextSize: number;

  /** @internal Use model.createChatSession(). */
  constructor(
    private readonly host: ChatHost,
    options: ChatSessionOptions = {},
  ) {
    this.options = parseOptions(chatSessionOptionsSchema, options, 'createChatSession');
    this.sessionTools = (options.tools ?? {}) as ToolSet;
    new ToolRegistry(this.sessionTools); // validates names and schemas now, not at the first send
    this.contextSize = this.options.contextSize ?? host.defaultContextSize;
  }

  /** The conversation so far (system prompt excluded), as chat messages. */
  get history(): readonly ChatMessage[] {
    return this.messages;
  }

  /** Sends a user message (or messages, e.g. tool results) and resolves to the assistant's reply. */
  async send(input: Input, options: SendOptions = {}): Promise<ChatReply> {
    const opts = parseOptions(sendOptionsSchema, options, 'send') as SendOptions & z.output<typeof sendOptionsSchema>;
    let newMessages = toMessages(input);
    const tools = { ...this.sessionTools, ...((options.tools ?? {}) as ToolSet) };
    const registry = new ToolRegistry(tools);
    const maxRounds = opts.maxToolRounds ?? 8;
    if (opts.toolChoice === 'required' && registry.size === 0)
      throw new InvalidArgumentError("send: toolChoice 'required' needs tools (session or send option)");
    const schema = typeof opts.responseFormat === 'object' ? compileSchema(opts.responseFormat.schema) : undefined;
    if (opts.toolChoice === 'required' && opts.responseFormat !== undefined && opts.responseFormat !== 'text')
      throw new InvalidArgumentError("send: toolChoice 'required' and a JSON responseFormat cannot be combined");
    this.sending++;
    let mark: SendMark | undefined;
    try {
      mark = await this.markSend(newMessages.length);
      return await this.sendRounds(newMessages, opts, tools, registry, maxRounds, schema);
    } finally {
      this.sending--;
      // A send that failed before its messages entered the history left nothing to undo.
      if (mark && this.messages.length <= mark.messages && this.marks[this.marks.length - 1] === mark) this.dropMarks(this.marks.length - 1);
    }
  }

  /**
   * Undoes the last `count` sends (default 1): their messages (input, replies, tool rounds) leave the history
   * and the state goes back to what it was before them, so the next send continues as if they never happened.
   * Resolves to the input messages of the earliest send undone (to send again, edited or not). The state comes
   * from a checkpoint when the session keeps one (options.checkpoints); otherwise the tokens before those sends
   * are fed again (the identical state). A session resumed from a snapshot or file, or one whose state was
   * rebuilt since (a changed tool list, contextOverflow 'dropOldest'), rewinds its history to the last user
   * message(s) and rebuilds the state from the history at the next send. Not while a send runs.
   */
  async rewind(count = 1): Promise<ChatMessage[]> {
    if (!Number.isInteger(count) || count < 1) throw new InvalidArgumentError(`rewind: count must be a whole number of at least 1, got ${count}`);
    if (this.sending > 0) throw new InvalidArgumentError('rewind: a send is in progress; rewind after it resolves');
    this.sending++;
    try {
      return await this.rewindSends(count);
    } finally {
      this.sending--;
    }
  }

  /**
   * Replaces the last reply: rewinds the last send and sends its input again with these options (give a seed
   * or a temperature for a different answer; greedy settings give the same one). Resolves to the new reply.
   */
  async regenerate(options: SendOptions = {}): Promise<ChatReply> {
    parseOptions(sendOptionsSchema, options, 'regenerate'); // bad options fail before the last reply is undone
    const input = await this.rewind(1);
    return this.send(input, options);
  }

  private async sendRounds(
    newMessages: ChatMessage[],
    opts: SendOptions & z.output<typeof sendOptionsSchema>,
    tools: ToolSet,
    registry: ToolRegistry,
    maxRounds: number,
    schema: SchemaNode | undefined,
  ): Promise<ChatReply> {
    for (let round = 0; ; round++) {
      const reply = await this.turn(newMessages, round === 0 ? opts : { ...opts, toolChoice: 'auto', responsePrefix: undefined }, registry, schema);
      const runnable = reply.finishReason === 'toolCalls' && reply.toolCalls.every((c) => !c.error && tools[c.name]?.handler);
      if (!runnable || round + 1 >= maxRounds) return reply;
      newMessages = [];
      for (const call of reply.toolCalls) {
        let content: string;
        try {
          const result = await tools[call.name].handler!(call.arguments, call);
          content = typeof result === 'string' ? result : JSON.stringify(result ?? null);
        } catch (err) {
          content = JSON.stringify({ error: (err as Error)?.message ?? String(err) });
        }
        newMessages.push({ role: 'tool', content, tool_call_id: call.id, name: call.name });
      }
    }
  }

  /**
   * Like send(), as an async iterator of events: reasoning/text deltas, tool calls (their deltas while generated,
   * then each parsed call), then 'done' with the reply.
   */
  stream(
    input: Input,
    options: Omit<SendOptions, 'onReasoning' | 'onText' | 'onToolCall' | 'onToolCallDelta'> = {},
  ): AsyncIterable<ChatEvent> {
    const queue: ChatEvent[] = [];
    let wake: (() => void) | undefined;
    let failure: unknown;
    let done = false;
    const push = (e: ChatEvent) => {
      queue.push(e);
      wake?.();
    };
    const run = this.send(input, {
      ...options,
      onReasoning: (text) => push({ type: 'reasoning', text }),
      onText: (text) => push({ type: 'text', text }),
      onToolCall: (call) => push({ type: 'toolCall', call }),
      onToolCallDelta: (delta) => push({ type: 'toolCallDelta', delta }),
    }).then(
      (reply) => push({ type: 'done', reply }),
      (err) => {
        failure = err;
        wake?.();
      },
    ).finally(() => {
      done = true;
      wake?.();
    });
    return {
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<ChatEvent>> => {
          for (;;) {
            if (queue.length > 0) return { value: queue.shift()!, done: false };
            if (failure !== undefined) throw failure;
            if (done) return { value: undefined, done: true };
            await new Promise<void>((r) => (wake = r));
            wake = undefined;
          }
        },
        return: async () => {
          await run.catch(() => undefined);
          return { value: undefined, done: true };
        },
      }),
    };
  }

  /** An independent copy of the conversation (state and history) that continues identically. */
  async fork(): Promise<ChatSession> {
    const copy = new ChatSession(this.host, { ...this.options, tools: this.sessionTools });
    copy.messages = structuredClone(this.messages);
    copy.tokens = [...this.tokens];
    copy.renderedTools = this.renderedTools;
    copy.turnOpen = this.turnOpen;
    copy.epoch = this.epoch;
    copy.marks = this.marks.map(({ checkpoint: _c, ...m }) => ({ ...m })); // the copy rewinds by feeding tokens
    if (this.seq) copy.seq = await this.seq.clone();
    return copy;
  }

  /** Forgets the conversation (the system prompt and options stay). */
  async reset(): Promise<void> {
    this.messages = [];
    this.dropMarks(0);
    this.replaceTokens([]);
    this.turnOpen = false;
    if (this.seq) await this.seq.reset();
  }

  /** A JSON-serialisable snapshot (history + the state's tokens) for model.restoreChatSession(). */
  save(): ChatSnapshot {
    const { systemPrompt, reasoning, thinking } = this.options;
    return {
      format: 'nemotron-node.chat/1',
      options: { systemPrompt, reasoning, thinking, contextSize: this.contextSize },
      history: structuredClone(this.messages),
      tokens: [...this.tokens],
      turnOpen: this.turnOpen,
    };
  }

  /**
   * Saves the conversation to one file: what save() returns plus the sequence's state, so
   * `model.loadChatSession(path)` resumes it at once, in this process or another, without feeding the
   * conversation again (see Sequence.saveState: atomic, checksummed, tied to this model's weights).
   * Tools are not saved (handlers are code): pass them to loadChatSession again. Not while a send runs.
   */
  async saveToFile(path: string): Promise<{ bytes: number }> {
    if (this.sending > 0) throw new InvalidArgumentError('saveToFile: a send is in progress; save after it resolves');
    const meta = JSON.stringify({ format: CHAT_FILE_FORMAT, snapshot: this.save() });
    if (this.seq && !this.seq.disposed) {
      if (this.seq.length !== this.tokens.length)
        throw new Error(`saveToFile: internal error: the state holds ${this.seq.length} tokens, the session ${this.tokens.length}`);
      return { bytes: (await this.seq.saveState(path, { meta })).bytes };
    }
    // No state (never sent, or disposed): the file holds the history and the zero state.
    const empty = this.host.createSequence({ contextSize: this.contextSize });
    try {
      return { bytes: (await empty.saveState(path, { meta })).bytes };
    } finally {
      empty.dispose();
    }
  }

  /** @internal Resumes from a file written by saveToFile (the snapshot is its parsed meta). */
  async restoreFromFile(snapshot: ChatSnapshot, file: string, savedTokens: number, signal?: AbortSignal): Promise<void> {
    this.assign(snapshot);
    const tokens = this.tokenizerCheck(snapshot.tokens);
    if (tokens.length !== savedTokens)
      throw new StateFileError(`state file '${file}': the conversation lists ${tokens.length} tokens but the state holds ${savedTokens}`);
    if (tokens.length === 0) return; // the zero state: the first send starts a sequence as usual
    const contextSize = this.options.reserve === 'turn' ? tokens.length : this.contextSize;
    this.seq = await this.host.loadSequence(file, { contextSize, signal });
    this.tokens = tokens;
  }

  private assign(snapshot: ChatSnapshot): void {
    this.messages = structuredClone(snapshot.history);
    this.dropMarks(0);
    this.turnOpen = snapshot.turnOpen;
    this.replaceTokens([]);
    this.renderedTools = JSON.stringify(new ToolRegistry(this.sessionTools).forTemplate);
  }

  /** @internal Rebuilds the state from a snapshot by feeding its tokens again. */
  async restore(snapshot: ChatSnapshot): Promise<void> {
    if (snapshot?.format !== 'nemotron-node.chat/1') throw new InvalidArgumentError('restoreChatSession: not a chat snapshot');
    this.assign(snapshot);
    if (snapshot.tokens.length > 0) await this.feed(this.tokenizerCheck(snapshot.tokens));
  }

  /** Frees the session's state. The history stays: a later send rebuilds the state from it (feeding it all again). */
  dispose(): void {
    this.seq?.dispose();
    this.seq = undefined;
    this.replaceTokens([]); // nothing is cached any more: the next turn renders and feeds the whole conversation
    this.turnOpen = false;
    for (const m of this.marks) this.dropCheckpoint(m);
  }

  // ---------------------------------------------------------------- internals

  private replaceTokens(ids: number[]): void {
    this.tokens = ids;
    this.epoch++;
  }

  /** Records where a send begins (and, with options.checkpoints, a copy of the state there). */
  private async markSend(inputCount: number): Promise<SendMark> {
    const mark: SendMark = {
      messages: this.messages.length,
      inputCount,
      tokens: this.tokens.length,
      epoch: this.epoch,
      turnOpen: this.turnOpen,
      renderedTools: this.renderedTools,
    };
    const keep = this.options.checkpoints ?? 0;
    if (keep > 0 && this.seq && !this.seq.disposed && this.tokens.length > 0) {
      try {
        // Sized to what it holds: rewinding grows it back to the session's context size when needed.
        mark.checkpoint = { seq: await this.seq.clone({ contextSize: this.tokens.length }), tokens: [...this.tokens] };
      } catch (err) {
        if (!(err instanceof OutOfMemoryError)) throw err; // no room: this send rewinds by feeding tokens
      }
    }
    this.marks.push(mark);
    const held = this.marks.filter((m) => m.checkpoint);
    for (const m of held.slice(0, Math.max(0, held.length - keep))) this.dropCheckpoint(m);
    return mark;
  }

  private dropCheckpoint(m: SendMark): void {
    m.checkpoint?.seq.dispose();
    m.checkpoint = undefined;
  }

  /** Forgets the marks from index `from` on (and frees their checkpoints). */
  private dropMarks(from: number): void {
    for (const m of this.marks.slice(from)) this.dropCheckpoint(m);
    this.marks.length = Math.min(this.marks.length, from);
  }

  private async rewindSends(count: number): Promise<ChatMessage[]> {
    if (this.marks.length >= count) {
      const mark = this.marks[this.marks.length - count];
      const input = this.messages.slice(mark.messages, mark.messages + mark.inputCount);
      await this.restoreState(mark);
      this.messages = this.messages.slice(0, mark.messages);
      this.dropMarks(this.marks.length - count);
      return structuredClone(input);
    }
    // More sends than this session saw (it was resumed, or history was dropped): the marked sends, then
    // earlier ones, each found where it began, at a user message.
    const head = this.messages.slice(0, this.marks[0]?.messages ?? this.messages.length);
    const rest = count - this.marks.length;
    const users = head.flatMap((m, i) => (m.role === 'user' ? [i] : []));
    const starts = users.filter((i, k) => k === 0 || users[k - 1] !== i - 1); // consecutive user messages: one send
    if (starts.length < rest)
      throw new InvalidArgumentError(`rewind: the history holds ${this.marks.length + starts.length} send(s), cannot undo ${count}`);
    const at = starts[starts.length - rest];
    let end = at;
    while (end < head.length && head[end].role === 'user') end++;
    const input = head.slice(at, end);
    this.messages = head.slice(0, at);
    this.dropMarks(0);
    this.dropState(); // rebuilt from the history at the next send
    return structuredClone(input);
  }

  /**
   * The oldest `count` messages left the history: marks shift with it, sends that lost messages can no longer
   * be undone, and no checkpoint holds a state that matches the shorter history any more.
   */
  private forgetOldest(count: number): void {
    for (const m of this.marks) {
      m.messages -= count;
      this.dropCheckpoint(m);
    }
    this.marks = this.marks.filter((m) => m.messages >= 0);
  }

  /** Puts back the state (and what describes it) from before `mark`'s send. */
  private async restoreState(mark: SendMark): Promise<void> {
    const cp = mark.checkpoint;
    mark.checkpoint = undefined;
    if (cp) {
      this.seq?.dispose();
      this.seq = cp.seq;
      this.tokens = cp.tokens;
      this.epoch = mark.epoch; // the earlier marks of that epoch describe prefixes of these tokens again
      if (this.options.reserve !== 'turn' && cp.seq.contextSize < this.contextSize) {
        try {
          this.seq = await cp.seq.clone({ contextSize: this.contextSize });
          cp.seq.dispose();
        } catch (err) {
          if (!(err instanceof OutOfMemoryError)) throw err;
          // No room for both: feed the tokens into a full-size sequence instead (waits for memory).
          cp.seq.dispose();
          this.seq = undefined;
          await this.feed(this.tokens.splice(0), undefined);
        }
      }
    } else if (mark.tokens === 0) {
      this.dropState();
    } else if (mark.epoch === this.epoch && this.seq && !this.seq.disposed && mark.tokens <= this.tokens.length) {
      const keep = this.tokens.slice(0, mark.tokens);
      await this.seq.reset();
      this.tokens = [];
      await this.feed(keep);
    } else {
      this.dropState();
      return;
    }
    this.turnOpen = mark.turnOpen;
    this.renderedTools = mark.renderedTools;
  }

  /** No state: the next send renders the whole conversation and feeds it. */
  private dropState(): void {
    this.seq?.dispose();
    this.seq = undefined;
    this.replaceTokens([]);
    this.turnOpen = false;
  }

  private tokenizerCheck(ids: number[]): number[] {
    return this.host.tokenizer.checkIds(ids, 'restoreChatSession');
  }

  private sequence(): Sequence {
    if (!this.seq || this.seq.disposed) this.seq = this.host.createSequence({ contextSize: this.contextSize });
    return this.seq;
  }

  /**
   * reserve 'turn': makes the sequence hold at least `tokens` (capped at contextSize). A smaller one is
   * replaced by a new sequence that is fed the session's tokens again (same state, larger reservation).
   */
  private async fitSequence(tokens: number, signal?: AbortSignal): Promise<void> {
    const size = Math.min(this.contextSize, tokens);
    if (this.seq && !this.seq.disposed && this.seq.contextSize >= size) return;
    if (this.seq && !this.seq.disposed && this.tokens.length > 0) {
      // A larger copy of the state costs a memory copy, not a prefill; when the budget has no room for
      // both at once, fall through: give this one back and feed the conversation again (waiting for memory).
      try {
        const grown = await this.seq.clone({ contextSize: size });
        this.seq.dispose();
        this.seq = grown;
        return;
      } catch (err) {
        if (!(err instanceof OutOfMemoryError)) throw err;
      }
    }
    this.seq?.dispose(); // its reservation goes back before the larger one is taken
    this.seq = this.host.createSequence({ contextSize: size });
    if (this.tokens.length > 0) await this.seq.prefill(this.tokens, { signal });
  }

  /**
   * Prompt positions worth a prompt-cache snapshot: the end of the system block (shared by every
   * conversation with this system prompt and tools) and the end of the conversation before the
   * generation prompt (the next request of an API conversation resends it with the reply appended).
   */
  private snapshotPoints(messages: ChatMessage[], registry: ToolRegistry, ids: number[]): number[] {
    const tok = this.host.tokenizer;
    const points = [commonPrefix(tok.encode(this.render(messages, registry, false)), ids)];
    if (this.systemMessage() || registry.size > 0) {
      try {
        points.push(commonPrefix(tok.encode(this.render([], registry, false)), ids));
      } catch {
        // a template that cannot render a system block alone: no snapshot there
      }
    }
    return points;
  }

  /** Tokens a thinking budget may force into a turn beyond maxTokens (the closing text), plus one. */
  private closingSlack(budget: ThinkingBudget | undefined): number {
    if (!budget) return 0;
    const tok = this.host.tokenizer;
    return Math.max(...closingTexts().map((t) => tok.encode(t).length)) + 1;
  }

  private async feed(ids: number[], signal?: AbortSignal): Promise<Float32Array> {
    // (signal: stop waiting for memory when the model's budget is full; see Model.memory)
    const logits = await this.sequence().prefill(ids, { signal });
    this.tokens.push(...ids);
    return logits;
  }

  private async turn(
    newMessages: ChatMessage[],
    opts: SendOptions & z.output<typeof sendOptionsSchema>,
    registry: ToolRegistry,
    schema?: SchemaNode, // responseFormat { schema }, compiled
  ): Promise<ChatReply> {
    const tok = this.host.tokenizer;
    const budget = opts.thinking ?? this.options.thinking;
    const reasoningOff = (opts.reasoning ?? this.options.reasoning) === 'off' || budget?.maxTokens === 0;
    const turnFlag = opts.reasoning || budget ? (reasoningOff ? '/no_think' : '/think') : undefined;
    const userMessages = newMessages.map((m, i) =>
      turnFlag && i === newMessages.length - 1 && m.role === 'user' ? { ...m, content: `${m.content ?? ''} ${turnFlag}` } : m,
    );

    const toolsJson = JSON.stringify(registry.forTemplate);
    const t0 = performance.now();
    let { ids, promptText, cached } = this.promptDelta(userMessages, registry, toolsJson);
    const maxTokens = opts.maxTokens ?? Math.max(1, this.contextSize - cached - ids.length);
    if (cached + ids.length >= this.contextSize) {
      if ((opts.contextOverflow ?? 'error') === 'error')
        throw new ContextOverflowError(
          `send: the conversation needs ${cached + ids.length} tokens but the session's context size is ${this.contextSize} ` +
            "(start a new session, raise contextSize, or pass contextOverflow: 'dropOldest')",
        );
      ({ ids, promptText } = this.dropOldestUntilFits(userMessages, registry));
      cached = 0;
    }
    this.renderedTools = toolsJson;
    // What this turn can reach: the state, the prompt, a response prefix, the reply and a thinking budget's closing tokens.
    const prefix = opts.responsePrefix ? { text: opts.responsePrefix, ids: tok.encode(opts.responsePrefix) } : undefined;
    const reach = cached + ids.length + (prefix?.ids.length ?? 0) + maxTokens + this.closingSlack(reasoningOff ? undefined : budget);
    let logits: Float32Array;
    let reused = 0; // prompt tokens a prompt-cache snapshot supplied
    const cache = this.host.promptCache;
    if (cached === 0 && cache) {
      // A fresh state: start from the longest cached prefix of this prompt instead of token 0.
      this.seq?.dispose();
      this.seq = undefined;
      this.replaceTokens([]);
      const r = await cache.prefill(ids, {
        contextSize: this.options.reserve === 'turn' ? Math.min(this.contextSize, reach) : this.contextSize,
        snapshotAt: this.snapshotPoints([...this.messages, ...userMessages], registry, ids),
        signal: opts.signal,
      });
      this.seq = r.seq;
      this.tokens.push(...ids);
      logits = r.logits;
      reused = r.reusedTokens;
    } else {
      if (cached === 0 && this.seq && this.seq.length > 0) {
        await this.seq.reset();
        this.replaceTokens([]);
      }
      if (this.options.reserve === 'turn') await this.fitSequence(reach, opts.signal);
      logits = await this.feed(ids, opts.signal);
    }
    const prefillMs = performance.now() - t0;
    this.messages.push(...newMessages);
    this.turnOpen = true;

    const reasoning = opensThought(promptText);
    const sampling: SamplingOptions = {
      ...(reasoning ? { temperature: 0.6, topP: 0.95 } : { temperature: 0 }),
      ...this.options.sampling,
      ...pickSampling(opts),
    };
    const logprobs: TokenLogprob[] | undefined = opts.logprobs ? [] : undefined;
    const toolList = registry.forTemplate.map((t) => ({ name: t.function.name, parameters: t.function.parameters }));
    const r = await runTurn({
      seq: this.seq!,
      tokenizer: tok,
      logits,
      reasoning,
      budget: reasoningOff ? undefined : budget,
      sampler: new Sampler(sampling),
      maxTokens,
      stop: typeof opts.stop === 'string' ? [opts.stop] : (opts.stop ?? []),
      signal: opts.signal,
      tools: registry,
      onReasoning: opts.onReasoning,
      onText: opts.onText,
      onToken: opts.onToken,
      onToolCall: opts.onToolCall,
      onToolCallDelta: opts.onToolCallDelta,
      logitsProcessor: opts.logitsProcessor,
      responsePrefix: prefix,
      logprobs: logprobs ? (opts.topLogprobs ?? 0) : undefined,
      // (a strict call the model starts itself: the constraint takes over from its <TOOLCALL> token)
      toolCallConstraint: opts.strictToolCalls && toolList.length > 0 ? () => new ToolCallConstraint(tok, toolList) : undefined,
      constraint:
        opts.toolChoice === 'required'
          ? new ToolCallConstraint(tok, toolList)
          : schema
            ? new JsonConstraint(tok, schema)
            : opts.responseFormat === 'json'
              ? new JsonConstraint(tok)
              : undefined,
      onLogprobs: (entry, channel) => {
        if (channel !== 'text') return;
        logprobs!.push(entry);
        opts.onLogprobs?.(entry, channel);
      },
    });
    this.tokens.push(...r.fed); // keep the token list in step with the sequence
    this.messages.push(assistantMessage(r.text, r.reasoning, r.toolCalls));
    if (r.finishReason === 'abort' && opts.throwOnAbort) throw opts.signal?.reason ?? new Error('aborted');
    const promptTokens = cached + ids.length + r.prefixTokens;
    const { fed: _fed, reasoningTokens: _r, completionTokens: _c, decodeMs: _d, prefixTokens: _p, ...visible } = r;
    return {
      ...visible,
      ...(logprobs ? { logprobs } : {}),
      usage: { promptTokens, cachedTokens: cached + reused, reasoningTokens: r.reasoningTokens, completionTokens: r.completionTokens },
      timings: {
        prefillMs,
        decodeMs: r.decodeMs,
        tokensPerSecond: r.decodeMs > 0 ? (1000 * r.completionTokens) / r.decodeMs : 0,
      },
    };
  }

  /**
   * The tokens to feed for this turn and how many state tokens are reused. With a
   * non-empty state, only what the template adds after the history's last
   * end-of-turn marker is fed (preceded by that marker when the last turn did not
   * end with one). A changed tool list changes the system block: then everything
   * is rendered and fed again.
   */
  private promptDelta(newMessages: ChatMessage[], registry: ToolRegistry, toolsJson: string) {
    const full = this.render([...this.messages, ...newMessages], registry, true);
    const tok = this.host.tokenizer;
    const eos = tok.special.endOfTurn !== undefined ? tok.idToToken(tok.special.endOfTurn) : undefined;
    const canReuse = this.tokens.length > 0 && this.messages.length > 0 && toolsJson === this.renderedTools && eos;
    if (canReuse) {
      const probe = this.render([...this.messages, { role: 'user', content: '' }], registry, false);
      const n = countOccurrences(probe, eos!);
      const at = nthIndexOf(full, eos!, n);
      if (n > 0 && at >= 0) {
        const deltaText = full.slice(at + eos!.length);
        const ids = [...(this.turnOpen ? [tok.special.endOfTurn!] : []), ...tok.encode(deltaText)];
        return { ids, promptText: full, cached: this.tokens.length };
      }
    }
    return { ids: tok.encode(full), promptText: full, cached: 0 };
  }

  private dropOldestUntilFits(newMessages: ChatMessage[], registry: ToolRegistry) {
    const tok = this.host.tokenizer;
    while (this.messages.length > 0) {
      // drop through the next user message boundary so turns stay whole
      let cut = 1;
      while (cut < this.messages.length && this.messages[cut].role !== 'user') cut++;
      this.messages = this.messages.slice(cut);
      this.forgetOldest(cut);
      const full = this.render([...this.messages, ...newMessages], registry, true);
      const ids = tok.encode(full);
      if (ids.length < this.contextSize) return { ids, promptText: full };
    }
    const full = this.render(newMessages, registry, true);
    const ids = tok.encode(full);
    if (ids.length >= this.contextSize)
      throw new ContextOverflowError(
        `send: the new message alone needs ${ids.length} tokens; the session's context size is ${this.contextSize}`,
      );
    return { ids, promptText: full };
  }

  private render(messages: ChatMessage[], registry: ToolRegistry, generation: boolean): string {
    const sys = this.systemMessage();
    return this.host.template.render({
      ...this.host.tokenizer.templateVariables,
      messages: sys ? [sys, ...messages] : messages,
      tools: registry.size > 0 ? registry.forTemplate : undefined,
      addGenerationPrompt: generation,
    });
  }

  private systemMessage(): ChatMessage | undefined {
    const { systemPrompt, reasoning } = this.options;
    const flag = reasoning === 'off' || this.options.thinking?.maxTokens === 0 ? '/no_think' : reasoning === 'on' ? '/think' : '';
    if (systemPrompt === undefined && !flag) return undefined;
    return { role: 'system', content: [systemPrompt ?? '', flag].filter(Boolean).join(' ') };
  }
}

function toMessages(input: Input): ChatMessage[] {
  if (typeof input === 'string') return [{ role: 'user', content: input }];
  const list = Array.isArray(input) ? input : [input];
  if (list.length === 0) throw new InvalidArgumentError('send: no message given');
  for (const m of list)
    if (!m || typeof m.role !== 'string') throw new InvalidArgumentError('send: each message needs a "role"');
  return list.map((m) => ({ ...m }));
}

function assistantMessage(text: string, reasoning: string, calls: ToolCall[]): ChatMessage {
  const m: ChatMessage = { role: 'assistant', content: text };
  if (reasoning) m.reasoning_content = reasoning;
  if (calls.length > 0)
    m.tool_calls = calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
  return m;
}

/** The generation prompt opened a thought: its last "<think>" is not closed. */
function opensThought(prompt: string): boolean {
  return prompt.lastIndexOf('<think>') > prompt.lastIndexOf('</think>');
}

function pickSampling(o: SamplingOptions): SamplingOptions {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(samplingOptionsSchema.shape) as (keyof SamplingOptions)[]) if (o[k] !== undefined) out[k] = o[k];
  return out as SamplingOptions;
}

function countOccurrences(s: string, sub: string): number {
  let n = 0;
  for (let i = s.indexOf(sub); i >= 0; i = s.indexOf(sub, i + sub.length)) n++;
  return n;
}

function nthIndexOf(s: string, sub: string, n: number): number {
  let i = -1;
  for (let k = 0; k < n; k++) {
    i = s.indexOf(sub, i + 1);
    if (i < 0) return -1;
  }
  return i;
}
