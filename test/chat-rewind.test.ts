/**
 * chat.rewind() / chat.regenerate(): the last sends leave the history and the state goes back to what it was
 * before them. Proven against sessions that never had those sends: the next reply's log-probabilities (which
 * depend on every bit of the state) must be identical, and the state must be reused, not rebuilt. Both ways
 * of getting the state back are checked: a checkpoint (options.checkpoints) and feeding the kept tokens again.
 */
import { z } from 'zod';

import { ContextOverflowError, InvalidArgumentError } from '../lib';
import type { ChatReply, ChatSession } from '../lib/chat/session';
import type { LogitsContext } from '../lib/chat/turn';
import { Sequence } from '../lib/sequence';
import { describeWithChatModel } from './helpers/chat-model';

describeWithChatModel('rewind and regenerate', 'rewind tests', { contextSize: 1024 }, (cm) => {
  const turn = { maxTokens: 6, temperature: 0 } as const;
  const probe = { maxTokens: 5, temperature: 0, logprobs: true, topLogprobs: 3 } as const;
  /** The next reply as numbers that change with any difference in the state. */
  const fingerprint = (r: ChatReply) => ({ text: r.text, logprobs: r.logprobs, cached: r.usage.cachedTokens, prompt: r.usage.promptTokens });
  type Fingerprint = ReturnType<typeof fingerprint>;
  /**
   * A swapped-in checkpoint is the very state: equal to the last bit. A state fed again in one prefill went
   * through the chunked scan where the original was built turn by turn: equal to float rounding (1e-5 here;
   * a wrong or missing token moves these log-probabilities by far more).
   */
  function expectSameState(got: Fingerprint, want: Fingerprint, exact: boolean): void {
    if (exact) return expect(got).toEqual(want);
    const strip = (f: Fingerprint) => ({ ...f, logprobs: f.logprobs?.map((e) => ({ ...e, logprob: 0, top: e.top.map((t) => ({ ...t, logprob: 0 })) })) });
    expect(strip(got)).toEqual(strip(want));
    const values = (f: Fingerprint) => f.logprobs!.flatMap((e) => [e.logprob, ...e.top.map((t) => t.logprob)]);
    const [a, b] = [values(got), values(want)];
    expect(a.length).toBeGreaterThan(0);
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(1e-5);
  }

  /** A session that had only `messages` sent to it, one send each. */
  async function reference(messages: string[], options = {}): Promise<ChatSession> {
    const chat = cm.model.createChatSession({ reasoning: 'off', ...options });
    for (const m of messages) await chat.send(m, turn);
    return chat;
  }

  describe.each([0, 1])('checkpoints: %i', (checkpoints) => {
    test('rewind() undoes the last send: history and state as if it never happened', async () => {
      const chat = await reference(['first question', 'second question'], { checkpoints });
      const before = chat.save().tokens.length;
      const prefill = jest.spyOn(Sequence.prototype, 'prefill');
      const input = await chat.rewind();
      const fedAgain = prefill.mock.calls.map((c) => (c[0] as ArrayLike<number>).length);
      prefill.mockRestore();
      expect(input).toEqual([{ role: 'user', content: 'second question' }]);

      const ref = await reference(['first question']);
      expect(chat.history).toEqual(ref.history);
      const kept = ref.save().tokens;
      expect(chat.save().tokens).toEqual(kept);
      expect(chat.save().tokens.length).toBeLessThan(before);
      // A checkpoint is swapped in; without one the kept tokens are fed again, once.
      expect(fedAgain).toEqual(checkpoints > 0 ? [] : [kept.length]);

      const got = fingerprint(await chat.send('third', probe));
      expect(got.cached).toBe(kept.length); // the state was reused, not rebuilt from the history
      expectSameState(got, fingerprint(await ref.send('third', probe)), checkpoints > 0);
      chat.dispose();
      ref.dispose();
    });

    test('regenerate() replaces the last reply: the same one when greedy, a seeded draw when sampling', async () => {
      const chat = await reference(['hello'], { checkpoints });
      const sampled = { maxTokens: 8, temperature: 1, seed: 7 } as const;
      const original = await chat.send('tell me more', turn);
      const length = chat.history.length;
      const again = await chat.regenerate(turn);
      expect(again.text).toBe(original.text);
      expect(again.usage).toEqual(original.usage);
      expect(chat.history).toHaveLength(length);

      const drawn = await chat.regenerate(sampled);
      const ref = await reference(['hello']);
      const want = await ref.send('tell me more', sampled);
      expect(drawn.text).toBe(want.text);
      expect(chat.history).toEqual(ref.history);
      expectSameState(fingerprint(await chat.send('next', probe)), fingerprint(await ref.send('next', probe)), checkpoints > 0);
      chat.dispose();
      ref.dispose();
    });

    test('rewind(n) undoes several sends, tool rounds included, and returns the first one undone', async () => {
      const chat = cm.model.createChatSession({
        reasoning: 'off',
        checkpoints,
        tools: { lookup: { parameters: z.object({ q: z.string() }), handler: async () => 'found' } },
      });
      await chat.send('one', turn);
      // A scripted call runs its handler and the model answers: one send, two inputs, four messages.
      const enc = (t: string) => cm.model.tokenizer.encode(t);
      const eot = cm.model.tokenizer.special.endOfTurn!;
      const call = [...enc('<TOOLCALL>[{"name": "lookup", "arguments": {"q": "x"}}]</TOOLCALL>'), eot];
      let round = -1;
      const scripted = (logits: Float32Array, ctx: LogitsContext) => {
        if (ctx.step === 0) round++;
        if (round > 0 || ctx.step >= call.length) return;
        logits.fill(-Infinity);
        logits[call[ctx.step]] = 0;
      };
      await chat.send([{ role: 'user', content: 'two' }, { role: 'user', content: 'and a half' }], { ...turn, maxTokens: call.length + 6, logitsProcessor: scripted });
      expect(chat.history.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'user', 'assistant', 'tool', 'assistant']);
      await chat.send('three', turn);

      expect(await chat.rewind(2)).toEqual([{ role: 'user', content: 'two' }, { role: 'user', content: 'and a half' }]);
      expect(chat.history.map((m) => m.role)).toEqual(['user', 'assistant']);
      const ref = cm.model.createChatSession({ reasoning: 'off', tools: { lookup: { parameters: z.object({ q: z.string() }) } } });
      await ref.send('one', turn);
      // (rewinding two sends with one checkpoint, the older send's state is fed again)
      expectSameState(fingerprint(await chat.send('four', probe)), fingerprint(await ref.send('four', probe)), false);
      chat.dispose();
      ref.dispose();
    });
  });

  test('only the latest `checkpoints` sends keep a state copy: memory is reserved for them and freed with the session', async () => {
    const base = cm.model.memory.reservedBytes;
    const chat = await reference(['a'], { checkpoints: 1 });
    const session = cm.model.memory.reservedBytes - base;
    const { stateBytesPerSequence: state, kvBytesPerToken: kv } = cm.model.memory;

    const held = chat.save().tokens.length;
    await chat.send('b', turn); // checkpoint of the state after 'a'
    expect(cm.model.memory.reservedBytes - base).toBe(session + state + kv * held);
    const held2 = chat.save().tokens.length;
    await chat.send('c', turn); // the newer checkpoint replaces it
    expect(cm.model.memory.reservedBytes - base).toBe(session + state + kv * held2);

    // Undoing 'c' uses the checkpoint; undoing 'b' as well has none left and feeds the tokens again.
    const prefill = jest.spyOn(Sequence.prototype, 'prefill');
    await chat.rewind();
    expect(prefill).not.toHaveBeenCalled();
    await chat.rewind();
    expect(prefill).toHaveBeenCalledTimes(1);
    prefill.mockRestore();
    expect(chat.history.map((m) => m.content)).toEqual(['a', expect.any(String)]);

    chat.dispose();
    await new Promise((r) => setTimeout(r, 50)); // releases drain through the model's queue
    expect(cm.model.memory.reservedBytes).toBe(base);
  });

  test('a state rebuilt since (tool list changed): the checkpoint still restores it; without one the next send rebuilds', async () => {
    for (const checkpoints of [1, 0]) {
      const chat = await reference(['one'], { checkpoints });
      const kept = chat.save().tokens.length;
      // Tools for this send only: the system block changes, so the whole conversation is fed again.
      const r = await chat.send('two', { ...turn, tools: { t: { parameters: z.object({}) } } });
      expect(r.usage.cachedTokens).toBe(0);
      await chat.rewind();
      const ref = await reference(['one']);
      expect(chat.history).toEqual(ref.history);
      // Without a checkpoint the state is rebuilt from the history, as after dispose(): generated tokens are
      // re-encoded from their text then, so compare with a reference rebuilt the same way.
      if (checkpoints === 0) ref.dispose();
      const got = fingerprint(await chat.send('three', probe));
      const want = fingerprint(await ref.send('three', probe));
      expect(got.cached).toBe(checkpoints > 0 ? kept : 0);
      expectSameState(got, want, true);
      chat.dispose();
      ref.dispose();
    }
  });

  test('after a checkpoint brings back a state from before a rebuild, older sends still rewind by feeding tokens', async () => {
    const chat = await reference(['one', 'two'], { checkpoints: 1 });
    const r = await chat.send('three', { ...turn, tools: { t: { parameters: z.object({}) } } }); // fed whole: a new token list
    expect(r.usage.cachedTokens).toBe(0);
    await chat.rewind(); // the checkpoint from before 'three': the old token list is the state's again
    await chat.rewind(); // no checkpoint for 'two' (only the latest is kept): its tokens are cut from that list
    const ref = await reference(['one']);
    const got = fingerprint(await chat.send('four', probe));
    expect(got.cached).toBe(ref.save().tokens.length);
    expectSameState(got, fingerprint(await ref.send('four', probe)), false);
    chat.dispose();
    ref.dispose();
  });

  test('a resumed session rewinds to its last user message and rebuilds the state from the history', async () => {
    const chat = await reference(['alpha', 'beta']);
    const restored = await cm.model.restoreChatSession(chat.save());
    await restored.send('gamma', turn); // one send this session saw, two it did not
    expect(await restored.rewind(2)).toEqual([{ role: 'user', content: 'beta' }]);
    const ref = await reference(['alpha']);
    expect(restored.history).toEqual(ref.history);
    ref.dispose(); // the reference rebuilds its state from the history too (generated tokens re-encoded from text)
    const got = fingerprint(await restored.send('delta', probe));
    expect(got.cached).toBe(0);
    expectSameState(got, fingerprint(await ref.send('delta', probe)), true);
    await expect(restored.rewind(3)).rejects.toThrow(/holds 2 send\(s\), cannot undo 3/);
    expect(restored.history).toHaveLength(4); // a refused rewind changes nothing
    chat.dispose();
    restored.dispose();
    ref.dispose();
  });

  test('fork() can rewind on its own; the original keeps its history and state', async () => {
    const chat = await reference(['one', 'two'], { checkpoints: 1 });
    const fork = await chat.fork();
    await fork.rewind();
    const ref = await reference(['one']);
    expectSameState(fingerprint(await fork.send('x', probe)), fingerprint(await ref.send('x', probe)), false); // (forks keep no checkpoints)
    const whole = await reference(['one', 'two']);
    expectSameState(fingerprint(await chat.send('x', probe)), fingerprint(await whole.send('x', probe)), true);
    for (const c of [chat, fork, ref, whole]) c.dispose();
  });

  test('errors: nothing to undo, bad counts, a send in progress, a failed send leaves nothing to undo', async () => {
    const chat = cm.model.createChatSession({ reasoning: 'off', checkpoints: 2 });
    await expect(chat.rewind()).rejects.toThrow(InvalidArgumentError);
    await expect(chat.regenerate()).rejects.toThrow(/holds 0 send\(s\)/);
    await chat.send('one', turn);
    await expect(chat.rewind(0)).rejects.toThrow(/at least 1/);
    await expect(chat.rewind(1.5)).rejects.toThrow(InvalidArgumentError);
    await expect(chat.regenerate({ temperature: -1 } as never)).rejects.toThrow(InvalidArgumentError);
    expect(chat.history).toHaveLength(2); // bad options fail before the reply is undone

    const running = chat.send('two', { ...turn, maxTokens: 30 });
    await expect(chat.rewind()).rejects.toThrow(/in progress/);
    await running;
    await expect(chat.send('x '.repeat(2000), turn)).rejects.toThrow(ContextOverflowError);
    expect(await chat.rewind()).toEqual([{ role: 'user', content: 'two' }]); // the failed send was not a send
    expect(chat.history.map((m) => m.content)).toEqual(['one', expect.any(String)]);
    chat.dispose();
  });
});
