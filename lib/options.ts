/**
 * Option schemas (zod) — the single source of the option types (z.infer). A bad
 * option becomes an InvalidArgumentError whose message names the option.
 */
import { z } from 'zod';

import { InvalidArgumentError } from './errors';

export const loadProgressSchema = z.object({
  stage: z.enum(['config', 'weights', 'ready']),
  loadedBytes: z.number(),
  totalBytes: z.number(),
});
export type LoadProgress = z.infer<typeof loadProgressSchema>;

export const loadModelOptionsSchema = z
  .object({
    /** 'auto' picks CUDA when a usable GPU and a CUDA build are present, else the CPU. */
    device: z.enum(['auto', 'cpu', 'cuda']).default('auto'),
    /** CPU threads for the engine; default: all cores. */
    threads: z.number().int().min(1).max(1024).optional(),
    /** Default context size of sequences and chat sessions (default: min(max_position_embeddings, 32768)). */
    contextSize: z.number().int().min(16).optional(),
    /** Most sequences whose decode steps are batched into one forward pass (continuous batching). */
    maxBatchSize: z.number().int().min(1).max(1024).default(128),
    /** Most tokens per forward pass; long prompts are prefilled in pieces of this size. */
    maxBatchTokens: z.number().int().min(1).max(65536).default(512),
    /**
     * Element type of the KV caches of the attention layers: 'bf16' halves their memory (and what a decode step
     * reads of them; it is what the reference model itself caches), 'f32' keeps the keys and values as computed.
     * 'auto' (default): bf16 on CUDA, f32 on the CPU (the fp32 reference engine).
     */
    kvCache: z.enum(['auto', 'f32', 'bf16']).default('auto'),
    /**
     * Most sequences holding state at once; more wait (FIFO) until one is disposed.
     * Default: no cap beyond the memory budget.
     */
    maxConcurrentSequences: z.number().int().min(1).optional(),
    /**
     * Bytes that sequences (state + KV for their whole context) may reserve. Default:
     * the device memory left after the weights and activation scratch, minus a margin.
     */
    memoryBudgetBytes: z.number().int().min(0).optional(),
    /**
     * Keep snapshots of the state after common prompt prefixes (a shared system prompt, an API conversation's
     * history) so later prompts that start with one skip recomputing it; `model.promptCache` reports hits.
     * Snapshots hold memory and are dropped first when a sequence has to wait for memory. Default: off
     * (`nemotron serve` turns it on).
     */
    promptCache: z
      .object({ maxEntries: z.number().int().min(1).max(4096), minTokens: z.number().int().min(1).optional() })
      .strict()
      .optional(),
    /** Called as loading proceeds (stage 'weights' reports bytes). */
    onProgress: fnOption<(p: LoadProgress) => void>().optional(),
  })
  .strict();
export type LoadModelOptions = z.input<typeof loadModelOptionsSchema>;

export const createSequenceOptionsSchema = z
  .object({
    /** Most tokens the sequence may hold; default: the model's max_position_embeddings. */
    contextSize: z.number().int().min(1).optional(),
  })
  .strict();
export type CreateSequenceOptions = z.input<typeof createSequenceOptionsSchema>;

/**
 * A function-valued option. (zod's z.function() would wrap the callback in a
 * validating proxy, which costs time on per-token callbacks.)
 */
export function fnOption<F extends (...args: any[]) => unknown>() {
  return z.custom<F>((v) => typeof v === 'function', { message: 'Expected a function' });
}

/** Parses `value` with `schema`, turning a zod failure into an InvalidArgumentError naming the option. */
export function parseOptions<S extends z.ZodTypeAny>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => {
    const where = i.path.length ? i.path.join('.') : '(options)';
    if (i.code === 'unrecognized_keys') return `unknown option ${i.keys.map((k) => `"${k}"`).join(', ')}`;
    return `option "${where}": ${i.message}`;
  });
  return (() => {
    throw new InvalidArgumentError(`${what}: ${issues.join('; ')}`, { cause: result.error });
  })();
}
