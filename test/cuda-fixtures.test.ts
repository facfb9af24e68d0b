/**
 * The reference fixtures end to end on device 'cuda' (bf16 tensor-core GEMMs,
 * fp32 SSM state), with the bf16 tolerances stated in fixture.json: max |Δlogit|
 * ≤ 0.5 and cosine ≥ 0.999 per row; greedy ids equal up to the first step whose
 * top-1/top-2 margin is < 0.5, teacher-forced after that. Skips (and says why)
 * where CUDA cannot be used — CI never has a GPU; a lent GPU runs it.
 */
import { getRuntimeInfo, loadModel, type Model } from '../lib';
import { FIXTURE_NAMES, argmax, cosine, fixturesDir, loadFixture, maxAbsDiff, row, type Fixture } from './helpers/fixtures';

const cuda = (() => {
  try {
    return getRuntimeInfo().cuda;
  } catch {
    return undefined;
  }
})();
const runnable = !!cuda?.available && !!fixturesDir();
if (!runnable)
  console.log(
    `skipping CUDA fixture tests: ${!fixturesDir() ? '../shared/fixtures not found' : `CUDA not usable here (${cuda?.reason ?? 'no binding'})`}`,
  );
const describeCuda = runnable ? describe : describe.skip;

for (const name of FIXTURE_NAMES) {
  describeCuda(`fixture ${name} on CUDA`, () => {
    let fx: Fixture;
    let model: Model;
    let tol: { max_abs_logit_diff: number; min_row_cosine: number; top1_must_match_when_margin_gt: number };
    beforeAll(async () => {
      fx = loadFixture(name)!;
      tol = fx.manifest.tolerances.bf16_gpu;
      model = await loadModel(fx.dir, { device: 'cuda' });
    });
    afterAll(() => model?.dispose());

    function expectRowsClose(got: Float32Array, golden: Float32Array, rows: number) {
      for (let r = 0; r < rows; r++) {
        const g = row(got, r, fx.vocab);
        const e = row(golden, r, fx.vocab);
        expect(maxAbsDiff(g, e)).toBeLessThanOrEqual(tol.max_abs_logit_diff);
        expect(cosine(g, e)).toBeGreaterThanOrEqual(tol.min_row_cosine);
      }
    }

    test('runs on the GPU, with a bf16 KV cache by default', () => {
      expect(model.device).toBe('cuda');
      expect(model.memory.kvCacheType).toBe('bf16');
    });

    test('prompt and long prompt (crosses a chunk): every position within the bf16 tolerance', async () => {
      const p = fx.manifest.cases.prompt;
      expectRowsClose(await model.evaluate(p.prompt_ids), fx.golden(p.prompt_logits.file), p.prompt_ids.length);
      const lp = fx.manifest.cases.long_prompt;
      expectRowsClose(await model.evaluate(lp.prompt_ids), fx.golden(lp.logits.file), lp.prompt_ids.length);
    });

    test('greedy: ids equal while margins are clear, then teacher-forced step logits within tolerance', async () => {
      const c = fx.manifest.cases.prompt;
      const steps = fx.golden(c.greedy.step_logits.file);
      const seq = model.createSequence({ contextSize: 64 });
      let logits = await seq.prefill(c.prompt_ids);
      let forcing = false;
      for (let j = 0; j < c.greedy.n_new_tokens; j++) {
        expectRowsClose(logits, row(steps, j, fx.vocab), 1);
        if (c.greedy.per_step_margin[j] < tol.top1_must_match_when_margin_gt) forcing = true;
        if (!forcing) expect(argmax(logits)).toBe(c.greedy.expected_ids[j]);
        if (j + 1 < c.greedy.n_new_tokens) logits = await seq.decode(c.greedy.expected_ids[j]);
      }
      seq.dispose();
    });

    test('a one-token prompt, and two interleaved sequences, match the CPU engine', async () => {
      const cpu = await loadModel(fx.dir, { device: 'cpu' });
      const one = [fx.manifest.cases.prompt.prompt_ids[0]];
      expectRowsClose(await model.evaluate(one), await cpu.evaluate(one), 1);
      const sessions = fx.manifest.cases.batch.sessions;
      const gpu = sessions.map(() => model.createSequence({ contextSize: 64 }));
      const ref = sessions.map(() => cpu.createSequence({ contextSize: 64 }));
      for (let i = 0; i < sessions.length; i++) {
        expectRowsClose(await gpu[i].prefill(sessions[i].prompt_ids), await ref[i].prefill(sessions[i].prompt_ids), 1);
      }
      for (let j = 0; j < 6; j++)
        for (let i = 0; i < sessions.length; i++) {
          const t = sessions[i].greedy_ids[j];
          expectRowsClose(await gpu[i].decode(t), await ref[i].decode(t), 1);
        }
      cpu.dispose();
    });
  });
}
