import { tokenLogprob } from '../lib/chat/logprobs';

const describe1 = (id: number) => ({ token: `t${id}`, bytes: [id] });

describe('tokenLogprob', () => {
  test('log-softmax of the chosen token and the top alternatives, most likely first', () => {
    const logits = Float32Array.from([0.5, 3, -1, 2, 3, 0]);
    const e = tokenLogprob(logits, 3, 3, describe1);
    // independent formula: log(exp(l_i) / sum exp(l))
    const z = Math.log([...logits].reduce((a, l) => a + Math.exp(l), 0));
    expect(e.logprob).toBeCloseTo(2 - z, 6);
    expect(e.token).toBe('t3');
    expect(e.top.map((t) => t.id)).toEqual([1, 4, 3]); // ties keep the lower id first
    expect(e.top[0].logprob).toBeCloseTo(3 - z, 6);
    expect(e.top.reduce((a, t) => a + Math.exp(t.logprob), 0)).toBeLessThan(1);
  });
  test('top 0 gives no alternatives; top larger than the vocabulary gives all, sorted', () => {
    const logits = Float32Array.from([1, 2, 0]);
    expect(tokenLogprob(logits, 0, 0, describe1).top).toEqual([]);
    expect(tokenLogprob(logits, 0, 10, describe1).top.map((t) => t.id)).toEqual([1, 0, 2]);
  });
});
