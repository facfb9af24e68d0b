/**
 * Saved sequence states: sequence.saveState / model.loadSequence / inspectStateFile on the reference
 * fixture (a loaded state continues to the golden logits, in another model instance as in another
 * process), and chat sessions saved with saveToFile and resumed with model.loadChatSession without
 * feeding the conversation again. Damaged and foreign files are refused with StateFileError.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { inspectStateFile, loadModel, Sequence, type Model } from '../lib';
import { InvalidArgumentError, StateFileError } from '../lib/errors';
import { makeChatModelDir, type ChatModelDir } from './helpers/chat-model';
import { describeWithFixtures, loadFixture, maxAbsDiff, row, type Fixture } from './helpers/fixtures';
import { sharedModelDir } from './helpers/test-tokenizer';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nemotron-state-test-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const file = (name: string) => path.join(tmp, name);

describeWithFixtures('sequence state files (fixture tiny-nemotron-h)', () => {
  let fx: Fixture;
  let ids: number[]; // the fixture's 160-token prompt (crosses a 128-token chunk)
  let golden: Float32Array; // its logits at every position
  let tol: number;
  const models: Model[] = [];
  const open = async (opts: Parameters<typeof loadModel>[1] = {}) => {
    const m = await loadModel(fx.dir, { device: 'cpu', ...opts });
    models.push(m);
    return m;
  };
  const settle = (m: Model) => m.queue.run(async () => undefined); // (releases land after queued work)

  beforeAll(() => {
    fx = loadFixture('tiny-nemotron-h')!;
    tol = fx.manifest.tolerances.fp32_cpu.max_abs_logit_diff;
    ids = fx.manifest.cases.long_prompt.prompt_ids;
    golden = fx.golden(fx.manifest.cases.long_prompt.logits.file);
  });
  afterEach(() => {
    for (const m of models.splice(0)) m.dispose();
  });

  test('a saved state continues to the golden logits in another model instance, bit-identical to the original', async () => {
    const a = await open();
    const seq = a.createSequence({ contextSize: 300 });
    await seq.prefill(ids.slice(0, 100));
    const saved = await seq.saveState(file('seq.state'), { meta: 'my meta ✓' });
    expect(saved.tokens).toBe(100);
    expect(saved.bytes).toBe(fs.statSync(file('seq.state')).size);
    expect(fs.readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]); // renamed into place

    const info = await inspectStateFile(file('seq.state'));
    expect(info).toEqual({
      model: a.info.fingerprint,
      layerPattern: a.info.layerPattern,
      tokens: 100,
      contextSize: 300,
      meta: 'my meta ✓',
      bytes: saved.bytes,
    });

    const b = await open(); // as another process would: a fresh load of the same weights
    expect(b.info.fingerprint).toBe(a.info.fingerprint);
    const loaded = await b.loadSequence(file('seq.state'));
    expect([loaded.length, loaded.contextSize]).toEqual([100, 300]);
    const want = await seq.prefill(ids.slice(100));
    const got = await loaded.prefill(ids.slice(100));
    expect(maxAbsDiff(got, row(golden, ids.length - 1, fx.vocab))).toBeLessThanOrEqual(tol);
    expect(maxAbsDiff(got, want)).toBe(0);
    // The state is what makes it right: without it the same 60 tokens give other logits.
    const fresh = b.createSequence({ contextSize: 300 });
    expect(maxAbsDiff(await fresh.prefill(ids.slice(100)), want)).toBeGreaterThan(10 * tol);
  });

  test('loadSequence: contextSize option, memory reserved like a sequence, clear errors', async () => {
    const m = await open();
    const seq = m.createSequence({ contextSize: 64 });
    await seq.prefill(ids.slice(0, 40));
    await seq.saveState(file('ctx.state'));
    seq.dispose();
    await settle(m);
    const base = m.memory.reservedBytes;
    const big = await m.loadSequence(file('ctx.state'), { contextSize: 1000 });
    expect(big.contextSize).toBe(1000);
    expect(m.memory.reservedBytes - base).toBe(m.sequenceBytes(1000));
    const logits = await big.prefill(ids.slice(40, 50));
    expect(maxAbsDiff(logits, row(golden, 49, fx.vocab))).toBeLessThanOrEqual(tol);
    big.dispose();
    await settle(m);
    expect(m.memory.reservedBytes).toBe(base);

    await expect(m.loadSequence(file('ctx.state'), { contextSize: 39 })).rejects.toThrow(InvalidArgumentError);
    await expect(m.loadSequence(file('ctx.state'), { contextSize: 39 })).rejects.toThrow(/cannot hold the 40 tokens/);
    await expect(m.loadSequence(file('nope.state'))).rejects.toThrow(StateFileError);
    await expect(m.loadSequence(file('nope.state'))).rejects.toThrow(/cannot open state file '.*nope\.state'/);
    await expect(inspectStateFile(file('nope.state'))).rejects.toThrow(StateFileError);
    await expect(m.loadSequence('')).rejects.toThrow(); // validated, not a native crash

    // A damaged state: one flipped bit in the middle of the file.
    const bytes = fs.readFileSync(file('ctx.state'));
    bytes[bytes.length >> 1] ^= 0x04;
    fs.writeFileSync(file('bad.state'), bytes);
    await expect(m.loadSequence(file('bad.state'))).rejects.toThrow(/checksum mismatch/);
    fs.writeFileSync(file('short.state'), bytes.subarray(0, bytes.length - 4));
    await expect(m.loadSequence(file('short.state'))).rejects.toThrow(/truncated/);
    fs.writeFileSync(file('json.state'), '{"not": "a state"}');
    await expect(m.loadSequence(file('json.state'))).rejects.toThrow(/too short|not a nemotron-node state file/);
    await settle(m);
    expect(m.memory.reservedBytes).toBe(base); // failed loads give their reservation back
  });

  test('the state saved is the one at the call, while the sequence goes on', async () => {
    const m = await open();
    const seq = m.createSequence({ contextSize: 256 });
    await seq.prefill(ids.slice(0, 120));
    const saving = seq.saveState(file('mid.state'));
    const next = seq.decode(ids[120]); // queued after the save's snapshot
    const [saved, after] = await Promise.all([saving, next]);
    expect(saved.tokens).toBe(120);
    const loaded = await m.loadSequence(file('mid.state'));
    expect(loaded.length).toBe(120);
    expect(maxAbsDiff(await loaded.decode(ids[120]), after)).toBe(0);
  });

  test('with no room for a copy, the state is written from the sequence itself', async () => {
    const probe = await open();
    const one = probe.sequenceBytes(256);
    probe.dispose();
    const m = await open({ memoryBudgetBytes: one + 1024 }); // room for exactly one such sequence
    const seq = m.createSequence({ contextSize: 256 });
    await seq.prefill(ids.slice(0, 80));
    await expect(seq.clone()).rejects.toThrow(/memory/i); // no room for a copy...
    const saved = await seq.saveState(file('tight.state')); // ...yet saving works
    expect(saved.tokens).toBe(80);
    seq.dispose();
    const loaded = await m.loadSequence(file('tight.state'), { contextSize: 256 });
    expect(maxAbsDiff(await loaded.prefill(ids.slice(80, 90)), row(golden, 89, fx.vocab))).toBeLessThanOrEqual(tol);
  });

  test('a sequence that never ran saves the zero state, in a few hundred bytes', async () => {
    const m = await open();
    const seq = m.createSequence({ contextSize: 128 });
    const saved = await seq.saveState(file('empty.state'));
    expect(saved).toEqual({ bytes: expect.any(Number), tokens: 0 });
    expect(saved.bytes).toBeLessThan(512);
    expect(seq.admitted).toBe(false); // saving did not allocate its state
    const loaded = await m.loadSequence(file('empty.state'));
    expect([loaded.length, loaded.contextSize]).toEqual([0, 128]);
    expect(maxAbsDiff(await loaded.prefill(ids.slice(0, 24)), row(golden, 23, fx.vocab))).toBeLessThanOrEqual(tol);
  });

  test('a state saved by another model is refused before anything is reserved', async () => {
    const md = makeChatModelDir(); // random weights of another shape
    try {
      const other = await loadModel(md.dir, { device: 'cpu' });
      models.push(other);
      const seq = other.createSequence({ contextSize: 32 });
      await seq.prefill([1, 2, 3]);
      await seq.saveState(file('other.state'));
      const m = await open();
      expect(m.info.fingerprint).not.toBe(other.info.fingerprint);
      await expect(m.loadSequence(file('other.state'))).rejects.toThrow(StateFileError);
      await expect(m.loadSequence(file('other.state'))).rejects.toThrow(/saved by another model/);
      expect(m.memory.reservedBytes).toBe(0);
    } finally {
      md.cleanup();
    }
  });
});

const describeChat = sharedModelDir() ? describe : describe.skip;
if (!sharedModelDir()) console.log('skipping chat state-file tests: ../shared/models/nemotron-nano-9b-v2 (chat template) not found');

describeChat('chat session files', () => {
  let md: ChatModelDir;
  let model: Model;
  beforeAll(async () => {
    md = makeChatModelDir();
    model = await loadModel(md.dir, { device: 'cpu', contextSize: 1024 });
  });
  afterAll(() => {
    model?.dispose();
    md?.cleanup();
  });

  const send = { maxTokens: 10, temperature: 0 } as const;

  test('a saved conversation resumes in another model instance without feeding it again, and replies identically', async () => {
    const a = model.createChatSession({ systemPrompt: 'You are terse.', reasoning: 'off' });
    await a.send('hello there', send);
    await a.send('and again', send);
    const { bytes } = await a.saveToFile(file('chat.state'));
    expect(bytes).toBe(fs.statSync(file('chat.state')).size);

    const other = await loadModel(md.dir, { device: 'cpu', contextSize: 1024 });
    try {
      const prefill = jest.spyOn(Sequence.prototype, 'prefill');
      const b = await other.loadChatSession(file('chat.state'));
      expect(prefill).not.toHaveBeenCalled(); // the state came from the file, not from feeding the tokens
      prefill.mockRestore();
      expect(b.history).toEqual(a.history);
      expect(b.contextSize).toBe(a.contextSize);
      const ra = await a.send('one more thing', send);
      const rb = await b.send('one more thing', send);
      expect(rb.text).toBe(ra.text);
      expect(rb.finishReason).toBe(ra.finishReason);
      // Only the new message was prefilled: the whole conversation before it came from the file.
      expect(rb.usage.cachedTokens).toBe(ra.usage.cachedTokens);
      expect(rb.usage.cachedTokens).toBeGreaterThan(20);
    } finally {
      other.dispose();
    }
  });

  test("sessions that never sent, were disposed, or reserve 'turn' round-trip too", async () => {
    const fresh = model.createChatSession({ systemPrompt: 'S', reasoning: 'off' });
    expect((await fresh.saveToFile(file('fresh.state'))).bytes).toBeLessThan(4096);
    const f2 = await model.loadChatSession(file('fresh.state'));
    expect(f2.history).toEqual([]);
    const r1 = await f2.send('hi', send);
    expect(r1.usage.cachedTokens).toBe(0);

    const ref = model.createChatSession({ reasoning: 'off' });
    const turn = model.createChatSession({ reasoning: 'off', reserve: 'turn' });
    await ref.send('first question', send);
    await turn.send('first question', send);
    await turn.saveToFile(file('turn.state'));
    const t2 = await model.loadChatSession(file('turn.state'), { reserve: 'turn' });
    const want = await ref.send('second question, somewhat longer than the first', { ...send, maxTokens: 30 });
    const clone = jest.spyOn(Sequence.prototype, 'clone');
    const prefill = jest.spyOn(Sequence.prototype, 'prefill');
    const got = await t2.send('second question, somewhat longer than the first', { ...send, maxTokens: 30 });
    expect(got.text).toBe(want.text);
    expect(got.usage.cachedTokens).toBe(want.usage.cachedTokens);
    // It outgrew the loaded sequence (sized to its tokens): grown by copying the state, and only the new
    // message was prefilled, not the conversation again.
    expect(clone).toHaveBeenCalledTimes(1);
    expect(prefill.mock.calls.map((c) => (c[0] as ArrayLike<number>).length)).toEqual([got.usage.promptTokens - got.usage.cachedTokens]);
    clone.mockRestore();
    prefill.mockRestore();

    ref.dispose(); // history kept, state gone: saved with the zero state, fed again on the next send
    await ref.saveToFile(file('disposed.state'));
    const d2 = await model.loadChatSession(file('disposed.state'));
    expect(d2.history).toEqual(ref.history);
    const again = await d2.send('third', send);
    expect(again.usage.cachedTokens).toBe(0);
  });

  test('refuses a plain sequence file, and saving during a send', async () => {
    const seq = model.createSequence({ contextSize: 64 });
    await seq.prefill([1, 2, 3]);
    await seq.saveState(file('plain.state'), { meta: 'not a chat' });
    await expect(model.loadChatSession(file('plain.state'))).rejects.toThrow(StateFileError);
    await expect(model.loadChatSession(file('plain.state'))).rejects.toThrow(/not a chat session file/);
    seq.dispose();

    const s = model.createChatSession({ reasoning: 'off' });
    const sending = s.send('hello', send);
    await expect(s.saveToFile(file('busy.state'))).rejects.toThrow(/a send is in progress/);
    await sending;
    await expect(s.saveToFile(file('busy.state'))).resolves.toEqual({ bytes: expect.any(Number) });
  });
});
