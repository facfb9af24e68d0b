import { Sampler, argmax } from '../lib/chat/sampling';

function softmax(l: number[], t = 1): number[] {
  const m = Math.max(...l);
  const e = l.map((x) => Math.exp((x - m) / t));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

function histogram(sampler: Sampler, logits: Float32Array, n: number, history: number[] = []): number[] {
  const h = new Array(logits.length).fill(0);
  for (let i = 0; i < n; i++) h[sampler.sample(logits, history)]++;
  return h.map((c) => c / n);
}

describe('Sampler', () => {
  const logits = Float32Array.from([2.0, 1.0, 0.5, -1.0, 0.0]);

  test('temperature 0 is argmax; masked and biased tokens respected', () => {
    const s = new Sampler({ temperature: 0 });
    expect(s.sample(logits)).toBe(0);
    expect(s.sample(logits, [], [0])).toBe(1);
    expect(new Sampler({ temperature: 0, logitBias: { '3': 10 } }).sample(logits)).toBe(3);
    expect(new Sampler({ temperature: 0, logitBias: { '0': -Infinity } }).sample(logits)).toBe(1);
  });

  test('draws follow softmax(logits / T)', () => {
    for (const t of [1, 0.5]) {
      const freq = histogram(new Sampler({ temperature: t, seed: 7 }), logits, 40000);
      const p = softmax([...logits], t);
      p.forEach((pi, i) => expect(Math.abs(freq[i] - pi)).toBeLessThan(0.01));
    }
  });

  test('top-k, top-p and min-p cut the tail and renormalise', () => {
    const k2 = histogram(new Sampler({ topK: 2, seed: 1 }), logits, 20000);
    const p2 = softmax([2, 1]);
    expect(Math.abs(k2[0] - p2[0])).toBeLessThan(0.012);
    expect(k2[2] + k2[3] + k2[4]).toBe(0);
    // probs ≈ [.53,.19,.12,.03,.07]: top-p 0.7 keeps the first two (0.53 < 0.7 <= 0.72)
    const tp = histogram(new Sampler({ topP: 0.7, seed: 2 }), logits, 20000);
    expect(tp[2] + tp[3] + tp[4]).toBe(0);
    expect(tp[1]).toBeGreaterThan(0.2);
    // min-p 0.3: keeps tokens with p >= 0.3 * p_max (ids 0 and 1: 0.37 ratio for id 1, 0.22 for id 2)
    const mp = histogram(new Sampler({ minP: 0.3, seed: 3 }), logits, 20000);
    expect(mp[2] + mp[3] + mp[4]).toBe(0);
    expect(mp[1]).toBeGreaterThan(0.2);
  });

  test('same seed, same draws; different seed, different draws', () => {
    const wide = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 2);
    const draw = (seed: number) => {
      const s = new Sampler({ temperature: 1, seed });
      return Array.from({ length: 50 }, () => s.sample(wide));
    };
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
  });

  test('repetition, presence and frequency penalties', () => {
    // token 0 (logit 2) seen: repetition 4 -> 0.5 < 1.0, so token 1 wins greedily
    expect(new Sampler({ temperature: 0, repetitionPenalty: 4 }).sample(logits, [0])).toBe(1);
    // presence 1.5: 2 - 1.5 = 0.5 < 1.0
    expect(new Sampler({ temperature: 0, presencePenalty: 1.5 }).sample(logits, [0])).toBe(1);
    // frequency 0.4 x 2 occurrences = 0.8: 1.2 > 1.0 still wins; x3 = 1.2 -> 0.8 loses
    expect(new Sampler({ temperature: 0, frequencyPenalty: 0.4 }).sample(logits, [0, 0])).toBe(0);
    expect(new Sampler({ temperature: 0, frequencyPenalty: 0.4 }).sample(logits, [0, 0, 0])).toBe(1);
    // negative logits are multiplied by the repetition penalty (pushed further down)
    const neg = Float32Array.from([-1, -1.5]);
    expect(new Sampler({ temperature: 0, repetitionPenalty: 2 }).sample(neg, [0])).toBe(1);
    expect(argmax(logits)).toBe(0);
  });

  test('masking every token is an error, not a silent pick', () => {
    expect(() => new Sampler({ temperature: 1 }).sample(Float32Array.from([1, 2]), [], [0, 1])).toThrow(/masked/);
  });

  test('top-k / top-p / min-p keep exactly the set a full sort gives (ties, flat and peaked logits)', () => {
    // Reference: sort by (logit desc, id asc), cut by k, then the smallest prefix
    // reaching topP of the mass, then min-p relative to the best.
    function reference(l: Float32Array, t: number, topK: number, topP: number, minP: number): number[] {
      const max = Math.max(...l);
      let ids = [...l.keys()].filter((i) => l[i] >= max + t * Math.log(1e-9));
      ids.sort((a, b) => l[b] - l[a] || a - b);
      if (topK > 0) ids = ids.slice(0, topK);
      const w = ids.map((i) => Math.exp((l[i] - max) / t));
      const z = w.reduce((a, b) => a + b, 0);
      let n = ids.length;
      if (topP < 1) {
        let cum = 0;
        for (let i = 0; i < ids.length; i++) {
          cum += w[i];
          if (cum >= topP * z) {
            n = i + 1;
            break;
          }
        }
      }
      return ids.slice(0, n).filter((_, i) => w[i] >= minP).sort((a, b) => a - b);
    }
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    let checked = 0;
    for (let trial = 0; trial < 400; trial++) {
      const V = 1 + Math.floor(rand() * 300);
      const spread = [0.01, 1, 8][trial % 3]; // flat, moderate, peaked
      // rounding to a coarse grid makes ties common
      const l = Float32Array.from({ length: V }, () => Math.round(rand() * spread * 8) / 8);
      const t = [0.3, 0.7, 1, 1.5][trial % 4];
      const topK = [0, 1, 5, 50][(trial >> 2) % 4];
      const topP = [1, 0.95, 0.5, 0.1][(trial >> 4) % 4];
      const minP = [0, 0.05][(trial >> 6) % 2];
      const s = new Sampler({ temperature: t, topK, topP, minP, seed: 1 });
      const got = [...s.candidates(l).ids].sort((a, b) => a - b);
      expect({ trial, got }).toEqual({ trial, got: reference(l, t, topK, topP, minP) });
      checked++;
    }
    expect(checked).toBe(400);
  });
});
