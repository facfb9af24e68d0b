/**
 * Memory-aware admission: the memory plan's numbers (against the config's own
 * arithmetic), FIFO waiting when the budget or the sequence cap is full, aborts,
 * requests that can never fit, clones, and that admitted sequences still compute
 * exactly what they compute alone.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { Admission } from '../lib/admission';
import { defaultBudget } from '../lib/model';
import { dimsFromConfig, memoryPlan } from '../lib/cli/memory-plan';
import { defaultConcurrency } from '../lib/server';
import { OutOfMemoryError, loadModel, type Model, type Sequence } from '../lib';
import { argmax, describeWithFixtures, loadFixture, maxAbsDiff, row, type Fixture } from './helpers/fixtures';

/** Resolves to 'pending' if `p` has not settled after the event loop turns a few times. */
async function state(p: Promise<unknown>): Promise<'resolved' | 'rejected' | 'pending'> {
  let s: 'resolved' | 'rejected' | 'pending' = 'pending';
  p.then(
    () => (s = 'resolved'),
    () => (s = 'rejected'),
  );
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return s;
}

describe('Admission (budget + cap, FIFO)', () => {
  test('grants while there is room, then queues in arrival order', async () => {
    const a = new Admission(100, Infinity, 'test budget');
    const r1 = await a.acquire(60, 'one');
    const order: string[] = [];
    const p2 = a.acquire(50, 'two').then((r) => (order.push('two'), r));
    const p3 = a.acquire(10, 'three').then((r) => (order.push('three'), r)); // fits, but must not overtake 'two'
    expect(await state(p2)).toBe('pending');
    expect(await state(p3)).toBe('pending');
    expect(a.waitingSequences).toBe(2);
    r1.release();
    const [r2, r3] = await Promise.all([p2, p3]);
    expect(order).toEqual(['two', 'three']);
    expect(a.reservedBytes).toBe(60);
    expect(a.activeSequences).toBe(2);
    r2.release();
    r2.release(); // idempotent
    r3.release();
    expect(a.reservedBytes).toBe(0);
    expect(a.activeSequences).toBe(0);
  });

  test('the sequence cap limits admission independently of bytes', async () => {
    const a = new Admission(1e9, 2, 'test budget');
    const r1 = await a.acquire(1, 'a');
    await a.acquire(1, 'b');
    const p = a.acquire(1, 'c');
    expect(await state(p)).toBe('pending');
    r1.release();
    await expect(p).resolves.toHaveProperty('bytes', 1);
  });

  test('a request larger than the whole budget fails at once with OutOfMemoryError', async () => {
    const a = new Admission(100, Infinity, 'test budget');
    await expect(a.acquire(101, 'a huge sequence')).rejects.toThrow(OutOfMemoryError);
    await expect(a.acquire(101, 'a huge sequence')).rejects.toThrow(/a huge sequence needs .* at most .*test budget/);
    expect(() => a.acquireNow(101, 'x')).toThrow(OutOfMemoryError);
  });

  test('aborting a waiter removes it and lets the ones behind it in', async () => {
    const a = new Admission(100, Infinity, 'test budget');
    const r1 = await a.acquire(80, 'one');
    const ac = new AbortController();
    const p2 = a.acquire(50, 'two', ac.signal);
    const p3 = a.acquire(20, 'three');
    expect(await state(p3)).toBe('pending'); // behind 'two'
    ac.abort();
    await expect(p2).rejects.toHaveProperty('name', 'AbortError');
    await expect(p3).resolves.toHaveProperty('bytes', 20); // 80 + 20 fits once 'two' left the head
    expect(a.waitingSequences).toBe(0);
    r1.release();
    await expect(a.acquire(1, 'late', AbortSignal.abort())).rejects.toHaveProperty('name', 'AbortError');
  });

  test('acquireNow never waits and never jumps the queue', async () => {
    const a = new Admission(100, Infinity, 'test budget');
    const r = a.acquireNow(90, 'now');
    expect(() => a.acquireNow(20, 'clone')).toThrow(/needs .* now, but .* reserved/);
    const waiting = a.acquire(20, 'queued');
    expect(() => a.acquireNow(5, 'clone')).toThrow(OutOfMemoryError); // 5 fits, but someone waits
    r.release();
    await waiting;
  });
});

