// The CPU backend: host memory, weights used in place from the mapped files,
// every op multi-threaded over one ThreadPool.
#pragma once
#include <deque>
#include <memory>

#include "backend/backend.h"
#include "common/thread_pool.h"

namespace nemotron {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads);
  std::string name() const override { return "cpu"; }
  ThreadPool& pool() { return pool_; }

  FloatBufferPtr alloc(size_t count) override;
  FloatBufferPtr alloc_host(size_t count) override { return alloc(count); }
  void zero(float* dst, size_t count) override;
  void copy(float* dst, const float* src, size_t count) override;
  void to_host(const float* src, size_t count, float* host_dst) override;
  void from_host(const float* host_src, size_t count, float* dst) override;
  MemoryInfo memory() const override { return host_memory(); }

  Matrix upload_matrix(const TensorView& t) override;
  Vector upload_vector(const std::vector<float>& host) override;

  void embed(const Matrix& table, const int32_t* host_ids, int64_t n, float* out) override;
  void rms_norm(const float* x, int64_t rows, int64_t dim, const Vector& w, float eps, float* out) override;
  void linear(const float* x, int64_t rows, int64_t ldx, const Matrix& w, const Vector& bias, float* out,
              int64_t ldo) override;
  void relu_squared(float* x, int64_t n) override;
  void add(float* h, const float* y, int64_t n) override;
  void gated_rms_norm(const GatedNormArgs& a, int64_t rows) override;
  void conv1d_silu(const ConvArgs& a, const std::vector<SeqSpan>& spans) override;
  void ssm_scan(const ScanArgs& a, const std::vector<SeqSpan>& spans) override;
  void attention(const AttentionArgs& a, const std::vector<SeqSpan>& spans) override;
  void edit_logits(float* logits, int64_t vocab, const std::vector<LogitEdit>& edits) override;
  void candidates(float* logits, int64_t vocab, const std::vector<CandidateQuery>& queries,
                  std::vector<RowCandidates>& out) override;

 private:
  ThreadPool pool_;
  std::deque<std::vector<float>> vectors_;  // storage behind upload_vector (stable addresses)
};

}  // namespace nemotron
