// Per-environment data (constructors of the wrapped classes), so the addon works
// in worker_threads where each thread has its own environment.
#pragma once
#include <napi.h>

namespace nemotron_addon {

struct AddonData {
  Napi::FunctionReference model_ctor;
  Napi::FunctionReference sequence_ctor;
};

inline AddonData& addon_data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace nemotron_addon
