/**
 * Native sampling (native/engine/sampler.cpp) against the JS Sampler it replays:
 * the same token ids and the same RNG stream for the same seeds, row by row
 * (through the addon's internal sampleRows hook), in batched decode on the tiny
 * fixture model, and end to end in chat sessions and /v1/completions text
 * generation with the native path on and off.
 */
import { loadModel, type Model, type Sequence } from '../lib';
import { Sampler, type SamplingOptions } from '../lib/chat/sampling';
import { native } from '../lib/native';
import { generateText } from '../lib/server/generate-text';
import { describeWithChatModel } from './helpers/chat-model';
import { describeWithFixtures, loadFixture, type Fixture } from './helpers/fixtures';

/** A seeded LCG for generating cases (not the sampler's RNG). */
function lcg(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

function pick<T>(rand: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)];
}

/** One step through a sampler's native twin: id (or the error message) and the sampler advanced. */
function sampleNative(s: Sampler, logits: Float32Array, history: number[], mask?: number[]): number | string {
  const r = native().sampleRows(logits, [s.toNative(history, mask)]);
  if (r.errors[0] !== null) return r.errors[0];
  s.setRngState(r.rngStates.subarray(0, 4));
  return r.ids[0];
}

function sampleJs(s: Sampler, logits: Float32Array, history: number[], mask?: number[]): number | string {
  try {
    return s.sample(logits, history, mask);
  } catch (err) {
    return (err as Error).message;
  }
}

/** Logit rows with the shapes that stress the sampler: ties, flat, peaked, banned entries. */
function randomLogits(rand: () => number, V: number): Float32Array {
  const shape = Math.floor(rand() * 5);
  return Float32Array.from({ length: V }, (_, i) => {
    if (shape === 0) return Math.round(rand() * 8 * 8) / 8; // a coarse grid: many ties
    if (shape === 1) return rand() * 0.01; // nearly flat: everything is a candidate
    if (shape === 2) return (i % 37 === 0 ? 12 : 0) + rand() * 3; // a few strong tokens
    if (shape === 3) return rand() < 0.3 ? -Infinity : rand() * 20 - 10; // banned entries
    return rand() * 40 - 20; // full-precision spread
  });
}

function randomOptions(rand: () => number, V: number): SamplingOptions {
  const o: SamplingOptions = {
    temperature: pick(rand, [0, 0.3, 0.6, 1, 1.7]),
    topK: pick(rand, [0, 0, 1, 5, 40]),
    topP: pick(rand, [1, 1, 0.95, 0.5, 0.1]),
    minP: pick(rand, [0, 0, 0.05, 0.3]),
    seed: Math.floor(rand() * 2 ** 32) - 2 ** 31,
  };
  if (rand() < 0.4) o.repetitionPenalty = pick(rand, [1.3, 0.8, 2]);
  if (rand() < 0.3) o.presencePenalty = pick(rand, [0.5, -1, 2]);
  if (rand() < 0.3) o.frequencyPenalty = pick(rand, [0.3, -0.2]);
  if (rand() < 0.4) o.penaltyWindow = pick(rand, [0, 1, 3, 256]);
  if (rand() < 0.4) {
    const id = () => String(Math.floor(rand() * V));
    // "01" and "1" are different keys for the same id: both apply, in key order
    o.logitBias = { [id()]: -Infinity, [id()]: 2.5, [id()]: -0.7, '01': 0.3, '1': 1.1, [String(V + 3)]: 5 };
  }
  return o;
}

/** Masks: none, empty, a few ids (some out of range), or (rarely) everything. */
function randomMask(rand: () => number, V: number): number[] | undefined {
  const r = rand();
  if (r < 0.4) return undefined;
  if (r < 0.5) return [];
  if (r < 0.97) return Array.from({ length: 1 + Math.floor(rand() * 6) }, () => Math.floor(rand() * (V + 4)) - 2);
  return Array.from({ length: V }, (_, i) => i);
}

