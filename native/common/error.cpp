#include "error.h"

#include <cstdio>

namespace nemotron {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArgument: return "ERR_INVALID_ARGUMENT";
    case ErrorCode::ModelFile: return "ERR_MODEL_FILE";
    case ErrorCode::ModelConfig: return "ERR_MODEL_CONFIG";
    case ErrorCode::ModelWeights: return "ERR_MODEL_WEIGHTS";
    case ErrorCode::ContextOverflow: return "ERR_CONTEXT_OVERFLOW";
    case ErrorCode::DeviceUnavailable: return "ERR_DEVICE_UNAVAILABLE";
    case ErrorCode::OutOfMemory: return "ERR_OUT_OF_MEMORY";
    case ErrorCode::Disposed: return "ERR_DISPOSED";
    case ErrorCode::StateFile: return "ERR_STATE_FILE";
    case ErrorCode::Internal: return "ERR_INTERNAL";
  }
  return "ERR_INTERNAL";
}

std::string bytes_text(uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  static const char* const units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes) / 1024;
  int u = 0;
  while (v >= 1024 && u < 3) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace nemotron
