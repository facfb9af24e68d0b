#include "backend/cpu/cpu_ops.h"
#include "common/dtype.h"

namespace nemotron {

// Ids were range-checked by the engine before the forward pass.
void cpu_embed(ThreadPool& pool, const Matrix& table, const int32_t* ids, int64_t n, float* out) {
  const int64_t dim = table.cols;
  const size_t row_bytes = static_cast<size_t>(dim) * dtype_size(table.dtype);
  pool.parallel_for(n, 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const uint8_t* row = static_cast<const uint8_t*>(table.data) + static_cast<size_t>(ids[i]) * row_bytes;
      convert_to_f32(row, table.dtype, static_cast<size_t>(dim), out + i * dim);
    }
  });
}

}  // namespace nemotron