describe('native sampler vs the JS Sampler (sampleRows)', () => {
  test('same ids and the same RNG stream over multi-step sequences, switching paths mid-way', () => {
    const rand = lcg(2024);
    let steps = 0;
    let drawn = 0;
    let errors = 0;
    for (let c = 0; c < 400; c++) {
      const V = c % 50 === 0 ? 131072 : c % 10 === 0 ? 5000 : 1 + Math.floor(rand() * 400);
      const opts = randomOptions(rand, V);
      const js = new Sampler(opts);
      const nat = new Sampler(opts);
      // a history with repeats and ids outside the vocabulary
      const history = Array.from({ length: Math.floor(rand() * 12) }, () => Math.floor(rand() * Math.min(V, 20) + (rand() < 0.1 ? V : 0)));
      const nSteps = V > 10000 ? 3 : 8;
      for (let k = 0; k < nSteps; k++) {
        const logits = randomLogits(rand, V);
        const mask = randomMask(rand, V);
        const want = sampleJs(js, logits, history, mask);
        // every third step the "native" sampler takes the JS path: the stream must carry over
        const got = k % 3 === 2 ? sampleJs(nat, logits, history, mask) : sampleNative(nat, logits, history, mask);
        expect({ c, k, got }).toEqual({ c, k, got: want });
        expect([...nat.rngState()]).toEqual([...js.rngState()]);
        steps++;
        if (typeof want === 'string') {
          errors++;
          continue;
        }
        if (opts.temperature !== 0) drawn++;
        history.push(want);
      }
    }
    expect(steps).toBeGreaterThan(2500);
    expect(drawn).toBeGreaterThan(1500); // most steps draw (temperature > 0)
    expect(errors).toBeGreaterThan(0); // the all-masked case was met and errs the same way
  });

  test('a batch of rows with different options samples each row as the JS Sampler would', () => {
    const rand = lcg(99);
    const V = 3000;
    const rows = 24;
    const logits = new Float32Array(rows * V);
    const cases = Array.from({ length: rows }, (_, i) => {
      const row = randomLogits(rand, V);
      logits.set(row, i * V);
      const opts = randomOptions(rand, V);
      const history = [1, 2, 2, 7, 1];
      const mask = i % 4 === 0 ? [3, 5] : undefined;
      return { row, opts, history, mask };
    });
    const nat = cases.map((c) => new Sampler(c.opts));
    const r = native().sampleRows(
      logits,
      cases.map((c, i) => nat[i].toNative(c.history, c.mask)),
    );
    cases.forEach((c, i) => {
      const js = new Sampler(c.opts);
      expect({ i, id: r.ids[i] }).toEqual({ i, id: js.sample(c.row, c.history, c.mask) });
      expect([...r.rngStates.subarray(4 * i, 4 * i + 4)]).toEqual([...js.rngState()]);
    });
  });

  test('greedy never draws; a draw advances the RNG by exactly one step', () => {
    const logits = Float32Array.from([0.5, 2, 2, -1]);
    const g = new Sampler({ temperature: 0, seed: 3 });
    const before = [...g.rngState()];
    expect(sampleNative(g, logits, [])).toBe(1); // ties go to the lower id
    expect([...g.rngState()]).toEqual(before);
    const s = new Sampler({ temperature: 1, seed: 3 });
    const ref = new Sampler({ temperature: 1, seed: 3 });
    sampleNative(s, logits, []);
    ref.sample(logits);
    expect([...s.rngState()]).toEqual([...ref.rngState()]);
  });
});

