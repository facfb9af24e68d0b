#include "bench/e2e/weight_traffic.h"

#include "model/safetensors.h"
#include "model/weights.h"

namespace nemotron {
namespace bench {

uint64_t decode_weight_bytes(const std::string& model_dir, const ModelConfig& config) {
  // A second mapping of the files: only the headers are read, no weight page is touched.
  const auto set = SafetensorsSet::open_dir(model_dir);
  const ModelWeights w = bind_weights(config, *set);
  uint64_t bytes = set->total_bytes();
  if (w.lm_head != w.embeddings) bytes -= w.embeddings->nbytes;
  return bytes;
}

}  // namespace bench
}  // namespace nemotron
