#include "backend/cpu/cpu_ops.h"

namespace nemotron {

// Causal depthwise conv1d + SiLU over the Mamba xBC channels (spec §2.3 step 2 and
// §3.2). Output row t of a span sees inputs t-K+1..t; inputs before the span come
// from the sequence's conv state (the last K-1 pre-conv rows, zeros for a fresh
// sequence). Weight is [K, C] so the inner loop runs over contiguous channels;
// weight row K-1 multiplies the current token. Work is split by channel ranges,
// so each thread also owns its channels' state update.
void cpu_conv1d_silu(ThreadPool& pool, const ConvArgs& a, const std::vector<SeqSpan>& spans) {
  const int64_t C = a.channels, K = a.kernel, S = K - 1;
  const float* w = a.weight.data;
  const float* bias = a.bias.data;
  pool.parallel_for(C, 64, [&](int64_t c0, int64_t c1) {
    for (const SeqSpan& sp : spans) {
      float* state = sp.mamba->conv;  // [S, C]
      const float* x = a.x + sp.row0 * a.ldx;
      float* out = a.out + sp.row0 * C;
      // input row i of the window (i < 0 reaches into the state)
      auto in = [&](int64_t i) -> const float* { return i >= 0 ? x + i * a.ldx : state + (S + i) * C; };
      for (int64_t t = 0; t < sp.n; ++t) {
        float* o = out + t * C;
        for (int64_t c = c0; c < c1; ++c) o[c] = bias ? bias[c] : 0.0f;
        for (int64_t k = 0; k < K; ++k) {
          const float* src = in(t - S + k);
          const float* wk = w + k * C;
          for (int64_t c = c0; c < c1; ++c) o[c] += wk[c] * src[c];
        }
        for (int64_t c = c0; c < c1; ++c) o[c] = silu(o[c]);
      }
      // New state: the last S rows of [old state ; x]. Rows are taken in order,
      // oldest first, and row j's source lies at or after j, so updating in place
      // never reads an overwritten row.
      for (int64_t j = 0; j < S; ++j) {
        const float* src = in(sp.n - S + j);
        float* dst = state + j * C;
        if (src != dst)
          for (int64_t c = c0; c < c1; ++c) dst[c] = src[c];
      }
    }
  });
}

}  // namespace nemotron
