/**
 * Continuous batching of decode steps. Each sequence just awaits its next token;
 * decode requests from different sequences that are pending at the same time go
 * to the engine as ONE forward pass (the weights are streamed once for the whole
 * batch). A batch is a task on the model's queue, so it stays ordered with the
 * prefills and clones around it; it takes at most one step per sequence (a
 * second step of the same sequence waits for the next batch) and at most
 * `maxBatchSize` sequences.
 *
 * A request may ask for its next token to be sampled natively (`sampling`):
 * the worker thread samples that row after the forward pass and the request
 * gets the id (and its logits only if it asked). Plain and sampled requests
 * share a batch.
 */
import type { NativeSampledBatch, NativeSamplingRow, NativeSequence } from './native';
import type { TaskQueue } from './task-queue';

/** What one step hands back. */
export interface DecodeResult {
  /** The next position's logits: always for a plain request; for a sampled one only with `sampling.logits`. */
  logits?: Float32Array;
  /** A sampled request's token and its sampler's RNG state after the draw, or why it could not be sampled. */
  sampled?: { id: number; rngState: Uint32Array } | { error: string };
}

export interface DecodeRequest {
  handle: NativeSequence;
  token: number;
  /** Sample the next token natively with these parameters (see NativeSamplingRow). */
  sampling?: NativeSamplingRow;
  /** Runs when the batch is assembled (in queue order); throwing rejects this request only. */
  check(): void;
  resolve(result: DecodeResult): void;
  reject(err: unknown): void;
}

/** The native decodeBatch: with `sampling` (one entry or null per row) it returns a NativeSampledBatch. */
export type DecodeBatchCall = (
  handles: NativeSequence[],
  tokens: Int32Array,
  sampling?: (NativeSamplingRow | null)[],
) => Promise<Float32Array | NativeSampledBatch>;

export class DecodeBatcher {
  private pending: DecodeRequest[] = [];
  private scheduled = false;
  /** Batches run, sequences stepped and steps sampled natively, for metrics and tests. */
  readonly stats = { batches: 0, steps: 0, largest: 0, sampled: 0 };

  constructor(
    private readonly queue: TaskQueue,
    private readonly call: DecodeBatchCall,
    private readonly vocabSize: number,
    private readonly maxBatchSize: number,
  ) {}

  submit(req: DecodeRequest): void {
    this.pending.push(req);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    void this.queue.run(async () => {
      // Let every sequence whose previous step just finished submit its next one.
      await new Promise<void>((r) => setImmediate(r));
      this.scheduled = false;
      const batch = this.take();
      if (this.pending.length > 0) this.schedule();
      if (batch.length > 0) await this.run(batch);
    });
  }

  private take(): DecodeRequest[] {
    const batch: DecodeRequest[] = [];
    const rest: DecodeRequest[] = [];
    const seen = new Set<NativeSequence>();
    for (const r of this.pending) {
      if (batch.length >= this.maxBatchSize || seen.has(r.handle)) {
        rest.push(r);
        continue;
      }
      try {
        r.check();
      } catch (err) {
        r.reject(err);
        continue;
      }
      seen.add(r.handle);
      batch.push(r);
    }
    this.pending = rest;
    return batch;
  }

  private async run(batch: DecodeRequest[]): Promise<void> {
    try {
      const sampled = batch.some((r) => r.sampling !== undefined);
      const out = await this.call(
        batch.map((r) => r.handle),
        Int32Array.from(batch.map((r) => r.token)),
        // Without a sampled request the call is exactly the logits-only one.
        sampled ? batch.map((r) => r.sampling ?? null) : undefined,
      );
      this.stats.batches++;
      this.stats.steps += batch.length;
      this.stats.largest = Math.max(this.stats.largest, batch.length);
      if (sampled) this.stats.sampled += batch.filter((r) => r.sampling !== undefined).length;
      // (ArrayBuffer.isView, not instanceof: the array may come from another realm, e.g. under jest)
      if (ArrayBuffer.isView(out)) this.resolveLogits(batch, out);
      else this.resolveSampled(batch, out);
    } catch (err) {
      if (batch.length === 1) return batch[0].reject(err);
      // The engine checks the whole batch before running it, so nothing advanced: run
      // each alone, which gives every sequence its own result or its own error.
      for (const r of batch) await this.run([r]);
    }
  }

  /** Rows of `logits` ([rows, vocab]) in order: a lone row is handed over as is, others are copied out. */
  private rows(logits: Float32Array, count: number): (i: number) => Float32Array {
    const v = this.vocabSize;
    return count === 1 ? () => logits : (i) => logits.slice(i * v, (i + 1) * v);
  }

  private resolveLogits(batch: DecodeRequest[], logits: Float32Array): void {
    const row = this.rows(logits, batch.length);
    batch.forEach((r, i) => r.resolve({ logits: row(i) }));
  }

  private resolveSampled(batch: DecodeRequest[], out: NativeSampledBatch): void {
    // out.logits holds only the rows that asked, in batch order.
    const wants = (r: DecodeRequest) => r.sampling === undefined || r.sampling.logits === true;
    const row = this.rows(out.logits, batch.filter(wants).length);
    let next = 0;
    batch.forEach((r, i) => {
      const logits = wants(r) ? row(next++) : undefined;
      if (r.sampling === undefined) return r.resolve({ logits });
      const error = out.errors?.[i];
      r.resolve({
        logits,
        sampled: error ? { error } : { id: out.ids[i], rngState: out.rngStates.slice(4 * i, 4 * i + 4) },
      });
    });
  }
}
