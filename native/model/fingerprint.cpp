#include "model/fingerprint.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>

namespace nemotron {
namespace {

// FNV-1a, 64-bit: a few hundred KiB of input, so simplicity beats speed here.
class Fnv64 {
 public:
  void bytes(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) h_ = (h_ ^ b[i]) * 0x100000001b3ull;
  }
  void str(const std::string& s) {
    u64(s.size());  // length first, so ("ab","c") and ("a","bc") differ
    bytes(s.data(), s.size());
  }
  void u64(uint64_t v) { bytes(&v, sizeof v); }
  uint64_t value() const { return h_; }

 private:
  uint64_t h_ = 0xcbf29ce484222325ull;
};

}  // namespace

std::string model_fingerprint(const ModelConfig& c, const SafetensorsSet& files) {
  Fnv64 h;
  h.str("nemotron-node model fingerprint 1");
  h.str(c.pattern);
  for (int64_t v : {c.hidden_size, c.vocab_size, c.conv_dim(), c.conv_kernel, c.mamba_heads, c.mamba_head_dim,
                    c.ssm_state_size, c.kv_width()})
    h.u64(static_cast<uint64_t>(v));
  constexpr size_t kSample = 256;
  for (const auto& kv : files.tensors()) {  // a std::map: name order, whatever the sharding
    const TensorView& t = kv.second;
    h.str(t.name);
    h.str(t.dtype_str);
    h.u64(t.shape.size());
    for (int64_t d : t.shape) h.u64(static_cast<uint64_t>(d));
    h.u64(t.nbytes);
    const size_t n = std::min(kSample, t.nbytes);
    h.bytes(t.data, n);
    h.bytes(t.data + (t.nbytes - n) / 2, n);
    h.bytes(t.data + t.nbytes - n, n);
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h.value()));
  return hex;
}

}  // namespace nemotron
