#include "cases.h"

#include <cstdlib>

#include "backend/cuda/attention_bench.h"
#include "backend/cuda/bench_hooks.h"
#include "backend/cuda/linear_bench.h"
#include "backend/cuda/mamba_bench.h"

namespace nemotron {
namespace bench {

namespace {

struct LinearShape {
  const char* name;
  int64_t out, in;  // W is [out, in]
};

// Every weight matrix of the 9B (k and v share one shape: "kv").
const LinearShape kLinear[] = {
    {"in_proj", 22656, 4480}, {"out_proj", 4480, 10240}, {"mlp_up", 15680, 4480}, {"mlp_down", 4480, 15680},
    {"q", 5120, 4480},        {"kv", 1024, 4480},        {"o", 4480, 5120},       {"lm_head", 131072, 4480},
};

std::string n(int64_t v) { return std::to_string(v); }

// 1024 -> "1K" in shapes for people (names keep the plain number).
std::string k(int64_t v) { return v % 1024 == 0 ? std::to_string(v / 1024) + "K" : std::to_string(v); }

}  // namespace

std::vector<Case> make_cases(bool quick) {
  const cuda::Shape9B S = cuda::kShape9B;
  std::vector<Case> cs;
  auto add = [&](Case c) { cs.push_back(std::move(c)); };

  // ---- linear: M <= 64 is decode (one row per sequence: memory-bound, weights
  // streamed once); M >= 512 is prefill (tensor-core GEMM). The kernel takes its
  // GEMV path up to 16 rows, so the GEMV target applies to M = 1, 8 and 16 (at 16 each warp re-reads 16 rows
  // of x per weight chunk: the row that shows whether that stays within L1/L2 bandwidth).
  const std::vector<int64_t> ms = quick ? std::vector<int64_t>{1, 8, 16, 2048}
                                        : std::vector<int64_t>{1, 8, 16, 32, 64, 512, 2048, 8192};
  for (const LinearShape& l : kLinear)
    for (int64_t m : ms) {
      Case c;
      c.group = "linear (x fp32 [M,K] . W bf16 [N,K]^T -> fp32)";
      c.name = std::string("linear.") + l.name + ".M" + n(m);
      c.shape = "M=" + n(m) + " K=" + n(l.in) + " N=" + n(l.out);
      c.cost = cost::linear(m, l.out, l.in);
      const int64_t out = l.out, in = l.in;
      c.run = [m, out, in](int iters) { return cuda::cuda_linear_time_ms(m, out, in, iters); };
      c.target = m <= 16 ? Target::GemvOfCopy : m >= 512 ? Target::GemmOfCublas : Target::None;
      add(std::move(c));
    }
  // The other tensor-core GEMMs on the same shapes (NEMOTRON_GEMM=mma, =wmma), beside the default the rows above
  // time (wgmma on an H100/H200 with sm_90a code, else mma): the A/B that says whether each newer kernel pays off
  // on this device. (`.mma` equals the default row where wgmma does not run.)
  for (const char* gemm : {"mma", "wmma"})
    for (const LinearShape& l : kLinear) {
      if (std::string(l.name) != "in_proj" && std::string(l.name) != "mlp_down") continue;
      for (int64_t m : quick ? std::vector<int64_t>{2048} : std::vector<int64_t>{64, 2048, 8192}) {
        Case c;
        c.group = "linear (x fp32 [M,K] . W bf16 [N,K]^T -> fp32)";
        c.name = std::string("linear.") + l.name + ".M" + n(m) + "." + gemm;
        c.shape = "M=" + n(m) + " K=" + n(l.in) + " N=" + n(l.out) + ", NEMOTRON_GEMM=" + gemm;
        c.cost = cost::linear(m, l.out, l.in);
        const int64_t out = l.out, in = l.in;
        c.run = [m, out, in, gemm](int iters) {
          setenv("NEMOTRON_GEMM", gemm, 1);
          struct Restore {
            ~Restore() { unsetenv("NEMOTRON_GEMM"); }
          } restore;
          return cuda::cuda_linear_time_ms(m, out, in, iters);
        };
        add(std::move(c));
      }
    }

  // ---- attention (40 q heads, 8 kv heads, head_dim 128; fp32 activations; the
  // KV cache bf16 as the engine keeps it on CUDA, plus f32 rows for comparison)
  for (int64_t t : quick ? std::vector<int64_t>{1024, 8192} : std::vector<int64_t>{1024, 8192, 32768}) {
    Case c;
    c.group = "attention prefill (causal, one sequence, no past; bf16 KV cache)";
    c.name = "attn.prefill.T" + n(t);
    c.shape = "T=" + k(t) + " heads 40/8 d=128";
    c.cost = cost::attention_prefill(t, cost::BF16);
    c.run = [t](int iters) { return cuda::cuda_attention_time_ms(t, 0, DType::BF16, iters); };
    c.target = t == 8192 ? Target::AttnOfSdpa : Target::None;
    add(std::move(c));
  }
  {
    // The same 8K prefill on the fp32 kernel (NEMOTRON_ATTN_TC=0): what the tensor-core path buys.
    Case c;
    c.group = "attention prefill (causal, one sequence, no past; bf16 KV cache)";
    c.name = "attn.prefill.T8192.fp32kernel";
    c.shape = "T=8K heads 40/8 d=128, fp32 CUDA cores";
    c.cost = cost::attention_prefill(8192, cost::BF16);
    c.run = [](int iters) {
      setenv("NEMOTRON_ATTN_TC", "0", 1);
      struct Restore {
        ~Restore() { unsetenv("NEMOTRON_ATTN_TC"); }
      } restore;
      return cuda::cuda_attention_time_ms(8192, 0, DType::BF16, iters);
    };
    add(std::move(c));
  }
  struct DecodeCase {
    int64_t context, seqs;
    DType kv;
  };
  std::vector<DecodeCase> decode;
  for (int64_t l : quick ? std::vector<int64_t>{1024, 32768} : std::vector<int64_t>{1024, 32768, 131072})
    for (int64_t b : {int64_t(1), int64_t(64)}) decode.push_back({l, b, DType::BF16});
  decode.push_back({32768, 1, DType::F32});  // what halving the cache buys
  for (const DecodeCase& d : decode) {
    const bool f32 = d.kv == DType::F32;
    Case c;
    c.group = "attention decode (one new token per sequence, KV cache read)";
    c.name = "attn.decode.B" + n(d.seqs) + ".L" + n(d.context) + (f32 ? ".f32kv" : "");
    c.shape = "B=" + n(d.seqs) + " context " + k(d.context) + (f32 ? " f32 KV" : " bf16 KV");
    c.cost = cost::attention_decode(d.seqs, d.context, f32 ? cost::F32 : cost::BF16);
    c.run = [d](int iters) { return cuda::cuda_attention_decode_time_ms(d.seqs, d.context, d.kv, iters); };
    add(std::move(c));
  }

  // ---- Mamba2 (128 heads x 80, 8 groups, state 128; conv_dim 12288, kernel 4)
  for (int64_t t : quick ? std::vector<int64_t>{1024} : std::vector<int64_t>{1024, 8192}) {
    Case c;
    c.group = "mamba";
    c.name = "ssm.prefill.T" + n(t);
    c.shape = "T=" + k(t) + " (one sequence)";
    c.cost = cost::ssm_prefill(t);
    c.run = [t](int iters) { return cuda::cuda_ssm_scan_time_ms(t, iters); };
    add(std::move(c));
  }
  for (int64_t b : {int64_t(1), int64_t(64)}) {
    Case c;
    c.group = "mamba";
    c.name = "ssm.decode.B" + n(b);
    c.shape = "B=" + n(b) + " (state 5.2 MB each)";
    c.cost = cost::ssm_decode(b);
    c.run = [b](int iters) { return cuda::cuda_ssm_decode_time_ms(b, iters); };
    add(std::move(c));
  }
  for (int64_t t : quick ? std::vector<int64_t>{1024} : std::vector<int64_t>{1024, 8192}) {
    Case c;
    c.group = "mamba";
    c.name = "conv.prefill.T" + n(t);
    c.shape = "T=" + k(t) + " C=" + n(S.conv_dim());
    c.cost = cost::conv1d(1, t);
    c.run = [t](int iters) { return cuda::cuda_conv1d_time_ms(1, t, iters); };
    add(std::move(c));
  }
  for (int64_t b : quick ? std::vector<int64_t>{64} : std::vector<int64_t>{1, 64}) {
    Case c;
    c.group = "mamba";
    c.name = "conv.decode.B" + n(b);
    c.shape = "B=" + n(b) + " C=" + n(S.conv_dim());
    c.cost = cost::conv1d(b, 1);
    c.run = [b](int iters) { return cuda::cuda_conv1d_time_ms(b, 1, iters); };
    add(std::move(c));
  }

  // ---- row-wise
  const std::vector<int64_t> rows = quick ? std::vector<int64_t>{1, 2048} : std::vector<int64_t>{1, 64, 8192};
  for (int64_t m : rows) {
    Case c;
    c.group = "row-wise";
    c.name = "gated_norm.M" + n(m);
    c.shape = "M=" + n(m) + " dim " + n(S.d_inner()) + " group " + n(S.norm_group());
    c.cost = cost::gated_rms_norm(m);
    c.run = [m](int iters) { return cuda::cuda_gated_rms_norm_time_ms(m, iters); };
    add(std::move(c));
  }
  for (int64_t m : rows) {
    Case c;
    c.group = "row-wise";
    c.name = "rms_norm.M" + n(m);
    c.shape = "M=" + n(m) + " dim " + n(S.hidden);
    c.cost = cost::rms_norm(m);
    c.run = [m](int iters) { return cuda::cuda_rms_norm_time_ms(m, iters); };
    add(std::move(c));
  }
  for (int64_t m : rows) {
    Case c;
    c.group = "row-wise";
    c.name = "embed.M" + n(m);
    c.shape = "M=" + n(m) + " table " + k(S.vocab) + "x" + n(S.hidden) + " bf16";
    c.cost = cost::embed(m);
    c.extra_bytes = double(S.vocab) * double(S.hidden) * 2;
    c.run = [m](int iters) { return cuda::cuda_embed_time_ms(m, iters); };
    add(std::move(c));
  }

  // ---- sampling (one decode step's rows)
  const std::vector<int64_t> batch = quick ? std::vector<int64_t>{1, 64} : std::vector<int64_t>{1, 64, 128};
  for (bool collect : {false, true}) {
    for (int64_t m : batch) {
      Case c;
      c.group = "sampling";
      c.name = std::string(collect ? "candidates_all." : "argmax.") + "M" + n(m);
      c.shape = "M=" + n(m) + " vocab " + k(S.vocab) + (collect ? " every token kept" : " greedy");
      c.cost = cost::candidates(m, collect);
      c.run = [m, collect](int iters) { return cuda::cuda_candidates_time_ms(m, collect, iters); };
      add(std::move(c));
    }
  }
  return cs;
}

}  // namespace bench
}  // namespace nemotron
