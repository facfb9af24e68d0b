// Emulated rowwise.cu (cuda::embed, rms_norm, relu_squared, add) against the
// CPU twins cpu_embed, cpu_rms_norm, cpu_relu_squared, cpu_add, on aligned
// inputs (float4 paths) and on views offset by one or two elements or of odd
// sizes (scalar paths). As in native/tests/cuda/test_cuda_rowwise.cpp: embed,
// relu_squared and add are the same fp32 operations on both sides, so they
// must match bit for bit; rms_norm sums squares in fp32 tree order on the GPU
// and in double on the CPU: |gpu - cpu| <= 1e-5 |cpu| + 1e-6.
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/cuda_ops.h"
#include "common/dtype.h"
#include "emu_test_util.h"

using namespace nemotron;
using namespace emu_test;

namespace {

std::string ctx(const char* op, int64_t a, int64_t b, size_t off) {
  return std::string(op) + " (" + std::to_string(a) + ", " + std::to_string(b) + ", offset " + std::to_string(off) + ")";
}

template <class T>
void put(T* dst, const std::vector<T>& h) {
  REQUIRE(cudaMemcpy(dst, h.data(), sizeof(T) * h.size(), cudaMemcpyHostToDevice) == cudaSuccess);
}
template <class T>
std::vector<T> get(const T* src, size_t n) {
  std::vector<T> h(n);
  REQUIRE(cudaMemcpy(h.data(), src, sizeof(T) * n, cudaMemcpyDeviceToHost) == cudaSuccess);
  return h;
}

void check_embed(int64_t vocab, int64_t n, uint32_t seed, const std::vector<int64_t>& dims) {
  std::mt19937 rng(seed);
  std::vector<int32_t> ids(n);
  for (auto& id : ids) id = static_cast<int32_t>(rng() % vocab);
  ids[0] = 0;
  ids[n - 1] = static_cast<int32_t>(vocab - 1);
  DevBuf<int32_t> dids(ids);
  for (DType dt : {DType::F32, DType::BF16, DType::F16})
    for (int64_t dim : dims)
      for (size_t off : {size_t(0), size_t(1)}) {  // element offset of the table and of out
        const size_t esz = dtype_size(dt);
        const std::vector<float> vals = random_vec(vocab * dim, 11 + uint32_t(dim), -3, 3);
        std::vector<uint8_t> table(vocab * dim * esz);
        for (int64_t i = 0; i < vocab * dim; ++i) {
          if (dt == DType::F32) {
            std::memcpy(&table[i * 4], &vals[i], 4);
          } else {
            const uint16_t h = dt == DType::BF16 ? f32_to_bf16(vals[i]) : f32_to_f16(vals[i]);
            std::memcpy(&table[i * 2], &h, 2);
          }
        }
        DevBuf<uint8_t> dtab(table.size() + off * esz);
        DevBuf<float> dout(n * dim + off);
        put(dtab.p + off * esz, table);
        cuda::embed(Matrix{dtab.p + off * esz, dt, vocab, dim}, dids.p, n, dout.p + off, nullptr);
        require_no_launch_error();
        std::vector<float> want(n * dim);
        cpu_embed(pool(), Matrix{table.data(), dt, vocab, dim}, ids.data(), n, want.data());
        const std::vector<float> got = get(dout.p + off, want.size());
        if (std::memcmp(got.data(), want.data(), sizeof(float) * got.size()) != 0)
          record_failure(__FILE__, __LINE__, ctx(dtype_name(dt), dim, n, off) + ": embed differs");
      }
}

void check_rms_norm(int64_t rows, int64_t dim, size_t off, bool in_place) {
  std::vector<float> x = random_vec(rows * dim, 21 + uint32_t(rows + dim), -3, 3);
  const std::vector<float> w = random_vec(dim, 22 + uint32_t(dim), 0.5f, 1.5f);
  if (rows > 1) std::fill(x.begin() + dim, x.begin() + 2 * dim, 0.0f);  // an all-zero row: eps only
  DevBuf<float> dx(x.size() + off), dw(dim + off), dout(x.size() + off);
  put(dx.p + off, x);
  put(dw.p + off, w);
  float* out = (in_place ? dx.p : dout.p) + off;
  cuda::rms_norm(dx.p + off, rows, dim, dw.p + off, 1e-5f, out, nullptr);
  require_no_launch_error();
  std::vector<float> want(x.size());
  cpu_rms_norm(pool(), x.data(), rows, dim, w.data(), 1e-5f, want.data());
  const std::vector<float> got = get(out, x.size());
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = std::fabs(double(got[i]) - want[i]) - 1e-5 * std::fabs(double(want[i]));
    worst = std::isfinite(got[i]) ? std::max(worst, e) : 1e30;
  }
  EXPECT_LE(worst, 1e-6, ctx(in_place ? "rms_norm in place" : "rms_norm", rows, dim, off) + " excess error");
}

