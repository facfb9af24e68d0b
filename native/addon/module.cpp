// Addon entry point: registers the wrapped classes and the free functions.
#include <napi.h>

#include "addon/addon_data.h"
#include "addon/model_wrap.h"
#include "addon/sequence_wrap.h"
#include "common/cpu_features.h"

namespace nemotron_addon {
namespace {

Napi::Value runtime_info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  const nemotron::CpuFeatures& f = nemotron::cpu_features();
  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("avx2", f.avx2);
  cpu.Set("fma", f.fma);
  cpu.Set("f16c", f.f16c);
  o.Set("cpu", cpu);
  Napi::Object cuda = Napi::Object::New(env);
  cuda.Set("compiled", false);
  cuda.Set("available", false);
  cuda.Set("reason", "this binary was built without the CUDA backend");
  o.Set("cuda", cuda);
  return o;
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  ModelWrap::init(env);
  SequenceWrap::init(env);
  exports.Set("loadModel", Napi::Function::New<load_model>(env, "loadModel"));
  exports.Set("runtimeInfo", Napi::Function::New<runtime_info>(env, "runtimeInfo"));
  return exports;
}

}  // namespace
}  // namespace nemotron_addon

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return nemotron_addon::init(env, exports); }

NODE_API_MODULE(nemotron_node, InitAddon)
