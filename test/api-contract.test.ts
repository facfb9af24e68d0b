/**
 * The low-level API's contract: options validated with messages naming the
 * option, typed errors (context overflow, disposed objects, bad tokens, an
 * unavailable device), and work running off the event loop.
 */
import * as path from 'node:path';

import {
  ContextOverflowError,
  DeviceUnavailableError,
  DisposedError,
  InvalidArgumentError,
  getRuntimeInfo,
  loadModel,
  type LoadProgress,
  type Model,
} from '../lib';
import { describeWithFixtures, fixturesDir } from './helpers/fixtures';

describeWithFixtures('API contract', () => {
  const dir = () => path.join(fixturesDir()!, 'tiny-nemotron-h');
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(dir(), { device: 'cpu', threads: 2 });
  });
  afterAll(() => model?.dispose());

  test('invalid loadModel options name the option', async () => {
    await expect(loadModel(dir(), { device: 'gpu' as never })).rejects.toThrow(/option "device"/);
    await expect(loadModel(dir(), { threads: 0 })).rejects.toThrow(/option "threads"/);
    await expect(loadModel(dir(), { threads: 1.5 })).rejects.toThrow(InvalidArgumentError);
    await expect(loadModel(dir(), { bogus: 1 } as never)).rejects.toThrow(/unknown option "bogus"/);
  });

  test('progress is reported while loading', async () => {
    const events: LoadProgress[] = [];
    const m = await loadModel(dir(), { device: 'cpu', onProgress: (p) => events.push(p) });
    m.dispose();
    expect(events[0].stage).toBe('config');
    const last = events[events.length - 1];
    expect(last.stage).toBe('ready');
    expect(last.loadedBytes).toBe(last.totalBytes);
    expect(last.totalBytes).toBeGreaterThan(400_000);
    expect(events.some((e) => e.stage === 'weights')).toBe(true);
  });

  test("device 'cuda' without a usable GPU is a clear DeviceUnavailableError", async () => {
    if (getRuntimeInfo().cuda.available) return; // a GPU machine: covered by the CUDA tests
    await expect(loadModel(dir(), { device: 'cuda' })).rejects.toThrow(DeviceUnavailableError);
    // 'auto' falls back to the CPU
    const m = await loadModel(dir(), { device: 'auto' });
    expect(m.device).toBe('cpu');
    m.dispose();
  });

  test('token ids are validated', async () => {
    const seq = model.createSequence({ contextSize: 16 });
    await expect(seq.prefill([1, 512])).rejects.toThrow(/tokens\[1\] = 512 is not a token id/);
    await expect(seq.prefill([1, -1])).rejects.toThrow(InvalidArgumentError);
    await expect(seq.decode(2.5)).rejects.toThrow(InvalidArgumentError);
    expect(seq.length).toBe(0);
    await expect(model.evaluate([])).rejects.toThrow(RangeError);
    seq.dispose();
  });

  test('exceeding the context size is a ContextOverflowError and leaves the sequence usable', async () => {
    const seq = model.createSequence({ contextSize: 8 });
    await seq.prefill([1, 2, 3, 4, 5, 6]);
    await expect(seq.prefill([7, 8, 9])).rejects.toThrow(ContextOverflowError);
    expect(seq.length).toBe(6);
    await seq.decode(7);
    await seq.decode(8);
    await expect(seq.decode(9)).rejects.toThrow(/context size of 8/);
    expect(seq.length).toBe(8);
    seq.dispose();
  });

  test('createSequence validates contextSize', () => {
    expect(() => model.createSequence({ contextSize: 0 })).toThrow(/option "contextSize"/);
    expect(() => model.createSequence({ contextSize: 3.5 })).toThrow(InvalidArgumentError);
  });

  test('disposed sequences and models throw DisposedError', async () => {
    const m = await loadModel(dir(), { device: 'cpu' });
    const seq = m.createSequence();
    await seq.prefill([1, 2, 3]);
    seq.dispose();
    seq.dispose(); // idempotent
    await expect(seq.decode(1)).rejects.toThrow(DisposedError);
    await expect(seq.clone()).rejects.toThrow(DisposedError);
    const other = m.createSequence();
    m.dispose();
    expect(other.disposed).toBe(true); // disposing the model frees its sequences
    expect(() => m.createSequence()).toThrow(DisposedError);
    await expect(m.evaluate([1])).rejects.toThrow(DisposedError);
  });

  test('forward passes run off the event loop', async () => {
    const prompt = Array.from({ length: 2000 }, (_, i) => (i * 7) % 500);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    await model.evaluate(prompt);
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(0);
  });
});
