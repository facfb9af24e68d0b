/**
 * The server with a prompt cache (what `nemotron serve` runs): an API
 * conversation's next request, and a new conversation with the same system
 * prompt, start from snapshots (usage.prompt_tokens_details.cached_tokens,
 * /metrics), and answer exactly as a server without the cache does.
 */
import OpenAI from 'openai';

import { createServer, loadModel, type Model, type NemotronServer } from '../lib';
import { commonPrefix } from '../lib/prompt-cache';
import { makeChatModelDir, type ChatModelDir } from './helpers/chat-model';
import { parseMetrics } from './helpers/server-fixture';
import { sharedModelDir } from './helpers/test-tokenizer';

const describeServer = sharedModelDir() ? describe : describe.skip;
if (!sharedModelDir()) console.log('skipping server prompt-cache tests: ../shared/models/nemotron-nano-9b-v2 (chat template) not found');

type Msg = OpenAI.Chat.Completions.ChatCompletionMessageParam;

describeServer('server prompt cache', () => {
  let md: ChatModelDir;
  const models: Model[] = [];
  const servers: NemotronServer[] = [];
  let cached: OpenAI;
  let plain: OpenAI;
  let cachedModel: Model;
  let cachedUrl: string;

  beforeAll(async () => {
    md = makeChatModelDir();
    cachedModel = await loadModel(md.dir, { device: 'cpu', contextSize: 1024, promptCache: { maxEntries: 8, minTokens: 4 } });
    const plainModel = await loadModel(md.dir, { device: 'cpu', contextSize: 1024 });
    models.push(cachedModel, plainModel);
    for (const m of models) servers.push(await createServer(m, { modelName: 'tiny' }));
    cachedUrl = servers[0].url;
    [cached, plain] = servers.map((s) => new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0 }));
  });
  afterAll(async () => {
    for (const s of servers) await s.close();
    for (const m of models) m.dispose();
    md?.cleanup();
  });

  const system = 'You are a helpful assistant who answers in short sentences and never uses lists.';
  const ask = (client: OpenAI, messages: Msg[]) =>
    client.chat.completions.create({ model: 'tiny', messages, max_tokens: 12, temperature: 0, chat_template_kwargs: { enable_thinking: false } } as never) as Promise<OpenAI.Chat.Completions.ChatCompletion>;
  const cachedTokens = (r: OpenAI.Chat.Completions.ChatCompletion) =>
    (r.usage as unknown as { prompt_tokens_details: { cached_tokens: number } }).prompt_tokens_details.cached_tokens;

  test('a conversation resent with one more turn reuses its history; answers equal an uncached server', async () => {
    const tok = cachedModel.tokenizer;
    let messages: Msg[] = [
      { role: 'system', content: system },
      { role: 'user', content: 'What is the capital of France?' },
    ];
    const first = await ask(cached, messages);
    expect(first.choices[0].message.content).toBe((await ask(plain, messages)).choices[0].message.content);
    expect(cachedTokens(first)).toBe(0);

    messages = [...messages, { role: 'assistant', content: first.choices[0].message.content }, { role: 'user', content: 'And of Italy?' }];
    const second = await ask(cached, messages);
    const want = await ask(plain, messages);
    expect(second.choices[0].message.content).toBe(want.choices[0].message.content);
    expect(second.usage!.prompt_tokens).toBe(want.usage!.prompt_tokens);
    // reused: everything up to the first request's generation prompt, as far as both prompts agree
    const firstHistory = tok.encode(
      cachedModel.template.render({
        ...tok.templateVariables,
        messages: [
          { role: 'system', content: `${system} /no_think` },
          { role: 'user', content: 'What is the capital of France?' },
        ],
        addGenerationPrompt: false,
      }),
    );
    expect(cachedTokens(second)).toBeGreaterThan(firstHistory.length / 2);
    expect(cachedTokens(second)).toBeLessThanOrEqual(firstHistory.length);
    expect(cachedTokens(second)).toBeLessThan(second.usage!.prompt_tokens);
  });

  test('a new conversation with the same system prompt starts from its snapshot', async () => {
    const messages: Msg[] = [
      { role: 'system', content: system },
      { role: 'user', content: 'Name a large ocean.' },
    ];
    const r = await ask(cached, messages);
    expect(r.choices[0].message.content).toBe((await ask(plain, messages)).choices[0].message.content);
    const tok = cachedModel.tokenizer;
    const systemBlock = tok.encode(
      cachedModel.template.render({ ...tok.templateVariables, messages: [{ role: 'system', content: `${system} /no_think` }], addGenerationPrompt: false }),
    );
    const prompt = tok.encode(cachedModel.template.render({ ...tok.templateVariables, messages: [{ role: 'system', content: `${system} /no_think` }, messages[1] as never], addGenerationPrompt: true }));
    expect(cachedTokens(r)).toBe(commonPrefix(systemBlock, prompt));
    expect(cachedTokens(r)).toBeGreaterThan(10);

    const m = parseMetrics(await (await fetch(`${cachedUrl}/metrics`)).text());
    expect(m['nemotron_prompt_cache_hits_total']).toBeGreaterThanOrEqual(2);
    expect(m['nemotron_prompt_cache_reused_tokens_total']).toBeGreaterThan(cachedTokens(r));
    expect(m['nemotron_prompt_cache_entries']).toBeGreaterThan(0);
    expect(m['nemotron_prompt_cache_bytes']).toBeGreaterThan(0);
  });

  test('completions: a repeated prompt reuses all but its last token', async () => {
    const prompt = 'Once upon a time, in a land far away, there lived a curious fox who';
    const a = await cached.completions.create({ model: 'tiny', prompt, max_tokens: 8, temperature: 0 });
    const b = await cached.completions.create({ model: 'tiny', prompt, max_tokens: 8, temperature: 0 });
    const want = await plain.completions.create({ model: 'tiny', prompt, max_tokens: 8, temperature: 0 });
    const details = (u: unknown) => (u as { prompt_tokens_details: { cached_tokens: number } }).prompt_tokens_details.cached_tokens;
    expect(details(a.usage)).toBe(0);
    expect(details(b.usage)).toBe(b.usage!.prompt_tokens - 1);
    expect(b.choices[0].text).toBe(want.choices[0].text);
    expect(a.choices[0].text).toBe(want.choices[0].text);
  });
});
