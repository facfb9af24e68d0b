/**
 * Continuous batching: decode steps of sequences that are pending together run
 * as one forward pass, and every sequence gets exactly what it gets alone.
 */
import { ContextOverflowError, DisposedError, loadModel, type Model, type Sequence } from '../lib';
import { argmax, describeWithFixtures, loadFixture, maxAbsDiff, row, type Fixture } from './helpers/fixtures';

describeWithFixtures('continuous batching (CPU)', () => {
  let fx: Fixture;
  let model: Model;
  beforeAll(async () => {
    fx = loadFixture('tiny-nemotron-h')!;
    model = await loadModel(fx.dir, { device: 'cpu' });
  });
  afterAll(() => model?.dispose());

  /** Greedy steps of one session, from its prompt, checking against the goldens. */
  async function follow(i: number, seq: Sequence, from: number, to: number, logits: Float32Array): Promise<Float32Array> {
    const s = fx.manifest.cases.batch.sessions[i];
    const steps = fx.golden(s.greedy_step_logits.file);
    for (let j = from; j < to; j++) {
      expect(maxAbsDiff(logits, row(steps, j, fx.vocab))).toBeLessThanOrEqual(1e-3);
      expect(argmax(logits)).toBe(s.greedy_ids[j]);
      logits = await seq.decode(s.greedy_ids[j]);
    }
    return logits;
  }

  test('two sequences decoding concurrently share forward passes and match the goldens', async () => {
    const sessions = fx.manifest.cases.batch.sessions;
    const before = { ...model.batcher.stats };
    const seqs: Sequence[] = sessions.map(() => model.createSequence({ contextSize: 64 }));
    const first = await Promise.all(seqs.map((s: Sequence, i: number) => s.prefill(sessions[i].prompt_ids)));
    await Promise.all(seqs.map((s: Sequence, i: number) => follow(i, s, 0, 11, first[i])));
    const batches = model.batcher.stats.batches - before.batches;
    const steps = model.batcher.stats.steps - before.steps;
    expect(steps).toBe(22);
    expect(batches).toBeLessThan(steps); // steps were merged
    expect(model.batcher.stats.largest).toBeGreaterThanOrEqual(2);
    seqs.forEach((s: Sequence) => s.dispose());
  });

  test('a sequence joining and one leaving mid-stream do not disturb the others', async () => {
    const sessions = fx.manifest.cases.batch.sessions;
    const a = model.createSequence({ contextSize: 64 });
    const b = model.createSequence({ contextSize: 64 });
    const la = await a.prefill(sessions[0].prompt_ids);
    // a runs alone for 3 steps, then b joins; a leaves after step 8 while b goes on
    const aRun = (async () => {
      const l = await follow(0, a, 0, 3, la);
      await follow(0, a, 3, 8, l);
      a.dispose();
    })();
    const bRun = (async () => {
      await new Promise((r) => setTimeout(r, 5));
      const lb = await b.prefill(sessions[1].prompt_ids);
      await follow(1, b, 0, 11, lb);
    })();
    await Promise.all([aRun, bRun]);
    b.dispose();
  });

  test('errors stay with their sequence: overflow and disposal inside a batch', async () => {
    const p = fx.manifest.cases.prompt;
    const full = model.createSequence({ contextSize: p.prompt_ids.length });
    const ok = model.createSequence({ contextSize: 64 });
    const gone = model.createSequence({ contextSize: 64 });
    await Promise.all([full.prefill(p.prompt_ids), ok.prefill(p.prompt_ids), gone.prefill(p.prompt_ids)]);
    const steps = fx.golden(p.greedy.step_logits.file);
    const results = await Promise.allSettled([
      full.decode(p.greedy.expected_ids[0]),
      ok.decode(p.greedy.expected_ids[0]),
      (() => {
        const r = gone.decode(p.greedy.expected_ids[0]);
        gone.dispose(); // disposed while its step waits for the batch
        return r;
      })(),
    ]);
    expect(results[0].status).toBe('rejected');
    expect((results[0] as PromiseRejectedResult).reason).toBeInstanceOf(ContextOverflowError);
    expect(results[1].status).toBe('fulfilled');
    expect(maxAbsDiff((results[1] as PromiseFulfilledResult<Float32Array>).value, row(steps, 1, fx.vocab))).toBeLessThanOrEqual(1e-3);
    expect((results[2] as PromiseRejectedResult).reason).toBeInstanceOf(DisposedError);
    expect(full.length).toBe(p.prompt_ids.length);
    full.dispose();
    ok.dispose();
  });
});

describeWithFixtures('long prompts do not stall other streams', () => {
  test('decode steps of another sequence run between the pieces of a long prefill; results are exact', async () => {
    const fx = loadFixture('tiny-nemotron-h')!;
    // pieces of 32 tokens, so a 160-token prompt is 5 queued tasks
    const model = await loadModel(fx.dir, { device: 'cpu', maxBatchTokens: 32 });
    const lp = fx.manifest.cases.long_prompt;
    const s = fx.manifest.cases.batch.sessions[0];
    const other = model.createSequence({ contextSize: 64 });
    let logits = await other.prefill(s.prompt_ids);
    const long = model.createSequence({ contextSize: 256 });
    const events: string[] = [];
    const prefill = long.prefill(lp.prompt_ids, { allLogits: true }).then((l) => {
      events.push('prefill done');
      return l;
    });
    for (let j = 0; j < 4; j++) {
      logits = await other.decode(s.greedy_ids[j]);
      events.push(`step ${j}`);
    }
    const all = await prefill;
    expect(events.indexOf('step 0')).toBeLessThan(events.indexOf('prefill done')); // the stream was not stalled
    expect(maxAbsDiff(all, fx.golden(lp.logits.file))).toBeLessThanOrEqual(1e-3); // and the prompt is exact
    expect(long.length).toBe(lp.prompt_ids.length);
    expect(maxAbsDiff(logits, row(fx.golden(s.greedy_step_logits.file), 4, fx.vocab))).toBeLessThanOrEqual(1e-3);
    model.dispose();
  });
});