describeWithFixtures('batched decode with native sampling (tiny fixture, CPU)', () => {
  let fx: Fixture;
  let model: Model;
  beforeAll(async () => {
    fx = loadFixture('tiny-nemotron-h')!;
    model = await loadModel(fx.dir, { device: 'cpu' });
  });
  afterAll(() => model?.dispose());

  const STEPS = 20;
  const prompts = () => [
    ...fx.manifest.cases.batch.sessions.map((s: { prompt_ids: number[] }) => s.prompt_ids),
    fx.manifest.cases.prompt.prompt_ids,
    fx.manifest.cases.batch.sessions[0].prompt_ids.slice(0, 3),
  ] as number[][];
  const optionsFor = (i: number): SamplingOptions =>
    [
      { temperature: 0.6, topP: 0.95, seed: 1 },
      { temperature: 1, topK: 20, repetitionPenalty: 1.3, seed: 2 },
      { temperature: 0 },
      { temperature: 0.8, minP: 0.05, presencePenalty: 0.5, frequencyPenalty: 0.2, logitBias: { '7': -Infinity }, seed: 4 },
    ][i % 4];

  /** Generates STEPS tokens per sequence, all sequences concurrently (so their steps batch). */
  async function generate(mode: (i: number) => 'js' | 'native' | 'native+logits'): Promise<number[][]> {
    const ps = prompts();
    const seqs: Sequence[] = ps.map(() => model.createSequence({ contextSize: 64 }));
    const out = await Promise.all(
      seqs.map(async (seq, i) => {
        const sampler = new Sampler(optionsFor(i));
        const mask = i === 1 ? [0, 2] : undefined;
        const ids: number[] = [];
        let logits = await seq.prefill(ps[i]);
        let id = sampler.sample(logits, ids, mask); // the prompt's logits are in JS already
        for (let k = 0; k < STEPS; k++) {
          ids.push(id);
          const m = mode(i);
          if (m === 'js') {
            logits = await seq.decode(id);
            id = sampler.sample(logits, ids, mask);
          } else {
            const r = await seq.decodeSample(id, sampler, ids, mask, { logits: m === 'native+logits' });
            if (m === 'native+logits') {
              // the returned logits are the ones sampled from: the JS Sampler agrees on them
              expect(r.logits).toHaveLength(fx.vocab);
            }
            id = r.id;
          }
        }
        seq.dispose();
        return ids;
      }),
    );
    return out;
  }

  test('native sampling in the batch gives the JS path tokens, also mixed with logits requests', async () => {
    const reference = await generate(() => 'js');
    const before = { ...model.batcher.stats };
    const nativeIds = await generate(() => 'native');
    expect(nativeIds).toEqual(reference);
    const sampled = model.batcher.stats.sampled - before.sampled;
    expect(sampled).toBe(prompts().length * STEPS);
    expect(model.batcher.stats.batches - before.batches).toBeLessThan(sampled); // the sampled steps were batched
    // plain logits requests, sampled ones and sampled ones that also want their logits, in the same batches
    const modes = ['js', 'native', 'native+logits', 'native'] as const;
    expect(await generate((i) => modes[i % modes.length])).toEqual(reference);
  });

  test('decodeSample with logits returns the logits decode() gives', async () => {
    const p = fx.manifest.cases.prompt.prompt_ids as number[];
    const a = model.createSequence({ contextSize: 64 });
    const b = model.createSequence({ contextSize: 64 });
    await Promise.all([a.prefill(p), b.prefill(p)]);
    const s = new Sampler({ temperature: 0.7, seed: 9 });
    const [plain, sampled] = await Promise.all([a.decode(5), b.decodeSample(5, s, [], undefined, { logits: true })]);
    expect(sampled.logits).toEqual(plain);
    expect(sampled.id).toBe(new Sampler({ temperature: 0.7, seed: 9 }).sample(plain));
    expect(b.length).toBe(a.length);
    a.dispose();
    b.dispose();
  });

  test('a row that cannot be sampled fails alone, after its token was fed', async () => {
    const p = fx.manifest.cases.prompt.prompt_ids as number[];
    const bad = model.createSequence({ contextSize: 64 });
    const ok = model.createSequence({ contextSize: 64 });
    await Promise.all([bad.prefill(p), ok.prefill(p)]);
    const all = Array.from({ length: fx.vocab }, (_, i) => i);
    const s = new Sampler({ temperature: 1, seed: 1 });
    const before = [...s.rngState()];
    const [r1, r2] = await Promise.allSettled([
      bad.decodeSample(5, s, [], all),
      ok.decodeSample(5, new Sampler({ temperature: 1, seed: 1 }), []),
    ]);
    expect(r1.status).toBe('rejected');
    expect(String((r1 as PromiseRejectedResult).reason)).toMatch(/every token is masked/);
    expect([...s.rngState()]).toEqual(before);
    expect(r2.status).toBe('fulfilled');
    expect(bad.length).toBe(p.length + 1);
    bad.dispose();
    ok.dispose();
  });
});

