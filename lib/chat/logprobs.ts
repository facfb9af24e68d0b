/**
 * Log-probabilities of sampled tokens and their most likely alternatives, from
 * the model's own distribution (log-softmax of the raw logits, before
 * penalties, bias or temperature: what vLLM reports by default).
 */
export interface TokenAlternative {
  id: number;
  /** The token's text (a token that is part of a UTF-8 character shows U+FFFD; see bytes). */
  token: string;
  bytes: number[];
  logprob: number;
}

export interface TokenLogprob extends TokenAlternative {
  /** The `top` most likely tokens at this step, most likely first. */
  top: TokenAlternative[];
}

export type DescribeToken = (id: number) => { token: string; bytes: number[] };

export function tokenLogprob(logits: Float32Array, id: number, top: number, describe: DescribeToken): TokenLogprob {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const logZ = max + Math.log(sum);

  // top-k by insertion into a small sorted list (k <= 20, one pass over the vocabulary)
  const best: number[] = [];
  if (top > 0)
    for (let i = 0; i < logits.length; i++) {
      if (best.length === top && logits[i] <= logits[best[best.length - 1]]) continue;
      let j = best.length < top ? best.length : best.length - 1;
      if (best.length < top) best.push(i);
      while (j > 0 && logits[best[j - 1]] < logits[i]) {
        best[j] = best[j - 1];
        j--;
      }
      best[j] = i;
    }
  const alt = (t: number): TokenAlternative => ({ id: t, ...describe(t), logprob: logits[t] - logZ });
  return { ...alt(id), top: best.map(alt) };
}
