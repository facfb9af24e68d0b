// Peak memory of the run. GPU: cudaMemGetInfo's "used" sampled at the points
// where the most is allocated (each phase's sequences still alive, its scratch
// grown), minus what was in use before the model loaded. CPU: the kernel keeps
// the exact high-water mark (VmHWM, restarted once the yardstick's buffers are
// freed), which includes the mapped weight pages.
#pragma once
#include <cstdint>
#include <string>

#include "bench/e2e/yardsticks.h"

namespace nemotron {
namespace bench {

class MemoryTracker {
 public:
  explicit MemoryTracker(const std::string& device) : gpu_(device == "cuda") {
    uint64_t total = 0;
    if (gpu_) gpu_ok_ = gpu_memory_used(&baseline_, &total);
    else hwm_reset_ = reset_peak_rss();
  }

  void sample(const std::string& label) {
    uint64_t used = 0, total = 0;
    if (gpu_) {
      if (!gpu_memory_used(&used, &total)) return;
    } else {
      used = rss_bytes();
    }
    if (used > peak_) {
      peak_ = used;
      peak_at_ = label;
    }
  }

  bool gpu() const { return gpu_; }
  bool gpu_ok() const { return gpu_ok_; }
  // GPU: the largest sample. CPU: VmHWM when it could be restarted after the
  // yardstick (else only the samples, which may miss a short peak).
  uint64_t peak_bytes() const {
    if (gpu_ || !hwm_reset_) return peak_;
    const uint64_t hwm = peak_rss_bytes();
    return hwm > peak_ ? hwm : peak_;
  }
  uint64_t baseline_bytes() const { return baseline_; }  // GPU use before load (CUDA context, other processes)
  const std::string& peak_at() const { return peak_at_; }  // label of the largest sample

 private:
  bool gpu_ = false, gpu_ok_ = false, hwm_reset_ = false;
  uint64_t baseline_ = 0, peak_ = 0;
  std::string peak_at_;
};

}  // namespace bench
}  // namespace nemotron
