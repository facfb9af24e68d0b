#include "addon/promise_worker.h"

#include <cmath>
#include <cstring>

namespace nemotron_addon {

std::vector<int32_t> read_tokens(const Napi::Value& v) {
  Napi::Env env = v.Env();
  std::vector<int32_t> out;
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array) {
    Napi::Int32Array a = v.As<Napi::Int32Array>();
    out.assign(a.Data(), a.Data() + a.ElementLength());
    return out;
  }
  if (v.IsArray()) {
    Napi::Array a = v.As<Napi::Array>();
    out.reserve(a.Length());
    for (uint32_t i = 0; i < a.Length(); ++i) {
      Napi::Value e = a.Get(i);
      double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : NAN;
      if (!(d == std::floor(d)) || d < INT32_MIN || d > INT32_MAX)
        throw make_error(env, "ERR_INVALID_ARGUMENT", "tokens[" + std::to_string(i) + "] is not an integer token id");
      out.push_back(static_cast<int32_t>(d));
    }
    return out;
  }
  throw make_error(env, "ERR_INVALID_ARGUMENT", "tokens must be an Int32Array or an array of integers");
}

Napi::Float32Array to_float32_array(Napi::Env env, const std::vector<float>& data) {
  Napi::Float32Array a = Napi::Float32Array::New(env, data.size());
  if (!data.empty()) std::memcpy(a.Data(), data.data(), data.size() * sizeof(float));
  return a;
}

}  // namespace nemotron_addon
