/**
 * Token sampling from logits: penalties, logit bias, temperature, top-k, top-p,
 * min-p, seeded draws; greedy at temperature 0. Order (as in llama.cpp and HF):
 * penalties -> bias -> temperature -> top-k -> top-p -> min-p -> draw.
 */
import { z } from 'zod';

import { Rng } from './rng';

export const samplingOptionsSchema = z
  .object({
    /** 0 = greedy (argmax). */
    temperature: z.number().min(0).max(100).optional(),
    /** Keep the k most likely tokens (0 = off). */
    topK: z.number().int().min(0).optional(),
    /** Keep the smallest set of tokens whose probability mass reaches topP (1 = off). */
    topP: z.number().gt(0).max(1).optional(),
    /** Drop tokens less likely than minP times the most likely one (0 = off). */
    minP: z.number().min(0).max(1).optional(),
    /** >1 discourages tokens already generated (divides positive logits, multiplies negative). */
    repetitionPenalty: z.number().gt(0).optional(),
    /** Subtracted once from the logit of any token already generated. */
    presencePenalty: z.number().min(-2).max(2).optional(),
    /** Subtracted per occurrence from the logit of tokens already generated. */
    frequencyPenalty: z.number().min(-2).max(2).optional(),
    /** How many recent tokens the penalties look at (default 256; 0 = all). */
    penaltyWindow: z.number().int().min(0).optional(),
    /** Added to the logits of the given token ids (-Infinity bans a token). */
    logitBias: z.record(z.string().regex(/^\d+$/), z.number()).optional(),
    /** Same seed, same prompt, same options => same tokens. */
    seed: z.number().int().optional(),
  })
  .strict();
export type SamplingOptions = z.infer<typeof samplingOptionsSchema>;

// Tokens whose probability is below this fraction of the top token's are not
// candidates. Over a 131k vocabulary they can hold at most ~1.3e-4 of the mass,
// and skipping them avoids sorting the whole vocabulary every step.
const CANDIDATE_RATIO = 1e-9;

export class Sampler {
  private readonly rng: Rng;
  private readonly opts: Required<Omit<SamplingOptions, 'logitBias' | 'seed'>>;
  private readonly bias: Array<[number, number]>;

  constructor(options: SamplingOptions = {}) {
    this.opts = {
      temperature: options.temperature ?? 1,
      topK: options.topK ?? 0,
      topP: options.topP ?? 1,
      minP: options.minP ?? 0,
      repetitionPenalty: options.repetitionPenalty ?? 1,
      presencePenalty: options.presencePenalty ?? 0,
      frequencyPenalty: options.frequencyPenalty ?? 0,
      penaltyWindow: options.penaltyWindow ?? 256,
    };
    this.bias = Object.entries(options.logitBias ?? {}).map(([k, v]) => [Number(k), v]);
    this.rng = new Rng(options.seed ?? Math.floor(Math.random() * 2 ** 32));
  }

  /**
   * Picks the next token. `history`: previously generated tokens (for penalties).
   * `mask`: token ids that must not be picked (e.g. end-of-thinking before a minimum).
   * `logits` is not modified.
   */
  sample(logits: Float32Array, history: readonly number[] = [], mask?: Iterable<number>): number {
    const l = this.adjusted(logits, history, mask);
    const o = this.opts;
    if (o.temperature === 0) {
      const best = argmax(l);
      if (l[best] === -Infinity) throw new Error('sampling: every token is masked');
      return best;
    }

    // candidates: tokens within CANDIDATE_RATIO of the best, as (id, logit/T)
    let max = -Infinity;
    for (let i = 0; i < l.length; i++) if (l[i] > max) max = l[i];
    if (max === -Infinity) throw new Error('sampling: every token is masked');
    const floor = max + o.temperature * Math.log(CANDIDATE_RATIO);
    const ids: number[] = [];
    for (let i = 0; i < l.length; i++) if (l[i] >= floor) ids.push(i);
    ids.sort((a, b) => l[b] - l[a] || a - b);
    let n = ids.length;
    if (o.topK > 0) n = Math.min(n, o.topK);

    const probs = new Float64Array(n);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += probs[i] = Math.exp((l[ids[i]] - max) / o.temperature);
    for (let i = 0; i < n; i++) probs[i] /= sum;

    if (o.topP < 1) {
      let cum = 0;
      for (let i = 0; i < n; i++) {
        cum += probs[i];
        if (cum >= o.topP) {
          n = i + 1;
          break;
        }
      }
    }
    if (o.minP > 0) {
      const cut = probs[0] * o.minP;
      let k = 1;
      while (k < n && probs[k] >= cut) k++;
      n = k;
    }
    let total = 0;
    for (let i = 0; i < n; i++) total += probs[i];
    let r = this.rng.next() * total;
    for (let i = 0; i < n; i++) {
      r -= probs[i];
      if (r < 0) return ids[i];
    }
    return ids[n - 1];
  }

  private adjusted(logits: Float32Array, history: readonly number[], mask?: Iterable<number>): Float32Array {
    const o = this.opts;
    const needsCopy =
      this.bias.length > 0 ||
      mask !== undefined ||
      (history.length > 0 && (o.repetitionPenalty !== 1 || o.presencePenalty !== 0 || o.frequencyPenalty !== 0));
    if (!needsCopy) return logits;
    const l = Float32Array.from(logits);
    if (history.length > 0) {
      const window = o.penaltyWindow > 0 ? history.slice(-o.penaltyWindow) : history;
      const counts = new Map<number, number>();
      for (const t of window) counts.set(t, (counts.get(t) ?? 0) + 1);
      for (const [t, c] of counts) {
        if (t < 0 || t >= l.length) continue;
        if (o.repetitionPenalty !== 1) l[t] = l[t] > 0 ? l[t] / o.repetitionPenalty : l[t] * o.repetitionPenalty;
        l[t] -= o.presencePenalty + c * o.frequencyPenalty;
      }
    }
    for (const [t, b] of this.bias) if (t < l.length) l[t] += b;
    if (mask) for (const t of mask) if (t >= 0 && t < l.length) l[t] = -Infinity;
    return l;
  }
}

export function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}
