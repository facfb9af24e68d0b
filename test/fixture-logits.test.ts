/**
 * End-to-end correctness on the shared reference fixtures (single-file and
 * sharded): logits at every position, greedy decoding, prefill/decode
 * equivalence, independent interleaved sequences, clone and reset.
 */
import { loadModel, type Model } from '../lib';
import { FIXTURE_NAMES, argmax, cosine, describeWithFixtures, loadFixture, maxAbsDiff, row, type Fixture } from './helpers/fixtures';

// fixture.json states the tolerance for an fp32 CPU engine (1e-3 max |Δlogit|).
function cpuTolerance(fx: Fixture): number {
  const t = fx.manifest.tolerances.fp32_cpu.max_abs_logit_diff;
  if (typeof t !== 'number') throw new Error('fixture.json lacks tolerances.fp32_cpu.max_abs_logit_diff');
  return t;
}

for (const name of FIXTURE_NAMES) {
  describeWithFixtures(`fixture ${name}`, () => {
    let fx: Fixture;
    let model: Model;
    let tol: number;

    beforeAll(async () => {
      fx = loadFixture(name)!;
      tol = cpuTolerance(fx);
      model = await loadModel(fx.dir, { device: 'cpu' });
    });
    afterAll(() => model?.dispose());

    test('config and engine facts', () => {
      expect(model.device).toBe('cpu');
      expect(model.config.model_type).toBe('nemotron_h');
      expect(model.config.time_step_limit).toEqual([0, Infinity]);
      expect(model.info.layerPattern).toBe(fx.manifest.model.pattern);
      expect(model.vocabSize).toBe(fx.vocab);
    });

    test('evaluate(): logits at every prompt position match the golden rows', async () => {
      const prompt: number[] = fx.manifest.cases.prompt.prompt_ids;
      const golden = fx.golden(fx.manifest.cases.prompt.prompt_logits.file);
      const logits = await model.evaluate(prompt);
      expect(logits.length).toBe(prompt.length * fx.vocab);
      expect(maxAbsDiff(logits, golden)).toBeLessThanOrEqual(tol);
    });

    test('long prompt (crosses a chunk boundary): every position matches', async () => {
      const c = fx.manifest.cases.long_prompt;
      const logits = await model.evaluate(c.prompt_ids);
      expect(c.prompt_ids.length).toBeGreaterThan(model.config.chunk_size as number);
      expect(maxAbsDiff(logits, fx.golden(c.logits.file))).toBeLessThanOrEqual(tol);
    });

    test('long prompt decoded token by token gives the same rows as prefill', async () => {
      const c = fx.manifest.cases.long_prompt;
      const golden = fx.golden(c.logits.file);
      const seq = model.createSequence();
      let worst = 0;
      for (let t = 0; t < c.prompt_ids.length; t++) {
        const l = await seq.decode(c.prompt_ids[t]);
        worst = Math.max(worst, maxAbsDiff(l, row(golden, t, fx.vocab)));
      }
      expect(worst).toBeLessThanOrEqual(tol);
      expect(seq.length).toBe(c.prompt_ids.length);
      seq.dispose();
    });

    test('greedy continuation: identical ids, step logits within tolerance', async () => {
      const c = fx.manifest.cases.prompt;
      const stepGolden = fx.golden(fx.manifest.cases.prompt.greedy.step_logits.file);
      const seq = model.createSequence({ contextSize: 64 });
      let logits = await seq.prefill(c.prompt_ids);
      const ids: number[] = [];
      let worst = 0;
      for (let j = 0; j < c.greedy.n_new_tokens; j++) {
        worst = Math.max(worst, maxAbsDiff(logits, row(stepGolden, j, fx.vocab)));
        const next = argmax(logits);
        ids.push(next);
        if (j + 1 < c.greedy.n_new_tokens) logits = await seq.decode(next);
      }
      expect(ids).toEqual(c.greedy.expected_ids);
      expect(worst).toBeLessThanOrEqual(tol);
    });

    test('prefill logits at position t equal prefill(t tokens) + decode steps', async () => {
      const prompt: number[] = fx.manifest.cases.prompt.prompt_ids;
      const all = await model.evaluate(prompt);
      for (const split of [1, 5, prompt.length - 1]) {
        const seq = model.createSequence({ contextSize: prompt.length });
        let l = await seq.prefill(prompt.slice(0, split));
        expect(maxAbsDiff(l, row(all, split - 1, fx.vocab))).toBeLessThanOrEqual(1e-4);
        for (let t = split; t < prompt.length; t++) {
          l = await seq.decode(prompt[t]);
          expect(maxAbsDiff(l, row(all, t, fx.vocab))).toBeLessThanOrEqual(1e-4);
        }
        seq.dispose();
      }
    });

    test('two sessions interleaved step by step equal the goldens of each alone', async () => {
      const sessions = fx.manifest.cases.batch.sessions;
      const seqs = sessions.map(() => model.createSequence({ contextSize: 64 }));
      const logits: Float32Array[] = [];
      // prefill in reverse order, then alternate decode steps
      for (let i = sessions.length - 1; i >= 0; i--) logits[i] = await seqs[i].prefill(sessions[i].prompt_ids);
      const got: number[][] = sessions.map(() => []);
      const worst: number[] = sessions.map(() => 0);
      for (let j = 0; j < sessions[0].greedy_ids.length; j++) {
        for (let i = 0; i < sessions.length; i++) {
          const stepGolden = fx.golden(sessions[i].greedy_step_logits.file);
          worst[i] = Math.max(worst[i], maxAbsDiff(logits[i], row(stepGolden, j, fx.vocab)));
          const next = argmax(logits[i]);
          got[i].push(next);
          logits[i] = await seqs[i].decode(next);
        }
      }
      for (let i = 0; i < sessions.length; i++) {
        expect(got[i]).toEqual(sessions[i].greedy_ids);
        expect(worst[i]).toBeLessThanOrEqual(tol);
        // the prompt logits of each session too
        const pl = await model.evaluate(sessions[i].prompt_ids);
        expect(maxAbsDiff(pl, fx.golden(sessions[i].prompt_logits.file))).toBeLessThanOrEqual(tol);
      }
      seqs.forEach((s: { dispose(): void }) => s.dispose());
    });

    test('a cloned sequence continues identically; the original is unaffected', async () => {
      const c = fx.manifest.cases.prompt;
      const stepGolden = fx.golden(fx.manifest.cases.prompt.greedy.step_logits.file);
      const a = model.createSequence({ contextSize: 64 });
      await a.prefill(c.prompt_ids);
      await a.decode(c.greedy.expected_ids[0]); // a now predicts expected_ids[1]
      const b = await a.clone();
      expect(b.length).toBe(a.length);
      // advance b two steps, then a two steps: both must follow the golden path
      for (const s of [b, a]) {
        const l1 = await s.decode(c.greedy.expected_ids[1]);
        expect(maxAbsDiff(l1, row(stepGolden, 2, fx.vocab))).toBeLessThanOrEqual(tol);
        const l2 = await s.decode(c.greedy.expected_ids[2]);
        expect(maxAbsDiff(l2, row(stepGolden, 3, fx.vocab))).toBeLessThanOrEqual(tol);
      }
      a.dispose();
      b.dispose();
    });

    test('reset() returns a sequence to empty: the same prompt gives the same logits', async () => {
      const c = fx.manifest.cases.prompt;
      const golden = fx.golden(fx.manifest.cases.prompt.prompt_logits.file);
      const s = model.createSequence({ contextSize: 64 });
      await s.prefill([5, 6, 7, 8, 9]);
      await s.reset();
      expect(s.length).toBe(0);
      const l = await s.prefill(c.prompt_ids);
      expect(maxAbsDiff(l, row(golden, c.prompt_ids.length - 1, fx.vocab))).toBeLessThanOrEqual(tol);
      s.dispose();
    });
  });
}

