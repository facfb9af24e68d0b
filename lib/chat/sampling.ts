/**
 * Token sampling from logits: penalties, logit bias, temperature, top-k, top-p,
 * min-p, seeded draws; greedy at temperature 0. Order (as in llama.cpp and HF):
 * penalties -> bias -> temperature -> top-k -> top-p -> min-p -> draw.
 */
import { z } from 'zod';

import type { NativeSamplingRow } from '../native';
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
   * @internal The tokens a draw chooses from after penalties, bias, mask,
   * temperature, top-k, top-p and min-p, with unnormalised weights (the best
   * token has weight 1), in no particular order. Views into reused buffers:
   * valid until the next call. Not for temperature 0.
   */
  candidates(logits: Float32Array, history: readonly number[] = [], mask?: Iterable<number>): Candidates {
    const l = this.adjusted(logits, history, mask);
    const o = this.opts;
    // Candidates: tokens within CANDIDATE_RATIO of the best, with weights
    // w = exp((logit - max) / T) (the best has w = 1). Nothing below sorts: top-k
    // and top-p are found by (weighted) quickselect, so a flat distribution over
    // the whole 131k vocabulary costs O(V), not O(V log V) comparator calls.
    let max = -Infinity;
    for (let i = 0; i < l.length; i++) if (l[i] > max) max = l[i];
    if (max === -Infinity) throw new Error('sampling: every token is masked');
    const floor = max + o.temperature * Math.log(CANDIDATE_RATIO);
    const c = this.scratch(l.length);
    // With top-k the weights wait for the cut (it selects by logit), so only the k
    // kept are exponentiated; without it they are computed in the same pass.
    const weighLater = o.topK > 0;
    let n = 0;
    for (let i = 0; i < l.length; i++) {
      if (l[i] >= floor) {
        c.ids[n] = i;
        if (!weighLater) c.w[n] = Math.exp((l[i] - max) / o.temperature);
        n++;
      }
    }
    // Order of preference: higher logit first, then lower id (as a stable sort would give).
    const better = (a: number, b: number) => l[c.ids[a]] > l[c.ids[b]] || (l[c.ids[a]] === l[c.ids[b]] && c.ids[a] < c.ids[b]);
    if (o.topK > 0 && o.topK < n) {
      selectBest(c, n, o.topK, better);
      n = o.topK;
    }
    if (weighLater) for (let i = 0; i < n; i++) c.w[i] = Math.exp((l[c.ids[i]] - max) / o.temperature);
    if (o.topP < 1) {
      let z = 0;
      for (let i = 0; i < n; i++) z += c.w[i];
      n = selectNucleus(c, n, o.topP * z, better);
    }
    let kept = 0;
    for (let i = 0; i < n; i++) {
      // min-p: relative to the best token, whose weight is 1
      if (o.minP > 0 && c.w[i] < o.minP) continue;
      c.ids[kept] = c.ids[i];
      c.w[kept++] = c.w[i];
    }
    return { ids: c.ids.subarray(0, kept), w: c.w.subarray(0, kept) };
  }

  /**
   * Picks the next token. `history`: previously generated tokens (for penalties).
   * `mask`: token ids that must not be picked (e.g. end-of-thinking before a minimum).
   * `logits` is not modified.
   */
  sample(logits: Float32Array, history: readonly number[] = [], mask?: Iterable<number>): number {
    if (this.opts.temperature === 0) {
      const l = this.adjusted(logits, history, mask);
      const best = argmax(l);
      if (l[best] === -Infinity) throw new Error('sampling: every token is masked');
      return best;
    }
    const c = this.candidates(logits, history, mask);
    let total = 0;
    for (let i = 0; i < c.ids.length; i++) total += c.w[i];
    let r = this.rng.next() * total;
    for (let i = 0; i < c.ids.length; i++) {
      r -= c.w[i];
      if (r < 0) return c.ids[i];
    }
    return c.ids[c.ids.length - 1];
  }

  /**
   * @internal This sampler's options, RNG state and one step's inputs as the
   * native sampler takes them (native/engine/sampler.h), which samples exactly as
   * sample() would. Hand the RNG state it returns to setRngState().
   */
  toNative(history: readonly number[] = [], mask?: Iterable<number>): NativeSamplingRow {
    const o = this.opts;
    const row: NativeSamplingRow = {
      temperature: o.temperature,
      // (a top-k or window past any vocabulary or history is the same as that size: keep them int32)
      topK: Math.min(o.topK, 0x7fffffff),
      topP: o.topP,
      minP: o.minP,
      repetitionPenalty: o.repetitionPenalty,
      presencePenalty: o.presencePenalty,
      frequencyPenalty: o.frequencyPenalty,
      penaltyWindow: Math.min(o.penaltyWindow, 0x7fffffff),
      rng: this.rng.getState(),
    };
    // History only matters with a penalty (see adjusted()); send just its window.
    if (history.length > 0 && (o.repetitionPenalty !== 1 || o.presencePenalty !== 0 || o.frequencyPenalty !== 0)) {
      const window = o.penaltyWindow > 0 ? history.slice(-o.penaltyWindow) : history;
      row.history = tokenIds(window);
    }
    if (this.bias.length > 0) {
      this.nativeBias ??= nativeBias(this.bias);
      row.biasIds = this.nativeBias.ids;
      row.biasValues = this.nativeBias.values;
    }
    if (mask !== undefined) row.mask = tokenIds(mask);
    return row;
  }

  private nativeBias: { ids: Int32Array; values: Float64Array } | undefined;

  /** @internal The draw RNG's state (4 words), to continue this sampler's stream elsewhere. */
  rngState(): Uint32Array {
    return this.rng.getState();
  }

  /** @internal Continues from an RNG state (from rngState() or the native sampler). */
  setRngState(state: ArrayLike<number>): void {
    this.rng.setState(state);
  }

  private buffers: Candidates | undefined;
  private scratch(size: number): Candidates {
    if (!this.buffers || this.buffers.ids.length < size)
      this.buffers = { ids: new Int32Array(size), w: new Float64Array(size) };
    return this.buffers;
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

/**
 * Token ids as an Int32Array, dropping what adjusted() ignores anyway: a
 * non-integer is no element of a Float32Array, and ids past int32 are past any vocabulary.
 */
function tokenIds(ids: Iterable<number>): Int32Array {
  const out: number[] = [];
  for (const t of ids) if (Number.isInteger(t) && t <= 0x7fffffff && t >= -0x80000000) out.push(t);
  return Int32Array.from(out);
}

/** The bias list in its order, as typed arrays. Ids past int32 are past any vocabulary: adjusted() skips them too. */
function nativeBias(bias: ReadonlyArray<[number, number]>): { ids: Int32Array; values: Float64Array } {
  const kept = bias.filter(([t]) => t <= 0x7fffffff);
  return { ids: Int32Array.from(kept, ([t]) => t), values: Float64Array.from(kept, ([, b]) => b) };
}

/** Candidate token ids and their weights, permuted together. */
export interface Candidates {
  ids: Int32Array;
  w: Float64Array;
}

function swap(c: Candidates, i: number, j: number): void {
  const id = c.ids[i];
  c.ids[i] = c.ids[j];
  c.ids[j] = id;
  const w = c.w[i];
  c.w[i] = c.w[j];
  c.w[j] = w;
}

/**
 * Partitions c[lo, hi) around a pivot (median of three): afterwards c[lo, p) are
 * better than the pivot, c[p] is the pivot, c(p, hi) are worse. Returns p.
 * (Preference is a strict total order, so nothing ties with the pivot.)
 */
function partition(c: Candidates, lo: number, hi: number, better: (a: number, b: number) => boolean): number {
  const mid = lo + ((hi - lo) >> 1);
  const last = hi - 1;
  // median of three to the end, as the pivot
  if (better(mid, lo)) swap(c, mid, lo);
  if (better(last, lo)) swap(c, last, lo);
  if (better(mid, last)) swap(c, mid, last);
  let p = lo;
  for (let i = lo; i < last; i++) if (better(i, last)) swap(c, i, p++);
  swap(c, p, last);
  return p;
}

/** Reorders c[0, n) so that c[0, k) are the k best candidates (in no particular order). */
function selectBest(c: Candidates, n: number, k: number, better: (a: number, b: number) => boolean): void {
  let lo = 0;
  let hi = n;
  while (hi - lo > 1) {
    const p = partition(c, lo, hi, better);
    if (p === k || p + 1 === k) return;
    if (p > k) hi = p;
    else lo = p + 1;
  }
}

/**
 * The nucleus: reorders c[0, n) so that c[0, m) is the smallest set of best
 * candidates whose weight reaches `target`, and returns m (n if the total falls
 * short by rounding). Weighted quickselect, expected O(n).
 */
function selectNucleus(c: Candidates, n: number, target: number, better: (a: number, b: number) => boolean): number {
  let lo = 0;
  let hi = n;
  let acc = 0; // weight of c[0, lo), all of it inside the nucleus
  while (hi - lo > 1) {
    const p = partition(c, lo, hi, better);
    let upper = 0;
    for (let i = lo; i < p; i++) upper += c.w[i];
    if (acc + upper >= target) {
      hi = p; // the nucleus ends among the better ones
    } else if (acc + upper + c.w[p] >= target) {
      return p + 1; // ...exactly at the pivot
    } else {
      acc += upper + c.w[p];
      lo = p + 1;
    }
  }
  // One candidate left undecided: it is needed unless c[0, lo) already reaches the target.
  return lo < hi && acc < target ? lo + 1 : Math.min(n, Math.max(lo, 1));
}

export function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}
