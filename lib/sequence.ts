/**
 * A sequence: the recurrent state (conv + SSM per Mamba layer) and KV cache of
 * one conversation on a model. prefill() feeds a prompt in one pass (chunked
 * scan, not token by token); decode() advances one token. clone() forks it.
 */
import type { Reservation } from './admission';
import type { Sampler } from './chat/sampling';
import { ContextOverflowError, DisposedError, InvalidArgumentError, OutOfMemoryError, fromNative } from './errors';
import type { NativeSamplingRow, NativeSequence } from './native';
import type { DecodeRequest, DecodeResult } from './decode-batcher';
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
  /** Reserves memory for a sequence of this context size, waiting (FIFO) while the budget is taken. */
  admit(contextSize: number, signal?: AbortSignal): Promise<Reservation>;
  /** Reserves at once, or throws OutOfMemoryError (for clones, which must not be reordered). */
  admitNow(contextSize: number): Reservation;
  adopt(seq: Sequence): void;
  release(seq: Sequence): void;
}

export interface PrefillOptions {
  /** Return logits for every prompt position ([tokens.length * vocab]) instead of the last only. */
  allLogits?: boolean;
  /** Gives up waiting for memory (see Model.memory) when aborted; the sequence stays usable. */
  signal?: AbortSignal;
}

export interface DecodeOptions {
  /** Gives up waiting for memory when aborted (only a sequence's first call can wait). */
  signal?: AbortSignal;
}

export interface DecodeSampleOptions extends DecodeOptions {
  /** Also return the logits the token was sampled from (costs a [vocab] copy to JS). */
  logits?: boolean;
}

/** decodeSample's result. */
export interface SampledToken {
  /** The sampled next token (not yet fed: pass it to the next decode call). */
  id: number;
  /** With `logits: true`: the next position's logits, as decode() would give. */
  logits?: Float32Array;
}

export class Sequence {
  private handle: NativeSequence | undefined;
  private tokenCount: number;
  // Memory reserved for this sequence's state + KV; taken before its first native
  // call (the native state is created lazily then), given back at dispose.
  private reservation: Reservation | undefined;
  private admitting: Promise<void> | undefined;

  /** @internal Created by Model.createSequence or Sequence.clone. */
  constructor(
    private readonly owner: SequenceOwner,
    handle: NativeSequence,
    readonly contextSize: number,
    length = 0,
    reservation?: Reservation,
  ) {
    this.handle = handle;
    this.tokenCount = length;
    this.reservation = reservation;
    owner.adopt(this);
  }

