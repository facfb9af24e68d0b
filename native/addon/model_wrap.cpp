#include "addon/model_wrap.h"

#include <algorithm>
#include <cmath>

#include "addon/addon_data.h"
#include "addon/handles.h"
#include "addon/promise_worker.h"
#include "addon/state_io.h"
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

// What decodeBatch does after the forward pass when it was given sampling
// params: rows with params are sampled here (on the worker thread), and only the
// rows that ask for logits (params null, or `logits: true`) are returned.
struct BatchSampling {
  std::vector<nemotron::SampleJob> jobs;
  std::vector<bool> wants_logits;  // per batch row
};

// { ids, rngStates, errors? } for `rows` rows, of which `jobs` were sampled:
// the others get id -1 and a zero state; `errors` only when a job failed.
Napi::Object sampled_rows(Napi::Env env, const std::vector<nemotron::SampleJob>& jobs, size_t rows) {
  Napi::Int32Array ids = Napi::Int32Array::New(env, rows);
  Napi::Uint32Array rng = Napi::Uint32Array::New(env, 4 * rows);  // zero-filled
  Napi::Array errors = Napi::Array::New(env, rows);
  std::fill_n(ids.Data(), rows, -1);
  bool any_error = false;
  for (const nemotron::SampleJob& j : jobs) {
    const size_t row = static_cast<size_t>(j.row);
    ids[row] = j.id;
    std::copy_n(j.params.rng.s, 4, rng.Data() + 4 * row);
    if (!j.error.empty()) {
      errors.Set(static_cast<uint32_t>(row), Napi::String::New(env, j.error));
      any_error = true;
    }
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("ids", ids);
  o.Set("rngStates", rng);
  if (any_error) o.Set("errors", errors);
  return o;
}

// decodeBatch(sequences, tokens[, sampling]): one forward pass advancing every
// sequence by its token. Without `sampling`: logits [n, vocab]. With it: sampled
// ids, RNG states and the requested logit rows (see BatchSampling). Sequences
// that have no state yet get one here.
class DecodeBatchWorker final : public PromiseWorker {
 public:
  DecodeBatchWorker(Napi::Env env, std::shared_ptr<nemotron::Engine> engine, std::vector<std::shared_ptr<SequenceBox>> boxes,
                    std::vector<int32_t> tokens, std::unique_ptr<BatchSampling> sampling,
                    std::shared_ptr<nemotron::ThreadPool> pool)
      : PromiseWorker(env),
        engine_(std::move(engine)),
        boxes_(std::move(boxes)),
        tokens_(std::move(tokens)),
        sampling_(std::move(sampling)),
        pool_(std::move(pool)) {}

 protected:
  void run() override {
    std::vector<nemotron::DecodeItem> items;
    for (size_t i = 0; i < boxes_.size(); ++i) {
      if (boxes_[i]->engine != engine_)
        throw nemotron::Error(nemotron::ErrorCode::InvalidArgument, "decodeBatch: a sequence belongs to another model");
      items.push_back(nemotron::DecodeItem{&boxes_[i]->get(), tokens_[i]});
    }
    const int64_t vocab = engine_->config().vocab_size;
    const size_t total = boxes_.size() * static_cast<size_t>(vocab);
    if (!sampling_) {
      logits_.resize(total);
      engine_->decode(items, logits_.data());
      return;
    }
    // Sampled where the logits are (on CUDA: on the GPU): only each row's
    // candidates reach the host, plus the raw rows a caller asked for.
    std::vector<int64_t> copy_rows;
    for (size_t r = 0; r < sampling_->wants_logits.size(); ++r)
      if (sampling_->wants_logits[r]) copy_rows.push_back(static_cast<int64_t>(r));
    logits_.resize(copy_rows.size() * static_cast<size_t>(vocab));
    engine_->decode_sampled(items, sampling_->jobs, copy_rows, logits_.data(), pool_.get());
  }

  Napi::Value resolve_value(Napi::Env env) override {
    if (!sampling_) return to_float32_array(env, logits_);
    Napi::Object o = sampled_rows(env, sampling_->jobs, boxes_.size());
    o.Set("logits", to_float32_array(env, logits_));
    return o;
  }

 private:
  std::shared_ptr<nemotron::Engine> engine_;
  std::vector<std::shared_ptr<SequenceBox>> boxes_;
  std::vector<int32_t> tokens_;
  std::unique_ptr<BatchSampling> sampling_;
  std::shared_ptr<nemotron::ThreadPool> pool_;
  std::vector<float> logits_;
};

Napi::Error invalid(Napi::Env env, const std::string& message) { return make_error(env, "ERR_INVALID_ARGUMENT", message); }

double read_number(const Napi::Object& o, const char* key, const std::string& where) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw invalid(o.Env(), where + "." + key + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

// A non-negative integer (topK, penaltyWindow).
int64_t read_count(const Napi::Object& o, const char* key, const std::string& where) {
  const double d = read_number(o, key, where);
  if (!(d >= 0 && d <= 9007199254740991.0 && d == std::floor(d)))
    throw invalid(o.Env(), where + "." + key + " must be a non-negative integer");
  return static_cast<int64_t>(d);
}

// The elements of an optional typed array of the given type (empty when undefined).
template <typename T>
std::vector<T> read_typed(const Napi::Object& o, const char* key, napi_typedarray_type type, const std::string& where,
                          bool* present = nullptr) {
  Napi::Value v = o.Get(key);
  if (present) *present = !v.IsUndefined() && !v.IsNull();
  if (v.IsUndefined() || v.IsNull()) return {};
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw invalid(o.Env(), where + "." + key + " has the wrong type");
  Napi::TypedArrayOf<T> a = v.As<Napi::TypedArrayOf<T>>();
  return std::vector<T>(a.Data(), a.Data() + a.ElementLength());
}

// Threads for sampling a batch's rows: as many as the engine computes with.
int sample_threads(const nemotron::Engine& engine) {
  return std::max(1, std::min(engine.threads(), nemotron::ThreadPool::default_threads()));
}

std::unique_ptr<BatchSampling> read_batch_sampling(const Napi::Value& v, size_t rows) {
  Napi::Env env = v.Env();
  if (!v.IsArray() || v.As<Napi::Array>().Length() != rows)
    throw invalid(env, "decodeBatch: sampling must be an array with one entry (params or null) per sequence");
  Napi::Array list = v.As<Napi::Array>();
  auto out = std::make_unique<BatchSampling>();
  out->wants_logits.assign(rows, true);
  for (uint32_t i = 0; i < rows; ++i) {
    Napi::Value e = list.Get(i);
    if (e.IsNull() || e.IsUndefined()) continue;  // a logits-only row
    nemotron::SampleJob job;
    job.row = i;
    job.params = read_sampling_params(e, "decodeBatch: sampling[" + std::to_string(i) + "]");
    out->wants_logits[i] = e.As<Napi::Object>().Get("logits").ToBoolean().Value();
    out->jobs.push_back(std::move(job));
  }
  return out;
}

}  // namespace

nemotron::SamplingParams read_sampling_params(const Napi::Value& v, const std::string& where) {
  Napi::Env env = v.Env();
  if (!v.IsObject()) throw invalid(env, where + " must be an object");
  Napi::Object o = v.As<Napi::Object>();
  nemotron::SamplingParams p;
  p.temperature = read_number(o, "temperature", where);
  if (!(p.temperature >= 0)) throw invalid(env, where + ".temperature must be >= 0");
  p.top_k = read_count(o, "topK", where);
  p.top_p = read_number(o, "topP", where);
  p.min_p = read_number(o, "minP", where);
  p.repetition_penalty = read_number(o, "repetitionPenalty", where);
  p.presence_penalty = read_number(o, "presencePenalty", where);
  p.frequency_penalty = read_number(o, "frequencyPenalty", where);
  p.penalty_window = read_count(o, "penaltyWindow", where);
  p.history = read_typed<int32_t>(o, "history", napi_int32_array, where);
  std::vector<int32_t> bias_ids = read_typed<int32_t>(o, "biasIds", napi_int32_array, where);
  std::vector<double> bias_values = read_typed<double>(o, "biasValues", napi_float64_array, where);
  if (bias_ids.size() != bias_values.size()) throw invalid(env, where + ": biasIds and biasValues differ in length");
  for (size_t i = 0; i < bias_ids.size(); ++i) p.bias.emplace_back(bias_ids[i], bias_values[i]);
  p.mask = read_typed<int32_t>(o, "mask", napi_int32_array, where, &p.has_mask);
  std::vector<uint32_t> rng = read_typed<uint32_t>(o, "rng", napi_uint32_array, where);
  if (rng.size() != 4) throw invalid(env, where + ".rng must be a Uint32Array of 4 words");
  std::copy(rng.begin(), rng.end(), p.rng.s);
  return p;
}

Napi::Value sample_rows_for_tests(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw invalid(env, "sampleRows: logits must be a Float32Array");
  if (!info[1].IsArray() || info[1].As<Napi::Array>().Length() == 0)
    throw invalid(env, "sampleRows: params must be a non-empty array");
  Napi::Float32Array logits = info[0].As<Napi::Float32Array>();
  Napi::Array list = info[1].As<Napi::Array>();
  const size_t rows = list.Length();
  if (logits.ElementLength() % rows != 0) throw invalid(env, "sampleRows: logits is not [params.length, vocab]");
  const int64_t vocab = static_cast<int64_t>(logits.ElementLength() / rows);
  std::vector<nemotron::SampleJob> jobs(rows);
  for (uint32_t i = 0; i < rows; ++i) {
    jobs[i].row = i;
    jobs[i].params = read_sampling_params(list.Get(i), "sampleRows: params[" + std::to_string(i) + "]");
  }
  nemotron::sample_rows(logits.Data(), vocab, jobs, nullptr);
  Napi::Object o = sampled_rows(env, jobs, rows);
  // here every row has an entry: null when it was sampled
  Napi::Array errors = Napi::Array::New(env, rows);
  for (uint32_t i = 0; i < rows; ++i)
    errors.Set(i, jobs[i].error.empty() ? env.Null() : Napi::String::New(env, jobs[i].error));
  o.Set("errors", errors);
  return o;
}

void ModelWrap::init(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "NativeModel",
                                    {InstanceMethod<&ModelWrap::info>("info"),
                                     InstanceMethod<&ModelWrap::memory_plan>("memoryPlan"),
                                     InstanceMethod<&ModelWrap::create_sequence>("createSequence"),
                                     InstanceMethod<&ModelWrap::load_sequence>("loadSequence"),
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
  o.Set("fingerprint", engine->fingerprint());
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
  o.Set("kvCacheType", p.kv_dtype == nemotron::DType::BF16 ? "bf16" : "f32");
  o.Set("activationBytes", static_cast<double>(p.activation_bytes));
  o.Set("workspaceBytes", static_cast<double>(p.workspace_bytes));
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

Napi::Value ModelWrap::load_sequence(const Napi::CallbackInfo& info) {
  return load_sequence_state(info, live(info.Env()));
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
  std::unique_ptr<BatchSampling> sampling;
  if (!info[2].IsUndefined() && !info[2].IsNull()) {
    sampling = read_batch_sampling(info[2], boxes.size());
    if (!sample_pool_) sample_pool_ = std::make_shared<nemotron::ThreadPool>(sample_threads(*engine));
  }
  return queue_worker<DecodeBatchWorker>(env, std::move(engine), std::move(boxes), std::move(tokens), std::move(sampling),
                                         sample_pool_);
}

Napi::Value ModelWrap::dispose(const Napi::CallbackInfo& info) {
  engine_.reset();
  sample_pool_.reset();
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
    if (o.Get("kvCache").IsString()) opts.kv_cache = o.Get("kvCache").As<Napi::String>().Utf8Value();
  }
  Napi::Function on_progress = info[2].IsFunction() ? info[2].As<Napi::Function>() : Napi::Function();
  auto* w = new LoadWorker(env, info[0].As<Napi::String>().Utf8Value(), opts, on_progress);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

}  // namespace nemotron_addon
