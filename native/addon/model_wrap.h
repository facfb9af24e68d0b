// JS object for a loaded model (lib/model.ts wraps it): info(), memoryPlan(),
// createSequence(), evaluate(), decodeBatch(), dispose().
#pragma once
#include <napi.h>

#include <memory>

#include "engine/engine.h"

namespace nemotron_addon {

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static void init(Napi::Env env);
  static Napi::Object create(Napi::Env env, std::shared_ptr<nemotron::Engine> engine);
  explicit ModelWrap(const Napi::CallbackInfo& info);

 private:
  std::shared_ptr<nemotron::Engine> live(Napi::Env env) const;
  Napi::Value info(const Napi::CallbackInfo& info);
  Napi::Value memory_plan(const Napi::CallbackInfo& info);
  Napi::Value create_sequence(const Napi::CallbackInfo& info);
  Napi::Value evaluate(const Napi::CallbackInfo& info);
  Napi::Value decode_batch(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<nemotron::Engine> engine_;
};

// loadModel(dir, { device, threads, maxBatchTokens }, onProgress?) -> Promise<NativeModel>
Napi::Value load_model(const Napi::CallbackInfo& info);

}  // namespace nemotron_addon
