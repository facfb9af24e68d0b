#include "backend/cpu/cpu_backend.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/linear.h"
#include "common/error.h"
#include "model/safetensors.h"

namespace nemotron {
namespace {

// 64-byte aligned host floats, zero-filled.
class HostBuffer final : public FloatBuffer {
 public:
  explicit HostBuffer(size_t count) {
    if (count == 0) return;
    const size_t bytes = ((count * sizeof(float) + 63) / 64) * 64;
    void* p = std::aligned_alloc(64, bytes);
    if (!p)
      fail(ErrorCode::OutOfMemory,
           "out of host memory: could not allocate " + bytes_text(bytes));
    std::memset(p, 0, bytes);
    data_ = static_cast<float*>(p);
    size_ = count;
  }
  ~HostBuffer() override { std::free(data_); }
};

}  // namespace

CpuBackend::CpuBackend(int threads) : pool_(threads > 0 ? threads : ThreadPool::default_threads()) {}

FloatBufferPtr CpuBackend::alloc(size_t count) { return std::make_unique<HostBuffer>(count); }
void CpuBackend::zero(float* dst, size_t count) { std::memset(dst, 0, count * sizeof(float)); }
void CpuBackend::copy(float* dst, const float* src, size_t count) { std::memcpy(dst, src, count * sizeof(float)); }
void CpuBackend::to_host(const float* src, size_t count, float* host_dst) {
  std::memcpy(host_dst, src, count * sizeof(float));
}
void CpuBackend::from_host(const float* host_src, size_t count, float* dst) {
  std::memcpy(dst, host_src, count * sizeof(float));
}

Matrix CpuBackend::upload_matrix(const TensorView& t) {
  Matrix m;
  m.data = t.data;
  m.dtype = t.dtype;
  m.rows = t.shape.at(0);
  m.cols = t.numel() / m.rows;
  return m;
}

Vector CpuBackend::upload_vector(const std::vector<float>& host) {
  vectors_.push_back(host);
  return Vector{vectors_.back().data(), static_cast<int64_t>(host.size())};
}

void CpuBackend::embed(const Matrix& table, const int32_t* ids, int64_t n, float* out) {
  cpu_embed(pool_, table, ids, n, out);
}
void CpuBackend::rms_norm(const float* x, int64_t rows, int64_t dim, const Vector& w, float eps, float* out) {
  cpu_rms_norm(pool_, x, rows, dim, w.data, eps, out);
}
void CpuBackend::linear(const float* x, int64_t rows, int64_t ldx, const Matrix& w, const Vector& bias, float* out,
                        int64_t ldo) {
  cpu_linear(pool_, x, rows, ldx, w, bias.data, out, ldo);
}
void CpuBackend::relu_squared(float* x, int64_t n) { cpu_relu_squared(pool_, x, n); }
void CpuBackend::add(float* h, const float* y, int64_t n) { cpu_add(pool_, h, y, n); }
void CpuBackend::gated_rms_norm(const GatedNormArgs& a, int64_t rows) { cpu_gated_rms_norm(pool_, a, rows); }
void CpuBackend::conv1d_silu(const ConvArgs& a, const std::vector<SeqSpan>& spans) {
  cpu_conv1d_silu(pool_, a, spans);
}
void CpuBackend::ssm_scan(const ScanArgs& a, const std::vector<SeqSpan>& spans) { cpu_ssm_scan(pool_, a, spans); }
void CpuBackend::attention(const AttentionArgs& a, const std::vector<SeqSpan>& spans) {
  cpu_attention(pool_, a, spans);
}
void CpuBackend::edit_logits(float* logits, int64_t vocab, const std::vector<LogitEdit>& edits) {
  cpu_edit_logits(logits, vocab, edits);
}
void CpuBackend::candidates(float* logits, int64_t vocab, const std::vector<CandidateQuery>& queries,
                            std::vector<RowCandidates>& out) {
  cpu_candidates(pool_, logits, vocab, queries, out);
}

}  // namespace nemotron