  /** Whether this sequence holds its memory reservation (it has run, or is about to). */
  get admitted(): boolean {
    return this.reservation !== undefined;
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
    if (!this.reservation) await this.admit(options.signal);
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
  async decode(token: number, options: DecodeOptions = {}): Promise<Float32Array> {
    const r = await this.step(token, undefined, options);
    return r.logits!;
  }

  /**
   * Feeds one token and samples the next one in native code (after the batched
   * forward pass, on the worker thread), so only the id comes back to JS. Gives
   * exactly `sampler.sample(await this.decode(token), history, mask)`: the native
   * sampler replays the JS one, and the sampler's RNG advances as that call would,
   * so later JS sampling continues the same stream. `sampler` must not sample
   * elsewhere until this resolves. Rejects (after the token was fed) where
   * sample() would throw, e.g. when every token is masked.
   */
  async decodeSample(
    token: number,
    sampler: Sampler,
    history: readonly number[] = [],
    mask?: Iterable<number>,
    options: DecodeSampleOptions = {},
  ): Promise<SampledToken> {
    // Taken now, before any wait: the caller may move on with `history` meanwhile.
    const row = sampler.toNative(history, mask);
    if (options.logits) row.logits = true;
    const r = await this.step(token, row, options);
    const s = r.sampled!;
    if ('error' in s) throw new Error(s.error);
    sampler.setRngState(s.rngState);
    return options.logits ? { id: s.id, logits: r.logits } : { id: s.id };
  }

  /** One decode step through the model's batcher (sampled natively when `sampling` is given). */
  private async step(token: number, sampling: NativeSamplingRow | undefined, options: DecodeOptions): Promise<DecodeResult> {
    const ids = toTokenArray([token], this.owner.vocabSize, 'decode');
    this.live();
    if (!this.reservation) await this.admit(options.signal);
    const h = this.live();
    return new Promise<DecodeResult>((resolve, reject) => {
      this.owner.submitDecode({
        handle: h,
        token: ids[0],
        sampling,
        check: () => this.checkRoom('decode', 1),
        resolve: (result) => {
          this.tokenCount += 1;
          resolve(result);
        },
        reject: (err) => reject(fromNative(err)),
      });
    });
  }

  /**
   * An independent copy of this sequence (same state, same length) that continues
   * identically. It copies the state as of this call, so it cannot wait for memory:
   * it throws OutOfMemoryError when the budget (Model.memory) has no room now.
   * `contextSize` gives the copy another context size (at least this sequence's
   * length): e.g. a small snapshot of a shared prompt, copied into full-size sequences.
   */
  async clone(options: { contextSize?: number } = {}): Promise<Sequence> {
    this.live();
    const contextSize = options.contextSize ?? this.contextSize;
    if (!Number.isInteger(contextSize) || contextSize < Math.max(1, this.tokenCount))
      throw new InvalidArgumentError(
        `clone: contextSize must be an integer of at least the sequence's length (${this.tokenCount}), got ${contextSize}`,
      );
    const reservation = this.owner.admitNow(contextSize);
    try {
      const h = this.live();
      return await this.owner.queue.run(async () => {
        try {
          if (this.tokenCount > contextSize) throw new InvalidArgumentError(`clone: the sequence grew past ${contextSize} tokens`);
          const copy = await h.clone(contextSize);
          return new Sequence(this.owner, copy, contextSize, this.tokenCount, reservation);
        } catch (err) {
          throw fromNative(err);
        }
      });
    } catch (err) {
      reservation.release();
      throw err;
    }
  }

  /**
   * Saves this sequence (its recurrent state and the KV cache of its tokens) to `path`, so that
   * `model.loadSequence(path)` continues it exactly, later or in another process, without feeding its
   * tokens again. The file records the model's weights fingerprint (any other model refuses it), this
   * sequence's context size (the loading default) and `meta`, a string of yours stored verbatim (e.g. the
   * token ids; `inspectStateFile()` reads it back). It is written beside `path` and renamed over it, so a
   * crash leaves the old file or the new one, never a torn one.
   *
   * The state saved is the one after the work queued before this call. It is first copied (a private
   * clone within the memory budget) so this sequence and others keep running while the file is written;
   * when the budget has no room for the copy, the file is written from the sequence itself while the
   * model's queue waits. At the 9B shape a state is ~139 MiB plus 32 KiB per token.
   */
  async saveState(path: string, options: { meta?: string } = {}): Promise<{ bytes: number; tokens: number }> {
    if (typeof path !== 'string' || path.length === 0) throw new InvalidArgumentError('saveState: path must be a non-empty string');
    const meta = options.meta ?? '';
    if (typeof meta !== 'string') throw new InvalidArgumentError('saveState: meta must be a string');
    const h = this.live();
    const direct = (): Promise<{ bytes: number; tokens: number }> =>
      this.owner.queue.run(async () => {
        const tokens = this.tokenCount;
        try {
          return { bytes: await h.saveState(path, this.contextSize, meta), tokens };
        } catch (err) {
          throw fromNative(err);
        }
      });
    // Never ran: no native state yet (it is the zero state); written in queue order, before any first prefill.
    if (!this.reservation) return direct();
    let snapshot: Sequence;
    try {
      snapshot = await this.clone({ contextSize: Math.max(1, this.tokenCount) });
    } catch (err) {
      if (err instanceof OutOfMemoryError) return direct();
      throw err;
    }
    try {
      const bytes = await snapshot.live().saveState(path, this.contextSize, meta);
      return { bytes, tokens: snapshot.length };
    } catch (err) {
      throw fromNative(err);
    } finally {
      snapshot.dispose();
    }
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
    const r = this.reservation;
    this.reservation = undefined;
    // Work already queued still uses the native state (it is freed when that work
    // is done), so the memory goes back to the budget after the queue drains to here.
    if (r) void this.owner.queue.run(async () => r.release());
  }

  /** Takes this sequence's memory reservation (once; concurrent callers share the wait). */
  private admit(signal?: AbortSignal): Promise<void> {
    if (this.reservation) return Promise.resolve();
    if (!this.admitting) {
      const pending = this.owner.admit(this.contextSize, signal).then((r) => {
        if (!this.handle) {
          r.release(); // disposed while waiting
          throw new DisposedError('this sequence was disposed');
        }
        this.reservation = r;
      });
      this.admitting = pending;
      // The next caller retries after a failed or aborted wait (with its own signal).
      const clear = () => {
        if (this.admitting === pending) this.admitting = undefined;
      };
      pending.then(clear, clear);
    }
    return this.admitting;
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
