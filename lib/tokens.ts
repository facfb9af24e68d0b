import { InvalidArgumentError } from './errors';

/** Validates token ids (integers in [0, vocabSize)) and packs them as an Int32Array. */
export function toTokenArray(tokens: ArrayLike<number>, vocabSize: number, what: string): Int32Array {
  if (tokens == null || typeof tokens !== 'object' || typeof tokens.length !== 'number')
    throw new InvalidArgumentError(`${what}: tokens must be an array of token ids or an Int32Array`);
  const out = new Int32Array(tokens.length);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (!Number.isInteger(t) || t < 0 || t >= vocabSize)
      throw new InvalidArgumentError(
        `${what}: tokens[${i}] = ${String(t)} is not a token id (integers 0..${vocabSize - 1})`,
      );
    out[i] = t;
  }
  return out;
}
