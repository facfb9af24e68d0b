#include "addon/model_wrap.h"

#include "addon/addon_data.h"
#include "addon/handles.h"
#include "addon/promise_worker.h"
#include "addon/sequence_wrap.h"

namespace nemotron_addon {
namespace {

struct ProgressEvent {
  std::string stage;
  uint64_t done, total;
};

// Loads on a worker thread and reports progress to an optional JS callback.
class LoadWorker final : public Napi::AsyncProgressQueueWorker<ProgressEvent> {
 public:
  LoadWorker(Napi::Env env, std::string dir, nemotron::EngineOptions opts, Napi::Function on_progress)
      : Napi::AsyncProgressQueueWorker<ProgressEvent>(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        dir_(std::move(dir)),
        opts_(std::move(opts)) {
    if (!on_progress.IsEmpty()) on_progress_ = Napi::Persistent(on_progress);
  }
  Napi::Promise promise() { return deferred_.Promise(); }

 private:
  void Execute(const ExecutionProgress& progress) override {
    try {
      engine_ = nemotron::Engine::load(dir_, opts_, [&](const std::string& stage, uint64_t done, uint64_t total) {
        ProgressEvent ev{stage, done, total};
        progress.Send(&ev, 1);
      });
    } catch (...) {
      classify(std::current_exception(), &code_, &message_);
      SetError(message_);
    }
  }
  void OnProgress(const ProgressEvent* ev, size_t count) override {
    if (on_progress_.IsEmpty()) return;
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    for (size_t i = 0; i < count; ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("stage", ev[i].stage);
      o.Set("loadedBytes", static_cast<double>(ev[i].done));
      o.Set("totalBytes", static_cast<double>(ev[i].total));
      try {
        on_progress_.Call({o});
      } catch (const Napi::Error&) {
        // A throwing progress callback must not break loading; the TS layer
        // wraps user callbacks and reports their errors itself.
      }
    }
  }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    deferred_.Resolve(ModelWrap::create(Env(), std::move(engine_)));
  }
  void OnError(const Napi::Error&) override {
    Napi::HandleScope scope(Env());
    deferred_.Reject(make_error(Env(), code_, message_).Value());
  }

  Napi::Promise::Deferred deferred_;
  Napi::FunctionReference on_progress_;
  std::string dir_;
  nemotron::EngineOptions opts_;
  std::shared_ptr<nemotron::Engine> engine_;
  std::string code_, message_;
};

// evaluate(tokens): all-position logits through a temporary sequence.
class EvaluateWorker final : public PromiseWorker {
 public:
  EvaluateWorker(Napi::Env env, std::shared_ptr<nemotron::Engine> engine, std::vector<int32_t> tokens)
      : PromiseWorker(env), engine_(std::move(engine)), tokens_(std::move(tokens)) {}

 protected:
  void run() override {
    const int64_t n = static_cast<int64_t>(tokens_.size());
    auto seq = engine_->create_sequence(n > 0 ? n : 1);
    logits_.resize(static_cast<size_t>(n * engine_->config().vocab_size));
    engine_->prefill(*seq, tokens_.data(), n, true, logits_.data());
  }
  Napi::Value resolve_value(Napi::Env env) override { return to_float32_array(env, logits_); }

 private:
  std::shared_ptr<nemotron::Engine> engine_;
  std::vector<int32_t> tokens_;
  std::vector<float> logits_;
};

// decodeBatch(sequences, tokens): one forward pass advancing every sequence by
// its token; logits [n, vocab]. Sequences that have no state yet get one here.
class DecodeBatchWorker final : public PromiseWorker {
 public:
  DecodeBatchWorker(Napi::Env env, std::shared_ptr<nemotron::Engine> engine, std::vector<std::shared_ptr<SequenceBox>> boxes,
                    std::vector<int32_t> tokens)
      : PromiseWorker(env), engine_(std::move(engine)), boxes_(std::move(boxes)), tokens_(std::move(tokens)) {}

 protected:
  void run() override {
    std::vector<nemotron::DecodeItem> items;
    for (size_t i = 0; i < boxes_.size(); ++i) {
      if (boxes_[i]->engine != engine_)
        throw nemotron::Error(nemotron::ErrorCode::InvalidArgument, "decodeBatch: a sequence belongs to another model");
      items.push_back(nemotron::DecodeItem{&boxes_[i]->get(), tokens_[i]});
    }
    logits_.resize(boxes_.size() * static_cast<size_t>(engine_->config().vocab_size));
    engine_->decode(items, logits_.data());
  }
  Napi::Value resolve_value(Napi::Env env) override { return to_float32_array(env, logits_); }

 private:
  std::shared_ptr<nemotron::Engine> engine_;
  std::vector<std::shared_ptr<SequenceBox>> boxes_;
  std::vector<int32_t> tokens_;
  std::vector<float> logits_;
};

}  // namespace

void ModelWrap::init(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "NativeModel",
                                    {InstanceMethod<&ModelWrap::info>("info"),
                                     InstanceMethod<&ModelWrap::memory_plan>("memoryPlan"),
                                     InstanceMethod<&ModelWrap::create_sequence>("createSequence"),
                                     InstanceMethod<&ModelWrap::evaluate>("evaluate"),
                                     InstanceMethod<&ModelWrap::decode_batch>("decodeBatch"),
                                     InstanceMethod<&ModelWrap::dispose>("dispose")});
  addon_data(env).model_ctor = Napi::Persistent(ctor);
}

