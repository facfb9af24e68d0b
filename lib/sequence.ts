/**
 * A sequence: the recurrent state (conv + SSM per Mamba layer) and KV cache of
 * one conversation on a model. prefill() feeds a prompt in one pass (chunked
 * scan, not token by token); decode() advances one token. clone() forks it.
 */
import { ContextOverflowError, DisposedError, fromNative } from './errors';
import type { NativeSequence } from './native';
import type { DecodeRequest } from './decode-batcher';
import type { TaskQueue } from './task-queue';
import { toTokenArray } from './tokens';

/** What a sequence needs from its model (kept narrow to avoid a cycle with model.ts). */
export interface SequenceOwner {
  readonly vocabSize: number;
  readonly queue: TaskQueue;
  /** Batches this decode step with other sequences' pending steps. */
  submitDecode(req: DecodeRequest): void;
  /** Longer prompts are fed in pieces of this many tokens, each its own queued task. */
  readonly prefillPieceTokens: number;
  assertLive(): void;
  adopt(seq: Sequence): void;
  release(seq: Sequence): void;
}

export interface PrefillOptions {
  /** Return logits for every prompt position ([tokens.length * vocab]) instead of the last only. */
  allLogits?: boolean;
}

export class Sequence {
  private handle: NativeSequence | undefined;
  private tokenCount: number;

  /** @internal Created by Model.createSequence or Sequence.clone. */
  constructor(
    private readonly owner: SequenceOwner,
    handle: NativeSequence,
    readonly contextSize: number,
    length = 0,
  ) {
    this.handle = handle;
    this.tokenCount = length;
    owner.adopt(this);
  }

  /** Tokens absorbed so far. */
  get length(): number {
    return this.tokenCount;
  }

  get disposed(): boolean {
    return this.handle === undefined;
  }

  /** Feeds a prompt; resolves to the last position's logits (or all, see options). */
  async prefill(tokens: ArrayLike<number>, options: PrefillOptions = {}): Promise<Float32Array> {
    const ids = toTokenArray(tokens, this.owner.vocabSize, 'prefill');
    if (ids.length === 0) throw new RangeError('prefill: tokens must not be empty');
    const all = options.allLogits === true;
    const piece = this.owner.prefillPieceTokens;
    if (ids.length <= piece) return this.run('prefill', ids.length, (h) => h.prefill(ids, all));
    // A long prompt goes in pieces, each a separate task on the model's queue, so
    // other sequences' decode steps (batched) run between them instead of waiting
    // for the whole prompt. The state carries over exactly between pieces.
    this.checkRoom('prefill', ids.length);
    const parts: Float32Array[] = [];
    for (let start = 0; start < ids.length; start += piece) {
      const part = ids.subarray(start, Math.min(ids.length, start + piece));
      parts.push(await this.run('prefill', part.length, (h) => h.prefill(part, all)));
    }
    if (!all) return parts[parts.length - 1];
    const out = new Float32Array(ids.length * this.owner.vocabSize);
    let offset = 0;
    for (const p of parts) {
      out.set(p, offset);
      offset += p.length;
    }
    return out;
  }

  /** Feeds one token; resolves to the logits for the next position. */
  async decode(token: number): Promise<Float32Array> {
    const ids = toTokenArray([token], this.owner.vocabSize, 'decode');
    const h = this.live();
    return new Promise<Float32Array>((resolve, reject) => {
      this.owner.submitDecode({
        handle: h,
        token: ids[0],
        check: () => this.checkRoom('decode', 1),
        resolve: (logits) => {
          this.tokenCount += 1;
          resolve(logits);
        },
        reject: (err) => reject(fromNative(err)),
      });
    });
  }

  /** An independent copy of this sequence (same state, same length) that continues identically. */
  async clone(): Promise<Sequence> {
    const h = this.live();
    return this.owner.queue.run(async () => {
      try {
        const copy = await h.clone();
        return new Sequence(this.owner, copy, this.contextSize, this.tokenCount);
      } catch (err) {
        throw fromNative(err);
      }
    });
  }

  /** Back to an empty sequence (state zeroed), keeping its memory for reuse. */
  async reset(): Promise<void> {
    const h = this.live();
    return this.owner.queue.run(async () => {
      try {
        await h.reset();
        this.tokenCount = 0;
      } catch (err) {
        throw fromNative(err);
      }
    });
  }

  /** Frees the state. Further calls throw DisposedError. Idempotent. */
  dispose(): void {
    if (!this.handle) return;
    this.handle.dispose();
    this.handle = undefined;
    this.owner.release(this);
  }

  private live(): NativeSequence {
    this.owner.assertLive();
    if (!this.handle) throw new DisposedError('this sequence was disposed');
    return this.handle;
  }

  private checkRoom(what: string, n: number): void {
    if (!this.handle) throw new DisposedError('this sequence was disposed');
    if (this.tokenCount + n > this.contextSize)
      throw new ContextOverflowError(
        `${what}: context overflow: the sequence holds ${this.tokenCount} tokens and ${n} more would exceed ` +
          `its context size of ${this.contextSize}`,
      );
  }

  private run(what: string, n: number, call: (h: NativeSequence) => Promise<Float32Array>): Promise<Float32Array> {
    const h = this.live();
    return this.owner.queue.run(async () => {
      this.checkRoom(what, n); // when the task runs, after earlier queued work has moved the length
      try {
        const logits = await call(h);
        this.tokenCount += n;
        return logits;
      } catch (err) {
        throw fromNative(err);
      }
    });
  }
}
