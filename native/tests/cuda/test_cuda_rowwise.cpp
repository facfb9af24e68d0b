// cuda::embed, rms_norm, relu_squared, add against their CPU twins on host
// copies, on aligned (float4 path) and offset / odd-sized (scalar path) inputs.
// Skips without a CUDA device.
//
// embed, relu_squared and add must match bit for bit (a widening copy, max+mul,
// one add: the same fp32 operations on both sides). rms_norm sums squares in
// fp32 on the GPU (tree order) vs double on the CPU: the scale differs by a few
// ulp, hence |gpu - cpu| <= 1e-5 |cpu| + 1e-6.
#include <cuda_runtime.h>

#include <cmath>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "../test_framework.h"
#include "cuda_test_util.h"
#include "../test_util.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/cuda_ops.h"
#include "common/dtype.h"

using namespace nemotron;
using namespace nemotron_test;

namespace {

ThreadPool& pool() {
  static ThreadPool p(ThreadPool::default_threads());
  return p;
}

std::string ctx(const char* op, int64_t a, int64_t b, size_t off) {
  std::ostringstream m;
  m << op << " (" << a << ", " << b << ", offset " << off << ")";
  return m.str();
}

}  // namespace

TEST(cuda_embed_matches_cpu) {
  if (!cuda_device_or_skip()) return;
  const int64_t vocab = 50, n = 37;
  std::mt19937 rng(7);
  std::vector<int32_t> ids(n);
  for (auto& id : ids) id = static_cast<int32_t>(rng() % vocab);
  ids[0] = 0, ids[1] = vocab - 1;
  DevMem dids(sizeof(int32_t) * n);
  dids.put(0, ids.data(), sizeof(int32_t) * n);
  for (DType dt : {DType::F32, DType::BF16, DType::F16})
    for (int64_t dim : {4480, 13, 6, 4})
      for (size_t off : {size_t(0), size_t(1)}) {  // element offset of the table and of out
        const size_t esz = dtype_size(dt);
        auto vals = random_vec(vocab * dim, 11 + dim, -3, 3);
        std::vector<uint8_t> table(vocab * dim * esz);
        for (int64_t i = 0; i < vocab * dim; ++i) {
          if (dt == DType::F32) std::memcpy(&table[i * 4], &vals[i], 4);
          else {
            const uint16_t h = dt == DType::BF16 ? f32_to_bf16(vals[i]) : f32_to_f16(vals[i]);
            std::memcpy(&table[i * 2], &h, 2);
          }
        }
        DevMem dtab(table.size() + 16), dout(sizeof(float) * (n * dim + 4));
        dtab.put(off * esz, table.data(), table.size());
        CU(cudaMemset(dout.p, 0xff, dout.bytes));
        Matrix gm{dtab.at<uint8_t>(off * esz), dt, vocab, dim};
        cuda::embed(gm, dids.at<int32_t>(), n, dout.at<float>(off), nullptr);
        CU(cudaDeviceSynchronize());
        std::vector<float> got(n * dim), want(n * dim);
        dout.get(off * 4, got.data(), sizeof(float) * got.size());
        Matrix cm{table.data(), dt, vocab, dim};
        cpu_embed(pool(), cm, ids.data(), n, want.data());
        if (std::memcmp(got.data(), want.data(), sizeof(float) * got.size()) != 0)
          record_failure(__FILE__, __LINE__, ctx(dtype_name(dt), dim, n, off) + ": embed differs");
      }
}

