// Sampling where the logits are: the CUDA twin of native/backend/cpu/sampling.cpp.
// The sampler (engine/sampler.cpp) turns each row's penalties, bias and mask into
// edits and asks for the row's candidates; these kernels do both on the GPU, so
// a decode step sends each row's maximum, argmax and candidate set (greedy rows:
// nothing but the argmax) to the host instead of 131072 logits.
//
// The results equal the CPU twin's bit for bit: the edits use single IEEE double
// operations (__dmul_rn & co. are never fused), and the candidate test
// double(v) >= max + offset is one exact comparison after one rounded add.
#include <cfloat>
#include <climits>
#include <cstdint>

#include "backend/cuda/cuda_ops.h"

namespace nemotron {
namespace cuda {
namespace {

constexpr int kEditThreads = 256;
constexpr int kCandidateThreads = 1024;
constexpr int kWarps = kCandidateThreads / 32;

__global__ void edit_logits_kernel(float* __restrict__ logits, int64_t vocab, const LogitEdit* __restrict__ edits,
                                   int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const LogitEdit e = edits[i];
  float* p = logits + static_cast<int64_t>(e.row) * vocab + e.token;
  float v = *p;
  if (e.flags & LogitEdit::kPenalty) {
    if (e.repetition != 1.0) {
      const double d = v;
      v = __double2float_rn(d > 0 ? __ddiv_rn(d, e.repetition) : __dmul_rn(d, e.repetition));
    }
    v = __double2float_rn(__dsub_rn(static_cast<double>(v), e.subtract));
  }
  if (e.flags & LogitEdit::kBias) v = __double2float_rn(__dadd_rn(static_cast<double>(v), e.bias));
  if (e.flags & LogitEdit::kMask) v = -INFINITY;
  *p = v;
}

// (value, index) pairs: the larger value wins, the lower index among equals, and
// NaN never (so the max is that of the non-NaN logits, as the CPU twin finds it).
__device__ __forceinline__ void better_of(float& v, int& i, float ov, int oi) {
  if (ov > v || (ov == v && oi < i)) {
    v = ov;
    i = oi;
  }
}

// One block per query. Pass 1: the row's max and first argmax. Pass 2 (collect):
// tile by tile, each warp's ballot of "logit >= floor" is both the ids' bitmask
// word for those 32 tokens and, through a block prefix sum, where each kept
// logit goes; kept logits are compacted in place to the front of the row (every
// write lands at or before the element's own index, in a tile already read).
__global__ void __launch_bounds__(kCandidateThreads)
    candidates_kernel(float* __restrict__ logits, int64_t vocab, const DevCandidateQuery* __restrict__ queries,
                      CandidateHead* __restrict__ heads, uint32_t* __restrict__ masks, int64_t mask_words) {
  __shared__ float warp_best[kWarps];
  __shared__ int warp_index[kWarps];
  __shared__ int warp_count[kWarps];
  const DevCandidateQuery q = queries[blockIdx.x];
  float* l = logits + q.row * vocab;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

  float best = -INFINITY;
  int best_i = INT_MAX;
  for (int64_t i = tid; i < vocab; i += kCandidateThreads) better_of(best, best_i, l[i], static_cast<int>(i));
  for (int off = 16; off > 0; off >>= 1)
    better_of(best, best_i, __shfl_down_sync(0xffffffffu, best, off), __shfl_down_sync(0xffffffffu, best_i, off));
  if (lane == 0) {
    warp_best[warp] = best;
    warp_index[warp] = best_i;
  }
  __syncthreads();
  if (warp == 0) {
    best = warp_best[lane];
    best_i = warp_index[lane];
    for (int off = 16; off > 0; off >>= 1)
      better_of(best, best_i, __shfl_down_sync(0xffffffffu, best, off), __shfl_down_sync(0xffffffffu, best_i, off));
    if (lane == 0) {
      warp_best[0] = best;
      warp_index[0] = best_i;
    }
  }
  __syncthreads();
  const float max = warp_best[0];
  // The CPU twin scans `l[i] > l[best]` from best = 0: nothing compares greater than a NaN, so a NaN at index 0
  // (or a row of NaNs) keeps 0 there; elsewhere NaNs are skipped, as here.
  const int argmax = (warp_index[0] == INT_MAX || isnan(l[0])) ? 0 : warp_index[0];
  __syncthreads();  // everyone has read warp_best/warp_index

  int64_t count = 0;
  if (q.collect && max != -INFINITY) {
    const double floor = __dadd_rn(static_cast<double>(max), q.floor_offset);
    uint32_t* mask = masks + static_cast<int64_t>(blockIdx.x) * mask_words;
    for (int64_t t0 = 0; t0 < vocab; t0 += kCandidateThreads) {
      const int64_t i = t0 + tid;
      const float v = i < vocab ? l[i] : 0.0f;
      const bool keep = i < vocab && static_cast<double>(v) >= floor;
      const uint32_t ballot = __ballot_sync(0xffffffffu, keep);
      const int64_t word = (t0 >> 5) + warp;
      if (lane == 0) {
        warp_count[warp] = __popc(ballot);
        if (word < mask_words) mask[word] = ballot;
      }
      __syncthreads();  // every read of this tile is done; counts are visible
      int before = 0, total = 0;
      for (int w = 0; w < kWarps; ++w) {
        before += w < warp ? warp_count[w] : 0;
        total += warp_count[w];
      }
      if (keep) l[count + before + __popc(ballot & ((1u << lane) - 1u))] = v;
      count += total;
      __syncthreads();  // warp_count is rewritten by the next tile
    }
  }
  if (tid == 0) heads[blockIdx.x] = CandidateHead{max, argmax, static_cast<int32_t>(count), 0};
}

}  // namespace

void edit_logits(float* logits, int64_t vocab, const LogitEdit* edits, int n, cudaStream_t stream) {
  if (n <= 0) return;
  edit_logits_kernel<<<(n + kEditThreads - 1) / kEditThreads, kEditThreads, 0, stream>>>(logits, vocab, edits, n);
  check(cudaGetLastError(), "edit_logits launch");
}

void candidates(float* logits, int64_t vocab, const DevCandidateQuery* queries, int nq, CandidateHead* heads,
                uint32_t* masks, cudaStream_t stream) {
  if (nq <= 0) return;
  candidates_kernel<<<nq, kCandidateThreads, 0, stream>>>(logits, vocab, queries, heads, masks,
                                                          candidate_mask_words(vocab));
  check(cudaGetLastError(), "candidates launch");
}

}  // namespace cuda
}  // namespace nemotron
