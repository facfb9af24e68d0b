/**
 * send({ responsePrefix }): the answer starts with the given text, fed (not sampled) where the answer begins:
 * right after the generation prompt with reasoning off, after the thought (closed by the model or by a
 * thinking budget) with reasoning on. Checked against an independent route to the same tokens (a logits
 * processor that forces the prefix's tokens one by one), on both sampling paths, and with JSON mode.
 */
import { InvalidArgumentError } from '../lib/errors';
import type { LogitsContext } from '../lib/chat/turn';
import { describeWithChatModel } from './helpers/chat-model';

describeWithChatModel('responsePrefix', 'responsePrefix tests', { contextSize: 2048 }, (cm) => {
  afterAll(() => {
    delete process.env.NEMOTRON_NATIVE_SAMPLING;
  });

  const prefix = 'Answer: "';

  /** Forces `ids` as the first answer tokens (every other logit -inf), then leaves the logits alone. */
  const forcing = (ids: number[]) => {
    let k = 0;
    return (logits: Float32Array, ctx: LogitsContext) => {
      if (ctx.channel !== 'text' || k >= ids.length) return;
      const keep = ids[k++];
      logits.fill(-Infinity);
      logits[keep] = 0;
    };
  };

  test('reasoning off: the answer is the prefix and what the model writes after it', async () => {
    const ids = cm.model.tokenizer.encode(prefix);
    const a = cm.model.createChatSession({ reasoning: 'off' });
    const got = await a.send('Say something.', { temperature: 0, maxTokens: 12, responsePrefix: prefix });
    const b = cm.model.createChatSession({ reasoning: 'off' });
    const want = await b.send('Say something.', { temperature: 0, maxTokens: 12 + ids.length, logitsProcessor: forcing(ids) });
    expect(got.text.startsWith(prefix)).toBe(true);
    expect(got.text).toBe(want.text);
    expect(got.usage.completionTokens).toBe(want.usage.completionTokens - ids.length); // the prefix is not generated...
    expect(got.usage.promptTokens).toBe(want.usage.promptTokens + ids.length); // ...it is prompt
    // The history holds the whole answer, and the next turn continues from the same state on both sessions.
    expect(a.history[a.history.length - 1].content).toBe(got.text);
    const next = { temperature: 0, maxTokens: 8 } as const;
    expect((await a.send('More.', next)).text).toBe((await b.send('More.', next)).text);
    a.dispose();
    b.dispose();
  });

  test('reasoning on: the prefix follows the thought, whether the model or the budget closes it', async () => {
    const tok = cm.model.tokenizer;
    const thinkEnd = tok.special.thinkEnd!;
    const ids = tok.encode(prefix);
    const think = async (o: { temperature: number; bias: number; seed?: number }, extra: object = {}) => {
      const chat = cm.model.createChatSession();
      const r = await chat.send('Think, then answer.', {
        temperature: o.temperature,
        seed: o.seed,
        // The model closes its thought itself: end-of-thinking is masked for 3 tokens, then favoured (the
        // penalties keep it from dominating the answer afterwards, so tokens drawn there depend on the context).
        thinking: { maxTokens: 50, minTokens: 3 },
        logitBias: { [thinkEnd]: o.bias },
        presencePenalty: 2,
        frequencyPenalty: 2,
        maxTokens: 20,
        responsePrefix: prefix,
        ...extra,
      });
      chat.dispose();
      return r;
    };
    // Greedy: the same thought, then the prefix, then what a run that forces the prefix token by token writes.
    const greedy = { temperature: 0, bias: 4 };
    const got = await think(greedy);
    const want = await think(greedy, { responsePrefix: undefined, maxTokens: 20 + ids.length, logitsProcessor: forcing(ids) });
    expect(got.usage.reasoningTokens).toBe(3);
    expect(got.reasoning).toBe(want.reasoning);
    expect(got.text).toBe(want.text);
    expect(got.text.startsWith(prefix)).toBe(true);
    expect(got.reasoning).not.toContain(prefix);

    // Sampled, on both paths: the native path must not draw a token before the prefix is fed (that draw would
    // be from the wrong position, and would shift the RNG stream).
    const sampled = async (seed: number) => {
      process.env.NEMOTRON_NATIVE_SAMPLING = '0';
      const js = await think({ temperature: 0.5, bias: 4, seed }, { maxTokens: 80 });
      delete process.env.NEMOTRON_NATIVE_SAMPLING;
      const native = await think({ temperature: 0.5, bias: 4, seed }, { maxTokens: 80 });
      expect(native.reasoning).toBe(js.reasoning);
      expect(native.text).toBe(js.text);
      expect(js.text.startsWith(prefix)).toBe(true);
      return js.usage.reasoningTokens;
    };
    for (const seed of [1, 2, 3]) expect(await sampled(seed)).toBeLessThan(50); // (closed by the model, not the budget)

    // A budget of 2 closes the thought with NVIDIA's closing text, then the prefix.
    const chat = cm.model.createChatSession();
    const r = await chat.send('Think, then answer.', {
      seed: 4,
      temperature: 0.7,
      thinking: { maxTokens: 2 },
      logitBias: { [thinkEnd]: -Infinity },
      maxTokens: 20,
      responsePrefix: prefix,
    });
    expect(r.usage.reasoningTokens).toBe(2);
    expect(r.text.startsWith(prefix)).toBe(true);
    chat.dispose();
  });

  test('with JSON mode the prefix must start valid JSON, and the answer completes it', async () => {
    const chat = cm.model.createChatSession({ reasoning: 'off' });
    const r = await chat.send('JSON please', { responseFormat: 'json', responsePrefix: '{"name": "', temperature: 1, seed: 3, maxTokens: 300 });
    expect(r.text.startsWith('{"name": "')).toBe(true);
    if (r.finishReason === 'stop') expect(typeof JSON.parse(r.text).name).toBe('string');
    else expect(r.finishReason).toBe('length');
    await expect(chat.send('again', { responseFormat: 'json', responsePrefix: 'Sure! {' })).rejects.toThrow(InvalidArgumentError);
    await expect(chat.send('again', { responsePrefix: '' })).rejects.toThrow(/responsePrefix/);
    chat.dispose();
  });
});
