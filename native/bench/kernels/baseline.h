// The PyTorch baseline written by scripts/torch-baselines.py: cuBLAS matmul,
// SDPA and a copy timed on the same shapes, joined to the bench's rows by name.
#pragma once
#include <map>
#include <string>

namespace nemotron {
namespace bench {

struct BaselineRow {
  double ms = 0;     // 0 when the script recorded an error for this row
  std::string what;  // e.g. "torch.matmul bf16 (cuBLAS)"
  std::string error;
};

struct Baseline {
  std::string path;
  std::string device;         // the GPU the baseline ran on (compared with ours)
  std::string torch_version;
  double copy_gbps = 0;       // torch's D2D copy, bytes read + written per second
  std::map<std::string, BaselineRow> rows;  // by row name

  // nullptr when the baseline has no usable time for `name`.
  const BaselineRow* find(const std::string& name) const {
    auto it = rows.find(name);
    return it == rows.end() || it->second.ms <= 0 ? nullptr : &it->second;
  }
};

// Reads and validates the file; throws nemotron::Error naming the file on any problem.
Baseline load_baseline(const std::string& path);

}  // namespace bench
}  // namespace nemotron
