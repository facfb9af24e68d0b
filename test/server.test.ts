/**
 * The OpenAI-compatible server on 127.0.0.1, driven by the official `openai`
 * client, on a tiny random-weight model. Outputs are forced where a behaviour
 * must be pinned down (test-only logits hook; random weights give arbitrary text).
 */
import { banIds, forceIds, parseMetrics, postJson, startServerFixture, type ServerFixture } from './helpers/server-fixture';
import { sharedModelDir } from './helpers/test-tokenizer';

const describeServer = sharedModelDir() ? describe : describe.skip;
if (!sharedModelDir()) console.log('skipping server tests: ../shared/models/nemotron-nano-9b-v2 (chat template) not found');

describeServer('OpenAI-compatible server', () => {
  let f: ServerFixture;
  beforeAll(async () => {
    f = await startServerFixture();
  });
  afterAll(() => f?.close());
  afterEach(() => (f.script.current = undefined));

  const enc = (t: string) => f.model.tokenizer.encode(t);
  const eot = () => f.model.tokenizer.special.endOfTurn!;
  const thinkEnd = () => f.model.tokenizer.special.thinkEnd!;
  const user = (content: string) => [{ role: 'user' as const, content }];
  const metrics = async () => parseMetrics(await (await fetch(`${f.server.url}/metrics`)).text());
  const liveSequences = () => (f.model as unknown as { sequences: Set<unknown> }).sequences.size;

  test('health and models', async () => {
    const health = await (await fetch(`${f.server.url}/health`)).json();
    expect(health).toMatchObject({ status: 'ok', model: 'tiny' });
    const models = await f.client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['tiny']);
  });

  test('plain chat: reasoning_content and content are split; usage counts reasoning', async () => {
    const reasoning = enc('Let me think.');
    const answer = enc('It is 4.');
    f.script.current = () => forceIds([...reasoning, thinkEnd(), ...enc('\n\n'), ...answer, eot()]);
    const r = await f.client.chat.completions.create({ model: 'tiny', messages: user('2+2?') });
    const msg = r.choices[0].message as typeof r.choices[0]['message'] & { reasoning_content?: string };
    expect(msg.content).toBe('It is 4.');
    expect(msg.reasoning_content).toBe('Let me think.');
    expect(r.choices[0].finish_reason).toBe('stop');
    expect(r.object).toBe('chat.completion');
    expect(r.usage).toMatchObject({
      completion_tokens: reasoning.length + 1 + enc('\n\n').length + answer.length,
      completion_tokens_details: { reasoning_tokens: reasoning.length },
    });
    expect(r.usage!.total_tokens).toBe(r.usage!.prompt_tokens + r.usage!.completion_tokens);
  });

  test('streamed chat: reasoning deltas, then content deltas, then usage (include_usage)', async () => {
    f.script.current = () => forceIds([...enc('hmm ok'), thinkEnd(), ...enc('Voilà 🙂 done'), eot()]);
    const stream = await f.client.chat.completions.create({
      model: 'tiny',
      messages: user('hi'),
      stream: true,
      stream_options: { include_usage: true },
    });
    let reasoning = '';
    let content = '';
    const finish: (string | null)[] = [];
    let usage: any;
    let firstRole: string | undefined;
    for await (const c of stream) {
      if (c.usage) usage = c.usage;
      const ch = c.choices[0];
      if (!ch) continue;
      firstRole ??= ch.delta.role;
      const d = ch.delta as { content?: string | null; reasoning_content?: string };
      if (d.reasoning_content) {
        expect(content).toBe(''); // the thought comes before the answer
        reasoning += d.reasoning_content;
      }
      content += d.content ?? '';
      if (ch.finish_reason) finish.push(ch.finish_reason);
    }
    expect(firstRole).toBe('assistant');
    expect(reasoning).toBe('hmm ok');
    expect(content).toBe('Voilà 🙂 done');
    expect(content).not.toMatch(/think>/);
    expect(finish).toEqual(['stop']);
    expect(usage.completion_tokens_details.reasoning_tokens).toBe(enc('hmm ok').length);
  });

  test('reasoning off: chat_template_kwargs.enable_thinking=false and /no_think in the system message', async () => {
    f.script.current = () => forceIds([...enc('Plain.'), eot()]);
    for (const extra of [{ chat_template_kwargs: { enable_thinking: false } }, {}]) {
      const messages = 'chat_template_kwargs' in extra ? user('q') : [{ role: 'system' as const, content: 'Be brief. /no_think' }, ...user('q')];
      const r = await f.client.chat.completions.create({ model: 'tiny', messages, ...extra } as never);
      const msg = (r as any).choices[0].message;
      expect(msg.content).toBe('Plain.');
      expect(msg.reasoning_content).toBeNull();
      expect((r as any).usage.completion_tokens_details.reasoning_tokens).toBe(0);
    }
  });

  test('thinking_token_budget is honoured under streaming and the answer follows', async () => {
    // the model "wants" to think forever; after the budget it must answer (end of turn allowed from step 12).
    // A stray "<think>" token drawn into the answer would be answer text: banned, so the check below is about
    // the budget's closing, not about what random weights happen to sample.
    f.script.current = () => (l, ctx) => {
      l[thinkEnd()] = -Infinity;
      l[f.model.tokenizer.special.think!] = -Infinity;
      if (ctx.step < 12) l[eot()] = -Infinity;
      else l[eot()] = 1e6;
    };
    const stream = await f.client.chat.completions.create({
      model: 'tiny',
      messages: user('think hard'),
      stream: true,
      stream_options: { include_usage: true },
      thinking_token_budget: 5,
    } as never);
    let reasoning = '';
    let content = '';
    let usage: any;
    for await (const c of stream as any) {
      if (c.usage) usage = c.usage;
      reasoning += c.choices[0]?.delta?.reasoning_content ?? '';
      content += c.choices[0]?.delta?.content ?? '';
    }
    expect(usage.completion_tokens_details.reasoning_tokens).toBeLessThanOrEqual(5);
    expect(usage.completion_tokens_details.reasoning_tokens).toBeGreaterThan(0);
    expect(reasoning.length).toBeGreaterThan(0);
    expect(content.length).toBeGreaterThan(0);
    expect(content).not.toMatch(/think>/);
  });

  test('tool-call round trip (non-streamed, then streamed deltas)', async () => {
    const tools = [
      {
        type: 'function' as const,
        function: {
          name: 'get_weather',
          description: 'Weather for a city',
          parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        },
      },
    ];
    const call = enc('<TOOLCALL>[{"name": "get_weather", "arguments": {"city": "Paris"}}]</TOOLCALL>');
    f.script.current = () => forceIds([...call, eot()]);
    const base = { model: 'tiny', tools, chat_template_kwargs: { enable_thinking: false } } as const;
    const first = await f.client.chat.completions.create({ ...base, messages: user('Weather in Paris?') } as never);
    const choice = (first as any).choices[0];
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    const tc = choice.message.tool_calls[0];
    expect(tc).toMatchObject({ type: 'function', function: { name: 'get_weather' } });
    expect(JSON.parse(tc.function.arguments)).toEqual({ city: 'Paris' });
    expect(typeof tc.id).toBe('string');

    // the client runs the tool and sends the result back; the prompt must contain it
    f.script.current = () => forceIds([...enc('It is sunny.'), eot()]);
    const messages = [
      ...user('Weather in Paris?'),
      { role: 'assistant', content: null, tool_calls: choice.message.tool_calls },
      { role: 'tool', tool_call_id: tc.id, content: '{"sky":"sunny"}' },
    ];
    const second = await f.client.chat.completions.create({ ...base, messages } as never);
    expect((second as any).choices[0].message.content).toBe('It is sunny.');
    expect((second as any).choices[0].finish_reason).toBe('stop');

    // streamed: the call's id and name arrive first, then its arguments piece by piece as they are generated
    f.script.current = () => forceIds([...call, eot()]);
    const stream = await f.client.chat.completions.create({ ...base, messages: user('Weather?'), stream: true } as never);
    const deltas: any[] = [];
    let finish: string | null = null;
    for await (const c of stream as any) {
      if (c.choices[0]?.delta?.tool_calls) deltas.push(...c.choices[0].delta.tool_calls);
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(deltas[0]).toMatchObject({ index: 0, type: 'function', function: { name: 'get_weather', arguments: '' } });
    expect(typeof deltas[0].id).toBe('string');
    expect(deltas.length).toBeGreaterThan(2); // the arguments came in several pieces
    expect(deltas.every((d) => d.index === 0)).toBe(true);
    expect(deltas.slice(1).every((d) => d.id === undefined && d.function.name === undefined)).toBe(true);
    expect(JSON.parse(deltas.map((d) => d.function.arguments).join(''))).toEqual({ city: 'Paris' });
    expect(finish).toBe('tool_calls');
  });

  test('stop, max_tokens, n and seed', async () => {
    f.script.current = () => forceIds([...enc('alpha beta gamma'), eot()]);
    const r = await f.client.chat.completions.create({ model: 'tiny', messages: user('x'), stop: [' gam'], chat_template_kwargs: { enable_thinking: false } } as never);
    expect((r as any).choices[0].message.content).toBe('alpha beta');

    f.script.current = () => banIds([eot()]);
    const opts = { model: 'tiny', messages: user('tell'), temperature: 1, seed: 5, max_tokens: 10, n: 2, chat_template_kwargs: { enable_thinking: false } };
    const a = (await f.client.chat.completions.create(opts as never)) as any;
    const b = (await f.client.chat.completions.create(opts as never)) as any;
    expect(a.choices).toHaveLength(2);
    expect(a.choices.map((c: any) => c.finish_reason)).toEqual(['length', 'length']);
    expect(a.usage.completion_tokens).toBe(20);
    expect(b.choices.map((c: any) => c.message.content)).toEqual(a.choices.map((c: any) => c.message.content));
    expect(a.choices[0].message.content).not.toBe(a.choices[1].message.content); // choices use different seeds
  });

  test('logprobs with top_logprobs, non-streamed and streamed', async () => {
    const answer = enc('It is 4.');
    f.script.current = () => forceIds([...answer, eot()]);
    const r = await f.client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'system', content: '/no_think' }, ...user('2+2?')],
      logprobs: true,
      top_logprobs: 3,
    });
    const content = r.choices[0].logprobs!.content!;
    expect(content.map((c) => c.token).join('')).toBe('It is 4.');
    expect(content).toHaveLength(answer.length);
    for (const c of content) {
      expect(c.logprob).toBeLessThanOrEqual(0);
      expect(c.top_logprobs).toHaveLength(3);
      const lps = c.top_logprobs.map((t) => t.logprob);
      expect([...lps].sort((a, b) => b - a)).toEqual(lps);
      // the forced token is the model's choice only through the hook: its logprob is the model's own
      expect(c.logprob).toBeLessThanOrEqual(lps[0]);
    }
    const stream = await f.client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'system', content: '/no_think' }, ...user('2+2?')],
      logprobs: true,
      top_logprobs: 2,
      stream: true,
    });
    const streamed: { token: string; logprob: number }[] = [];
    for await (const chunk of stream) streamed.push(...(chunk.choices[0]?.logprobs?.content ?? []));
    expect(streamed.map((c) => c.token).join('')).toBe('It is 4.');
    expect(streamed.map((c) => c.logprob)).toEqual(content.map((c) => c.logprob));
    await expect(
      f.client.chat.completions.create({ model: 'tiny', messages: user('x'), top_logprobs: 2 }),
    ).rejects.toMatchObject({ status: 400 });
  });

  test('legacy /v1/completions logprobs: the model\'s own log-softmax at each step, with offsets', async () => {
    const prompt = 'The answer is';
    const forced = enc(' forty two, as usual');
    f.script.current = () => forceIds(forced);
    const r = (await f.client.completions.create({ model: 'tiny', prompt, max_tokens: forced.length, logprobs: 2 })) as any;
    const lp = r.choices[0].logprobs;
    expect(r.choices[0].text).toBe(' forty two, as usual');
    expect(lp.tokens).toHaveLength(forced.length);
    expect(lp.tokens.join('')).toBe(r.choices[0].text);
    // text_offset: where each token's text starts
    let at = 0;
    lp.tokens.forEach((t: string, i: number) => {
      expect(lp.text_offset[i]).toBe(at);
      at += t.length;
    });
    // independently: log-softmax of the logits the model gives at each position (evaluate = one prefill);
    // the hook forced the tokens, the logprobs are still the model's own
    const promptIds = f.model.tokenizer.encode(prompt);
    const V = f.model.vocabSize;
    const logits = await f.model.evaluate([...promptIds, ...forced]);
    for (let i = 0; i < forced.length; i++) {
      const row = logits.subarray((promptIds.length - 1 + i) * V, (promptIds.length + i) * V);
      let max = -Infinity;
      for (const x of row) max = Math.max(max, x);
      let z = 0;
      for (const x of row) z += Math.exp(x - max);
      expect(lp.token_logprobs[i]).toBeCloseTo(row[forced[i]] - max - Math.log(z), 3);
      const top = Object.values(lp.top_logprobs[i]) as number[];
      expect(top.length).toBeGreaterThanOrEqual(1); // (two alternatives, fewer if their texts coincide)
      expect(top[0]).toBeCloseTo(-Math.log(z), 3); // the most likely token's logprob
      expect(lp.token_logprobs[i]).toBeLessThanOrEqual(top[0] + 1e-6);
    }
    // streamed: each chunk carries the entries of the tokens whose text starts in it; together, the same
    f.script.current = () => forceIds(forced);
    const stream = await f.client.completions.create({ model: 'tiny', prompt, max_tokens: forced.length, logprobs: 2, stream: true });
    const tokens: string[] = [];
    const tokenLogprobs: number[] = [];
    const offsets: number[] = [];
    for await (const c of stream as any) {
      const l = c.choices[0]?.logprobs;
      if (!l) continue;
      tokens.push(...l.tokens);
      tokenLogprobs.push(...l.token_logprobs);
      offsets.push(...l.text_offset);
    }
    expect(tokens).toEqual(lp.tokens);
    expect(tokenLogprobs).toEqual(lp.token_logprobs);
    expect(offsets).toEqual(lp.text_offset);

    // echo: the prompt's tokens first (the first has no logprob), then the generated ones, offsets into the whole text
    f.script.current = () => forceIds(forced);
    const e = (await f.client.completions.create({ model: 'tiny', prompt, max_tokens: forced.length, logprobs: 1, echo: true })) as any;
    const el = e.choices[0].logprobs;
    expect(e.choices[0].text).toBe(prompt + ' forty two, as usual');
    expect(el.tokens).toHaveLength(promptIds.length + forced.length);
    expect(el.token_logprobs[0]).toBeNull();
    expect(el.top_logprobs[0]).toBeNull();
    expect(el.tokens.join('')).toBe(e.choices[0].text);
    for (let i = 1; i < promptIds.length; i++) {
      const row = logits.subarray((i - 1) * V, i * V);
      let max = -Infinity;
      for (const x of row) max = Math.max(max, x);
      let z = 0;
      for (const x of row) z += Math.exp(x - max);
      expect(el.token_logprobs[i]).toBeCloseTo(row[promptIds[i]] - max - Math.log(z), 3);
    }
    expect(el.token_logprobs.slice(promptIds.length)).toEqual(lp.token_logprobs);
    expect(el.text_offset.slice(promptIds.length)).toEqual(lp.text_offset.map((o: number) => o + prompt.length));
  });

  test('N=4 concurrent streams complete with the same text as solo runs', async () => {
    f.script.current = () => banIds([eot()]);
    const req = (seed: number) => ({
      model: 'tiny',
      messages: user('story'),
      temperature: 1,
      seed,
      max_tokens: 12,
      chat_template_kwargs: { enable_thinking: false },
    });
    const solo: string[] = [];
    for (const seed of [1, 2, 3, 4]) solo.push(((await f.client.chat.completions.create(req(seed) as never)) as any).choices[0].message.content);
    const streamed = await Promise.all(
      [1, 2, 3, 4].map(async (seed) => {
        let text = '';
        for await (const c of (await f.client.chat.completions.create({ ...req(seed), stream: true } as never)) as any)
          text += c.choices[0]?.delta?.content ?? '';
        return text;
      }),
    );
    expect(streamed).toEqual(solo);
    expect(new Set(solo).size).toBe(4);
  });

  test('a client that disconnects aborts its generation and frees its sequence', async () => {
    f.script.current = () => banIds([eot()]);
    const before = (await metrics())['nemotron_generated_tokens_total'];
    const ac = new AbortController();
    const stream = await f.client.chat.completions.create(
      { model: 'tiny', messages: user('go on forever'), max_tokens: 1500, stream: true, chat_template_kwargs: { enable_thinking: false } } as never,
      { signal: ac.signal },
    );
    let chunks = 0;
    // (the client ends the iteration quietly on its own abort)
    await (async () => {
      for await (const _ of stream as any) if (++chunks === 3) ac.abort();
    })().catch(() => undefined);
    expect(chunks).toBe(3);
    // the server notices the closed socket and stops within a step
    const deadline = Date.now() + 3000;
    let m = await metrics();
    while (m['nemotron_active_generations'] !== 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      m = await metrics();
    }
    expect(m['nemotron_active_generations']).toBe(0);
    expect(m['nemotron_queue_depth']).toBe(0);
    expect(m['nemotron_generated_tokens_total'] - before).toBeLessThan(200);
    expect(liveSequences()).toBe(0);
    const t0 = Date.now();
    f.script.current = () => forceIds([...enc('next'), eot()]);
    const next = await f.client.chat.completions.create({ model: 'tiny', messages: user('q'), chat_template_kwargs: { enable_thinking: false } } as never);
    expect((next as any).choices[0].message.content).toBe('next');
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(m['nemotron_requests_total{route="/v1/chat/completions",status="499"}']).toBeGreaterThanOrEqual(1);
  });

  test('/v1/completions: raw prompt, stop string, streaming', async () => {
    f.script.current = () => forceIds([...enc(' world, and more'), eot()]);
    const r = await f.client.completions.create({ model: 'tiny', prompt: 'Hello', max_tokens: 50, stop: [', and'] });
    expect(r.choices[0].text).toBe(' world');
    expect(r.choices[0].finish_reason).toBe('stop');
    expect(r.usage?.prompt_tokens).toBe(enc('Hello').length);

    f.script.current = () => forceIds([...enc(' a b c')]);
    const stream = await f.client.completions.create({ model: 'tiny', prompt: 'Hello', max_tokens: enc(' a b c').length, stream: true });
    let text = '';
    let finish: string | null = null;
    for await (const c of stream) {
      text += c.choices[0]?.text ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(' a b c');
    expect(finish).toBe('length');
  });

  test('metrics: Prometheus text with requests, tokens, queue depth and tokens/s', async () => {
    const text = await (await fetch(`${f.server.url}/metrics`)).text();
    expect(text).toMatch(/# TYPE nemotron_requests_total counter/);
    const m = parseMetrics(text);
    expect(m['nemotron_requests_total{route="/v1/chat/completions",status="200"}']).toBeGreaterThan(0);
    expect(m['nemotron_generated_tokens_total']).toBeGreaterThan(0);
    expect(m['nemotron_queue_depth']).toBe(0);
    expect(m['nemotron_tokens_per_second']).toBeGreaterThan(0);
    // Memory: the model's budget, and nothing reserved once every request is done.
    expect(m['nemotron_memory_budget_bytes']).toBe(f.model.memory.budgetBytes);
    expect(m['nemotron_memory_budget_bytes']).toBeGreaterThan(0);
    expect(m['nemotron_sequences_waiting']).toBe(0);
    expect(m['nemotron_device_free_bytes']).toBeGreaterThan(0);
  });
});
