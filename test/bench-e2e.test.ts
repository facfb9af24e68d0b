/**
 * `npm run bench:e2e` must not rot unnoticed: the native end-to-end benchmark
 * runs on the CPU with the mid-size random checkpoint and tiny sizes, and its
 * --json report must hold a positive, finite tokens/s for every phase and every
 * size asked for. The checkpoint it writes must be the model
 * scripts/random-model.js describes (same config.json, same tensor names, shapes
 * and dtype), and a second run must reuse it instead of rewriting it.
 * Skips (and says why) when the binary has not been built.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const { findBenchBinary } = require('../scripts/bench-e2e.js') as { findBenchBinary(): string | undefined };
const { PRESETS, makeConfig, tensorList } = require('../scripts/random-model.js');

const bin = findBenchBinary();
if (!bin) console.log('skipping bench:e2e tests: build/nemotron_bench_e2e not built (npm run build:native)');
const describeBuilt = bin ? describe : describe.skip;

const PREFILL = [32, 64];
const CONTEXTS = [16];
const STREAMS = [1, 2];

function run(dir: string, json: string, extra: string[] = []) {
  const args = ['--preset', 'bench-mid', '--device', 'cpu', '--quick', '--dir', dir, '--json', json];
  const r = spawnSync(bin!, [...args, ...extra], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`nemotron_bench_e2e exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return { stdout: r.stdout, report: JSON.parse(fs.readFileSync(json, 'utf8')) };
}

/** The safetensors header as an object (only the header is read, not the 257 MB of weights). */
function readHeader(file: string): Record<string, any> {
  const fd = fs.openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    fs.readSync(fd, len, 0, 8, 0);
    const text = Buffer.alloc(Number(len.readBigUInt64LE(0)));
    fs.readSync(fd, text, 0, text.length, 8);
    return JSON.parse(text.toString('utf8'));
  } finally {
    fs.closeSync(fd);
  }
}

const positive = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x > 0;

describeBuilt('bench:e2e (native, CPU, bench-mid)', () => {
  let work: string;
  let first: { stdout: string; report: any };
  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'nemotron-bench-e2e-'));
    first = run(path.join(work, 'model'), path.join(work, 'a.json'), [
      '--prefill', PREFILL.join(','),
      '--decode-context', CONTEXTS.join(','),
      '--streams', STREAMS.join(','),
      '--decode-steps', '3',
      '--warmup-steps', '1',
      '--stream-prompt', '8',
    ]);
  });
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  test('every phase reports a positive finite tokens/s for each size asked for', () => {
    const r = first.report;
    expect(r.device).toBe('cpu');
    expect(r.model).toMatchObject({ preset: 'bench-mid', random_weights: true, checkpoint_written: true });
    expect(positive(r.model.decode_weight_bytes)).toBe(true);
    expect(positive(r.copy_bandwidth.gbps)).toBe(true);
    expect(r.load.seconds).toBeGreaterThanOrEqual(0);

    expect(r.prefill.map((p: any) => p.tokens)).toEqual(PREFILL);
    for (const p of r.prefill) {
      expect(p.status).toBeUndefined(); // neither skipped nor failed
      expect(positive(p.tokens_per_s) && positive(p.ms)).toBe(true);
      expect(p.logits_finite).toBe(true);
    }
    expect(r.decode.map((d: any) => d.context)).toEqual(CONTEXTS);
    for (const d of r.decode) {
      expect(d.status).toBeUndefined();
      expect(positive(d.tokens_per_s) && positive(d.ms_per_step) && positive(d.p50_ms)).toBe(true);
      expect(positive(d.pct_of_copy_bandwidth)).toBe(true);
      expect(d.logits_finite).toBe(true);
    }
    expect(r.streams.map((s: any) => s.streams)).toEqual(STREAMS);
    for (const s of r.streams) {
      expect(s.status).toBeUndefined();
      expect(positive(s.aggregate_tokens_per_s) && positive(s.p50_ms) && positive(s.p90_ms)).toBe(true);
      expect(positive(s.scaling)).toBe(true);
      expect(s.logits_finite).toBe(true);
    }
    expect(r.streams[0].scaling).toBe(1);
    expect(r.memory.kind).toBe('cpu_peak_rss');
    expect(positive(r.memory.peak_bytes)).toBe(true);
    expect(r.targets.map((t: any) => t.name)).toEqual(
      expect.arrayContaining(['decode_b1_tokens_per_s', 'prefill_8k_tokens_per_s', 'streams_64_scaling']),
    );
    expect(first.stdout).toContain('summary vs the targets');
  });

  test('the checkpoint is the one scripts/random-model.js describes', () => {
    const dir = path.join(work, 'model');
    // Python-style Infinity in time_step_limit, as real HF configs have it.
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8').replace(/Infinity/g, '1e999'));
    const expected = makeConfig(PRESETS['bench-mid']);
    expect(config).toEqual(expected);
    const header = readHeader(path.join(dir, 'model.safetensors'));
    const names = Object.keys(header).filter((k) => k !== '__metadata__');
    const want: [string, number[]][] = tensorList(expected).map(([n, s]: [string, number[]]) => [n, s]);
    expect(names).toEqual(want.map(([n]) => n));
    for (const [name, shape] of want) expect(header[name]).toMatchObject({ dtype: 'BF16', shape });
  });

  test('a second run reuses the checkpoint; a size past the context is skipped, not fatal', () => {
    const second = run(path.join(work, 'model'), path.join(work, 'b.json'), [
      '--prefill', '16,9000', // bench-mid's max_position_embeddings is 8192
      '--decode-context', '16',
      '--streams', '1',
      '--decode-steps', '2',
      '--warmup-steps', '0',
      '--stream-prompt', '4',
      '--temperature', '0.8', // (decode steps sample with temperature + top-p: the candidate search path)
    ]);
    expect(second.stdout).toContain('reusing it');
    expect(second.stdout).toContain('temperature + top-p 0.95');
    expect(second.report.options.temperature).toBe(0.8);
    expect(positive(second.report.decode[0].tokens_per_s)).toBe(true);
    expect(second.report.model.checkpoint_written).toBe(false);
    expect(positive(second.report.prefill[0].tokens_per_s)).toBe(true);
    expect(second.report.prefill[1]).toMatchObject({ tokens: 9000, status: 'skipped' });
    expect(second.report.prefill[1].reason).toMatch(/max_position_embeddings/);
  });
});
