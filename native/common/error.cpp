#include "error.h"

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

}  // namespace nemotron
