// A short identity of a model's weights, for saved sequence states: a state is
// only meaningful to the weights that produced it, so a state file records the
// fingerprint of its model and loading it into any other model is refused.
#pragma once
#include <string>

#include "model/config.h"
#include "model/safetensors.h"

namespace nemotron {

// 16 hex digits. Covers the layer pattern and state dimensions, every tensor's
// name, dtype and shape, and 3 × 256 bytes of each tensor's data (start, middle,
// end): fine-tunes of one base share names and shapes but not those bytes.
// Independent of how the weights are split into files. Reads about 1 KiB per
// tensor, so it costs nothing next to loading.
std::string model_fingerprint(const ModelConfig& config, const SafetensorsSet& files);

}  // namespace nemotron
