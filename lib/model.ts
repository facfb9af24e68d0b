/**
 * loadModel() and the Model object: a NemotronH checkpoint directory loaded into
 * the native engine, on which sequences are created.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { Admission, mib, type Reservation } from './admission';
import { DisposedError, InvalidArgumentError, StateFileError, fromNative } from './errors';
import { inspectStateFile } from './state-file';
import { parseHfJson } from './hf-json';
import { native, type NativeMemoryPlan, type NativeModel, type NativeModelInfo } from './native';
import {
  createSequenceOptionsSchema,
  loadModelOptionsSchema,
  parseOptions,
  type CreateSequenceOptions,
  type LoadModelOptions,
} from './options';
import { CHAT_FILE_FORMAT, ChatSession, type ChatHost, type ChatSessionOptions, type ChatSnapshot } from './chat/session';
import { ChatTemplate } from './chat/template';
import { Tokenizer } from './chat/tokenizer';
import { DecodeBatcher, type DecodeRequest } from './decode-batcher';
import { PromptCache, type PromptCacheOptions } from './prompt-cache';
import { Sequence, type SequenceOwner } from './sequence';
import { TaskQueue } from './task-queue';
import { toTokenArray } from './tokens';

/** The model's config.json as parsed (Hugging Face field names). */
export type ModelConfig = Record<string, unknown> & {
  model_type: string;
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  hybrid_override_pattern?: string;
};

const DEFAULT_CONTEXT = 4096;
const MAX_DEFAULT_CONTEXT = 32768;

/** Where the model's memory goes and what sequences may still take (bytes). See Model.memory. */
export interface MemoryReport {
  device: 'cpu' | 'cuda';
  /** Weights (CUDA: on the GPU; CPU: mapped from the files). */
  weightBytes: number;
  /** Recurrent state of one sequence (conv window + SSM state of every Mamba layer, fp32), fixed. */
  stateBytesPerSequence: number;
  /** KV cache per token of context (k + v of every attention layer, in kvCacheType). */
  kvBytesPerToken: number;
  /** Element type of the KV caches (loadModel's kvCache; 'auto' is bf16 on CUDA, f32 on the CPU). */
  kvCacheType: 'f32' | 'bf16';
  /** Activation scratch of one forward pass of maxBatchTokens tokens. */
  activationBytes: number;
  /**
   * The most the GPU kernels' temporaries take beside it during such a pass (the GEMMs' bf16 copy of the input
   * and split-K partials, attention's split-KV partials, the chunked scan's chunk states); 0 on the CPU.
   */
  workspaceBytes: number;
  /** The device's memory now (host RAM for the CPU). */
  deviceTotalBytes: number;
  deviceFreeBytes: number;
  /** What sequences may reserve in total, and how it was derived. */
  budgetBytes: number;
  budgetSource: string;
  /** Reserved now by sequences holding state, how many there are, and how many wait for memory. */
  reservedBytes: number;
  activeSequences: number;
  waitingSequences: number;
  maxConcurrentSequences: number | null;
  /** How many sequences of the default context size fit in the budget. */
  sequencesAtDefaultContext: number;
}

/**
 * The budget sequences may reserve when loadModel's memoryBudgetBytes is not given,
 * from the device's memory after loading. @internal (also used by `nemotron info`).
 */
export function defaultBudget(
  p: Pick<NativeMemoryPlan, 'device' | 'weightBytes' | 'activationBytes' | 'deviceTotalBytes' | 'deviceFreeBytes'> &
    Partial<Pick<NativeMemoryPlan, 'workspaceBytes'>>,
): { bytes: number; source: string } {
  if (p.device === 'cuda') {
    // The CUDA context, the graphs, the pinned staging and fragmentation need headroom.
    const margin = Math.max(512 * 2 ** 20, 0.05 * p.deviceTotalBytes);
    const workspace = p.workspaceBytes ?? 0;
    const bytes = Math.max(0, Math.floor(p.deviceFreeBytes - p.activationBytes - workspace - margin));
    return {
      bytes,
      source:
        `GPU memory free after loading ${mib(p.deviceFreeBytes)}, less ${mib(p.activationBytes)} of activation scratch, ` +
        `${mib(workspace)} of kernel workspaces and a ${mib(margin)} margin`,
    };
  }
  // Host RAM: the mapped weights' pages count as "available" page cache, so never
  // count on more than total - weights; keep 10% for the process and the OS.
  const margin = 0.1 * p.deviceTotalBytes;
  const usable = Math.min(p.deviceFreeBytes, p.deviceTotalBytes - p.weightBytes);
  const bytes = Math.max(0, Math.floor(usable - p.activationBytes - margin));
  return {
    bytes,
    source: `host RAM available ${mib(usable)} after the weights, less ${mib(p.activationBytes)} of activation scratch and a ${mib(margin)} margin`,
  };
}

