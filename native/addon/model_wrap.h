// JS object for a loaded model (lib/model.ts wraps it): info(), memoryPlan(),
// createSequence(), loadSequence(), evaluate(), decodeBatch(), dispose().
#pragma once
#include <napi.h>

#include <memory>

#include "common/thread_pool.h"
#include "engine/engine.h"
#include "engine/sampler.h"

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
  Napi::Value load_sequence(const Napi::CallbackInfo& info);
  Napi::Value evaluate(const Napi::CallbackInfo& info);
  Napi::Value decode_batch(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<nemotron::Engine> engine_;
  // Samples the rows of a batch in parallel (decodeBatch with sampling params);
  // made on first use, so models that are never sampled natively have no extra threads.
  std::shared_ptr<nemotron::ThreadPool> sample_pool_;
};

// One row's sampling options from JS (lib/native.ts NativeSamplingRow); throws a
// JS error (ERR_INVALID_ARGUMENT) naming `where` when malformed.
nemotron::SamplingParams read_sampling_params(const Napi::Value& v, const std::string& where);

// @internal sampleRows(logits, params[]): samples row i of `logits` ([params.length,
// vocab]) with params[i] on the JS thread -> { ids, rngStates, errors? }. A test
// hook (test/native-sampling.test.ts) for comparing with the JS Sampler.
Napi::Value sample_rows_for_tests(const Napi::CallbackInfo& info);

// loadModel(dir, { device, threads, maxBatchTokens }, onProgress?) -> Promise<NativeModel>
Napi::Value load_model(const Napi::CallbackInfo& info);

}  // namespace nemotron_addon