describeWithFixtures('memory plan and admission on a model (CPU)', () => {
  let fx: Fixture;
  let cfg: any;
  beforeAll(() => {
    fx = loadFixture('tiny-nemotron-h')!;
    cfg = JSON.parse(fs.readFileSync(path.join(fx.dir, 'config.json'), 'utf8').replace(/Infinity/g, '1e999'));
  });

  /** The sizes from config.json, computed here independently of the engine. */
  function expected() {
    const pattern: string = cfg.hybrid_override_pattern;
    const mamba = [...pattern].filter((c) => c === 'M').length;
    const attn = [...pattern].filter((c) => c === '*').length;
    const dInner = cfg.mamba_num_heads * cfg.mamba_head_dim;
    const convDim = dInner + 2 * cfg.n_groups * cfg.ssm_state_size;
    const ssm = cfg.mamba_num_heads * cfg.mamba_head_dim * cfg.ssm_state_size;
    return {
      state: mamba * ((cfg.conv_kernel - 1) * convDim + ssm) * 4,
      kv: attn * 2 * cfg.num_key_value_heads * cfg.head_dim * 4,
    };
  }

  test('model.memory reports the per-sequence costs the config implies, and a real budget', async () => {
    const model = await loadModel(fx.dir, { device: 'cpu', contextSize: 256 });
    try {
      const m = model.memory;
      const e = expected();
      expect(m.device).toBe('cpu');
      expect(m.stateBytesPerSequence).toBe(e.state);
      expect(m.kvBytesPerToken).toBe(e.kv);
      expect(m.weightBytes).toBe(model.info.weightBytes);
      expect(m.activationBytes).toBeGreaterThan(0);
      expect(m.workspaceBytes).toBe(0); // the CPU kernels take none beside the activations
      expect(m.deviceTotalBytes).toBeGreaterThan(m.budgetBytes);
      expect(m.budgetBytes).toBeGreaterThan(0);
      expect(m.budgetSource).toMatch(/host RAM/);
      expect(m.maxConcurrentSequences).toBeNull();
      expect(model.sequenceBytes(256)).toBe(e.state + 256 * e.kv);
      expect(m.sequencesAtDefaultContext).toBe(Math.floor(m.budgetBytes / (e.state + 256 * e.kv)));
      expect(m.reservedBytes).toBe(0);
      // `nemotron info`'s no-load estimate must agree with the loaded engine.
      const estimate = memoryPlan(dimsFromConfig(cfg), m.weightBytes, 4096, 512);
      expect(estimate.mambaStateBytes).toBe(m.stateBytesPerSequence);
      expect(estimate.kvCacheBytes).toBe(4096 * m.kvBytesPerToken);
      expect(estimate.activationBytes).toBe(m.activationBytes);

      const seq = model.createSequence({ contextSize: 100 });
      expect(model.memory.activeSequences).toBe(0); // state is reserved at first use, not at creation
      await seq.prefill([1, 2, 3]);
      expect(seq.admitted).toBe(true);
      expect(model.memory.reservedBytes).toBe(e.state + 100 * e.kv);
      expect(model.memory.activeSequences).toBe(1);
      const copy = await seq.clone();
      expect(model.memory.reservedBytes).toBe(2 * (e.state + 100 * e.kv));
      seq.dispose();
      copy.dispose();
      await model.queue.run(async () => undefined); // releases follow the queued work
      expect(model.memory.reservedBytes).toBe(0);
      expect(model.memory.activeSequences).toBe(0);
    } finally {
      model.dispose();
    }
  });

  test('with maxConcurrentSequences 1, a second sequence waits for the first to be disposed, then matches its goldens', async () => {
    const model = await loadModel(fx.dir, { device: 'cpu', maxConcurrentSequences: 1 });
    try {
      const sessions = fx.manifest.cases.batch.sessions;
      const s0 = sessions[0];
      const s1 = sessions[1];
      const a = model.createSequence({ contextSize: 64 });
      const b = model.createSequence({ contextSize: 64 });
      await a.prefill(s0.prompt_ids);
      const pb = b.prefill(s1.prompt_ids);
      expect(await state(pb)).toBe('pending');
      expect(model.memory.waitingSequences).toBe(1);
      expect(b.admitted).toBe(false);
      a.dispose();
      const logits = await pb;
      const steps = fx.golden(s1.greedy_step_logits.file);
      expect(maxAbsDiff(logits, row(steps, 0, fx.vocab))).toBeLessThanOrEqual(1e-3);
      expect(argmax(logits)).toBe(s1.greedy_ids[0]);
      // A clone needs memory now: the cap is taken, so it fails instead of waiting.
      await expect(b.clone()).rejects.toThrow(OutOfMemoryError);
      b.dispose();
    } finally {
      model.dispose();
    }
  });

  test('a budget smaller than one sequence fails that sequence at once, smaller contexts still run', async () => {
    const e = expected();
    const model = await loadModel(fx.dir, { device: 'cpu', memoryBudgetBytes: e.state + 64 * e.kv });
    try {
      expect(model.memory.budgetSource).toMatch(/memoryBudgetBytes/);
      const big = model.createSequence({ contextSize: 65 });
      await expect(big.prefill([1, 2, 3])).rejects.toThrow(OutOfMemoryError);
      await expect(big.prefill([1, 2, 3])).rejects.toThrow(/contextSize 65 .* needs .* at most .*memoryBudgetBytes/);
      const fits = model.createSequence({ contextSize: 64 });
      await expect(fits.prefill([1, 2, 3])).resolves.toHaveLength(fx.vocab);
      // evaluate() reserves its temporary sequence too: waits until `fits` is gone.
      const ev = model.evaluate([1, 2, 3]);
      expect(await state(ev)).toBe('pending');
      fits.dispose();
      await expect(ev).resolves.toHaveLength(3 * fx.vocab);
      big.dispose();
    } finally {
      model.dispose();
    }
  });

  test('a chat-style wait can be aborted, and disposing the model fails the waiters', async () => {
    const model = await loadModel(fx.dir, { device: 'cpu', maxConcurrentSequences: 1 });
    const holder = model.createSequence({ contextSize: 32 });
    await holder.prefill([1, 2]);
    const ac = new AbortController();
    const waiting: Sequence = model.createSequence({ contextSize: 32 });
    const p = waiting.prefill([3, 4], { signal: ac.signal });
    expect(await state(p)).toBe('pending');
    ac.abort();
    await expect(p).rejects.toHaveProperty('name', 'AbortError');
    expect(model.memory.waitingSequences).toBe(0);
    const p2 = waiting.decode(5); // the same sequence may try again; now it waits without a signal
    expect(await state(p2)).toBe('pending');
    const m: Model = model;
    m.dispose();
    await expect(p2).rejects.toThrow(/disposed/);
  });
});

