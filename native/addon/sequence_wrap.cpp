#include "addon/sequence_wrap.h"

#include "addon/addon_data.h"
#include "addon/promise_worker.h"
#include "addon/state_io.h"

namespace nemotron_addon {
namespace {

class PrefillWorker final : public PromiseWorker {
 public:
  PrefillWorker(Napi::Env env, std::shared_ptr<SequenceBox> box, std::vector<int32_t> tokens, bool all)
      : PromiseWorker(env), box_(std::move(box)), tokens_(std::move(tokens)), all_(all) {}

 protected:
  void run() override {
    const int64_t V = box_->engine->config().vocab_size;
    const int64_t n = static_cast<int64_t>(tokens_.size());
    logits_.resize(static_cast<size_t>((all_ ? n : 1) * V));
    box_->engine->prefill(box_->get(), tokens_.data(), n, all_, logits_.data());
  }
  Napi::Value resolve_value(Napi::Env env) override { return to_float32_array(env, logits_); }

 private:
  std::shared_ptr<SequenceBox> box_;
  std::vector<int32_t> tokens_;
  bool all_;
  std::vector<float> logits_;
};

class DecodeWorker final : public PromiseWorker {
 public:
  DecodeWorker(Napi::Env env, std::shared_ptr<SequenceBox> box, int32_t token)
      : PromiseWorker(env), box_(std::move(box)), token_(token) {}

 protected:
  void run() override {
    logits_.resize(static_cast<size_t>(box_->engine->config().vocab_size));
    box_->engine->decode({nemotron::DecodeItem{&box_->get(), token_}}, logits_.data());
  }
  Napi::Value resolve_value(Napi::Env env) override { return to_float32_array(env, logits_); }

 private:
  std::shared_ptr<SequenceBox> box_;
  int32_t token_;
  std::vector<float> logits_;
};

class CloneWorker final : public PromiseWorker {
 public:
  CloneWorker(Napi::Env env, std::shared_ptr<SequenceBox> box, int64_t context_size)
      : PromiseWorker(env), box_(std::move(box)), context_size_(context_size) {}

 protected:
  void run() override {
    copy_ = std::make_shared<SequenceBox>();
    copy_->engine = box_->engine;
    copy_->context_size = context_size_ > 0 ? context_size_ : box_->context_size;
    if (box_->state) copy_->state = box_->engine->clone_sequence(*box_->state, copy_->context_size);
  }
  Napi::Value resolve_value(Napi::Env env) override { return SequenceWrap::create(env, copy_); }

 private:
  std::shared_ptr<SequenceBox> box_, copy_;
  int64_t context_size_;
};

class ResetWorker final : public PromiseWorker {
 public:
  ResetWorker(Napi::Env env, std::shared_ptr<SequenceBox> box) : PromiseWorker(env), box_(std::move(box)) {}

 protected:
  void run() override {
    if (box_->state) box_->engine->reset_sequence(*box_->state);
  }

 private:
  std::shared_ptr<SequenceBox> box_;
};

}  // namespace

void SequenceWrap::init(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "NativeSequence",
                                    {InstanceMethod<&SequenceWrap::prefill>("prefill"),
                                     InstanceMethod<&SequenceWrap::decode>("decode"),
                                     InstanceMethod<&SequenceWrap::clone>("clone"),
                                     InstanceMethod<&SequenceWrap::reset>("reset"),
                                     InstanceMethod<&SequenceWrap::save_state>("saveState"),
                                     InstanceMethod<&SequenceWrap::dispose>("dispose")});
  addon_data(env).sequence_ctor = Napi::Persistent(ctor);
}

Napi::Object SequenceWrap::create(Napi::Env env, std::shared_ptr<SequenceBox> box) {
  Napi::Object obj = addon_data(env).sequence_ctor.New({});
  SequenceWrap::Unwrap(obj)->box_ = std::move(box);
  return obj;
}

SequenceWrap::SequenceWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SequenceWrap>(info) {}

std::shared_ptr<SequenceBox> SequenceWrap::unwrap_box(const Napi::Value& v) {
  Napi::Env env = v.Env();
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addon_data(env).sequence_ctor.Value()))
    throw make_error(env, "ERR_INVALID_ARGUMENT", "expected a sequence of this model");
  return SequenceWrap::Unwrap(v.As<Napi::Object>())->live(env);
}

std::shared_ptr<SequenceBox> SequenceWrap::live(Napi::Env env) const {
  if (!box_) throw make_error(env, "ERR_DISPOSED", "this sequence was disposed");
  return box_;
}

Napi::Value SequenceWrap::prefill(const Napi::CallbackInfo& info) {
  auto box = live(info.Env());
  std::vector<int32_t> tokens = read_tokens(info[0]);
  bool all = info.Length() > 1 && info[1].ToBoolean().Value();
  return queue_worker<PrefillWorker>(info.Env(), std::move(box), std::move(tokens), all);
}

Napi::Value SequenceWrap::decode(const Napi::CallbackInfo& info) {
  auto box = live(info.Env());
  std::vector<int32_t> token = read_tokens(info[0]);
  if (token.size() != 1) throw make_error(info.Env(), "ERR_INVALID_ARGUMENT", "decode takes exactly one token");
  return queue_worker<DecodeWorker>(info.Env(), std::move(box), token[0]);
}

// clone([contextSize]): 0 or absent keeps this sequence's context size.
Napi::Value SequenceWrap::clone(const Napi::CallbackInfo& info) {
  auto box = live(info.Env());
  int64_t context_size = 0;
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    if (!info[0].IsNumber()) throw make_error(info.Env(), "ERR_INVALID_ARGUMENT", "clone: contextSize must be a number");
    context_size = info[0].As<Napi::Number>().Int64Value();
    if (context_size < 0) throw make_error(info.Env(), "ERR_INVALID_ARGUMENT", "clone: contextSize must be positive");
  }
  return queue_worker<CloneWorker>(info.Env(), std::move(box), context_size);
}

Napi::Value SequenceWrap::reset(const Napi::CallbackInfo& info) { return queue_worker<ResetWorker>(info.Env(), live(info.Env())); }

Napi::Value SequenceWrap::save_state(const Napi::CallbackInfo& info) {
  return nemotron_addon::save_state(info, live(info.Env()));
}

Napi::Value SequenceWrap::dispose(const Napi::CallbackInfo& info) {
  box_.reset();
  return info.Env().Undefined();
}

}  // namespace nemotron_addon