export interface ModelLimits {
  contextSize?: number;
  maxBatchSize?: number;
  maxBatchTokens?: number;
  maxConcurrentSequences?: number;
  memoryBudgetBytes?: number;
  promptCache?: PromptCacheOptions;
}

export class Model implements SequenceOwner, ChatHost {
  /** @internal */ readonly queue = new TaskQueue();
  private handle: NativeModel | undefined;
  private readonly sequences = new Set<Sequence>();
  private readonly nativeInfo: NativeModelInfo;

  private chatTemplate: ChatTemplate | undefined;
  /** @internal Continuous batching of decode steps across this model's sequences. */
  readonly batcher: DecodeBatcher;
  /** @internal Long prompts are prefilled in pieces of this many tokens (loadModel's maxBatchTokens). */
  readonly prefillPieceTokens: number;
  /** Default context size for sequences and chat sessions. */
  readonly defaultContextSize: number;
  /** Most sequences one decode step serves together (loadModel's maxBatchSize). */
  readonly maxBatchSize: number;
  /** Snapshots of common prompt prefixes (loadModel's promptCache), or undefined when off. */
  readonly promptCache: PromptCache | undefined;
  private readonly plan: NativeMemoryPlan;
  private readonly admission: Admission;

  /** @internal Use loadModel(). */
  constructor(
    handle: NativeModel,
    readonly dir: string,
    readonly config: ModelConfig,
    private readonly tok: Tokenizer | undefined,
    limits: ModelLimits = {},
  ) {
    this.prefillPieceTokens = limits.maxBatchTokens ?? 512;
    this.handle = handle;
    this.nativeInfo = handle.info();
    this.maxBatchSize = limits.maxBatchSize ?? 128;
    this.batcher = new DecodeBatcher(
      this.queue,
      (hs, ts, sampling) => this.live().decodeBatch(hs, ts, sampling),
      this.nativeInfo.vocabSize,
      this.maxBatchSize,
    );
    this.defaultContextSize =
      limits.contextSize ?? Math.min(this.nativeInfo.maxPositionEmbeddings || DEFAULT_CONTEXT, MAX_DEFAULT_CONTEXT);
    this.plan = handle.memoryPlan();
    const budget =
      limits.memoryBudgetBytes !== undefined
        ? { bytes: limits.memoryBudgetBytes, source: "loadModel's memoryBudgetBytes" }
        : defaultBudget(this.plan);
    this.admission = new Admission(budget.bytes, limits.maxConcurrentSequences ?? Infinity, budget.source);
    this.promptCache = limits.promptCache ? new PromptCache(this, limits.promptCache) : undefined;
    if (this.promptCache) this.admission.addReclaimer(this.promptCache.reclaim);
  }

  /**
   * The memory plan: bytes of weights, per-sequence state, KV per token and
   * activations; the device's total/free memory; the budget sequences reserve
   * from (state + KV for their whole context) and what is reserved now.
   */
  get memory(): MemoryReport {
    const live = this.handle ? this.handle.memoryPlan() : this.plan;
    const a = this.admission;
    return {
      device: this.plan.device,
      weightBytes: this.plan.weightBytes,
      stateBytesPerSequence: this.plan.stateBytesPerSequence,
      kvBytesPerToken: this.plan.kvBytesPerToken,
      kvCacheType: this.plan.kvCacheType,
      activationBytes: this.plan.activationBytes,
      workspaceBytes: this.plan.workspaceBytes,
      deviceTotalBytes: live.deviceTotalBytes,
      deviceFreeBytes: live.deviceFreeBytes,
      budgetBytes: a.budgetBytes,
      budgetSource: a.budgetSource,
      reservedBytes: a.reservedBytes,
      activeSequences: a.activeSequences,
      waitingSequences: a.waitingSequences,
      maxConcurrentSequences: Number.isFinite(a.maxSequences) ? a.maxSequences : null,
      sequencesAtDefaultContext: Math.floor(a.budgetBytes / this.sequenceBytes(this.defaultContextSize)),
    };
  }

  /** Bytes a sequence of this context size reserves: its state plus KV for every token. */
  sequenceBytes(contextSize: number): number {
    return this.plan.stateBytesPerSequence + contextSize * this.plan.kvBytesPerToken;
  }

