/**
 * Bad requests get OpenAI-style errors with the right status; limits (auth, body
 * size, queue) hold; close() aborts in-flight work. Raw fetch is used where the
 * exact status and body matter.
 */
import OpenAI from 'openai';

import { createServer } from '../lib';
import { banIds, postJson, startServerFixture, type ServerFixture } from './helpers/server-fixture';
import { sharedModelDir } from './helpers/test-tokenizer';

const describeServer = sharedModelDir() ? describe : describe.skip;
if (!sharedModelDir()) console.log('skipping server error tests: ../shared/models/nemotron-nano-9b-v2 (chat template) not found');

const errorShape = (type: string, param: string | null, code: string | null) => ({
  error: { message: expect.any(String), type, param, code },
});

describeServer('server errors and limits', () => {
  let f: ServerFixture;
  beforeAll(async () => {
    f = await startServerFixture();
  });
  afterAll(() => f?.close());
  afterEach(() => (f.script.current = undefined));

  const chatUrl = () => `${f.server.url}/v1/chat/completions`;
  const ok = { model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 };

  test('400 names the invalid field', async () => {
    let r = await postJson(chatUrl(), { ...ok, messages: [{ role: 'wizard', content: 'x' }] });
    expect(r.status).toBe(400);
    expect(r.json).toEqual(errorShape('invalid_request_error', 'messages[0].role', null));
    expect(r.json.error.message).toMatch(/^messages\[0\]\.role: /);

    r = await postJson(chatUrl(), { ...ok, temperature: 5 });
    expect(r.status).toBe(400);
    expect(r.json.error.param).toBe('temperature');

    r = await postJson(chatUrl(), { messages: ok.messages });
    expect(r.status).toBe(400);
    expect(r.json.error.param).toBe('model');

    r = await postJson(chatUrl(), { ...ok, logprobs: true, top_logprobs: 21 });
    expect(r.status).toBe(400);
    expect(r.json.error.param).toBe('top_logprobs');

    r = await postJson(chatUrl(), { ...ok, response_format: { type: 'yaml' } });
    expect(r.json).toEqual(errorShape('invalid_request_error', 'response_format', 'unsupported_parameter'));

    r = await postJson(chatUrl(), '{"model": "tiny", ');
    expect(r.status).toBe(400);
    expect(r.json.error.type).toBe('invalid_request_error');
  });

  test('the openai client surfaces them as typed errors', async () => {
    await expect(f.client.chat.completions.create({ ...ok, n: 99 } as never)).rejects.toMatchObject({ status: 400, param: 'n' });
  });

  test('404 for an unknown model and an unknown route', async () => {
    let r = await postJson(chatUrl(), { ...ok, model: 'gpt-4' });
    expect(r.status).toBe(404);
    expect(r.json).toEqual(errorShape('invalid_request_error', 'model', 'model_not_found'));
    r = await postJson(`${f.server.url}/v1/completions`, { model: 'nope', prompt: 'x' });
    expect(r.status).toBe(404);
    r = await postJson(`${f.server.url}/v1/nothing`, {});
    expect(r.status).toBe(404);
    expect(r.json).toEqual(errorShape('invalid_request_error', null, 'not_found'));
  });

  test('context overflow is 400 context_length_exceeded (also when streaming)', async () => {
    const long = 'abc '.repeat(3000);
    for (const stream of [false, true]) {
      const r = await postJson(chatUrl(), { ...ok, stream, messages: [{ role: 'user', content: long }] });
      expect(r.status).toBe(400);
      expect(r.json).toEqual(errorShape('invalid_request_error', 'messages', 'context_length_exceeded'));
    }
  });

  test('401 without or with a wrong key; /health stays open', async () => {
    const s = await f.start({ apiKey: 'sekret' });
    const url = `${s.url}/v1/chat/completions`;
    let r = await postJson(url, ok);
    expect(r.status).toBe(401);
    expect(r.json).toEqual(errorShape('invalid_request_error', null, 'invalid_api_key'));
    r = await postJson(url, ok, { authorization: 'Bearer wrong' });
    expect(r.status).toBe(401);
    r = await postJson(url, ok, { authorization: 'Bearer sekret' });
    expect(r.status).toBe(200);
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'sekret', maxRetries: 0 });
    expect((await client.models.list()).data[0].id).toBe('tiny');
  });

  test('413 for an oversized body', async () => {
    const s = await f.start({ maxBodyBytes: 2048 });
    const r = await postJson(`${s.url}/v1/chat/completions`, { ...ok, messages: [{ role: 'user', content: 'x'.repeat(5000) }] });
    expect(r.status).toBe(413);
    expect(r.json).toEqual(errorShape('invalid_request_error', null, 'request_too_large'));
  });

  test('429 when the queue is full; FIFO order; the server keeps serving', async () => {
    f.script.current = () => banIds([f.model.tokenizer.special.endOfTurn!]);
    const s = await f.start({ maxQueue: 1, maxConcurrent: 1 }); // one running, one waiting, the third refused
    const url = `${s.url}/v1/chat/completions`;
    const long = { ...ok, max_tokens: 400, chat_template_kwargs: { enable_thinking: false } };
    const health = async () => (await fetch(`${s.url}/health`)).json();
    const until = async (cond: (h: any) => boolean) => {
      while (!cond(await health())) await new Promise((r) => setTimeout(r, 2));
    };
    const done: string[] = [];
    const a = postJson(url, long).then((r) => (done.push('a'), r));
    await until((h) => h.active === 1);
    const b = postJson(url, long).then((r) => (done.push('b'), r));
    await until((h) => h.queue_depth === 1);
    const c = await postJson(url, long);
    expect(c.status).toBe(429);
    expect(c.json).toEqual(errorShape('rate_limit_error', null, 'queue_full'));
    const [ra, rb] = await Promise.all([a, b]);
    expect([ra.status, rb.status]).toEqual([200, 200]);
    expect(done).toEqual(['a', 'b']);
    expect((await postJson(url, ok)).status).toBe(200);
  });

  test('close() aborts a running stream and a queued request, then resolves', async () => {
    f.script.current = () => banIds([f.model.tokenizer.special.endOfTurn!]);
    const s = await createServer(f.model, { modelName: 'tiny', testHooks: { logitsProcessor: (i) => f.script.current?.(i) } });
    const url = `${s.url}/v1/chat/completions`;
    const long = { ...ok, max_tokens: 3000, chat_template_kwargs: { enable_thinking: false } };
    const running = fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...long, stream: true }) });
    await new Promise((r) => setTimeout(r, 50));
    const queued = postJson(url, long);
    await new Promise((r) => setTimeout(r, 30));
    const t0 = Date.now();
    await s.close();
    expect(Date.now() - t0).toBeLessThan(3000);
    const body = await (await running).text();
    expect(body).toMatch(/"code":"shutting_down"/);
    expect(body.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect((await queued).status).toBe(503);
    await expect(fetch(url)).rejects.toThrow();
    expect((f.model as unknown as { sequences: Set<unknown> }).sequences.size).toBe(0);
  });
});
