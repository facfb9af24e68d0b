'use strict';
/**
 * Writes a NemotronH checkpoint with RANDOM weights in the real Hugging Face
 * format (config.json + model.safetensors, bf16). For demos, benchmarks and
 * tests: speed does not depend on weight values, and the outputs of such a
 * model are meaningless token ids. Tensors are generated and written one at a
 * time, so even the full 9B shape (17.8 GB) needs little memory.
 *
 * Usage: node scripts/random-model.js OUT_DIR [--preset tiny|demo|bench-mid|nano-9b-v2] [--seed N]
 */
const fs = require('node:fs');
const path = require('node:path');

const PRESETS = {
  // The reference fixtures' shape (32-token scan chunks): smoke runs in seconds.
  tiny: {
    hidden_size: 64, hybrid_override_pattern: 'M-M*-MM-', vocab_size: 512,
    mamba_num_heads: 8, mamba_head_dim: 16, n_groups: 2, ssm_state_size: 16, conv_kernel: 4, chunk_size: 32,
    num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, intermediate_size: 128,
    max_position_embeddings: 4096,
  },
  // The real architecture, scaled down: a quick demo on any CPU.
  demo: {
    hidden_size: 1024, hybrid_override_pattern: 'M-M*-MM-', vocab_size: 32768,
    mamba_num_heads: 32, mamba_head_dim: 64, n_groups: 8, ssm_state_size: 128, conv_kernel: 4, chunk_size: 128,
    num_attention_heads: 16, num_key_value_heads: 4, head_dim: 64, intermediate_size: 4096,
    max_position_embeddings: 8192,
  },
  // The same mid-size model, named for the CPU benchmark.
  'bench-mid': null,
  // NVIDIA-Nemotron-Nano-9B-v2's shapes (spec §1.1) for GPU benchmarks.
  'nano-9b-v2': {
    hidden_size: 4480, hybrid_override_pattern: 'M-M-M-MM-M-M-M*-M-M-M*-M-M-M-M*-M-M-M-M*-M-MM-M-M-M-M-M-',
    vocab_size: 131072, mamba_num_heads: 128, mamba_head_dim: 80, n_groups: 8, ssm_state_size: 128, conv_kernel: 4,
    chunk_size: 128, num_attention_heads: 40, num_key_value_heads: 8, head_dim: 128, intermediate_size: 15680,
    max_position_embeddings: 131072,
  },
};
PRESETS['bench-mid'] = PRESETS.demo;

/** A full config.json object (HF field names) from the dimensions. */
function makeConfig(dims) {
  return {
    architectures: ['NemotronHForCausalLM'],
    model_type: 'nemotron_h',
    attention_bias: false,
    bos_token_id: 1,
    eos_token_id: 2,
    pad_token_id: 0,
    expand: 2,
    layer_norm_epsilon: 1e-5,
    mamba_hidden_act: 'silu',
    mamba_proj_bias: false,
    mlp_bias: false,
    mlp_hidden_act: 'relu2',
    num_hidden_layers: dims.hybrid_override_pattern.length,
    residual_in_fp32: false,
    tie_word_embeddings: false,
    time_step_limit: [0.0, Infinity],
    time_step_max: 0.1,
    time_step_min: 0.001,
    torch_dtype: 'bfloat16',
    use_bias: false,
    use_conv_bias: true,
    ...dims,
    nemotron_node_random_weights: true,
  };
}

/** [name, shape, init] for every tensor of the config, in layer order. */
function tensorList(c) {
  const H = c.hidden_size;
  const dIn = c.mamba_num_heads * c.mamba_head_dim;
  const gn = c.n_groups * c.ssm_state_size;
  const conv = dIn + 2 * gn;
  const proj = 2 * dIn + 2 * gn + c.mamba_num_heads;
  const q = c.num_attention_heads * c.head_dim;
  const kv = c.num_key_value_heads * c.head_dim;
  const lin = (fanIn) => ({ kind: 'uniform', a: Math.sqrt(3 / fanIn) }); // unit-variance outputs
  const t = [['backbone.embeddings.weight', [c.vocab_size, H], { kind: 'uniform', a: 1 }]];
  [...c.hybrid_override_pattern].forEach((ch, i) => {
    const p = `backbone.layers.${i}.`;
    t.push([p + 'norm.weight', [H], { kind: 'const', v: 1 }]);
    if (ch === 'M') {
      t.push([p + 'mixer.in_proj.weight', [proj, H], lin(H)]);
      t.push([p + 'mixer.conv1d.weight', [conv, 1, c.conv_kernel], lin(c.conv_kernel)]);
      t.push([p + 'mixer.conv1d.bias', [conv], { kind: 'uniform', a: 0.1 }]);
      t.push([p + 'mixer.dt_bias', [c.mamba_num_heads], { kind: 'dt_bias' }]);
      t.push([p + 'mixer.A_log', [c.mamba_num_heads], { kind: 'A_log' }]);
      t.push([p + 'mixer.D', [c.mamba_num_heads], { kind: 'const', v: 1 }]);
      t.push([p + 'mixer.norm.weight', [dIn], { kind: 'const', v: 1 }]);
      t.push([p + 'mixer.out_proj.weight', [H, dIn], lin(dIn)]);
    } else if (ch === '*') {
      t.push([p + 'mixer.q_proj.weight', [q, H], lin(H)]);
      t.push([p + 'mixer.k_proj.weight', [kv, H], lin(H)]);
      t.push([p + 'mixer.v_proj.weight', [kv, H], lin(H)]);
      t.push([p + 'mixer.o_proj.weight', [H, q], lin(q)]);
    } else if (ch === '-') {
      t.push([p + 'mixer.up_proj.weight', [c.intermediate_size, H], lin(H)]);
      t.push([p + 'mixer.down_proj.weight', [H, c.intermediate_size], lin(c.intermediate_size)]);
    } else {
      throw new Error(`unsupported layer character '${ch}'`);
    }
  });
  t.push(['backbone.norm_f.weight', [H], { kind: 'const', v: 1 }]);
  t.push(['lm_head.weight', [c.vocab_size, H], lin(H)]);
  return t;
}

