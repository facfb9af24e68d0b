/**
 * Prompt caching (lib/prompt-cache.ts) on the reference fixture: a prompt that
 * starts with a snapshot is prefilled from it and still matches the golden
 * logits; snapshots are reused only when they are a prefix; they hold memory
 * like sequences, are dropped beyond maxEntries and when a sequence has to wait
 * for memory. Also Sequence.clone({ contextSize }), which the cache is built on.
 */
import { loadModel, type Model } from '../lib';
import { OutOfMemoryError } from '../lib/errors';
import { describeWithFixtures, loadFixture, maxAbsDiff, row, type Fixture } from './helpers/fixtures';

describeWithFixtures('prompt cache (fixture tiny-nemotron-h)', () => {
  let fx: Fixture;
  let model: Model;
  let ids: number[]; // the fixture's 160-token prompt (crosses a 128-token chunk)
  let golden: Float32Array; // its logits at every position
  let tol: number;
  const lastRow = (n: number) => row(golden, n - 1, fx.vocab);
  const settle = () => model.queue.run(async () => undefined); // (releases land after queued work)

  beforeAll(async () => {
    fx = loadFixture('tiny-nemotron-h')!;
    tol = fx.manifest.tolerances.fp32_cpu.max_abs_logit_diff;
    ids = fx.manifest.cases.long_prompt.prompt_ids;
    golden = fx.golden(fx.manifest.cases.long_prompt.logits.file);
  });
  afterEach(() => model?.dispose());

  test('clone({ contextSize }) copies the state into a smaller or larger sequence that continues identically', async () => {
    model = await loadModel(fx.dir, { device: 'cpu' });
    const seq = model.createSequence({ contextSize: 200 });
    await seq.prefill(ids.slice(0, 100));
    const small = await seq.clone({ contextSize: 100 }); // exactly full
    const large = await seq.clone({ contextSize: 400 });
    expect([small.contextSize, large.contextSize, small.length, large.length]).toEqual([100, 400, 100, 100]);
    await expect(small.decode(ids[100])).rejects.toThrow(/context/);
    const a = await seq.prefill(ids.slice(100));
    const b = await large.prefill(ids.slice(100));
    expect(maxAbsDiff(a, b)).toBe(0);
    expect(maxAbsDiff(b, lastRow(ids.length))).toBeLessThanOrEqual(tol);
    await expect(seq.clone({ contextSize: 50 })).rejects.toThrow(/at least the sequence's length \(160\)/);
    await settle();
    expect(model.memory.reservedBytes).toBe(model.sequenceBytes(200) + model.sequenceBytes(100) + model.sequenceBytes(400));
  });

  test('a prompt that starts with a snapshot is prefilled from it and matches the golden logits', async () => {
    model = await loadModel(fx.dir, { device: 'cpu', promptCache: { maxEntries: 4, minTokens: 8 } });
    const cache = model.promptCache!;
    // first: nothing cached; keeps a snapshot of the first 100 tokens on the way
    const r1 = await cache.prefill(ids, { contextSize: 256, snapshotAt: [100] });
    expect(r1.reusedTokens).toBe(0);
    expect(maxAbsDiff(r1.logits, lastRow(ids.length))).toBeLessThanOrEqual(tol);
    r1.seq.dispose();
    await settle();
    expect(cache.stats).toMatchObject({ entries: 1, hits: 0, misses: 1, bytes: model.sequenceBytes(100) });
    expect(model.memory.reservedBytes).toBe(model.sequenceBytes(100)); // the snapshot holds memory

    // the same prompt, and a longer prompt through it: 100 tokens reused
    const r2 = await cache.prefill(ids, { contextSize: 256 });
    expect(r2.reusedTokens).toBe(100);
    expect(r2.seq.length).toBe(ids.length);
    expect(r2.seq.contextSize).toBe(256);
    expect(maxAbsDiff(r2.logits, lastRow(ids.length))).toBeLessThanOrEqual(tol);
    const r3 = await cache.prefill(ids.slice(0, 130), { contextSize: 256 });
    expect(r3.reusedTokens).toBe(100);
    expect(maxAbsDiff(r3.logits, lastRow(130))).toBeLessThanOrEqual(tol);
    // a prompt that diverges inside the snapshot, or one no longer than it, computes from token 0
    const other = [...ids.slice(0, 60), (ids[60] + 1) % fx.vocab, ...ids.slice(61, 120)];
    const r4 = await cache.prefill(other, { contextSize: 256 });
    expect(r4.reusedTokens).toBe(0);
    const r5 = await cache.prefill(ids.slice(0, 100), { contextSize: 256 });
    expect(r5.reusedTokens).toBe(0); // (its last position's logits have to be computed)
    expect(maxAbsDiff(r5.logits, lastRow(100))).toBeLessThanOrEqual(tol);
    expect(cache.stats).toMatchObject({ hits: 2, misses: 3, reusedTokens: 200 });
    for (const r of [r2, r3, r4, r5]) r.seq.dispose();
  });

  test('the longest matching snapshot wins; beyond maxEntries the least recently used goes', async () => {
    model = await loadModel(fx.dir, { device: 'cpu', promptCache: { maxEntries: 2, minTokens: 8 } });
    const cache = model.promptCache!;
    (await cache.prefill(ids, { contextSize: 200, snapshotAt: [40, 120] })).seq.dispose();
    expect(cache.stats.entries).toBe(2);
    const hit = await cache.prefill(ids, { contextSize: 200 });
    expect(hit.reusedTokens).toBe(120);
    hit.seq.dispose();
    // a third snapshot evicts the least recently used one (40: the 120 one was just used)
    (await cache.prefill(ids, { contextSize: 200, snapshotAt: [150] })).seq.dispose();
    expect(cache.stats).toMatchObject({ entries: 2, evictions: 1 });
    const again = await cache.prefill(ids.slice(0, 100), { contextSize: 200 });
    expect(again.reusedTokens).toBe(0); // the 40-token snapshot is gone
    again.seq.dispose();
    await settle();
    expect(model.memory.reservedBytes).toBe(model.sequenceBytes(120) + model.sequenceBytes(150));
  });

  test('a sequence that has to wait for memory gets it from the snapshots', async () => {
    const probe = await loadModel(fx.dir, { device: 'cpu' });
    const budget = probe.sequenceBytes(512);
    probe.dispose();
    model = await loadModel(fx.dir, { device: 'cpu', memoryBudgetBytes: budget, promptCache: { maxEntries: 8, minTokens: 8 } });
    const cache = model.promptCache!;
    (await cache.prefill(ids, { contextSize: 160, snapshotAt: [100] })).seq.dispose();
    await settle();
    expect(cache.stats.entries).toBe(1);
    // the whole budget for one sequence: the snapshot is dropped to admit it
    const big = model.createSequence({ contextSize: 512 });
    const logits = await big.prefill(ids);
    expect(maxAbsDiff(logits, lastRow(ids.length))).toBeLessThanOrEqual(tol);
    expect(cache.stats).toMatchObject({ entries: 0, evictions: 1 });
    // a clone cannot wait: with no room it throws (and the cache goes without a snapshot)
    await expect(big.clone({ contextSize: 200 })).rejects.toBeInstanceOf(OutOfMemoryError);
    big.dispose();
    await settle();
    expect(model.memory.reservedBytes).toBe(0);
  });
});