describe('server concurrency default (createServer without maxConcurrent)', () => {
  // Only device and memory are read; a stand-in model keeps this independent of a GPU.
  const fake = (device: 'cpu' | 'cuda', maxBatchSize: number) => ({ device, maxBatchSize }) as unknown as Model;
  test('GPU: a full decode batch (memory is admitted per request, as each reserves only its own turn)', () => {
    expect(defaultConcurrency(fake('cuda', 128))).toBe(128);
    expect(defaultConcurrency(fake('cuda', 48))).toBe(48);
  });
  test('CPU: 8, whatever the batch size', () => {
    expect(defaultConcurrency(fake('cpu', 128))).toBe(8);
  });
});

describe('default admission budget (defaultBudget)', () => {
  const MiB = 2 ** 20;
  const gpu = { device: 'cuda' as const, weightBytes: 0, deviceTotalBytes: 80 * 1024 * MiB, deviceFreeBytes: 60 * 1024 * MiB };
  test('GPU: free memory less activations, the kernels\' workspaces and max(512 MiB, 5%)', () => {
    const b = defaultBudget({ ...gpu, activationBytes: 100 * MiB, workspaceBytes: 150 * MiB });
    expect(b.bytes).toBe(60 * 1024 * MiB - 100 * MiB - 150 * MiB - 0.05 * 80 * 1024 * MiB);
    expect(b.source).toMatch(/100\.0 MiB of activation scratch, 150\.0 MiB of kernel workspaces/);
    // `nemotron info` estimates without a loaded engine: no workspace figure, none subtracted
    expect(defaultBudget({ ...gpu, activationBytes: 100 * MiB }).bytes).toBe(b.bytes + 150 * MiB);
    expect(defaultBudget({ ...gpu, deviceTotalBytes: 4 * 1024 * MiB, activationBytes: 0, workspaceBytes: 0 }).bytes).toBe(
      60 * 1024 * MiB - 512 * MiB,
    );
  });
  test('never below zero', () => {
    expect(defaultBudget({ ...gpu, activationBytes: 70 * 1024 * MiB, workspaceBytes: 0 }).bytes).toBe(0);
  });
});
