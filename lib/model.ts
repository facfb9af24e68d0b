/**
 * loadModel() and the Model object: a NemotronH checkpoint directory loaded into
 * the native engine, on which sequences are created.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { DisposedError, InvalidArgumentError, fromNative } from './errors';
import { parseHfJson } from './hf-json';
import { native, type NativeModel, type NativeModelInfo } from './native';
import {
  createSequenceOptionsSchema,
  loadModelOptionsSchema,
  parseOptions,
  type CreateSequenceOptions,
  type LoadModelOptions,
} from './options';
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

export class Model implements SequenceOwner {
  /** @internal */ readonly queue = new TaskQueue();
  private handle: NativeModel | undefined;
  private readonly sequences = new Set<Sequence>();
  private readonly nativeInfo: NativeModelInfo;

  /** @internal Use loadModel(). */
  constructor(
    handle: NativeModel,
    readonly dir: string,
    readonly config: ModelConfig,
  ) {
    this.handle = handle;
    this.nativeInfo = handle.info();
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
    const contextSize = opts.contextSize ?? (this.nativeInfo.maxPositionEmbeddings || DEFAULT_CONTEXT);
    try {
      return new Sequence(this, h.createSequence(contextSize), contextSize);
    } catch (err) {
      throw fromNative(err);
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
    return this.queue.run(async () => {
      try {
        return await h.evaluate(ids);
      } catch (err) {
        throw fromNative(err);
      }
    });
  }

  /** Frees the weights and every sequence of this model. Idempotent. */
  dispose(): void {
    if (!this.handle) return;
    for (const s of [...this.sequences]) s.dispose();
    this.handle.dispose();
    this.handle = undefined;
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
      { device: opts.device, threads: opts.threads ?? 0, maxBatchTokens: opts.maxBatchTokens },
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
  // The native loader validated config.json; parse it again here to expose every field.
  const config = parseHfJson(fs.readFileSync(path.join(absDir, 'config.json'), 'utf8')) as ModelConfig;
  return new Model(handle, absDir, config);
}
