#include "addon/state_io.h"

#include <string>

#include "addon/promise_worker.h"
#include "addon/sequence_wrap.h"

namespace nemotron_addon {
namespace {

std::string read_path(const Napi::CallbackInfo& info, const char* what) {
  if (!info[0].IsString() || info[0].As<Napi::String>().Utf8Value().empty())
    throw make_error(info.Env(), "ERR_INVALID_ARGUMENT", std::string(what) + ": path must be a non-empty string");
  return info[0].As<Napi::String>().Utf8Value();
}

int64_t read_context_size(const Napi::CallbackInfo& info, size_t index, const char* what) {
  const double v = info[index].IsNumber() ? info[index].As<Napi::Number>().DoubleValue() : -1;
  if (!(v >= 0 && v <= 1e9 && v == static_cast<double>(static_cast<int64_t>(v))))
    throw make_error(info.Env(), "ERR_INVALID_ARGUMENT", std::string(what) + ": contextSize must be an integer >= 0");
  return static_cast<int64_t>(v);
}

class SaveStateWorker final : public PromiseWorker {
 public:
  SaveStateWorker(Napi::Env env, std::shared_ptr<SequenceBox> box, std::string path, int64_t context_size,
                  std::string meta)
      : PromiseWorker(env), box_(std::move(box)), path_(std::move(path)), context_size_(context_size),
        meta_(std::move(meta)) {}

 protected:
  void run() override {
    const int64_t ctx = context_size_ > 0 ? context_size_ : box_->context_size;
    bytes_ = box_->engine->save_sequence(box_->state.get(), ctx, path_, meta_);
  }
  Napi::Value resolve_value(Napi::Env env) override { return Napi::Number::New(env, static_cast<double>(bytes_)); }

 private:
  std::shared_ptr<SequenceBox> box_;
  std::string path_;
  int64_t context_size_;
  std::string meta_;
  uint64_t bytes_ = 0;
};

class LoadStateWorker final : public PromiseWorker {
 public:
  LoadStateWorker(Napi::Env env, std::shared_ptr<nemotron::Engine> engine, std::string path, int64_t context_size)
      : PromiseWorker(env), engine_(std::move(engine)), path_(std::move(path)), context_size_(context_size) {}

 protected:
  void run() override {
    box_ = std::make_shared<SequenceBox>();
    box_->engine = engine_;
    box_->state = engine_->load_sequence(path_, context_size_);
    box_->context_size = box_->state->context_size();
  }
  Napi::Value resolve_value(Napi::Env env) override { return SequenceWrap::create(env, box_); }

 private:
  std::shared_ptr<nemotron::Engine> engine_;
  std::string path_;
  int64_t context_size_;
  std::shared_ptr<SequenceBox> box_;
};

class InspectStateWorker final : public PromiseWorker {
 public:
  InspectStateWorker(Napi::Env env, std::string path) : PromiseWorker(env), path_(std::move(path)) {}

 protected:
  void run() override { info_ = nemotron::Engine::inspect_state_file(path_); }
  Napi::Value resolve_value(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("model", info_.model);
    o.Set("pattern", info_.pattern);
    o.Set("length", static_cast<double>(info_.length));
    o.Set("contextSize", static_cast<double>(info_.context_size));
    o.Set("meta", info_.meta);
    o.Set("fileBytes", static_cast<double>(info_.file_bytes));
    return o;
  }

 private:
  std::string path_;
  nemotron::StateFileInfo info_;
};

}  // namespace

Napi::Value save_state(const Napi::CallbackInfo& info, std::shared_ptr<SequenceBox> box) {
  std::string path = read_path(info, "saveState");
  const int64_t ctx = read_context_size(info, 1, "saveState");
  if (!info[2].IsString()) throw make_error(info.Env(), "ERR_INVALID_ARGUMENT", "saveState: meta must be a string");
  return queue_worker<SaveStateWorker>(info.Env(), std::move(box), std::move(path), ctx,
                                       info[2].As<Napi::String>().Utf8Value());
}

Napi::Value load_sequence_state(const Napi::CallbackInfo& info, std::shared_ptr<nemotron::Engine> engine) {
  std::string path = read_path(info, "loadSequence");
  const int64_t ctx = read_context_size(info, 1, "loadSequence");
  return queue_worker<LoadStateWorker>(info.Env(), std::move(engine), std::move(path), ctx);
}

Napi::Value inspect_state_file(const Napi::CallbackInfo& info) {
  return queue_worker<InspectStateWorker>(info.Env(), read_path(info, "inspectStateFile"));
}

}  // namespace nemotron_addon
