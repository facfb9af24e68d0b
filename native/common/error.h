// Error type thrown by every native component. The `code` is stable and is mapped
// to a typed JavaScript error class by lib/errors.ts, so callers can branch on it.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace nemotron {

enum class ErrorCode {
  InvalidArgument,    // a caller passed a bad value (token id out of range, empty prompt, ...)
  ModelFile,          // a file is missing, unreadable, truncated or malformed
  ModelConfig,        // config.json is missing, invalid or describes an unsupported model
  ModelWeights,       // a tensor is missing or has the wrong dtype/shape
  ContextOverflow,    // a sequence would grow past its context size
  DeviceUnavailable,  // the requested device (e.g. CUDA) cannot be used here
  OutOfMemory,        // an allocation failed
  Disposed,           // the model or sequence was already disposed
  StateFile,          // a saved sequence state is unreadable, truncated, corrupt or from another model
  Internal,           // a bug: an invariant did not hold
};

const char* error_code_name(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

// A size for a message: "512 B", "20.5 KiB", "139.2 MiB", "16.6 GiB" (so a small
// need next to a small free amount still reads differently).
std::string bytes_text(uint64_t bytes);

[[noreturn]] inline void fail(ErrorCode code, const std::string& message) { throw Error(code, message); }

}  // namespace nemotron
