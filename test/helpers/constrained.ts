/**
 * A logits processor for testing constrained answers (JSON mode, required tool
 * calls): greedy decoding that prefers, at every answer step, first a token that
 * cannot continue the constrained answer (outside JSON strings a word, inside
 * strings a raw tab, every third step the end of turn), then the next token of
 * `answer`, then anything else. A correct constraint refuses the first and takes
 * the second, so the answer comes out as exactly `answer`; after it, a ','
 * is pushed hardest, which the constraint must not let through either.
 */
import type { Tokenizer } from '../../lib/chat/tokenizer';
import type { LogitsContext } from '../../lib/chat/turn';

export function pushTowardsInvalid(tok: Tokenizer, answer: number[], reasoning: number[] = []) {
  // whether answer token k starts inside a JSON string (the scripts have no escaped quotes)
  const inString: boolean[] = [];
  let text = '';
  for (const id of answer) {
    inString.push(text.split('"').length % 2 === 0);
    text += tok.decode([id]);
  }
  const word = tok.encode('hello')[0];
  const tab = tok.encode('\t')[0];
  const comma = tok.encode(',')[0];
  let answerStep = 0;
  return (logits: Float32Array, ctx: LogitsContext) => {
    logits.fill(0);
    if (ctx.channel === 'reasoning') {
      logits[ctx.step < reasoning.length ? reasoning[ctx.step] : tok.special.thinkEnd!] = 100;
      return;
    }
    const k = answerStep++;
    logits[answer[Math.min(k, answer.length - 1)]] = 100;
    logits[k % 3 === 2 ? tok.special.endOfTurn! : inString[k] ? tab : word] = 200;
    if (k >= answer.length) logits[comma] = 300;
  };
}