TEST(cuda_rms_norm_matches_cpu) {
  if (!cuda_device_or_skip()) return;
  for (int64_t rows : {1, 7, 33})
    for (int64_t dim : {4480, 1024, 13, 4})
      for (size_t off : {size_t(0), size_t(1)})
        for (bool in_place : {false, true}) {
          auto x = random_vec(rows * dim, 21 + rows + dim, -3, 3);
          auto w = random_vec(dim, 22 + dim, 0.5f, 1.5f);
          if (rows > 1) std::fill(x.begin() + dim, x.begin() + 2 * dim, 0.0f);  // an all-zero row: eps only
          DevMem dx(sizeof(float) * (x.size() + 4)), dw(sizeof(float) * (dim + 4)),
              dout(sizeof(float) * (x.size() + 4));
          dx.put(off * 4, x.data(), sizeof(float) * x.size());
          dw.put(off * 4, w.data(), sizeof(float) * w.size());
          CU(cudaMemset(dout.p, 0xff, dout.bytes));
          float* out = in_place ? dx.at<float>(off) : dout.at<float>(off);
          cuda::rms_norm(dx.at<float>(off), rows, dim, dw.at<float>(off), 1e-5f, out, nullptr);
          CU(cudaDeviceSynchronize());
          std::vector<float> got(x.size()), want(x.size());
          (in_place ? dx : dout).get(off * 4, got.data(), sizeof(float) * got.size());
          cpu_rms_norm(pool(), x.data(), rows, dim, w.data(), 1e-5f, want.data());
          double worst = 0;
          for (size_t i = 0; i < got.size(); ++i) {
            const double e = std::fabs(double(got[i]) - want[i]) - 1e-5 * std::fabs(double(want[i]));
            worst = std::isfinite(got[i]) ? std::max(worst, e) : 1e30;
          }
          if (!(worst <= 1e-6))
            record_failure(__FILE__, __LINE__,
                           ctx(in_place ? "rms_norm in place" : "rms_norm", rows, dim, off) + ": excess error " +
                               std::to_string(worst));
        }
}

TEST(cuda_relu_squared_and_add_match_cpu) {
  if (!cuda_device_or_skip()) return;
  for (int64_t n : {int64_t(1), int64_t(3), int64_t(4), int64_t(4480 * 3 + 1), int64_t(1) << 20, (int64_t(1) << 22) + 5})
    for (size_t off : {size_t(0), size_t(1), size_t(2)}) {
      auto x = random_vec(n, 31 + n % 1000, -2, 2);
      auto y = random_vec(n, 32 + n % 1000, -2, 2);
      DevMem dx(sizeof(float) * (n + 4)), dy(sizeof(float) * (n + 4));
      dx.put(off * 4, x.data(), sizeof(float) * n);
      dy.put(off * 4, y.data(), sizeof(float) * n);
      // relu_squared in place, then h += y
      cuda::relu_squared(dx.at<float>(off), n, nullptr);
      CU(cudaDeviceSynchronize());
      std::vector<float> got(n), want = x;
      dx.get(off * 4, got.data(), sizeof(float) * n);
      cpu_relu_squared(pool(), want.data(), n);
      if (std::memcmp(got.data(), want.data(), sizeof(float) * n) != 0)
        record_failure(__FILE__, __LINE__, ctx("relu_squared", n, 0, off) + " differs");

      cuda::add(dx.at<float>(off), dy.at<float>(off), n, nullptr);
      CU(cudaDeviceSynchronize());
      dx.get(off * 4, got.data(), sizeof(float) * n);
      cpu_add(pool(), want.data(), y.data(), n);
      if (std::memcmp(got.data(), want.data(), sizeof(float) * n) != 0)
        record_failure(__FILE__, __LINE__, ctx("add", n, 0, off) + " differs");
      // mixed alignment: h aligned, y offset by one element -> scalar path
      if (off == 0 && n > 1) {
        cuda::add(dx.at<float>(0), dy.at<float>(1), n - 1, nullptr);
        CU(cudaDeviceSynchronize());
        dx.get(0, got.data(), sizeof(float) * (n - 1));
        cpu_add(pool(), want.data(), y.data() + 1, n - 1);
        if (std::memcmp(got.data(), want.data(), sizeof(float) * (n - 1)) != 0)
          record_failure(__FILE__, __LINE__, ctx("add mixed alignment", n, 1, off) + " differs");
      }
    }
}