Napi::Object ModelWrap::create(Napi::Env env, std::shared_ptr<nemotron::Engine> engine) {
  Napi::Object obj = addon_data(env).model_ctor.New({});
  ModelWrap::Unwrap(obj)->engine_ = std::move(engine);
  return obj;
}

ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {}

std::shared_ptr<nemotron::Engine> ModelWrap::live(Napi::Env env) const {
  if (!engine_) throw make_error(env, "ERR_DISPOSED", "this model was disposed");
  return engine_;
}

Napi::Value ModelWrap::info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto engine = live(env);
  const nemotron::ModelConfig& c = engine->config();
  Napi::Object o = Napi::Object::New(env);
  o.Set("device", engine->device());
  o.Set("threads", engine->threads());
  o.Set("weightBytes", static_cast<double>(engine->weight_bytes()));
  o.Set("vocabSize", static_cast<double>(c.vocab_size));
  o.Set("hiddenSize", static_cast<double>(c.hidden_size));
  o.Set("numLayers", static_cast<double>(c.num_layers));
  o.Set("layerPattern", c.pattern);
  o.Set("maxPositionEmbeddings", static_cast<double>(c.max_position_embeddings));
  o.Set("bosTokenId", static_cast<double>(c.bos_token_id));
  o.Set("eosTokenId", static_cast<double>(c.eos_token_id));
  return o;
}

Napi::Value ModelWrap::memory_plan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto engine = live(env);
  const nemotron::MemoryPlan p = guard(env, [&] { return engine->memory_plan(); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("device", p.device);
  o.Set("weightBytes", static_cast<double>(p.weight_bytes));
  o.Set("stateBytesPerSequence", static_cast<double>(p.state_bytes_per_sequence));
  o.Set("kvBytesPerToken", static_cast<double>(p.kv_bytes_per_token));
  o.Set("activationBytes", static_cast<double>(p.activation_bytes));
  o.Set("maxBatchTokens", static_cast<double>(p.max_batch_tokens));
  o.Set("deviceTotalBytes", static_cast<double>(p.device_total_bytes));
  o.Set("deviceFreeBytes", static_cast<double>(p.device_free_bytes));
  return o;
}

Napi::Value ModelWrap::create_sequence(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto box = std::make_shared<SequenceBox>();
  box->engine = live(env);
  double ctx = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
  if (!(ctx >= 1 && ctx <= 1e9 && ctx == static_cast<double>(static_cast<int64_t>(ctx))))
    throw make_error(env, "ERR_INVALID_ARGUMENT", "contextSize must be a positive integer");
  box->context_size = static_cast<int64_t>(ctx);
  return SequenceWrap::create(env, std::move(box));
}

Napi::Value ModelWrap::evaluate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto engine = live(env);
  return queue_worker<EvaluateWorker>(env, std::move(engine), read_tokens(info[0]));
}

Napi::Value ModelWrap::decode_batch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto engine = live(env);
  if (!info[0].IsArray()) throw make_error(env, "ERR_INVALID_ARGUMENT", "decodeBatch: sequences must be an array");
  Napi::Array list = info[0].As<Napi::Array>();
  std::vector<std::shared_ptr<SequenceBox>> boxes;
  for (uint32_t i = 0; i < list.Length(); ++i) boxes.push_back(SequenceWrap::unwrap_box(list.Get(i)));
  std::vector<int32_t> tokens = read_tokens(info[1]);
  if (tokens.size() != boxes.size() || boxes.empty())
    throw make_error(env, "ERR_INVALID_ARGUMENT", "decodeBatch: one token per sequence, at least one sequence");
  return queue_worker<DecodeBatchWorker>(env, std::move(engine), std::move(boxes), std::move(tokens));
}

Napi::Value ModelWrap::dispose(const Napi::CallbackInfo& info) {
  engine_.reset();
  return info.Env().Undefined();
}

Napi::Value load_model(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw make_error(env, "ERR_INVALID_ARGUMENT", "loadModel: dir must be a string");
  nemotron::EngineOptions opts;
  if (info[1].IsObject()) {
    Napi::Object o = info[1].As<Napi::Object>();
    if (o.Get("device").IsString()) opts.device = o.Get("device").As<Napi::String>().Utf8Value();
    if (o.Get("threads").IsNumber()) opts.threads = o.Get("threads").As<Napi::Number>().Int32Value();
    if (o.Get("maxBatchTokens").IsNumber())
      opts.max_batch_tokens = o.Get("maxBatchTokens").As<Napi::Number>().Int64Value();
  }
  Napi::Function on_progress = info[2].IsFunction() ? info[2].As<Napi::Function>() : Napi::Function();
  auto* w = new LoadWorker(env, info[0].As<Napi::String>().Utf8Value(), opts, on_progress);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

}  // namespace nemotron_addon