  /** @internal Waits (FIFO) until memory for a sequence of this context size can be reserved. */
  admit(contextSize: number, signal?: AbortSignal): Promise<Reservation> {
    this.live();
    return this.admission.acquire(this.sequenceBytes(contextSize), this.describe(contextSize), signal);
  }
  /** @internal Reserves now or throws OutOfMemoryError. */
  admitNow(contextSize: number): Reservation {
    this.live();
    return this.admission.acquireNow(this.sequenceBytes(contextSize), this.describe(contextSize));
  }
  private describe(contextSize: number): string {
    return (
      `a sequence of contextSize ${contextSize} (state ${mib(this.plan.stateBytesPerSequence)} + ` +
      `KV ${mib(contextSize * this.plan.kvBytesPerToken)})`
    );
  }

  /** The model's tokenizer (tokenizer.json in the model directory). Chat sessions need it. */
  get tokenizer(): Tokenizer {
    if (!this.tok)
      throw new InvalidArgumentError(
        `${this.dir} has no tokenizer.json: chat sessions need the model's tokenizer (token-level calls work without it)`,
      );
    return this.tok;
  }

  /** The model's chat template (tokenizer_config.json's chat_template or chat_template.jinja). */
  get template(): ChatTemplate {
    if (!this.chatTemplate) {
      const source = this.tokenizer.chatTemplate;
      if (!source) throw new InvalidArgumentError(`${this.dir} has no chat template (tokenizer_config.json "chat_template")`);
      this.chatTemplate = new ChatTemplate(source);
    }
    return this.chatTemplate;
  }

  /** A conversation whose state persists between turns (see ChatSession). */
  createChatSession(options?: ChatSessionOptions): ChatSession {
    this.live();
    void this.template; // fail now, not at the first send, when there is no tokenizer/template
    return new ChatSession(this, options);
  }

  /** Resumes a conversation saved with chatSession.save(). */
  async restoreChatSession(snapshot: ChatSnapshot, options?: Omit<ChatSessionOptions, 'systemPrompt' | 'reasoning' | 'thinking' | 'contextSize'>): Promise<ChatSession> {
    const session = this.createChatSession({ ...snapshot.options, ...options });
    await session.restore(snapshot);
    return session;
  }

  /**
   * Resumes a conversation saved with `chatSession.saveToFile(path)`: its history, options and state, so
   * the next send feeds only the new message. Pass the session's tools again (handlers are not saved).
   * StateFileError when the file is not a chat session file, is damaged, or was saved by another model.
   */
  async loadChatSession(
    file: string,
    options?: Omit<ChatSessionOptions, 'systemPrompt' | 'reasoning' | 'thinking' | 'contextSize'> & { signal?: AbortSignal },
  ): Promise<ChatSession> {
    const { signal, ...sessionOptions } = options ?? {};
    const header = await inspectStateFile(file);
    let snapshot: ChatSnapshot | undefined;
    try {
      const meta = JSON.parse(header.meta) as { format?: unknown; snapshot?: ChatSnapshot };
      if (meta?.format === CHAT_FILE_FORMAT && meta.snapshot?.format === 'nemotron-node.chat/1') snapshot = meta.snapshot;
    } catch {
      // not JSON: not ours
    }
    if (!snapshot)
      throw new StateFileError(`state file '${file}' is not a chat session file (it was saved with sequence.saveState: use model.loadSequence)`);
    const session = this.createChatSession({ ...snapshot.options, ...sessionOptions });
    await session.restoreFromFile(snapshot, file, header.tokens, signal);
    return session;
  }

  /** 'cpu' or 'cuda': where the forward pass runs. */
  get device(): 'cpu' | 'cuda' {
    return this.nativeInfo.device;
  }
  get vocabSize(): number {
    return this.nativeInfo.vocabSize;
  }
  /** Engine facts: threads, weight bytes, layer pattern (M = Mamba2, * = attention, - = MLP). */
  get info(): Readonly<NativeModelInfo> {
    return this.nativeInfo;
  }
  get disposed(): boolean {
    return this.handle === undefined;
  }

  /** A new, empty sequence. */
  createSequence(options?: CreateSequenceOptions): Sequence {
    const opts = parseOptions(createSequenceOptionsSchema, options, 'createSequence');
    const h = this.live();
    const contextSize = opts.contextSize ?? this.defaultContextSize;
    try {
      return new Sequence(this, h.createSequence(contextSize), contextSize);
    } catch (err) {
      throw fromNative(err);
    }
  }

