/**
 * Continuous batching of decode steps. Each sequence just awaits its next token;
 * decode requests from different sequences that are pending at the same time go
 * to the engine as ONE forward pass (the weights are streamed once for the whole
 * batch). A batch is a task on the model's queue, so it stays ordered with the
 * prefills and clones around it; it takes at most one step per sequence (a
 * second step of the same sequence waits for the next batch) and at most
 * `maxBatchSize` sequences.
 */
import type { NativeSequence } from './native';
import type { TaskQueue } from './task-queue';

export interface DecodeRequest {
  handle: NativeSequence;
  token: number;
  /** Runs when the batch is assembled (in queue order); throwing rejects this request only. */
  check(): void;
  resolve(logits: Float32Array): void;
  reject(err: unknown): void;
}

export type DecodeBatchCall = (handles: NativeSequence[], tokens: Int32Array) => Promise<Float32Array>;

export class DecodeBatcher {
  private pending: DecodeRequest[] = [];
  private scheduled = false;
  /** Batches run and sequences stepped, for metrics and tests. */
  readonly stats = { batches: 0, steps: 0, largest: 0 };

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
      const logits = await this.call(
        batch.map((r) => r.handle),
        Int32Array.from(batch.map((r) => r.token)),
      );
      this.stats.batches++;
      this.stats.steps += batch.length;
      this.stats.largest = Math.max(this.stats.largest, batch.length);
      // A batch of one owns the whole array; larger batches get their own copy of their row.
      if (batch.length === 1) batch[0].resolve(logits);
      else batch.forEach((r, i) => r.resolve(logits.slice(i * this.vocabSize, (i + 1) * this.vocabSize)));
    } catch (err) {
      if (batch.length === 1) return batch[0].reject(err);
      // The engine checks the whole batch before running it, so nothing advanced: run
      // each alone, which gives every sequence its own result or its own error.
      for (const r of batch) await this.run([r]);
    }
  }
}
