/**
 * vLLM's continue_final_message on /v1/chat/completions: the last (assistant) message starts the answer and
 * the model continues it (ChatSession's responsePrefix); the response carries only the continuation,
 * streamed or not, as vLLM's does.
 */
import { postJson, startServerFixture, type ServerFixture } from './helpers/server-fixture';
import { sharedModelDir } from './helpers/test-tokenizer';

const describeChat = sharedModelDir() ? describe : describe.skip;
if (!sharedModelDir()) console.log('skipping continue_final_message tests: ../shared/models/nemotron-nano-9b-v2 (chat template) not found');

describeChat('server: continue_final_message', () => {
  let f: ServerFixture;
  beforeAll(async () => {
    f = await startServerFixture();
  });
  afterAll(() => f?.close());

  const started = 'The capital of France is';
  const request = {
    model: 'tiny',
    messages: [
      { role: 'user' as const, content: 'Where is Paris?' },
      { role: 'assistant' as const, content: started },
    ],
    temperature: 0,
    max_tokens: 10,
    chat_template_kwargs: { enable_thinking: false },
    continue_final_message: true,
    add_generation_prompt: false,
  };

  test('the reply is what the model adds to the given start, streamed or not', async () => {
    // Independently, through the library: the same conversation with the answer's start as responsePrefix.
    const chat = f.model.createChatSession({ reasoning: 'off' });
    const lib = await chat.send('Where is Paris?', { temperature: 0, maxTokens: 10, responsePrefix: started });
    chat.dispose();
    expect(lib.text.startsWith(started)).toBe(true);
    const continuation = lib.text.slice(started.length);

    const r = await f.client.chat.completions.create(request as never);
    expect(r.choices[0].message.content).toBe(continuation);
    expect(r.usage!.completion_tokens).toBe(lib.usage.completionTokens);

    const stream = await f.client.chat.completions.create({ ...request, stream: true } as never);
    let streamed = '';
    for await (const c of stream as unknown as AsyncIterable<{ choices: { delta: { content?: string } }[] }>)
      streamed += c.choices[0]?.delta.content ?? '';
    expect(streamed).toBe(continuation);
  });

  test('bad combinations are 400s that name the field', async () => {
    const url = `${f.server.url}/v1/chat/completions`;
    const userLast = await postJson(url, { ...request, messages: [{ role: 'user', content: 'hi' }] });
    expect(userLast.status).toBe(400);
    expect(userLast.text).toMatch(/continue_final_message: the last message must be an assistant message/);
    const both = await postJson(url, { ...request, add_generation_prompt: true });
    expect(both.status).toBe(400);
    expect(both.text).toMatch(/add_generation_prompt/);
    const alone = await postJson(url, { ...request, messages: [{ role: 'assistant', content: 'x' }] });
    expect(alone.status).toBe(400);
  });
});