  /**
   * A sequence continuing the state saved with `sequence.saveState(path)` (its length is the saved token
   * count). StateFileError when the file is missing, damaged (checksum), of another format version, or
   * saved by a model with other weights. `contextSize` defaults to the saved sequence's and must hold its
   * tokens; the sequence's memory is reserved first (waiting, FIFO, like a first prefill; `signal` gives up).
   */
  async loadSequence(file: string, options: CreateSequenceOptions & { signal?: AbortSignal } = {}): Promise<Sequence> {
    const { signal, ...rest } = options;
    const opts = parseOptions(createSequenceOptionsSchema, rest, 'loadSequence');
    this.live();
    const header = await inspectStateFile(file);
    if (header.model !== this.nativeInfo.fingerprint)
      throw new StateFileError(
        `state file '${file}' was saved by another model (weights fingerprint ${header.model}, pattern ` +
          `${header.layerPattern}; this model: ${this.nativeInfo.fingerprint}, pattern ${this.nativeInfo.layerPattern})`,
      );
    const contextSize = opts.contextSize ?? header.contextSize;
    if (contextSize < Math.max(1, header.tokens))
      throw new InvalidArgumentError(`loadSequence: a contextSize of ${contextSize} cannot hold the ${header.tokens} tokens saved in '${file}'`);
    const reservation = await this.admit(contextSize, signal);
    try {
      const handle = await this.live().loadSequence(file, contextSize).catch((err) => {
        throw fromNative(err);
      });
      if (!this.handle) {
        handle.dispose();
        throw new DisposedError('this model was disposed while the sequence was loading');
      }
      return new Sequence(this, handle, contextSize, header.tokens, reservation);
    } catch (err) {
      reservation.release();
      throw err;
    }
  }

  /**
   * Logits at every position of `tokens`, row-major [tokens.length, vocabSize],
   * computed by one prefill on a temporary sequence.
   */
  async evaluate(tokens: ArrayLike<number>): Promise<Float32Array> {
    const h = this.live();
    const ids = toTokenArray(tokens, this.vocabSize, 'evaluate');
    if (ids.length === 0) throw new RangeError('evaluate: tokens must not be empty');
    // The temporary sequence holds state + KV for the tokens while it runs.
    const reservation = await this.admit(ids.length);
    try {
      return await this.queue.run(async () => {
        try {
          return await h.evaluate(ids);
        } catch (err) {
          throw fromNative(err);
        }
      });
    } finally {
      reservation.release();
    }
  }

  /** Frees the weights and every sequence of this model. Idempotent. */
  dispose(): void {
    if (!this.handle) return;
    for (const s of [...this.sequences]) s.dispose();
    this.admission.rejectWaiters(new DisposedError('this model was disposed while the sequence waited for memory'));
    this.handle.dispose();
    this.handle = undefined;
  }

  /** @internal */ submitDecode(req: DecodeRequest): void {
    this.batcher.submit(req);
  }
  /** @internal */ assertLive(): void {
    this.live();
  }
  /** @internal */ adopt(seq: Sequence): void {
    this.sequences.add(seq);
  }
  /** @internal */ release(seq: Sequence): void {
    this.sequences.delete(seq);
  }

  private live(): NativeModel {
    if (!this.handle) throw new DisposedError('this model was disposed');
    return this.handle;
  }
}

/**
 * Loads a Hugging Face NemotronH model directory (config.json + model.safetensors
 * or sharded safetensors with model.safetensors.index.json). Loading runs off
 * the event loop. No tokenizer is needed: token ids in, logits out.
 */
export async function loadModel(dir: string, options?: LoadModelOptions): Promise<Model> {
  const opts = parseOptions(loadModelOptionsSchema, options, 'loadModel');
  if (typeof dir !== 'string' || dir.length === 0)
    throw new InvalidArgumentError('loadModel: dir must be a non-empty string');
  const absDir = path.resolve(dir);
  const onProgress = opts.onProgress;
  let handle: NativeModel;
  try {
    handle = await native().loadModel(
      absDir,
      { device: opts.device, threads: opts.threads ?? 0, maxBatchTokens: opts.maxBatchTokens, kvCache: opts.kvCache },
      onProgress
        ? (p) => {
            try {
              onProgress(p);
            } catch (err) {
              // A user callback's failure must not abort the load; surface it asynchronously.
              process.nextTick(() => {
                throw err;
              });
            }
          }
        : undefined,
    );
  } catch (err) {
    throw fromNative(err);
  }
  try {
    // The native loader validated config.json; parse it again here to expose every field.
    const config = parseHfJson(fs.readFileSync(path.join(absDir, 'config.json'), 'utf8')) as ModelConfig;
    const tokenizer = fs.existsSync(path.join(absDir, 'tokenizer.json')) ? await Tokenizer.fromDir(absDir) : undefined;
    return new Model(handle, absDir, config, tokenizer, {
      contextSize: opts.contextSize,
      maxBatchSize: opts.maxBatchSize,
      maxBatchTokens: opts.maxBatchTokens,
      maxConcurrentSequences: opts.maxConcurrentSequences,
      memoryBudgetBytes: opts.memoryBudgetBytes,
      promptCache: opts.promptCache,
    });
  } catch (err) {
    handle.dispose();
    throw err;
  }
}