describeWithFixtures('a bf16 KV cache (kvCache: bf16) on the CPU engine', () => {
  // The cache CUDA keeps by default, here on the fp32 CPU engine: keys and values
  // rounded to bf16 move the logits by far less than the bf16 tolerance of
  // fixture.json, but they do move them (the option takes effect).
  let fx: Fixture;
  let half: Model;
  let full: Model;
  beforeAll(async () => {
    fx = loadFixture('tiny-nemotron-h')!;
    half = await loadModel(fx.dir, { device: 'cpu', kvCache: 'bf16' });
    full = await loadModel(fx.dir, { device: 'cpu' });
  });
  afterAll(() => {
    half?.dispose();
    full?.dispose();
  });

  test('memory: half the KV bytes per token, the same recurrent state', () => {
    expect(full.memory.kvCacheType).toBe('f32');
    expect(half.memory.kvCacheType).toBe('bf16');
    expect(half.memory.kvBytesPerToken * 2).toBe(full.memory.kvBytesPerToken);
    expect(half.memory.stateBytesPerSequence).toBe(full.memory.stateBytesPerSequence);
    expect(half.sequenceBytes(1000)).toBe(half.memory.stateBytesPerSequence + 1000 * half.memory.kvBytesPerToken);
  });

  test('long prompt and greedy steps within the bf16 tolerance of the goldens, greedy ids equal', async () => {
    const tol = fx.manifest.tolerances.bf16_gpu;
    const lp = fx.manifest.cases.long_prompt;
    const golden = fx.golden(lp.logits.file);
    const logits = await half.evaluate(lp.prompt_ids);
    for (let r = 0; r < lp.prompt_ids.length; r++) {
      const g = row(logits, r, fx.vocab);
      const e = row(golden, r, fx.vocab);
      expect(maxAbsDiff(g, e)).toBeLessThanOrEqual(tol.max_abs_logit_diff);
      expect(cosine(g, e)).toBeGreaterThanOrEqual(tol.min_row_cosine);
    }
    expect(maxAbsDiff(logits, await full.evaluate(lp.prompt_ids))).toBeGreaterThan(0);

    // Teacher-forced greedy steps: each step's logits within tolerance, its id equal where the margin is clear.
    const c = fx.manifest.cases.prompt;
    const steps = fx.golden(c.greedy.step_logits.file);
    const seq = half.createSequence({ contextSize: 64 });
    let step = await seq.prefill(c.prompt_ids);
    for (let j = 0; j < c.greedy.n_new_tokens; j++) {
      expect(maxAbsDiff(step, row(steps, j, fx.vocab))).toBeLessThanOrEqual(tol.max_abs_logit_diff);
      if (c.greedy.per_step_margin[j] >= tol.top1_must_match_when_margin_gt) expect(argmax(step)).toBe(c.greedy.expected_ids[j]);
      if (j + 1 < c.greedy.n_new_tokens) step = await seq.decode(c.greedy.expected_ids[j]);
    }
    seq.dispose();
  });

  test('an unknown cache type is an InvalidArgumentError naming the option', async () => {
    await expect(loadModel(fx.dir, { device: 'cpu', kvCache: 'f16' as never })).rejects.toThrow(/kvCache/);
  });
});
