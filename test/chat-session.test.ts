/**
 * Chat sessions end to end on the CPU: a tiny random NemotronH + the generated
 * byte-level test tokenizer + the model's real chat template. Random weights give
 * arbitrary tokens, so where a behaviour must be pinned down the tests force the
 * model's output with a scripted logits processor (as a user could for
 * constrained decoding).
 */
import { z } from 'zod';

import { ContextOverflowError, InvalidArgumentError, loadModel } from '../lib';
import type { LogitsContext } from '../lib/chat/turn';
import { describeWithChatModel } from './helpers/chat-model';

describeWithChatModel('chat sessions', 'chat session tests', { contextSize: 2048 }, (cm) => {
  const enc = (text: string) => cm.model.tokenizer.encode(text);
  const eot = () => cm.model.tokenizer.special.endOfTurn!;
  /** Forces, turn by turn, the given token ids at each sampling step; free sampling after a script ends. */
  function script(...turns: number[][]) {
    let turn = -1;
    return (logits: Float32Array, ctx: LogitsContext) => {
      if (ctx.step === 0) turn++;
      const id = turns[turn]?.[ctx.step];
      if (id === undefined) return;
      logits.fill(-Infinity);
      logits[id] = 0;
    };
  }
  /** Bans the given ids at every step (e.g. end of turn, to get long outputs). */
  const ban = (...ids: number[]) => (logits: Float32Array) => ids.forEach((i) => (logits[i] = -Infinity));

  test('the first turn feeds exactly the rendered template', async () => {
    const chat = cm.model.createChatSession({ systemPrompt: 'You are terse.' });
    await chat.send('Hi there', { maxTokens: 3, reasoning: 'off' });
    const expected = cm.model.template.render({
      ...cm.model.tokenizer.templateVariables,
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'Hi there /no_think' },
      ],
      addGenerationPrompt: true,
    });
    expect(expected.endsWith('<SPECIAL_11>Assistant\n<think></think>')).toBe(true);
    const fed = chat.save().tokens;
    const promptIds = enc(expected);
    expect(fed.slice(0, promptIds.length)).toEqual(promptIds);
    chat.dispose();
  });

  test('a send after dispose() feeds the whole conversation again instead of trusting freed state', async () => {
    const chat = cm.model.createChatSession({ systemPrompt: 'You are terse.', reasoning: 'off' });
    await chat.send('Hi there', { maxTokens: 3 });
    chat.dispose();
    const reply = await chat.send('And again', { maxTokens: 3 });
    expect(reply.usage.cachedTokens).toBe(0);
    const expected = cm.model.template.render({
      ...cm.model.tokenizer.templateVariables,
      messages: [{ role: 'system', content: 'You are terse. /no_think' }, ...chat.history.slice(0, -1)],
      addGenerationPrompt: true,
    });
    const promptIds = enc(expected);
    expect(reply.usage.promptTokens).toBe(promptIds.length);
    expect(chat.save().tokens.slice(0, promptIds.length)).toEqual(promptIds);
    chat.dispose();
  });

  test('reasoning and answer are separate channels; tags never leak; usage counts them', async () => {
    const chat = cm.model.createChatSession();
    const reasoningIds = enc('Let me think about it.');
    const answerIds = enc('The answer is 4.');
    const reply = await chat.send('What is 2+2?', {
      logitsProcessor: script([...reasoningIds, cm.model.tokenizer.special.thinkEnd!, ...enc('\n\n'), ...answerIds, eot()]),
    });
    expect(reply.reasoning).toBe('Let me think about it.');
    expect(reply.text).toBe('The answer is 4.');
    expect(reply.text).not.toMatch(/think>/);
    expect(reply.finishReason).toBe('stop');
    expect(reply.usage.reasoningTokens).toBe(reasoningIds.length);
    // reasoning + the </think> token + the separator + answer (the end-of-turn token is not part of the reply)
    expect(reply.usage.completionTokens).toBe(reasoningIds.length + 1 + enc('\n\n').length + answerIds.length);
    expect(chat.history.at(-1)).toMatchObject({ role: 'assistant', content: 'The answer is 4.', reasoning_content: 'Let me think about it.' });
    chat.dispose();
  });

  test('turn N+1 prefills only the new tokens (cachedTokens) and matches a full re-feed', async () => {
    const chat = cm.model.createChatSession({ systemPrompt: 'S', reasoning: 'off' });
    const r1 = await chat.send('first question', { maxTokens: 6 });
    expect(r1.usage.cachedTokens).toBe(0);
    const stateAfter1 = chat.save().tokens.length;
    const r2 = await chat.send('second question', { maxTokens: 6 });
    expect(r2.usage.cachedTokens).toBe(stateAfter1);
    expect(r2.usage.promptTokens).toBeGreaterThan(r2.usage.cachedTokens);
    // the new part is small: the closing of turn 1 plus the new user turn and generation prompt
    expect(r2.usage.promptTokens - r2.usage.cachedTokens).toBeLessThan(enc('second question').length + 20);
    // a session restored from the same tokens (fed in one go) continues identically
    const snap = chat.save();
    const restored = await cm.model.restoreChatSession(snap);
    const a = await chat.send('third', { maxTokens: 8 });
    const b = await restored.send('third', { maxTokens: 8 });
    expect(b.text).toBe(a.text);
    expect(b.usage.cachedTokens).toBe(a.usage.cachedTokens);
    chat.dispose();
    restored.dispose();
  });

  test('fork() continues identically; the original is unaffected', async () => {
    const chat = cm.model.createChatSession({ reasoning: 'off' });
    await chat.send('hello', { maxTokens: 5 });
    const fork = await chat.fork();
    const a = await fork.send('go on', { maxTokens: 10 });
    const b = await chat.send('go on', { maxTokens: 10 });
    expect(a.text).toBe(b.text);
    expect(fork.history).toEqual(chat.history);
    chat.dispose();
    fork.dispose();
  });

  test('save() is JSON and restores history and state', async () => {
    const chat = cm.model.createChatSession({ systemPrompt: 'Be brief.', reasoning: 'off' });
    await chat.send('one', { maxTokens: 4 });
    const snap = JSON.parse(JSON.stringify(chat.save()));
    const restored = await cm.model.restoreChatSession(snap);
    expect(restored.history).toEqual(chat.history);
    const [x, y] = [await chat.send('two', { maxTokens: 6 }), await restored.send('two', { maxTokens: 6 })];
    expect(y.text).toBe(x.text);
    await expect(cm.model.restoreChatSession({ format: 'nope' } as never)).rejects.toThrow(InvalidArgumentError);
    chat.dispose();
    restored.dispose();
  });

  describe('thinking budget', () => {
    const noEnd = () => ban(cm.model.tokenizer.special.thinkEnd!, eot());

    test('maxTokens: reasoning stops at the budget and the answer follows in the same sequence', async () => {
      const chat = cm.model.createChatSession({ thinking: { maxTokens: 5 } });
      const lengthBefore = 0;
      const reply = await chat.send('Think forever', { maxTokens: 12, logitsProcessor: noEnd() });
      expect(reply.usage.reasoningTokens).toBe(5);
      expect(reply.usage.completionTokens).toBe(12);
      expect(reply.finishReason).toBe('length');
      // the closing text was fed to the sequence: it holds "</think>" once, after the prompt's "<think>"
      const text = cm.model.tokenizer.decode(chat.save().tokens);
      expect(text.split('</think>').length - 1).toBe(1);
      expect(text.indexOf('</think>')).toBeGreaterThan(text.lastIndexOf('<think>'));
      expect(reply.usage.cachedTokens).toBe(lengthBefore);
      chat.dispose();
    });

    test('a forced "</think>" (logit bias at a chosen step) ends reasoning early, within budget', async () => {
      const chat = cm.model.createChatSession({ thinking: { maxTokens: 10 } });
      const thinkEnd = cm.model.tokenizer.special.thinkEnd!;
      const reply = await chat.send('q', {
        maxTokens: 10,
        seed: 5,
        logitsProcessor: (l, ctx) => {
          l[eot()] = -Infinity;
          if (ctx.step < 3) l[thinkEnd] = -Infinity; // only the chosen step may end the thought
          if (ctx.step === 3) l[thinkEnd] = 1e6;
        },
      });
      expect(reply.usage.reasoningTokens).toBe(3);
      expect(reply.usage.completionTokens).toBe(10);
      chat.dispose();
    });

    test('graceTokens: closes at the first newline after the budget', async () => {
      const chat = cm.model.createChatSession({ thinking: { maxTokens: 4, graceTokens: 5 } });
      const nl = enc('\n');
      expect(nl.length).toBe(1);
      // every token whose text holds a newline (not only "\n" itself) would end the grace window
      const withNewline: number[] = [];
      for (let id = 0; id < cm.model.tokenizer.vocabSize; id++) if (cm.model.tokenizer.decode([id]).includes('\n')) withNewline.push(id);
      const reply = await chat.send('q', {
        maxTokens: 9,
        seed: 3,
        logitsProcessor: (l, ctx) => {
          l[eot()] = -Infinity;
          l[cm.model.tokenizer.special.thinkEnd!] = -Infinity;
          if (ctx.step < 6) for (const id of withNewline) l[id] = -Infinity;
          if (ctx.step === 6) l[nl[0]] = 1e6;
        },
      });
      expect(reply.usage.reasoningTokens).toBe(7); // 4 + 2 grace tokens + the newline token
      expect(cm.model.tokenizer.decode(chat.save().tokens)).toContain('\n</think>');
      chat.dispose();
    });

    test('minTokens: end-of-thinking and end-of-turn are masked until reached', async () => {
      const chat = cm.model.createChatSession({ thinking: { maxTokens: 20, minTokens: 6 } });
      const thinkEnd = cm.model.tokenizer.special.thinkEnd!;
      const reply = await chat.send('q', {
        maxTokens: 15,
        logitsProcessor: (l) => {
          l[thinkEnd] = 1e6; // the model "wants" to stop thinking at once
          l[eot()] = 1e5;
        },
      });
      expect(reply.usage.reasoningTokens).toBe(6);
      chat.dispose();
    });

    test('maxTokens 0 behaves like reasoning off', async () => {
      const chat = cm.model.createChatSession({ thinking: { maxTokens: 0 } });
      const reply = await chat.send('q', { maxTokens: 4 });
      expect(reply.reasoning).toBe('');
      expect(reply.usage.reasoningTokens).toBe(0);
      expect(cm.model.tokenizer.decode(chat.save().tokens)).toContain('<think></think>');
      chat.dispose();
    });
  });

  test('stop strings are matched across token boundaries and not included', async () => {
    const opts = { reasoning: 'off' as const, maxTokens: 24, logitsProcessor: ban(eot()) };
    const first = cm.model.createChatSession();
    const full = (await first.send('write', opts)).text;
    first.dispose();
    // a stop string spanning the boundary between two generated tokens
    const chat = cm.model.createChatSession();
    let stopAt = -1;
    const pieces: string[] = [];
    await chat.send('write', { ...opts, maxTokens: 24, onToken: (id) => pieces.push(cm.model.tokenizer.decode([id])) });
    const boundary = pieces.slice(0, 6).join('').length;
    const stop = full.slice(boundary - 2, boundary + 2);
    expect(stop.trim().length).toBeGreaterThanOrEqual(3); // the seeded random model gives real text here
    stopAt = full.indexOf(stop);
    const again = cm.model.createChatSession();
    const r = await again.send('write', { ...opts, stop: [stop] });
    expect(r.finishReason).toBe('stop');
    expect(r.text).toBe(full.slice(0, stopAt).replace(/\s+$/, ''));
    chat.dispose();
    again.dispose();
  });

  test('same seed, same output', async () => {
    const run = async (seed: number) => {
      const c = cm.model.createChatSession({ reasoning: 'off' });
      const r = await c.send('tell me', { temperature: 1, seed, maxTokens: 16, logitsProcessor: ban(eot()) });
      c.dispose();
      return r.text;
    };
    expect(await run(11)).toBe(await run(11));
    expect(await run(11)).not.toBe(await run(12));
  });

  test('AbortSignal stops within one step; partial reply; the session stays usable', async () => {
    const chat = cm.model.createChatSession({ reasoning: 'off' });
    const ac = new AbortController();
    let tokens = 0;
    const reply = await chat.send('long', {
      maxTokens: 100,
      signal: ac.signal,
      logitsProcessor: ban(eot()),
      onToken: () => {
        if (++tokens === 3) ac.abort();
      },
    });
    expect(reply.finishReason).toBe('abort');
    expect(reply.usage.completionTokens).toBe(3);
    const next = await chat.send('again', { maxTokens: 3 });
    expect(next.usage.cachedTokens).toBeGreaterThan(0);
    const ac2 = new AbortController();
    ac2.abort(new Error('user left'));
    await expect(chat.send('x', { signal: ac2.signal, throwOnAbort: true })).rejects.toThrow('user left');
    chat.dispose();
  });

  test('streaming: reasoning deltas, then text deltas, then done; UTF-8 never split', async () => {
    const chat = cm.model.createChatSession();
    const answer = 'Voilà 🙂 ok';
    const events: { type: string; text?: string }[] = [];
    for await (const ev of chat.stream('hi', {
      logitsProcessor: script([...enc('hmm'), cm.model.tokenizer.special.thinkEnd!, ...enc(answer), eot()]),
    }))
      events.push(ev as { type: string; text?: string });
    const types = events.map((e) => e.type);
    expect(types.at(-1)).toBe('done');
    expect(types.lastIndexOf('reasoning')).toBeLessThan(types.indexOf('text'));
    const text = events.filter((e) => e.type === 'text').map((e) => e.text).join('');
    expect(text).toBe(answer);
    for (const e of events) if (e.text) expect(e.text).not.toContain('\uFFFD');
    expect(enc('🙂').length).toBeGreaterThan(1); // the emoji really spans several tokens
    chat.dispose();
  });

  test('streaming: the deltas join to exactly the reply, its leading and trailing whitespace held back', async () => {
    const chat = cm.model.createChatSession();
    const events: any[] = [];
    for await (const ev of chat.stream('hi', {
      logitsProcessor: script([
        ...enc('\n  hmm \n\n'),
        cm.model.tokenizer.special.thinkEnd!,
        ...enc('\n Hi  there \n'),
        ...enc(' ok \n\n'),
        eot(),
      ]),
    }))
      events.push(ev);
    const done = events.at(-1);
    expect(done.type).toBe('done');
    const joined = (type: string) => events.filter((e) => e.type === type).map((e) => e.text).join('');
    expect(done.reply.reasoning).toBe('hmm');
    expect(done.reply.text).toBe('Hi  there \n ok');
    expect(joined('reasoning')).toBe(done.reply.reasoning);
    expect(joined('text')).toBe(done.reply.text);
    chat.dispose();
  });

  describe('tools', () => {
    const call = (json: string) => enc(`<TOOLCALL>${json}</TOOLCALL>`);

    test('a tool call is parsed, validated and, with a handler, run until an answer', async () => {
      const seen: unknown[] = [];
      const chat = cm.model.createChatSession({
        reasoning: 'off',
        tools: {
          get_weather: {
            description: 'Weather for a city',
            parameters: z.object({ city: z.string() }),
            handler: async (args: { city: string }) => {
              seen.push(args);
              return { city: args.city, sky: 'sunny' };
            },
          },
        },
      });
      const reply = await chat.send('Weather in Paris?', {
        logitsProcessor: script(
          [...call('[{"name": "get_weather", "arguments": {"city": "Paris"}}]'), eot()],
          [...enc('It is sunny.'), eot()],
        ),
      });
      expect(seen).toEqual([{ city: 'Paris' }]);
      expect(reply.text).toBe('It is sunny.');
      expect(reply.finishReason).toBe('stop');
      const roles = chat.history.map((m) => m.role);
      expect(roles).toEqual(['user', 'assistant', 'tool', 'assistant']);
      expect(chat.history[1].tool_calls).toHaveLength(1);
      expect(chat.history[2].content).toBe('{"city":"Paris","sky":"sunny"}');
      // the tool declaration went through the template into the prompt
      expect(cm.model.tokenizer.decode(chat.save().tokens)).toContain('<AVAILABLE_TOOLS>[{"name": "get_weather"');
      chat.dispose();
    });

    test('invalid calls are reported with the reason and not executed', async () => {
      let ran = false;
      const chat = cm.model.createChatSession({
        reasoning: 'off',
        tools: { get_weather: { parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }, handler: () => (ran = true) } },
      });
      const r = await chat.send('?', {
        logitsProcessor: script([...call('[{"name": "get_weather", "arguments": {"town": 3}}, {"name": "nope", "arguments": {}}]'), eot()]),
      });
      expect(ran).toBe(false);
      expect(r.finishReason).toBe('toolCalls');
      expect(r.toolCalls[0].error).toMatch(/invalid arguments for "get_weather".*city/);
      expect(r.toolCalls[1].error).toMatch(/unknown tool "nope"/);
      const bad = await chat.send('again', { logitsProcessor: script([...call('[{"name": "get_weather", "arguments": {]'), eot()]) });
      expect(bad.toolCalls).toEqual([]);
      expect(bad.invalidToolCalls[0].error).toMatch(/invalid JSON/);
      chat.dispose();
    });
  });

  test('context overflow is a typed error; dropOldest keeps the conversation going', async () => {
    const small = await loadModel(cm.md.dir, { device: 'cpu', contextSize: 160 });
    const chat = small.createChatSession({ reasoning: 'off' });
    await chat.send('one', { maxTokens: 20, logitsProcessor: ban(eot()) });
    await chat.send('two', { maxTokens: 20, logitsProcessor: ban(eot()) });
    const long = 'word '.repeat(25);
    await expect(chat.send(long, { maxTokens: 4 })).rejects.toThrow(ContextOverflowError);
    const r = await chat.send(long, { maxTokens: 4, contextOverflow: 'dropOldest' });
    expect(r.usage.cachedTokens).toBe(0);
    // the oldest turn ("one") was dropped; the newest turns remain
    const users = chat.history.filter((m) => m.role === 'user').map((m) => m.content);
    expect(users).toEqual(['two', long]);
    small.dispose();
  });

  test('invalid options name the field', () => {
    expect(() => cm.model.createChatSession({ reasoning: 'maybe' as never })).toThrow(/option "reasoning"/);
    expect(() => cm.model.createChatSession({ thinking: { maxTokens: 4, minTokens: 9 } })).toThrow(/minTokens/);
    const chat = cm.model.createChatSession();
    return expect(chat.send('x', { topP: 2 })).rejects.toThrow(/option "topP"/);
  });
});
