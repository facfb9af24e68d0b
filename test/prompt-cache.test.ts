/**
 * Prompt caching (lib/prompt-cache.ts) on the reference fixture: a prompt that
 * starts with a snapshot is prefilled from it and still matches the golden
 * logits; snapshots are reused only when they are a prefix; they hold memory
 * like sequences, are dropped beyond maxEntries and when a sequence has to wait
 * for memory; they outlive the process through save(dir) / load(dir). Also
 * Sequence.clone({ contextSize }), which the cache is built on.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

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

  test('save(dir) / load(dir): a new process starts with the snapshots, in their order, and skips files it cannot use', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nemotron-prompt-cache-'));
    try {
      model = await loadModel(fx.dir, { device: 'cpu', promptCache: { maxEntries: 4, minTokens: 8 } });
      const cache = model.promptCache!;
      (await cache.prefill(ids, { contextSize: 256, snapshotAt: [40, 100] })).seq.dispose();
      const uncached = await cache.prefill(ids.slice(0, 130), { contextSize: 256 }); // a hit: 100 reused
      expect(uncached.reusedTokens).toBe(100);
      uncached.seq.dispose();
      // then a prompt that shares only the first 40 tokens: the 40-token snapshot is now the most recently used
      const diverging = [...ids.slice(0, 40), (ids[40] + 1) % fx.vocab, ...ids.slice(41, 60)];
      const hit40 = await cache.prefill(diverging, { contextSize: 256 });
      expect(hit40.reusedTokens).toBe(40);
      hit40.seq.dispose();
      const saved = await cache.save(dir);
      expect(saved.files).toBe(2);
      expect(fs.readdirSync(dir).filter((f) => f.endsWith('.state'))).toHaveLength(2);
      model.dispose();

      // Another model instance (as after a restart): the same snapshots, the same results.
      model = await loadModel(fx.dir, { device: 'cpu', promptCache: { maxEntries: 4, minTokens: 8 } });
      fs.writeFileSync(path.join(dir, 'prefix-0000000000000000.state'), 'not a state file');
      const report = await model.promptCache!.load(dir);
      expect(report.loaded).toBe(2);
      expect(report.skipped).toHaveLength(1);
      expect(report.skipped[0].file).toMatch(/prefix-0000000000000000\.state$/);
      await settle();
      expect(model.promptCache!.stats).toMatchObject({ entries: 2, bytes: model.sequenceBytes(40) + model.sequenceBytes(100) });
      const r = await model.promptCache!.prefill(ids.slice(0, 130), { contextSize: 256 });
      expect(r.reusedTokens).toBe(100);
      expect(maxAbsDiff(r.logits, lastRow(130))).toBeLessThanOrEqual(tol);
      r.seq.dispose();
      // maxEntries 1: only the most recently used when saved (the 40-token prefix, though created first) is loaded
      model.dispose();
      model = await loadModel(fx.dir, { device: 'cpu', promptCache: { maxEntries: 1, minTokens: 8 } });
      expect((await model.promptCache!.load(dir)).loaded).toBe(1);
      const r2 = await model.promptCache!.prefill(ids, { contextSize: 256 });
      expect(r2.reusedTokens).toBe(40);
      expect(maxAbsDiff(r2.logits, lastRow(ids.length))).toBeLessThanOrEqual(tol);
      r2.seq.dispose();
      // saving again replaces the directory's snapshot files (prefix-*.state) with this cache's one
      fs.writeFileSync(path.join(dir, 'notes.txt'), 'kept');
      expect((await model.promptCache!.save(dir)).files).toBe(1);
      expect(fs.readdirSync(dir).sort()).toEqual(['notes.txt', expect.stringMatching(/^prefix-[0-9a-f]{16}\.state$/)]);
      // a missing directory holds no snapshots
      expect(await model.promptCache!.load(path.join(dir, 'absent'))).toEqual({ loaded: 0, skipped: [] });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
