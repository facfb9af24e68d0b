/**
 * n > 1: a request's choices run together. The first starts alone; once its prompt is in, the others start and
 * their decode steps interleave with its own (one forward pass serves them all); with a prompt cache only the
 * first pays the prompt's prefill. The tokens are exactly those of one-choice requests with the per-choice seeds
 * (seed + index), streamed or not, and a choice that fails takes the request down without leaking sequences.
 */
import OpenAI from 'openai';

import type { LogitsContext } from '../lib/chat/turn';
import { Sequence } from '../lib/sequence';
import { banIds, postJson, startServerFixture, type ServerFixture } from './helpers/server-fixture';
import { sharedModelDir } from './helpers/test-tokenizer';

const describeServer = sharedModelDir() ? describe : describe.skip;
if (!sharedModelDir()) console.log('skipping server n>1 tests: ../shared/models/nemotron-nano-9b-v2 (chat template) not found');

describeServer('server: n choices run together', () => {
  let f: ServerFixture;
  beforeAll(async () => {
    f = await startServerFixture({ load: { contextSize: 1024, promptCache: { maxEntries: 8, minTokens: 4 } } });
  });
  afterAll(async () => {
    await f?.close();
  });
  afterEach(() => {
    f.script.current = undefined;
  });

  const eot = () => f.model.tokenizer.special.endOfTurn!;
  const messages = [{ role: 'user' as const, content: 'Tell me a long story about the sea, please.' }];
  const base = { model: 'tiny', messages, temperature: 1, max_tokens: 12, chat_template_kwargs: { enable_thinking: false } };

  /** Records which choice took each decode step, in order (every step calls its choice's logits processor). */
  function recordSteps(): Array<{ choice: number; step: number }> {
    const log: Array<{ choice: number; step: number }> = [];
    const ban = banIds([eot()]);
    f.script.current = ({ choice }) => (logits: Float32Array, ctx: LogitsContext) => {
      log.push({ choice, step: ctx.step });
      ban(logits);
    };
    return log;
  }

  test('chat: the choices interleave their steps and equal one-choice requests with seeds seed + i', async () => {
    const log = recordSteps();
    const prefill = jest.spyOn(Sequence.prototype, 'prefill');
    const r = (await f.client.chat.completions.create({ ...base, n: 3, seed: 11 } as never)) as any;
    const fed = prefill.mock.calls.map((c) => (c[0] as ArrayLike<number>).length);
    prefill.mockRestore();
    expect(r.choices.map((c: any) => c.index)).toEqual([0, 1, 2]);
    expect(r.usage.completion_tokens).toBe(36);

    // Concurrent: choice 1 and 2 took steps before choice 0 took its last one.
    const lastOf0 = log.map((e) => e.choice).lastIndexOf(0);
    expect(log.findIndex((e) => e.choice === 1)).toBeLessThan(lastOf0);
    expect(log.findIndex((e) => e.choice === 2)).toBeLessThan(lastOf0);
    // The prompt was prefilled once (in pieces, at the cache's snapshot points); the other choices started from
    // the snapshot before the generation prompt and fed only that. Three separate prefills would be 3 x 44.
    const promptTokens = r.usage.prompt_tokens;
    const tail = fed[fed.length - 1];
    expect(fed.reduce((a, b) => a + b, 0)).toBe(promptTokens + 2 * tail);
    expect(tail).toBeLessThan(promptTokens / 4);

    for (let i = 0; i < 3; i++) {
      recordSteps();
      const one = (await f.client.chat.completions.create({ ...base, seed: 11 + i } as never)) as any;
      expect(r.choices[i].message.content).toBe(one.choices[0].message.content);
    }
    expect(r.choices[0].message.content).not.toBe(r.choices[1].message.content);
  });

  test('chat, streamed: chunks of the choices interleave, each opens with its role and ends once', async () => {
    recordSteps();
    const stream = await f.client.chat.completions.create({ ...base, n: 2, seed: 3, stream: true, stream_options: { include_usage: true } } as never);
    const text = ['', ''];
    const order: number[] = [];
    const finishes: Array<[number, string]> = [];
    const roles: number[] = [];
    let usage: any;
    for await (const c of stream as unknown as AsyncIterable<any>) {
      if (c.usage) usage = c.usage;
      for (const ch of c.choices) {
        if (ch.delta?.role) roles.push(ch.index);
        if (ch.delta?.content) {
          text[ch.index] += ch.delta.content;
          order.push(ch.index);
        }
        if (ch.finish_reason) finishes.push([ch.index, ch.finish_reason]);
      }
    }
    expect(roles.sort()).toEqual([0, 1]);
    expect(finishes.sort()).toEqual([
      [0, 'length'],
      [1, 'length'],
    ]);
    expect(order.indexOf(1)).toBeLessThan(order.lastIndexOf(0)); // interleaved
    expect(usage.completion_tokens).toBe(24);
    recordSteps();
    const whole = (await f.client.chat.completions.create({ ...base, n: 2, seed: 3 } as never)) as any;
    // the deltas join to exactly the reply's text (trailing whitespace is held back, then dropped)
    expect(text).toEqual(whole.choices.map((c: any) => c.message.content));
  });

  test('completions: the same, streamed and not', async () => {
    const req = { model: 'tiny', prompt: 'Once upon a time, in a land far away,', max_tokens: 10, temperature: 1, seed: 4 };
    const log = recordSteps();
    const r = (await f.client.completions.create({ ...req, n: 2 })) as any;
    expect(log.findIndex((e) => e.choice === 1)).toBeLessThan(log.map((e) => e.choice).lastIndexOf(0));
    for (let i = 0; i < 2; i++) {
      const one = (await f.client.completions.create({ ...req, seed: 4 + i })) as any;
      expect(r.choices[i].text).toBe(one.choices[0].text);
    }
    const stream = await f.client.completions.create({ ...req, n: 2, stream: true });
    const text = ['', ''];
    for await (const c of stream as unknown as AsyncIterable<any>) for (const ch of c.choices) text[ch.index] += ch.text;
    expect(text).toEqual(r.choices.map((c: any) => c.text));
  });

  test('a failing choice fails the request, stops the others, and every sequence is freed', async () => {
    const ban = banIds([eot()]);
    const steps = [0, 0, 0];
    f.script.current = ({ choice }) => (logits: Float32Array, ctx: LogitsContext) => {
      ban(logits);
      steps[choice]++;
      if (choice === 1 && ctx.step === 2) throw new Error('processor failed');
    };
    const res = await postJson(`${f.server.url}/v1/chat/completions`, { ...base, n: 3, max_tokens: 200 });
    expect(res.status).toBe(500);
    expect(res.text).toMatch(/processor failed/);
    // The others were aborted within a step or two of the failure, not run to their 200 tokens.
    expect(steps[1]).toBe(3);
    expect(Math.max(steps[0], steps[2])).toBeLessThan(20);
    await new Promise((r) => setTimeout(r, 50));
    expect(f.model.memory.activeSequences).toBe(f.model.promptCache!.stats.entries); // only the cache's snapshots remain
    // The server goes on serving.
    f.script.current = undefined;
    const ok = await f.client.chat.completions.create({ ...base, max_tokens: 4 } as never);
    expect((ok as OpenAI.Chat.Completions.ChatCompletion).choices).toHaveLength(1);
  });
});
