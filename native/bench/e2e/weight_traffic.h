// Bytes of weights one decode step must read: every tensor once, except the
// embedding table, of which a step reads one row per token (the table is read
// in full only when it doubles as the tied lm_head). Divided by the measured
// copy bandwidth this is batch-1 decode's speed limit.
#pragma once
#include <cstdint>
#include <string>

#include "model/config.h"

namespace nemotron {
namespace bench {

uint64_t decode_weight_bytes(const std::string& model_dir, const ModelConfig& config);

}  // namespace bench
}  // namespace nemotron