describeWithChatModel('chat and text generation with native sampling on and off', 'native-sampling chat tests', { contextSize: 2048 }, (cm) => {
  afterAll(() => {
    delete process.env.NEMOTRON_NATIVE_SAMPLING;
  });

  /** Runs `fn` with the native path switched on or off; returns its result and how many steps sampled natively. */
  async function withNative<T>(on: boolean, fn: () => Promise<T>): Promise<{ result: T; sampled: number }> {
    const before = cm.model.batcher.stats.sampled;
    if (on) delete process.env.NEMOTRON_NATIVE_SAMPLING;
    else process.env.NEMOTRON_NATIVE_SAMPLING = '0';
    try {
      return { result: await fn(), sampled: cm.model.batcher.stats.sampled - before };
    } finally {
      delete process.env.NEMOTRON_NATIVE_SAMPLING;
    }
  }

  test('identical replies (reasoning with a thinking budget, penalties, bias) for fixed seeds', async () => {
    const eot = cm.model.tokenizer.special.endOfTurn!;
    const conversation = async () => {
      const chat = cm.model.createChatSession({ thinking: { maxTokens: 12, minTokens: 4, graceTokens: 2 } });
      const replies = [];
      // reasoning on (temperature 0.6 / topP 0.95 by default), with minTokens masking end-of-thinking
      replies.push(await chat.send('Think about it', { seed: 7, maxTokens: 30, logitBias: { [eot]: -Infinity } }));
      // a second turn with penalties, top-k and min-p; reasoning off
      replies.push(
        await chat.send('Again', {
          reasoning: 'off',
          seed: 8,
          temperature: 0.9,
          topK: 30,
          minP: 0.02,
          repetitionPenalty: 1.2,
          frequencyPenalty: 0.3,
          maxTokens: 20,
        }),
      );
      const tokens = chat.save().tokens;
      chat.dispose();
      return { replies: replies.map(({ text, reasoning, finishReason, usage }) => ({ text, reasoning, finishReason, usage })), tokens };
    };
    const off = await withNative(false, conversation);
    const on = await withNative(true, conversation);
    expect(off.sampled).toBe(0);
    expect(on.sampled).toBeGreaterThan(30);
    expect(on.result).toEqual(off.result);
    expect(on.result.replies[0].usage.reasoningTokens).toBeGreaterThanOrEqual(4);
  });

  test('a logits processor or logprobs keep the JS path (and the same reply)', async () => {
    const run = () =>
      (async () => {
        const chat = cm.model.createChatSession({ reasoning: 'off' });
        const r = await chat.send('hi', { seed: 3, temperature: 1, maxTokens: 8, logprobs: true, topLogprobs: 2 });
        chat.dispose();
        return r.text;
      })();
    const off = await withNative(false, run);
    const on = await withNative(true, run);
    expect(on.sampled).toBe(0);
    expect(on.result).toBe(off.result);
  });

  test('constrained answers (JSON Schema, strict tool calls) draw natively first: same replies, far fewer JS draws', async () => {
    const schema = {
      type: 'object',
      properties: { name: { type: 'string' }, tags: { type: 'array', items: { enum: ['a', 'b', 'c'] } }, n: { type: 'integer' } },
      required: ['name'],
    };
    const tools = { lookup: { description: 'look it up', parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] } } };
    const run = async () => {
      const out = [];
      for (const seed of [1, 2, 3]) {
        const chat = cm.model.createChatSession({ reasoning: 'off' });
        const r1 = await chat.send('JSON please', { responseFormat: { schema }, temperature: 1, topP: 0.95, seed, maxTokens: 60 });
        const r2 = await chat.send('Now call the tool', { tools, toolChoice: 'required', temperature: 0.8, seed, maxTokens: 60 });
        out.push({ a: [r1.text, r1.finishReason], b: [r2.text, r2.finishReason, r2.toolCalls.map((c) => c.name)] });
        chat.dispose();
      }
      return out;
    };
    const count = async (on: boolean) => {
      const spy = jest.spyOn(Sampler.prototype, 'sample');
      try {
        const r = await withNative(on, run);
        return { ...r, jsDraws: spy.mock.calls.length };
      } finally {
        spy.mockRestore();
      }
    };
    const off = await count(false);
    const on = await count(true);
    expect(on.result).toEqual(off.result); // the same rejection sampling, its first draw made in C++
    expect(on.sampled).toBeGreaterThan(20);
    // Every JS draw the native path leaves is a retry after a refused token (random weights refuse often).
    expect(on.jsDraws).toBeLessThan(off.jsDraws);
    expect(off.jsDraws - on.jsDraws).toBeGreaterThan(20);
  });

  test('generateText (/v1/completions) gives the same text on both paths', async () => {
    const run = () =>
      generateText(cm.model, {
        promptIds: cm.model.tokenizer.encode('Once upon a time'),
        maxTokens: 24,
        sampling: { temperature: 0.8, topP: 0.9, presencePenalty: 0.4, seed: 21 },
        stop: [],
        signal: new AbortController().signal,
      });
    const off = await withNative(false, run);
    const on = await withNative(true, run);
    expect(on.sampled).toBeGreaterThan(0);
    expect({ ...on.result, decodeMs: 0 }).toEqual({ ...off.result, decodeMs: 0 });
  });
});
