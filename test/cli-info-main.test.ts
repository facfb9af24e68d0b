/**
 * `nemotron info` (runtime and model report without loading weights), `bench`'s
 * argument handling, and the dispatcher's help and exit codes.
 */
import * as path from 'node:path';

import { dimsFromConfig, memoryPlan } from '../lib/cli/memory-plan';
import { parseHfJson } from '../lib/hf-json';
import { fixturesDir } from './helpers/fixtures';
import { readSafetensors } from './helpers/safetensors';
import { ensureCliBuilt, runCli } from './helpers/cli-run';
import * as fs from 'node:fs';
import * as os from 'node:os';

beforeAll(() => ensureCliBuilt());

describe('dispatcher', () => {
  test('--help lists the commands and exits 0', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['chat', 'serve', 'info', 'bench', 'pull']) expect(r.stdout).toContain(c);
  });
  test('an unknown command exits 2', async () => {
    const r = await runCli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "frobnicate"');
  });
  test.each(['chat', 'info', 'bench', 'pull'])('%s --help prints its options, an unknown option exits 2', async (cmd) => {
    const help = await runCli([cmd, '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain(`usage: nemotron ${cmd}`);
    const bad = await runCli([cmd, '--no-such-option']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/no-such-option/);
  });
  test('chat without --model is a usage error', async () => {
    expect((await runCli(['chat'])).code).toBe(2);
  });
  test('bench --gpu runs the end-to-end CUDA benchmark, which says why it cannot run here', async () => {
    const probe = await runCli(['info', '--json']);
    const cuda = JSON.parse(probe.stdout).runtime.cuda;
    if (cuda.available) return console.log('skipping: a GPU is usable here, bench --gpu would run the 9B benchmark');
    const r = await runCli(['bench', '--gpu']);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/nemotron_bench_e2e.*CUDA cannot be used|not built/s);
    expect((await runCli(['bench', '--gpu', '--cpu'])).code).toBe(2);
  });
});

describe('info', () => {
  test('runtime only: binding, CPU features and CUDA status', async () => {
    const r = await runCli(['info', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.runtime.binding).toMatch(/\.node$/);
    expect(typeof j.runtime.cpu.avx2).toBe('boolean');
    expect(typeof j.runtime.cuda.compiled).toBe('boolean');
    expect(Array.isArray(j.gpus)).toBe(true);
    expect(j.model).toBeUndefined();
  });

  const base = fixturesDir();
  if (!base) console.log('skipping "info on the fixture model": ../shared/fixtures not found (set NEMOTRON_FIXTURES)');
  (base ? test : test.skip)('on the fixture model: parameters, weight bytes, pattern, memory plan', async () => {
    const dir = path.join(base!, 'tiny-nemotron-h');
    const tensors = readSafetensors(path.join(dir, 'model.safetensors'));
    const numel = [...tensors.values()].reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
    const bytes = [...tensors.values()].reduce((a, t) => a + t.data.length, 0);

    const r = await runCli(['info', '--model', dir, '--context-size', '1000', '--json']);
    expect(r.code).toBe(0);
    const m = JSON.parse(r.stdout).model;
    expect(m.layerPattern).toBe('M-M*-MM-');
    expect(m.layers).toEqual({ total: 8, mamba: 4, attention: 1, mlp: 3 });
    expect(m.parameters).toBe(numel);
    expect(m.weightBytes).toBe(bytes);

    const c = parseHfJson(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, number>;
    const convDim = c.mamba_num_heads * c.mamba_head_dim + 2 * c.n_groups * c.ssm_state_size;
    const mambaFloats = (c.conv_kernel - 1) * convDim + c.mamba_num_heads * c.mamba_head_dim * c.ssm_state_size;
    expect(m.memory.contextSize).toBe(1000);
    expect(m.memory.mambaStateBytes).toBe(4 * mambaFloats * 4);
    expect(m.memory.kvCacheBytes).toBe(1 * 2 * 1000 * c.num_key_value_heads * c.head_dim * 4);
    expect(m.memory.totalBytes).toBe(bytes + m.memory.mambaStateBytes + m.memory.kvCacheBytes + m.memory.activationBytes);
    expect(m.memory.note).toMatch(/estimate/);
    // On CUDA the KV cache is bf16 by default: half the bytes, the rest alike.
    expect(m.cudaMemory.kvCacheType).toBe('bf16');
    expect(m.cudaMemory.kvCacheBytes * 2).toBe(m.memory.kvCacheBytes);
    expect(m.cudaMemory.mambaStateBytes).toBe(m.memory.mambaStateBytes);
    expect(m.cudaMemory.perSequenceBytes).toBe(m.memory.perSequenceBytes - m.cudaMemory.kvCacheBytes);
    // Capacity under the default admission budget: on the CPU first, then one row per GPU found.
    expect(m.fits[0].where).toBe('on the CPU');
    expect(m.fits[0].budgetBytes).toBeGreaterThan(0);
    expect(m.fits[0].budgetBytes).toBeLessThan(os.totalmem());
    for (const f of m.fits) expect(f.sequences).toBe(Math.floor(f.budgetBytes / m.memory.perSequenceBytes));

    const sharded = JSON.parse((await runCli(['info', '--model', path.join(base!, 'tiny-nemotron-h-sharded'), '--json'])).stdout).model;
    expect(sharded.parameters).toBe(numel);
    expect(sharded.weights.files).toHaveLength(2);

    const text = await runCli(['info', '--model', dir]);
    expect(text.stdout).toContain(`parameters:  ${numel.toLocaleString('en-US')}`);
    expect(text.stdout).toMatch(/activations \(est\.\)/);
    expect(text.stdout).toMatch(/fits on the CPU +\d+ sequences of this context/);
  });

  test('a directory without config.json is a clear error', async () => {
    const r = await runCli(['info', '--model', __dirname]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no config\.json/);
  });

  test('the memory plan of Nemotron-Nano-9B-v2 at 128K context', () => {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { PRESETS, makeConfig } = require('../scripts/random-model.js');
    const d = dimsFromConfig(makeConfig(PRESETS['nano-9b-v2']));
    const plan = memoryPlan(d, 0, 131072);
    // 4 attention layers × K and V × 131072 × 8 kv heads × 128 × fp32 = 4 GiB; 2 GiB in bf16
    expect(plan.kvCacheBytes).toBe(4 * 2 * 131072 * 8 * 128 * 4);
    expect(memoryPlan(d, 0, 131072, 512, 'bf16').kvCacheBytes).toBe(4 * 2 * 131072 * 8 * 128 * 2);
    expect(plan.activationBytes).toBeGreaterThan(0);
  });
});
