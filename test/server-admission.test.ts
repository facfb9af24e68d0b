/**
 * The server on a model whose admission lets one sequence hold state at a time:
 * concurrent requests wait for memory (not errors), finish with the right text,
 * and a client that goes away while waiting leaves nothing reserved or queued.
 */
import OpenAI from 'openai';

import type { Model, NemotronServer } from '../lib';
import type { LogitsContext } from '../lib/chat/turn';
import { banIds, forceIds, parseMetrics, requestText, startServerFixture, type ServerFixture } from './helpers/server-fixture';
import { sharedModelDir } from './helpers/test-tokenizer';

const describeServer = sharedModelDir() ? describe : describe.skip;
if (!sharedModelDir()) console.log('skipping server admission tests: ../shared/models/nemotron-nano-9b-v2 (chat template) not found');

describeServer('server under admission pressure (maxConcurrentSequences 1)', () => {
  let f: ServerFixture;
  let model: Model;
  let server: NemotronServer;
  let client: OpenAI;
  // Each request's messages name the script its generation follows.
  const scripts = new Map<string, (logits: Float32Array, ctx: LogitsContext) => void>();
  beforeAll(async () => {
    f = await startServerFixture({ load: { contextSize: 512, maxConcurrentSequences: 1 }, server: { maxConcurrent: 4 } });
    f.script.current = (info) => scripts.get(requestText(info.body));
    ({ model, server, client } = f);
  });
  afterAll(() => f?.close());

  const metrics = async () => parseMetrics(await (await fetch(`${server.url}/metrics`)).text());
  const enc = (t: string) => model.tokenizer.encode(t);
  const eot = () => model.tokenizer.special.endOfTurn!;
  const thinkEnd = () => model.tokenizer.special.thinkEnd!;

  test('concurrent requests take turns for memory and each gets its own answer', async () => {
    const names = ['alpha', 'beta', 'gamma'];
    for (const n of names) scripts.set(n, forceIds([thinkEnd(), ...enc(`answer ${n}`), eot()]));
    const replies = await Promise.all(
      names.map((n) => client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: n }] })),
    );
    expect(replies.map((r) => r.choices[0].message.content)).toEqual(names.map((n) => `answer ${n}`));
    await model.queue.run(async () => undefined);
    const m = await metrics();
    expect(m['nemotron_memory_reserved_bytes']).toBe(0);
    expect(m['nemotron_sequences_waiting']).toBe(0);
  });

  test('a client that disconnects while waiting for memory leaves the queue; the running one finishes', async () => {
    scripts.set('long', banIds([eot(), thinkEnd()]));
    let longDone = false;
    const long = client.chat.completions
      .create({ model: 'tiny', messages: [{ role: 'user', content: 'long' }], max_tokens: 450 })
      .finally(() => (longDone = true));
    // Wait until the long request holds the only slot.
    while ((await metrics())['nemotron_sequences_active'] !== 1) await new Promise((r) => setTimeout(r, 5));
    const ac = new AbortController();
    const waiting = fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'queued' }], stream: true }),
      signal: ac.signal,
    }).then((r) => r.text());
    while ((await metrics())['nemotron_sequences_waiting'] !== 1) await new Promise((r) => setTimeout(r, 5));
    ac.abort();
    await expect(waiting).rejects.toHaveProperty('name', 'AbortError');
    // The server notices the disconnect and drops the waiter without it ever holding memory.
    for (let i = 0; i < 200 && (await metrics())['nemotron_sequences_waiting'] !== 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect((await metrics())['nemotron_sequences_waiting']).toBe(0);
    expect(longDone).toBe(false); // it left the queue because of the abort, not because the slot came free
    const r = await long;
    expect(r.choices[0].finish_reason).toBe('length');
    expect(r.usage!.completion_tokens).toBe(450);
    await model.queue.run(async () => undefined);
    expect((await metrics())['nemotron_memory_reserved_bytes']).toBe(0);
  });
});