void check_elementwise(int64_t n, size_t off) {
  const std::vector<float> x = random_vec(n, 31 + uint32_t(n % 1000), -2, 2);
  const std::vector<float> y = random_vec(n, 32 + uint32_t(n % 1000), -2, 2);
  DevBuf<float> dx(n + off), dy(n + off);
  put(dx.p + off, x);
  put(dy.p + off, y);
  cuda::relu_squared(dx.p + off, n, nullptr);  // in place, then h += y
  require_no_launch_error();
  std::vector<float> want = x;
  cpu_relu_squared(pool(), want.data(), n);
  std::vector<float> got = get(dx.p + off, n);
  if (std::memcmp(got.data(), want.data(), sizeof(float) * n) != 0)
    record_failure(__FILE__, __LINE__, ctx("relu_squared", n, 0, off) + " differs");
  cuda::add(dx.p + off, dy.p + off, n, nullptr);
  require_no_launch_error();
  cpu_add(pool(), want.data(), y.data(), n);
  got = get(dx.p + off, n);
  if (std::memcmp(got.data(), want.data(), sizeof(float) * n) != 0)
    record_failure(__FILE__, __LINE__, ctx("add", n, 0, off) + " differs");
  if (off == 0 && n > 1) {  // h aligned, y one element off: the scalar path
    cuda::add(dx.p, dy.p + 1, n - 1, nullptr);
    require_no_launch_error();
    cpu_add(pool(), want.data(), y.data() + 1, n - 1);
    got = get(dx.p, n - 1);
    if (std::memcmp(got.data(), want.data(), sizeof(float) * (n - 1)) != 0)
      record_failure(__FILE__, __LINE__, ctx("add mixed alignment", n, 1, off) + " differs");
  }
}

}  // namespace

TEST(emu_embed_matches_cpu) {
  check_embed(50, 37, 7, {4480, 13, 6, 4});  // 9B width; odd widths; one float4
  check_embed(20, 70000, 8, {8});            // more ids than grid.x (65535): the grid-stride loop
}

TEST(emu_rms_norm_matches_cpu) {
  for (int64_t rows : {1, 7, 33})
    for (int64_t dim : {4480, 1024, 13, 4})
      for (size_t off : {size_t(0), size_t(1)})
        for (bool in_place : {false, true}) check_rms_norm(rows, dim, off, in_place);
  check_rms_norm(70000, 4, 0, false);  // rows past grid.x (65535): the grid-stride loop
  // ... with several warps per block, where a row's reduction scratch is reused by the next row
  if (full()) check_rms_norm(66000, 260, 0, true);
}

TEST(emu_relu_squared_and_add_match_cpu) {
  for (int64_t n : {int64_t(1), int64_t(3), int64_t(4), int64_t(4480 * 3 + 1), int64_t(1) << 18})
    for (size_t off : {size_t(0), size_t(1), size_t(2)}) check_elementwise(n, off);
  check_elementwise((int64_t(1) << 23) + 5, 0);  // past 8192 blocks: the grid-stride loops
}