/** Deterministic uniform [0,1) generator (mulberry32). */
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function toBf16(x) {
  f32[0] = x;
  const b = u32[0];
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff; // round to nearest even (no NaNs generated)
}

function sample(init, rand) {
  switch (init.kind) {
    case 'const': return init.v;
    case 'uniform': return (rand() * 2 - 1) * init.a;
    case 'A_log': return Math.log(1 + rand() * 15); // A in [-16, -1]
    case 'dt_bias': { // softplus^-1 of dt drawn log-uniformly in [0.001, 0.1]
      const dt = Math.exp(Math.log(0.001) + rand() * (Math.log(0.1) - Math.log(0.001)));
      return dt + Math.log(-Math.expm1(-dt));
    }
    default: throw new Error('unknown init ' + init.kind);
  }
}

function writeRandomModel(dir, dims, { seed = 1234 } = {}) {
  fs.mkdirSync(dir, { recursive: true });
  const config = makeConfig(dims);
  // Python's json writes Infinity as a bare token; so do we, as real configs have it.
  // (JSON.stringify turns Infinity into null; put the token back.)
  const text = JSON.stringify(config, null, 2).replace(/"time_step_limit": \[\s*0,\s*null\s*\]/, '"time_step_limit": [0.0, Infinity]');
  fs.writeFileSync(path.join(dir, 'config.json'), text);
  const tensors = tensorList(config);
  const header = { __metadata__: { format: 'pt', note: 'random weights generated by nemotron-node' } };
  let offset = 0;
  for (const [name, shape] of tensors) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 2;
    header[name] = { dtype: 'BF16', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8) json += ' ';
  const file = path.join(dir, 'model.safetensors');
  const tmp = file + '.partial';
  const fd = fs.openSync(tmp, 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    fs.writeSync(fd, len);
    fs.writeSync(fd, json);
    const rand = rng(seed);
    const CHUNK = 1 << 20;
    const buf = Buffer.alloc(CHUNK * 2);
    for (const [, shape, init] of tensors) {
      let left = shape.reduce((a, b) => a * b, 1);
      while (left > 0) {
        const n = Math.min(left, CHUNK);
        for (let i = 0; i < n; i++) buf.writeUInt16LE(toBf16(sample(init, rand)), 2 * i);
        fs.writeSync(fd, buf, 0, 2 * n);
        left -= n;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  return { dir, config, bytes: offset };
}

/** Generates the model once: reuses `dir` when it already holds a complete model of the same dims. */
function ensureRandomModel(dir, dims, opts) {
  const cfgPath = path.join(dir, 'config.json');
  if (fs.existsSync(cfgPath) && fs.existsSync(path.join(dir, 'model.safetensors'))) {
    const text = fs.readFileSync(cfgPath, 'utf8').replace(/Infinity/g, '1e999');
    const old = JSON.parse(text);
    if (Object.entries(dims).every(([k, v]) => old[k] === v)) return { dir, config: old, reused: true };
  }
  return { ...writeRandomModel(dir, dims, opts), reused: false };
}

module.exports = { PRESETS, makeConfig, tensorList, writeRandomModel, ensureRandomModel };

if (require.main === module) {
  const args = process.argv.slice(2);
  const out = args.find((a) => !a.startsWith('--'));
  const preset = args.includes('--preset') ? args[args.indexOf('--preset') + 1] : 'demo';
  const seed = args.includes('--seed') ? Number(args[args.indexOf('--seed') + 1]) : 1234;
  if (!out || !PRESETS[preset]) {
    console.error(`usage: node scripts/random-model.js OUT_DIR [--preset ${Object.keys(PRESETS).join('|')}] [--seed N]`);
    process.exit(2);
  }
  const t0 = Date.now();
  const r = writeRandomModel(out, PRESETS[preset], { seed });
  console.log(`wrote ${out}: RANDOM weights, preset ${preset}, ${(r.bytes / 1e6).toFixed(1)} MB in ${Date.now() - t0} ms`);
}
