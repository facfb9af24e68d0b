/**
 * Streaming ids → text. Works on bytes: each vocab token of a byte-level BPE stands for a
 * byte string, and a streaming TextDecoder holds back an incomplete UTF-8 sequence until
 * the tokens that complete it arrive. So a delta never carries half a character, each
 * token costs O(its length) (no re-decoding of the sequence), and the deltas add up to
 * Tokenizer.decode(allIds) exactly:
 *  - added tokens (`<think>`, `<SPECIAL_12>`, ...) are emitted whole, as the library's
 *    decoder does: pending bytes before them are flushed first (as U+FFFD if incomplete),
 *    because the library decodes the byte runs between added tokens separately;
 *  - with skipSpecialTokens a special token is dropped before decoding, so the bytes on both
 *    sides join, again as in the library.
 */
import { InvalidArgumentError, ModelLoadError } from '../errors';
import type { Tokenizer } from './tokenizer';

export interface DetokenizerOptions {
  skipSpecialTokens?: boolean;
}

export class IncrementalDetokenizer {
  private decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  private readonly skipSpecial: boolean;

  constructor(private readonly tokenizer: Tokenizer, options: DetokenizerOptions = {}) {
    if (!tokenizer.isByteLevel)
      throw new ModelLoadError('IncrementalDetokenizer needs a byte-level BPE tokenizer (decoder type ByteLevel)', 'ERR_TOKENIZER');
    this.skipSpecial = options.skipSpecialTokens ?? false;
  }

  /** Feeds one token id; returns the text it completes ('' while a character is still incomplete). */
  push(id: number): string {
    if (!Number.isInteger(id) || id < 0 || id >= this.tokenizer.vocabSize)
      throw new InvalidArgumentError(`detokenizer: ${String(id)} is not a token id (integers 0..${this.tokenizer.vocabSize - 1})`);
    if (this.skipSpecial && this.tokenizer.isSpecial(id)) return '';
    const added = this.tokenizer.addedTokenText(id);
    if (added !== undefined) return this.flush() + added;
    return this.decoder.decode(this.tokenizer.tokenBytes(id), { stream: true });
  }

  /** Feeds several ids; returns the concatenated deltas. */
  pushAll(ids: Iterable<number>): string {
    let out = '';
    for (const id of ids) out += this.push(id);
    return out;
  }

  /** Ends the stream: returns held-back bytes (as U+FFFD, as decode() would show them) and resets. */
  flush(): string {
    return this.decoder.decode();
  }
}
