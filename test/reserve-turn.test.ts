/**
 * Memory reservations sized to a turn, not to the whole context:
 * - a chat session with reserve 'turn' reserves state + KV for its conversation + prompt + maxTokens, gives the
 *   same replies as a 'context' session, and grows (feeding the conversation again) when a later turn needs more;
 * - the server sizes each request that way, so with a budget that fits ONE full-context sequence, short requests
 *   still run while a long one is generating (with full-context reservations they would wait for it to finish).
 */
import OpenAI from 'openai';

import { loadModel, type Model, type NemotronServer } from '../lib';
import type { LogitsContext } from '../lib/chat/turn';
import { describeWithChatModel, makeChatModelDir } from './helpers/chat-model';
import { banIds, forceIds, parseMetrics, requestText, startServerFixture, type ServerFixture } from './helpers/server-fixture';
import { sharedModelDir } from './helpers/test-tokenizer';

const describeChat = sharedModelDir() ? describe : describe.skip;
if (!sharedModelDir()) console.log('skipping reserve-turn tests: ../shared/models/nemotron-nano-9b-v2 (chat template) not found');

const CONTEXT = 512;

describeWithChatModel("chat session reserve: 'turn'", 'reserve-turn tests', { contextSize: CONTEXT }, (cm) => {
  test('reserves prompt + maxTokens, replies as a whole-context session, and grows for a longer turn', async () => {
    const turns = [
      { text: 'hello there', maxTokens: 12 },
      { text: 'and a longer follow-up question', maxTokens: 40 },
    ];
    const sampling = { temperature: 0.8, seed: 7 };
    // Every turn runs to maxTokens (no end of turn), so the second one outgrows the first's reservation.
    const tok = cm.model.tokenizer;
    const noEnd = banIds([tok.special.endOfTurn!, ...tok.eosTokenIds]);
    const whole = cm.model.createChatSession({ reasoning: 'off', sampling });
    const want = [];
    for (const t of turns) want.push(await whole.send(t.text, { maxTokens: t.maxTokens, logitsProcessor: noEnd }));
    whole.dispose(); // only the fitted session's reservation is measured below
    await cm.model.queue.run(async () => undefined); // (a disposed sequence gives its memory back after queued work)
    expect(cm.model.memory.reservedBytes).toBe(0);

    const fitted = cm.model.createChatSession({ reasoning: 'off', sampling, reserve: 'turn' });
    let tokensBefore = 0; // tokens the fitted session's state held before this turn
    try {
      for (const [i, t] of turns.entries()) {
        const got = await fitted.send(t.text, { maxTokens: t.maxTokens, logitsProcessor: noEnd });
        await cm.model.queue.run(async () => undefined);
        expect(got.usage.completionTokens).toBe(t.maxTokens);
        expect(got.text).toBe(want[i].text);
        expect(got.usage).toEqual(want[i].usage);
        expect(got.usage.cachedTokens).toBe(tokensBefore); // the state (fed again when growing) was reused
        // held until the next turn or dispose: exactly this turn's reach
        expect(cm.model.memory.reservedBytes).toBe(cm.model.sequenceBytes(got.usage.promptTokens + t.maxTokens));
        expect(cm.model.memory.activeSequences).toBe(1);
        tokensBefore = got.usage.promptTokens + got.usage.completionTokens;
      }
      expect(cm.model.memory.reservedBytes).toBeLessThan(cm.model.sequenceBytes(CONTEXT));
    } finally {
      fitted.dispose();
    }
  });

  test('a thinking budget reserves room for the closing tokens it forces', async () => {
    const s = cm.model.createChatSession({ thinking: { maxTokens: 4 }, reserve: 'turn', sampling: { temperature: 0 } });
    const w = cm.model.createChatSession({ thinking: { maxTokens: 4 }, sampling: { temperature: 0 } });
    try {
      const got = await s.send('think briefly', { maxTokens: 10 });
      await cm.model.queue.run(async () => undefined);
      const closing = Math.max(...['</think>', '.\n</think>'].map((t) => cm.model.tokenizer.encode(t).length));
      expect(cm.model.memory.reservedBytes).toBe(cm.model.sequenceBytes(got.usage.promptTokens + 10 + closing + 1));
      s.dispose();
      await cm.model.queue.run(async () => undefined);
      const want = await w.send('think briefly', { maxTokens: 10 });
      expect(got.reasoning).toBe(want.reasoning);
      expect(got.text).toBe(want.text);
      expect(got.finishReason).toBe(want.finishReason);
    } finally {
      s.dispose();
      w.dispose();
    }
  });
});

describeChat('server: each request reserves its own prompt + max_tokens', () => {
  let f: ServerFixture;
  let model: Model;
  let server: NemotronServer;
  let client: OpenAI;
  const scripts = new Map<string, (logits: Float32Array, ctx: LogitsContext) => void>();
  beforeAll(async () => {
    // (a sequence's size depends only on the config: any copy of the chat model tells it)
    const probeDir = makeChatModelDir();
    const probe = await loadModel(probeDir.dir, { device: 'cpu', contextSize: CONTEXT });
    const oneWholeContext = probe.sequenceBytes(CONTEXT);
    probe.dispose();
    probeDir.cleanup();
    // Room for one sequence of the whole context: with whole-context reservations, requests run one at a time.
    f = await startServerFixture({ load: { contextSize: CONTEXT, memoryBudgetBytes: oneWholeContext }, server: { maxConcurrent: 4 } });
    f.script.current = (info) => scripts.get(requestText(info.body));
    ({ model, server, client } = f);
  });
  afterAll(() => f?.close());
  const metrics = async () => parseMetrics(await (await fetch(`${server.url}/metrics`)).text());

  test('short chat and completion requests finish while a long one is still generating', async () => {
    const tok = model.tokenizer;
    scripts.set('long', banIds([tok.special.endOfTurn!, tok.special.thinkEnd!, ...tok.eosTokenIds]));
    scripts.set('short completion', banIds([...tok.eosTokenIds]));
    scripts.set('short chat', forceIds([tok.special.thinkEnd!, ...tok.encode('short answer'), tok.special.endOfTurn!]));
    let longDone = false;
    const long = client.chat.completions
      .create({ model: 'tiny', messages: [{ role: 'user', content: 'long' }], max_tokens: 300 })
      .finally(() => (longDone = true));
    while ((await metrics())['nemotron_sequences_active'] !== 1) await new Promise((r) => setTimeout(r, 5));

    const chat = await client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'short chat' }],
      max_tokens: 16,
    });
    const completion = await client.completions.create({ model: 'tiny', prompt: 'short completion', max_tokens: 6 });
    expect(longDone).toBe(false); // both ran beside it instead of waiting for its memory
    expect(chat.choices[0].message.content).toBe('short answer');
    expect(completion.usage!.completion_tokens).toBe(6);

    const r = await long;
    expect(r.choices[0].finish_reason).toBe('length');
    expect(r.usage!.completion_tokens).toBe(300);
    await model.queue.run(async () => undefined);
    expect((await metrics())['nemotron_memory_reserved_bytes']).toBe(0);
  });
});
