/**
 * A bad model directory is a clear, typed JS error naming the problem, and the
 * process keeps working afterwards: truncated files, header length past EOF,
 * out-of-range/overlapping offsets, wrong dtype, missing tensor, wrong shape,
 * missing/invalid config.json, missing shard.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { ModelLoadError, loadModel } from '../lib';
import { describeWithFixtures, fixturesDir, maxAbsDiff } from './helpers/fixtures';
import { encodeSafetensors, readSafetensors, type StTensor } from './helpers/safetensors';

describeWithFixtures('bad model directories', () => {
  const src = () => path.join(fixturesDir()!, 'tiny-nemotron-h');
  const srcSharded = () => path.join(fixturesDir()!, 'tiny-nemotron-h-sharded');
  let tmp: string;
  let tensors: Map<string, StTensor>;

  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nemotron-bad-'));
    tensors = readSafetensors(path.join(src(), 'model.safetensors'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  let n = 0;
  /** A model dir with the fixture's config and the given safetensors bytes. */
  function modelDir(st: Buffer | null, config?: string | null): string {
    const dir = path.join(tmp, `m${n++}`);
    fs.mkdirSync(dir);
    if (config !== null) fs.writeFileSync(path.join(dir, 'config.json'), config ?? fs.readFileSync(path.join(src(), 'config.json')));
    if (st) fs.writeFileSync(path.join(dir, 'model.safetensors'), st);
    return dir;
  }
  const good = () => encodeSafetensors(tensors);
  const withTensors = (edit: (m: Map<string, StTensor>) => void) => {
    const m = new Map(tensors);
    edit(m);
    return encodeSafetensors(m);
  };

  async function expectLoadError(dir: string, pattern: RegExp, code?: string) {
    const err = await loadModel(dir, { device: 'cpu' }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ModelLoadError);
    expect((err as Error).message).toMatch(pattern);
    if (code) expect((err as ModelLoadError).code).toBe(code);
  }

  test('truncated safetensors file', async () => {
    const b = good();
    await expectLoadError(modelDir(b.subarray(0, b.length - 100)), /past the data block|end of file|truncated|exceeds/i, 'ERR_MODEL_FILE');
    await expectLoadError(modelDir(b.subarray(0, 5)), /model\.safetensors/, 'ERR_MODEL_FILE');
  });

  test('header length past EOF', async () => {
    const b = Buffer.from(good());
    b.writeBigUInt64LE(BigInt(b.length + 10), 0);
    await expectLoadError(modelDir(b), /header length/i, 'ERR_MODEL_FILE');
  });

  test('header that is not JSON', async () => {
    const b = Buffer.from(good());
    b.write('{{{{', 8); // the header's first bytes: no longer a JSON object
    await expectLoadError(modelDir(b), /invalid JSON/i, 'ERR_MODEL_FILE');
  });

  test('out-of-range and overlapping data offsets', async () => {
    const outOfRange = encodeSafetensors(tensors, (h) => {
      h['lm_head.weight'].data_offsets[1] += 1 << 20;
    });
    await expectLoadError(modelDir(outOfRange), /lm_head\.weight/, 'ERR_MODEL_FILE');
    const overlapping = encodeSafetensors(tensors, (h) => {
      const names = Object.keys(h).filter((k) => k !== '__metadata__');
      const a = h[names[1]];
      const b = h[names[2]];
      // give b the same range as a (same size, so only the overlap is wrong)
      if (b.data_offsets[1] - b.data_offsets[0] === a.data_offsets[1] - a.data_offsets[0]) b.data_offsets = [...a.data_offsets];
      else b.data_offsets = [a.data_offsets[0] + 2, a.data_offsets[0] + 2 + (b.data_offsets[1] - b.data_offsets[0])];
    });
    await expectLoadError(modelDir(overlapping), /overlap/i, 'ERR_MODEL_FILE');
    const reversed = encodeSafetensors(tensors, (h) => {
      const o = h['backbone.norm_f.weight'].data_offsets;
      h['backbone.norm_f.weight'].data_offsets = [o[1], o[0]];
    });
    await expectLoadError(modelDir(reversed), /backbone\.norm_f\.weight/, 'ERR_MODEL_FILE');
  });

  test('byte size that disagrees with shape x dtype', async () => {
    const b = encodeSafetensors(tensors, (h) => {
      h['backbone.norm_f.weight'].shape = [65];
    });
    await expectLoadError(modelDir(b), /backbone\.norm_f\.weight/, 'ERR_MODEL_FILE');
  });

  test('wrong dtype for a weight', async () => {
    const b = withTensors((m) => {
      const t = m.get('backbone.layers.0.mixer.D')!;
      m.set('backbone.layers.0.mixer.D', { dtype: 'I16', shape: t.shape, data: t.data });
    });
    await expectLoadError(modelDir(b), /backbone\.layers\.0\.mixer\.D: dtype I16 is not supported/, 'ERR_MODEL_WEIGHTS');
  });

  test('missing tensor', async () => {
    const b = withTensors((m) => m.delete('backbone.layers.3.mixer.k_proj.weight'));
    await expectLoadError(modelDir(b), /backbone\.layers\.3\.mixer\.k_proj\.weight: missing/, 'ERR_MODEL_WEIGHTS');
  });

  test('wrong shape, reported by tensor name with expected and found shapes', async () => {
    const b = withTensors((m) => {
      const t = m.get('backbone.layers.2.mixer.in_proj.weight')!; // [328, 64]
      m.set('backbone.layers.2.mixer.in_proj.weight', { dtype: t.dtype, shape: [328, 63], data: t.data.subarray(0, 328 * 63 * 2) });
    });
    await expectLoadError(
      modelDir(b),
      /backbone\.layers\.2\.mixer\.in_proj\.weight: expected \[328,64\], found \[328,63\]/,
      'ERR_MODEL_WEIGHTS',
    );
  });

  test('missing or invalid config.json', async () => {
    await expectLoadError(modelDir(good(), null), /config\.json/, 'ERR_MODEL_CONFIG');
    await expectLoadError(modelDir(good(), '{"model_type": "nemotron_h", '), /config\.json/, 'ERR_MODEL_CONFIG');
    // Edit the text (not JSON.parse/stringify, which would turn Infinity into null).
    const cfg = fs.readFileSync(path.join(src(), 'config.json'), 'utf8');
    await expectLoadError(modelDir(good(), cfg.replace('"nemotron_h"', '"llama"')), /unsupported model_type "llama"/, 'ERR_MODEL_CONFIG');
    await expectLoadError(
      modelDir(good(), cfg.replace('"M-M*-MM-"', '"M-M*-MM"')),
      /hybrid_override_pattern has 7 characters but num_hidden_layers is 8/,
      'ERR_MODEL_CONFIG',
    );
    await expectLoadError(path.join(tmp, 'no-such-dir'), /no-such-dir/);
  });

  test('missing shard named in the index', async () => {
    const dir = path.join(tmp, 'sharded');
    fs.mkdirSync(dir);
    for (const f of ['config.json', 'model.safetensors.index.json', 'model-00001-of-00002.safetensors'])
      fs.copyFileSync(path.join(srcSharded(), f), path.join(dir, f));
    await expectLoadError(dir, /model-00002-of-00002\.safetensors/, 'ERR_MODEL_FILE');
  });

  test('the process keeps working: the fixture still loads and computes afterwards', async () => {
    const model = await loadModel(src(), { device: 'cpu' });
    const golden = fs.readFileSync(path.join(src(), 'golden_prompt_logits.f32'));
    const g = new Float32Array(golden.buffer, golden.byteOffset, golden.length / 4);
    const prompt = JSON.parse(fs.readFileSync(path.join(src(), 'fixture.json'), 'utf8')).cases.prompt.prompt_ids;
    expect(maxAbsDiff(await model.evaluate(prompt), g)).toBeLessThan(1e-3);
    model.dispose();
  });
});
