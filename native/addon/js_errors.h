// Turning native failures into JS Error objects that carry a stable `code`
// (lib/errors.ts maps the code to a typed error class).
#pragma once
#include <napi.h>

#include <exception>
#include <string>

#include "common/error.h"

namespace nemotron_addon {

inline Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

// Classifies a caught exception into (code, message).
inline void classify(const std::exception_ptr& ep, std::string* code, std::string* message) {
  try {
    std::rethrow_exception(ep);
  } catch (const nemotron::Error& e) {
    *code = nemotron::error_code_name(e.code());
    *message = e.what();
  } catch (const std::bad_alloc&) {
    *code = "ERR_OUT_OF_MEMORY";
    *message = "out of memory";
  } catch (const std::exception& e) {
    *code = "ERR_INTERNAL";
    *message = std::string("internal error: ") + e.what();
  } catch (...) {
    *code = "ERR_INTERNAL";
    *message = "internal error: unknown exception";
  }
}

// Runs `fn` on the JS thread; a native exception becomes a thrown JS error.
template <typename Fn>
auto guard(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    std::string code, message;
    classify(std::current_exception(), &code, &message);
    throw make_error(env, code, message);
  }
}

}  // namespace nemotron_addon
