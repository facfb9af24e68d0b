// Addon entry point: registers the wrapped classes and the free functions.
#include <napi.h>

#include "addon/addon_data.h"
#include "addon/model_wrap.h"
#include "addon/sequence_wrap.h"
#include "addon/state_io.h"
#include "backend/device_probe.h"
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
  const nemotron::CudaStatus& cs = nemotron::cuda_status();
  Napi::Object cuda = Napi::Object::New(env);
  cuda.Set("compiled", cs.compiled);
  cuda.Set("available", cs.available);
  cuda.Set("reason", cs.reason);
  cuda.Set("archs", cs.archs);
  cuda.Set("driverVersion", cs.driver_version);
  cuda.Set("runtimeVersion", cs.runtime_version);
  Napi::Array devices = Napi::Array::New(env, cs.devices.size());
  for (size_t i = 0; i < cs.devices.size(); ++i) {
    const nemotron::CudaDeviceInfo& d = cs.devices[i];
    Napi::Object dev = Napi::Object::New(env);
    dev.Set("index", d.index);
    dev.Set("name", d.name);
    dev.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
    dev.Set("totalBytes", static_cast<double>(d.total_bytes));
    dev.Set("freeBytes", static_cast<double>(d.free_bytes));
    dev.Set("multiprocessors", d.multiprocessors);
    devices.Set(static_cast<uint32_t>(i), dev);
  }
  cuda.Set("devices", devices);
  o.Set("cuda", cuda);
  return o;
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  ModelWrap::init(env);
  SequenceWrap::init(env);
  exports.Set("loadModel", Napi::Function::New<load_model>(env, "loadModel"));
  exports.Set("inspectStateFile", Napi::Function::New<inspect_state_file>(env, "inspectStateFile"));
  exports.Set("runtimeInfo", Napi::Function::New<runtime_info>(env, "runtimeInfo"));
  // Internal: a test hook comparing the native sampler with the JS one. Not API.
  exports.Set("sampleRows", Napi::Function::New<sample_rows_for_tests>(env, "sampleRows"));
  return exports;
}

}  // namespace
}  // namespace nemotron_addon

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return nemotron_addon::init(env, exports); }

NODE_API_MODULE(nemotron_node, InitAddon)
