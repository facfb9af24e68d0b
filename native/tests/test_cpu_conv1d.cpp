// Causal depthwise conv1d + SiLU vs the textbook full-sequence formula, and the
// state carried across calls (prefill in pieces, decode one token at a time).
#include "backend/cpu/cpu_ops.h"
#include "test_framework.h"
#include "test_util.h"

using namespace nemotron;
using namespace nemotron_test;

namespace {

// u[t,c] = silu(bias[c] + sum_k w[c,k] x[t-K+1+k, c]) with x[<0] = 0; w given as [C][K].
std::vector<double> conv_reference(const std::vector<float>& x, int64_t T, int64_t C, const std::vector<float>& w_ck,
                                   const std::vector<float>& bias, int64_t K) {
  std::vector<double> out(T * C);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < C; ++c) {
      double acc = bias[c];
      for (int64_t k = 0; k < K; ++k) {
        int64_t src = t - K + 1 + k;
        if (src >= 0) acc += double(w_ck[c * K + k]) * x[src * C + c];
      }
      out[t * C + c] = acc / (1 + std::exp(-acc));
    }
  return out;
}

}  // namespace

TEST(cpu_conv1d_matches_formula_and_carries_state) {
  ThreadPool pool(2);
  for (int64_t K : {2, 4, 5}) {
    const int64_t C = 70, T = 11;
    auto x = random_vec(T * C, 10), w_ck = random_vec(C * K, 11), bias = random_vec(C, 12);
    std::vector<float> w_kc(K * C);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t k = 0; k < K; ++k) w_kc[k * C + c] = w_ck[c * K + k];
    auto ref = conv_reference(x, T, C, w_ck, bias, K);

    // The input as a strided slice of a wider matrix, as in_proj's output is.
    const int64_t ldx = C + 9;
    std::vector<float> wide(T * ldx, 99.f);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < C; ++c) wide[t * ldx + c] = x[t * C + c];

    // Piece sizes: whole, split 3+8, then token by token (decode).
    for (std::vector<int64_t> pieces : {std::vector<int64_t>{T}, {3, 8}, std::vector<int64_t>(T, 1), {1, 2, 8}}) {
      std::vector<float> state((K - 1) * C, 0.f), out(T * C);
      MambaLayerState st{state.data(), nullptr};
      int64_t t0 = 0;
      for (int64_t n : pieces) {
        ConvArgs a;
        a.channels = C;
        a.kernel = K;
        a.x = wide.data() + t0 * ldx;
        a.ldx = ldx;
        a.weight = Vector{w_kc.data(), K * C};
        a.bias = Vector{bias.data(), C};
        a.out = out.data() + t0 * C;
        SeqSpan sp;
        sp.row0 = 0;
        sp.n = n;
        sp.past = t0;
        sp.mamba = &st;
        cpu_conv1d_silu(pool, a, {sp});
        t0 += n;
      }
      CHECK(max_rel_err(out.data(), ref.data(), ref.size()) < 1e-5);
      // The state holds the last K-1 inputs, oldest first.
      for (int64_t j = 0; j < K - 1; ++j)
        for (int64_t c = 0; c < C; ++c) CHECK(state[j * C + c] == x[(T - (K - 1) + j) * C + c]);
    }
  }
}

TEST(cpu_conv1d_two_sequences_in_one_batch_do_not_interfere) {
  ThreadPool pool(2);
  const int64_t C = 8, K = 4;
  auto x = random_vec(9 * C, 13), w = random_vec(K * C, 14);
  // batch: seq A rows 0..4 (5 tokens), seq B rows 5..8 (4 tokens)
  std::vector<float> sa((K - 1) * C), sb((K - 1) * C), out(9 * C);
  MambaLayerState A{sa.data(), nullptr}, B{sb.data(), nullptr};
  ConvArgs a;
  a.channels = C;
  a.kernel = K;
  a.x = x.data();
  a.ldx = C;
  a.weight = Vector{w.data(), K * C};
  a.out = out.data();
  SeqSpan s1{0, 5, 0, &A, nullptr}, s2{5, 4, 0, &B, nullptr};
  cpu_conv1d_silu(pool, a, {s1, s2});
  // seq B alone
  std::vector<float> sb2((K - 1) * C), out2(4 * C);
  MambaLayerState B2{sb2.data(), nullptr};
  a.x = x.data() + 5 * C;
  a.out = out2.data();
  cpu_conv1d_silu(pool, a, {SeqSpan{0, 4, 0, &B2, nullptr}});
  CHECK(max_abs_diff(out.data() + 5 * C, out2.data(), 4 * C) == 0);
  CHECK(max_abs_diff(sb.data(), sb2.data(), sb.size()) == 0);
}
